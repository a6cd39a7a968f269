"""Region growing and the magic wand from the Tools tab work on the plane under the cursor."""

from __future__ import annotations

import numpy as np
import pytest

from napari_domainseg._widgets._annotation_panel import AnnotationPanel
from napari_domainseg.ops.region import grow_region, magic_wand

PLUGIN = "napari-domainseg"


@pytest.fixture
def ct_panel(make_napari_viewer, shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_DOMAINSEG_RECOVERY", str(tmp_path / "recovery"))
    viewer = make_napari_viewer()
    viewer.open(str(shared_data / "medical/ct_head_study"), plugin=PLUGIN)
    panel = AnnotationPanel(viewer)
    labels = panel.new_annotation_layer()
    labels.selected_label = 5
    image = np.asarray(panel.image().data)
    bone = (image >= 300) & (image <= 3000)
    seed = tuple(int(v) for v in np.argwhere(bone[14])[len(np.argwhere(bone[14])) // 2])
    seed = (14, *seed)
    viewer.dims.set_point(0, labels.data_to_world(list(seed))[0])
    viewer.cursor.position = tuple(labels.data_to_world(list(seed)))
    return panel, labels, image, seed


def test_grow_in_the_current_slice_is_the_2d_growth_of_that_plane(ct_panel):
    panel, labels, image, seed = ct_panel
    panel.tools.range_box.setCurrentText("bone")
    panel.tools._on_range(0)
    panel.tools.in_slice.setCurrentText("current slice")
    changed = panel.tools.grow()
    spacing = panel.image().scale[1:]
    expected = grow_region(image[14], seed[1:], 300, 3000, spacing)
    assert changed == int(expected.sum()) > 0
    np.testing.assert_array_equal(labels.data[14] == 5, expected)
    assert np.flatnonzero(labels.data.any(axis=(1, 2))).tolist() == [14]
    labels.undo()
    assert not labels.data.any()


def test_the_wand_floods_only_the_plane_under_the_cursor(ct_panel):
    panel, labels, image, seed = ct_panel
    panel.tools.tolerance.setValue(200)
    changed = panel.tools.wand()
    expected = magic_wand(image[14], seed[1:], 200)
    assert changed == int(expected.sum()) > 0
    np.testing.assert_array_equal(labels.data[14] == 5, expected)
    assert np.flatnonzero(labels.data.any(axis=(1, 2))).tolist() == [14]
