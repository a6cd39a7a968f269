"""The annotation panel in a real viewer: tools edit through undo, statistics follow edits."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._widgets._annotation_panel import AnnotationPanel
from napari_domainseg.labels import load_preset

PLUGIN = "napari-domainseg"


@pytest.fixture
def ct_panel(make_napari_viewer, shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_DOMAINSEG_RECOVERY", str(tmp_path / "recovery"))
    viewer = make_napari_viewer()
    viewer.open(str(shared_data / "medical/ct_head_study"), plugin=PLUGIN)
    panel = AnnotationPanel(viewer)
    panel.classes.set_schema(load_preset("ct_abdomen_head"))
    labels = panel.new_annotation_layer()
    return viewer, panel, labels


def test_threshold_into_the_class_and_undo(ct_panel):
    _, panel, labels = ct_panel
    assert panel.image().name == "STD BRAIN 5MM" and panel.labels() is labels
    labels.selected_label = 5  # bone
    panel.tools.range_box.setCurrentText("bone")
    panel.tools._on_range(0)
    panel.tools.in_slice.setCurrentText("whole volume")
    changed = panel.tools.threshold()
    image = panel.image().data
    assert changed == int(((image >= 300) & (image <= 3000)).sum()) > 0
    np.testing.assert_array_equal(labels.data == 5, (image >= 300) & (image <= 3000))
    labels.undo()
    assert not labels.data.any(), "one Ctrl+Z undoes the whole threshold"


def test_current_slice_tools_touch_only_that_slice(ct_panel):
    viewer, panel, labels = ct_panel
    labels.selected_label = 5
    viewer.dims.set_point(0, labels.data_to_world([14, 0, 0])[0])
    panel.tools.in_slice.setCurrentText("current slice")
    panel.tools.threshold()
    assert np.flatnonzero(labels.data.any(axis=(1, 2))).tolist() == [14]


def test_fill_between_slices_and_navigation(ct_panel):
    viewer, panel, labels = ct_panel
    labels.selected_label = 3
    rows, cols = np.indices(labels.data.shape[1:])
    disc = (rows - 256) ** 2 + (cols - 256) ** 2
    for index, radius in ((5, 20), (15, 40)):
        inside = np.nonzero(disc <= radius**2)
        labels.data_setitem((np.full(len(inside[0]), index), *inside), 3)
    assert panel.slices.refresh().endswith("annotated 2 of 28 slices")
    viewer.dims.set_point(0, labels.data_to_world([0, 0, 0])[0])
    assert panel.slices.go(1) == 5 and panel.slices.go(1) == 15 and panel.slices.go(-1) == 5
    filled = panel.slices.fill()
    assert filled > 0
    areas = labels.data[5:16].astype(bool).sum(axis=(1, 2))
    assert all(a <= b for a, b in pairwise(areas))
    labels.undo()
    assert labels.data[6:15].sum() == 0
    viewer.dims.set_point(0, labels.data_to_world([15, 0, 0])[0])
    assert panel.slices.copy(1) == np.count_nonzero(disc <= 40**2)


def test_cleanup_window_presets_and_statistics(ct_panel, qtbot, tmp_path):
    _, panel, labels = ct_panel
    labels.selected_label = 5
    panel.tools.in_slice.setCurrentText("whole volume")
    panel.tools.threshold()
    before = int((labels.data == 5).sum())
    panel.tools.island.setValue(1000.0)  # 1 mL
    panel.tools.clean("islands")
    assert 0 < int((labels.data == 5).sum()) < before
    panel.display.apply_window("lung")
    assert tuple(panel.image().contrast_limits) == (-1350.0, 150.0)
    panel.statistics.recompute()
    qtbot.waitUntil(lambda: not panel.statistics._running, timeout=20000)
    rows = panel.statistics.show_rows()
    assert rows[0].label == 5 and rows[0].name == "bone" and rows[0].size > 1.0  # mL
    count = rows[0].count
    labels.selected_label = 2
    labels.data_setitem((np.full(100, 3), np.arange(100), np.zeros(100, int)), 2)
    qtbot.waitUntil(lambda: panel.statistics.table.rowCount() == 2, timeout=5000)
    assert {r.label: r.count for r in panel.statistics.stats.rows()}[2] == 100
    assert {r.label: r.count for r in panel.statistics.stats.rows()}[5] <= count
    labels.brush_size = 5
    labels.paint((20, 300, 300), 7)  # a brush dab: napari records it as a masked paint atom
    qtbot.waitUntil(lambda: 7 in {r.label for r in panel.statistics.stats.rows()}, timeout=5000)
    csv = panel.statistics.export_csv(tmp_path / "stats.csv").read_text()
    assert csv.startswith("label,name,count,size_mL") and "bone" in csv


def test_geo_display_composites_and_indices(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "synthetic_scene")
    panel = AnnotationPanel(viewer)
    panel.image_box.setCurrentText("scene B4 red")
    assert panel.display.apply_composite("false colour (NIR)")
    nir = viewer.layers["scene B8 near-infrared"]
    assert nir.visible and nir.colormap.name == "red"
    assert not viewer.layers["scene B2 blue"].visible
    index = panel.display.add_index("NDVI")
    full_resolution = index.data[0] if index.multiscale else index.data
    assert type(full_resolution).__module__.startswith("dask"), "computed lazily, tile by tile"
    np.testing.assert_allclose(index.data_to_world((3, 4)), nir.data_to_world((3, 4)))
    assert state.raster_grid_of(index) == state.raster_grid_of(nir), "on the raster's grid"
    assert state.get(index, "index") == "NDVI" and state.band_of(index) is None
    values = np.asarray(full_resolution)
    assert np.nanmin(values) >= -1 and np.nanmax(values) <= 1
    # Vegetation: NDVI > 0.4 thresholded into a land-cover class of a labels layer.
    panel.refresh_layers()
    panel.image_box.setCurrentText("NDVI")
    labels = panel.new_annotation_layer()
    labels.selected_label = 2  # tree cover
    panel.tools.range_box.setCurrentText("vegetation (NDVI > 0.4)")
    panel.tools._on_range(0)
    assert (panel.tools.low.value(), panel.tools.high.value()) == (0.4, 1.0)
    changed = panel.tools.threshold()
    vegetation = (values >= 0.4) & (values <= 1.0)
    np.testing.assert_array_equal(labels.data == 2, vegetation)
    assert changed == int(vegetation.sum()) > 0


def test_class_shortcuts_select_classes(ct_panel):
    _, panel, labels = ct_panel
    panel.classes.apply_to_active_layer()
    key = load_preset("ct_abdomen_head")[2].shortcut
    from app_model.types import KeyBinding

    labels.keymap[KeyBinding.from_str(key)](labels)
    assert labels.selected_label == 2
    panel.classes.preserve_box.setChecked(True)
    assert labels.preserve_labels


def test_threshold_within_a_painted_region(ct_panel):
    viewer, panel, labels = ct_panel
    region = viewer.add_labels(np.zeros_like(labels.data), name="rough region")
    region.data[:, :256, :] = 1  # the anterior half
    panel.refresh_layers()
    panel.tools.within.setCurrentText("rough region")
    labels.selected_label = 5
    panel.tools.in_slice.setCurrentText("whole volume")
    panel.tools.threshold()
    image = panel.image().data
    expected = (image >= 300) & (image <= 3000) & (region.data == 1)
    np.testing.assert_array_equal(labels.data == 5, expected)


def test_adding_a_class_to_the_schema(ct_panel):
    viewer, panel, labels = ct_panel
    viewer.layers.selection.active = labels
    schema = panel.classes.add_class("gallbladder", "Gallbladder wall and lumen")
    assert schema.classes[-1].name == "gallbladder" and schema.classes[-1].id == 10
    assert state.schema_document_of(labels)["classes"][-1]["name"] == "gallbladder"


def test_custom_composite(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "synthetic_scene")
    panel = AnnotationPanel(viewer)
    panel.image_box.setCurrentText("scene B4 red")
    panel.refresh_layers()
    assert [panel.display.custom[0].itemText(i) for i in range(4)][3] == "B8 near-infrared"
    assert panel.display.apply_custom((3, 0, 1))
    assert viewer.layers["scene B8 near-infrared"].colormap.name == "red"
    assert viewer.layers["scene B2 blue"].colormap.name == "green"
    assert not viewer.layers["scene B4 red"].visible
