"""The annotation panel's Assist tab on real data: train, predict, accept, undo, discard."""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils.notifications import notification_manager

from napari_domainseg._napari._layer_data import METADATA_KEY
from napari_domainseg._widgets._annotation_panel import AnnotationPanel
from napari_domainseg._widgets._assist_tab import pixel_runs
from napari_domainseg.labels import load_preset

PLUGIN = "napari-domainseg"
STROKE_SLICES = (6, 10, 14)
OTHER = 30  # the annotator's "other" background class
LIVER, SPLEEN = 1, 2  # ids of the ct_abdomen_head schema (TotalSegmentator: 5 and 1)


def mr_strokes(reference: np.ndarray) -> np.ndarray:
    """Strokes as an annotator paints them: part of liver, spleen and background, 3 slices.

    The reference's TotalSegmentator ids (5 liver, 1 spleen) become the schema's.
    """
    strokes = np.zeros_like(reference, dtype=np.uint8)
    for index in STROKE_SLICES:
        for value, painted in ((5, LIVER), (1, SPLEEN), (0, OTHER)):
            rows, cols = np.nonzero(reference[index] == value)
            if rows.size == 0:
                continue
            keep = slice(None, None, 9 if value else 60)  # a sparse subset of the structure
            strokes[index, rows[keep], cols[keep]] = painted
    return strokes


def wait_idle(qtbot, tab, timeout=60000):
    qtbot.waitUntil(lambda: not tab.busy, timeout=timeout)


def _messages() -> list[str]:
    return [str(getattr(n, "message", n)) for n in notification_manager.records]


def open_mr(viewer, shared_data):
    folder = shared_data / "medical/totalseg_mr"
    viewer.open(str(folder / "labels.nii.gz"), plugin=PLUGIN)
    reference = np.asarray(viewer.layers[-1].data).copy()
    viewer.layers.remove(viewer.layers[-1])
    viewer.open(str(folder / "mr.nii.gz"), plugin=PLUGIN)
    panel = AnnotationPanel(viewer)
    labels = panel.new_annotation_layer()
    return panel, labels, reference


