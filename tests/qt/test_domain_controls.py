"""The annotation panel shows the controls of the picked image's domain, and only those."""

from __future__ import annotations

import pytest

from napari_domainseg._widgets._annotation_panel import AnnotationPanel
from napari_domainseg.ops.threshold import HU_RANGES, INDEX_RANGES

PLUGIN = "napari-domainseg"


def _ranges(panel: AnnotationPanel) -> list[str]:
    box = panel.tools.range_box
    return [box.itemText(i) for i in range(box.count())]


@pytest.fixture
def panel_for(make_napari_viewer, shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_DOMAINSEG_RECOVERY", str(tmp_path / "recovery"))

    def open_in_panel(relative: str) -> AnnotationPanel:
        viewer = make_napari_viewer()
        viewer.open(str(shared_data / relative), plugin=PLUGIN)
        return AnnotationPanel(viewer)

    return open_in_panel


def test_ct_volume_shows_windows_and_hounsfield_ranges(panel_for):
    panel = panel_for("medical/ct_head_study")
    assert not panel.display.ct_group.isHidden()
    assert panel.display.bands_group.isHidden(), "no band composites for a CT"
    assert set(HU_RANGES) <= set(_ranges(panel)) and not set(INDEX_RANGES) & set(_ranges(panel))
    assert panel.tools.island_label.text() == "min island (mm³)"
    assert panel.tabs.isTabEnabled(panel.tabs.indexOf(panel.slices))


def test_satellite_scene_shows_bands_and_indices_not_ct_windows(panel_for):
    panel = panel_for("geo/landsat_rgb/RGB.byte.tif")
    assert panel.display.ct_group.isHidden(), "CT window presets make no sense for a scene"
    assert not panel.display.bands_group.isHidden()
    assert set(INDEX_RANGES) <= set(_ranges(panel)) and not set(HU_RANGES) & set(_ranges(panel))
    assert panel.tools.island_label.text() == "min island (m²)"
    assert not panel.tabs.isTabEnabled(panel.tabs.indexOf(panel.slices)), "a scene has no slices"
    before = panel.image().contrast_limits
    panel.display.cycle_window()  # the W key
    assert panel.image().contrast_limits == before, "W must not put a CT window on a scene"


def test_mr_volume_says_why_there_are_no_ct_windows(panel_for):
    panel = panel_for("medical/mr_sagittal")
    assert panel.display.ct_group.isHidden() and panel.display.bands_group.isHidden()
    assert "not Hounsfield" in panel.display.hint.text()
    assert not set(HU_RANGES) & set(_ranges(panel))
