"""The Slices tab's fill between slices following the image, on the real abdominal MR."""

from __future__ import annotations

import numpy as np
from napari.utils.notifications import notification_manager

from napari_domainseg._widgets._annotation_panel import AnnotationPanel
from napari_domainseg._widgets._tab_slices import FOLLOW_IMAGE, SHAPE_ONLY
from napari_domainseg.ops.interpolate import fill_between

PLUGIN = "napari-domainseg"
KIDNEY = 2  # TotalSegmentator's kidney_right, drawn on slices 0, 5, 10 and its last (14)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_follow_the_image_fills_in_a_worker_as_one_undo_step(mr_panel, qtbot):
    viewer, panel, labels, reference = mr_panel
    assert panel.image() is not None and labels.data.shape == reference.shape
    truth = reference == KIDNEY
    present = np.flatnonzero(truth.any(axis=(1, 2)))
    drawn = sorted({*present[present % 5 == 0].tolist(), int(present[-1])})
    for k in drawn:
        rows, cols = np.nonzero(truth[k])
        labels.data_setitem((np.full(rows.size, k), rows, cols), KIDNEY)
    labels.data_setitem((np.array([7]), np.array([0]), np.array([0])), 9)  # work in the way
    before = np.asarray(labels.data).copy()
    labels.selected_label = KIDNEY
    viewer.dims.set_point(0, labels.data_to_world([0, 0, 0])[0])
    assert panel.slices.fill_mode.currentText() == SHAPE_ONLY  # the default is unchanged

    panel.slices.fill_mode.setCurrentText(FOLLOW_IMAGE)
    worker = panel.slices.fill()
    assert worker is not None
    qtbot.waitUntil(lambda: panel.slices.fill_worker is None, timeout=120000)
    after = np.asarray(labels.data)
    assert panel.slices.last_fill == int(np.count_nonzero(after != before)) > 300
    assert not (after[before != 0] != before[before != 0]).any(), "labeled voxels kept"
    assert after[7, 0, 0] == 9
    plain = fill_between(before, KIDNEY, 0, (3.0, 3.0)) | (before == KIDNEY)
    assert _dice(after == KIDNEY, truth) > _dice(plain, truth) + 0.02

    labels.undo()
    np.testing.assert_array_equal(labels.data, before)  # one Ctrl+Z undoes the whole fill


def test_follow_the_image_on_another_grid_says_so_and_writes_nothing(
    make_napari_viewer, shared_data, qtbot, tmp_path, monkeypatch
):
    monkeypatch.setenv("NAPARI_DOMAINSEG_RECOVERY", str(tmp_path / "recovery"))
    viewer = make_napari_viewer()
    viewer.open(str(shared_data / "medical/totalseg_mr/mr.nii.gz"), plugin=PLUGIN)
    panel = AnnotationPanel(viewer)
    other = np.zeros((20, 91, 100), np.uint8)  # not the image's 20x91x117 grid
    other[[0, 4], 30:50, 30:50] = 1
    labels = viewer.add_labels(other, name="elsewhere")
    panel.refresh_layers()
    panel.labels_box.setCurrentText("elsewhere")
    labels.selected_label = 1
    panel.slices.fill_mode.setCurrentText(FOLLOW_IMAGE)
    panel.slices.fill()
    qtbot.waitUntil(lambda: panel.slices.fill_worker is None, timeout=60000)
    messages = [str(getattr(n, "message", n)) for n in notification_manager.records]
    assert any("not on the same grid" in m for m in messages), messages[-3:]
    assert panel.slices.last_fill is None
    np.testing.assert_array_equal(labels.data, other)