@pytest.fixture
def mr_panel(make_napari_viewer, shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_DOMAINSEG_RECOVERY", str(tmp_path / "recovery"))
    viewer = make_napari_viewer()
    panel, labels, reference = open_mr(viewer, shared_data)
    return viewer, panel, labels, reference


def test_train_predict_accept_undo_discard_on_real_mr(mr_panel, qtbot, tmp_path):
    viewer, panel, labels, reference = mr_panel
    assert reference.shape == labels.data.shape and {1, 5} <= set(np.unique(reference))
    strokes = mr_strokes(reference)
    labels.data = strokes.copy()
    tab = panel.assist
    viewer.dims.set_point(0, labels.data_to_world([10, 0, 0])[0])
    tab.train()  # then predicts the visible slice
    wait_idle(qtbot, tab)
    assert tab.model is not None and set(tab.model.classes) == {LIVER, SPLEEN, OTHER}
    proposal = tab.proposal_layer
    assert proposal is not None and proposal in viewer.layers
    assert tab.uncertainty_layer in viewer.layers
    np.testing.assert_array_equal(labels.data, strokes)  # the proposal never touches them
    predicted_slices = np.flatnonzero(proposal.data.any(axis=(1, 2))).tolist()
    assert predicted_slices == [10], "predict view: the visible slice only"
    liver = proposal.data[10] == LIVER
    truth = reference[10] == 5
    dice = 2 * (liver & truth).sum() / (liver.sum() + truth.sum())
    assert dice > 0.6, f"liver Dice on the slice {dice:.2f}"
    tab.opacity.setValue(30)
    assert proposal.opacity == pytest.approx(0.3)

    # A correction that disagrees with the proposal: accepting must keep it.
    rows, cols = np.nonzero((proposal.data[10] == OTHER) & (strokes[10] == 0))
    corrected = (np.full(20, 10), rows[:20], cols[:20])
    labels.data_setitem(corrected, LIVER)
    strokes[corrected] = LIVER
    changed = tab.accept("all")
    after = np.asarray(labels.data)
    assert (after[corrected] == LIVER).all()
    assert changed > 0
    written = after != strokes
    assert not (written & (strokes != 0)).any(), "accept writes only unlabeled pixels"
    np.testing.assert_array_equal(after[written], proposal.data[written])
    record = labels.metadata[METADATA_KEY]["assist"]["accepted"][-1]
    assert record["model"]["id"] == tab.model_id and record["model"]["classes"] == [
        LIVER,
        SPLEEN,
        OTHER,
    ]
    assert sum(record["pixels_per_class"].values()) == changed
    runs = record["pixels"]
    assert sum(n for _, n in runs) == changed
    assert runs == pixel_runs(np.nonzero(written), labels.data.shape)
    labels.undo()
    np.testing.assert_array_equal(labels.data, strokes)  # one Ctrl+Z undoes the acceptance

    tab.discard()
    assert proposal not in viewer.layers and tab.proposal_layer is None


def test_predict_all_next_uncertain_and_this_class(mr_panel, qtbot, tmp_path):
    _, panel, labels, reference = mr_panel
    strokes = mr_strokes(reference)
    labels.data = strokes.copy()
    tab = panel.assist
    tab.predict_after.setChecked(False)
    tab.train()
    wait_idle(qtbot, tab)
    tab.predict_all()
    assert tab.busy
    wait_idle(qtbot, tab)
    assert tab.proposal_layer.data.any(axis=(1, 2)).all(), "every slice predicted"
    first = tab.next_uncertain()
    second = tab.next_uncertain()
    assert first != second and 0 <= first < 20
    labels.selected_label = SPLEEN
    tab.accept("this class")
    assert set(np.unique(labels.data[labels.data != strokes])) == {SPLEEN}
    saved = tab.save_model(str(tmp_path / "mr.assist"))
    assert saved is not None and saved.exists()
    assert tab.save_model(str(tmp_path / "mr.assist")) is None, "never overwrites silently"
    assert tab.load_model(str(saved)).classes == tab.model.classes


def test_cancel_leaves_the_proposal_unchanged(mr_panel, qtbot):
    _, panel, labels, reference = mr_panel
    labels.data = mr_strokes(reference)
    tab = panel.assist
    tab.predict_after.setChecked(False)
    tab.train()
    wait_idle(qtbot, tab)
    from napari_domainseg.ops.assist import ForestSettings

    tab.model.settings = ForestSettings(block_bytes=2**20)  # many small blocks
    with qtbot.waitSignal(tab.predict_all().aborted, timeout=30000):
        tab.cancel()
    wait_idle(qtbot, tab)
    assert tab.proposal_layer is None, "a cancelled prediction shows nothing"


def test_no_strokes_and_one_class_are_notifications(mr_panel, qtbot):
    _, panel, labels, _ = mr_panel
    tab = panel.assist
    tab.train()
    wait_idle(qtbot, tab)
    assert tab.model is None
    assert any("no strokes" in m for m in _messages()), _messages()
    labels.data_setitem((np.array([3]), np.array([4]), np.array([5])), 2)
    tab.train()
    wait_idle(qtbot, tab)
    assert tab.model is None and any("only class 2 is painted" in m for m in _messages())
    tab.predict_view()  # untrained: a warning, nothing raised
    assert tab.accept() == 0 and tab.next_uncertain() is None
    assert tab.load_model("/nonexistent/model.assist") is None


def test_train_on_every_stroke(mr_panel, qtbot):
    viewer, panel, labels, reference = mr_panel
    labels.data = mr_strokes(reference)
    tab = panel.assist
    tab.on_stroke.setChecked(True)
    viewer.dims.set_point(0, labels.data_to_world([10, 0, 0])[0])
    labels.brush_size = 3
    labels.paint((10, 45, 60), LIVER)  # a brush dab: the paint event starts the debounce timer
    assert tab.model is None and tab.stroke_timer.isActive()
    qtbot.waitUntil(lambda: tab.model is not None and not tab.busy, timeout=60000)
    assert tab.proposal_layer is not None and tab.proposal_layer.data[10].any()
    tab.on_stroke.setChecked(False)
    labels.paint((10, 50, 60), LIVER)
    assert not tab.stroke_timer.isActive()


def landsat_strokes(red: np.ndarray, blue: np.ndarray) -> np.ndarray:
    """Sparse strokes of water (1), cloud (7) and land (2) in squares across the scene.

    Class ids of the ``land_cover`` preset: water, cloud, tree cover.
    """
    strokes = np.zeros(red.shape, np.uint8)
    red, blue = red.astype(int), blue.astype(int)
    for row in (150, 300, 450, 600):
        for col in (150, 300, 450, 600):
            window = (slice(row, row + 30), slice(col, col + 30))
            r, b = red[window], blue[window]
            classes = np.select([b > r + 15, r > 120, (r > 0) | (b > 0)], [1, 7, 2], 0)
            sparse = np.zeros_like(classes)
            sparse[::4, ::4] = classes[::4, ::4]
            strokes[window] = sparse
    return strokes


def open_landsat(viewer, shared_data):
    viewer.open(str(shared_data / "geo/landsat_rgb/RGB.byte.tif"), plugin=PLUGIN)
    panel = AnnotationPanel(viewer)
    panel.image_box.setCurrentText("RGB.byte red")
    panel.classes.set_schema(load_preset("land_cover"))
    labels = panel.new_annotation_layer()
    red = np.asarray(viewer.layers["RGB.byte red"].data)
    blue = np.asarray(viewer.layers["RGB.byte blue"].data)
    return panel, labels, red, blue


def test_landsat_train_predict_view_accept(make_napari_viewer, shared_data, qtbot):
    viewer = make_napari_viewer()
    panel, labels, red, blue = open_landsat(viewer, shared_data)
    strokes = landsat_strokes(red, blue)
    assert set(np.unique(strokes)) == {0, 1, 2, 7}
    labels.data = strokes.copy()
    tab = panel.assist
    image = tab.assist_image()
    assert image.data.shape == (3, *labels.data.shape) and image.unit == "m"
    tab.train()
    wait_idle(qtbot, tab)
    proposal = tab.proposal_layer
    assert proposal is not None and set(np.unique(proposal.data)) <= {0, 1, 2, 7}
    green = np.asarray(viewer.layers["RGB.byte green"].data)
    nodata = (red == 0) & (green == 0) & (blue == 0)  # GDAL's mask: nodata in every band
    assert not proposal.data[nodata].any(), "nodata pixels are never given a class"
    predicted = proposal.data != 0
    assert predicted.sum() > 0.5 * (~nodata).sum()
    changed = tab.accept()
    assert (
        changed > 0 and not (np.asarray(labels.data)[strokes != 0] != strokes[strokes != 0]).any()
    )
    assert labels.metadata[METADATA_KEY]["assist"]["accepted"][-1]["pixels_per_class"]
    labels.undo()
    np.testing.assert_array_equal(labels.data, strokes)
    viewer.layers.remove(tab.uncertainty_layer)  # deleted by hand: predicting makes both again
    tab.predict_all()
    wait_idle(qtbot, tab)
    assert [ly.name for ly in viewer.layers].count(proposal.name) == 1
    assert tab.uncertainty_layer in viewer.layers and tab.proposal_layer.data.any()
    tab.discard()
    assert tab.proposal_layer is None and not any("proposal" in ly.name for ly in viewer.layers)
