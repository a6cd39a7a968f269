"""The annotation panel's Assist tab on real data: train, predict, accept, undo, discard."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from napari.utils.notifications import notification_manager
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QTableView

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._edits import current_index
from napari_domainseg._napari._writers import write_geo_labels_cog
from napari_domainseg._widgets._annotation_panel import AnnotationPanel
from napari_domainseg.labels import load_preset
from napari_domainseg.ops.assist.accept import runs_to_flat
from napari_domainseg.ops.assist.status import AcceptedUnits, Layout, StatusBoard, digest

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


def cell(tab, row: int, column: int) -> str:
    """The text of a cell of the review table (slice or tile, status, uncertainty)."""
    return tab.units_model.text(row, column)


def _messages() -> list[str]:
    return [str(getattr(n, "message", n)) for n in notification_manager.records]


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
    record = state.assist_of(labels)["accepted"][-1]
    assert record["model"]["id"] == tab.model_id and record["model"]["classes"] == [
        LIVER,
        SPLEEN,
        OTHER,
    ]
    assert sum(record["pixels_per_class"].values()) == changed
    flat = runs_to_flat(record["pixels"])  # per class, in the record's compact form
    assert flat.size == changed
    np.testing.assert_array_equal(flat, np.flatnonzero(written.ravel()))
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
    assert state.assist_of(labels)["accepted"][-1]["pixels_per_class"]
    labels.undo()
    np.testing.assert_array_equal(labels.data, strokes)
    viewer.layers.remove(tab.uncertainty_layer)  # deleted by hand: predicting makes both again
    tab.predict_all()
    wait_idle(qtbot, tab)
    assert [ly.name for ly in viewer.layers].count(proposal.name) == 1
    assert tab.uncertainty_layer in viewer.layers and tab.proposal_layer.data.any()
    tab.discard()
    assert tab.proposal_layer is None and not any("proposal" in ly.name for ly in viewer.layers)


# -- review status, per-class review, provenance through undo and export ------------------------


def test_status_table_counts_navigation_and_undo_of_a_stroke(mr_panel, qtbot):
    viewer, panel, labels, reference = mr_panel
    strokes = mr_strokes(reference)
    labels.data = strokes.copy()
    tab = panel.assist
    viewer.dims.set_point(0, labels.data_to_world([10, 0, 0])[0])
    tab.train()  # then predicts slice 10
    wait_idle(qtbot, tab)
    assert (
        tab.review_counts.text()
        == "Slices: 17 not started · 3 painted · 0 pre-labeled · 0 corrected"
    )
    assert tab.units_model.rowCount() == 20
    assert cell(tab, 10, 2) != "" and cell(tab, 9, 2) == ""
    tab.accept("this slice")
    assert tab._board.status[10] == "pre-labeled"
    assert "1 pre-labeled" in tab.review_counts.text()
    assert cell(tab, 10, 1) == "pre-labeled"
    labels.brush_size = 3
    labels.paint((10, 45, 60), SPLEEN)  # a correction on the accepted slice
    qtbot.waitUntil(lambda: cell(tab, 10, 1) == "corrected", timeout=5000)
    labels.undo()  # the correction only
    qtbot.waitUntil(lambda: cell(tab, 10, 1) == "pre-labeled", timeout=5000)
    rows, cols = np.nonzero(np.asarray(labels.data[12]) == 0)  # a stroke by data_setitem
    labels.data_setitem((np.full(5, 12), rows[:5], cols[:5]), SPLEEN)
    qtbot.waitUntil(lambda: cell(tab, 12, 1) == "painted", timeout=5000)
    assert state.assist_of(labels)["accepted"], "the acceptance stays"
    tab._on_unit_clicked(14)
    assert round(labels.world_to_data(viewer.dims.point)[0]) == 14


def test_undo_of_an_acceptance_removes_its_provenance_and_redo_restores_it(
    mr_panel, qtbot, tmp_path
):
    viewer, panel, labels, reference = mr_panel
    strokes = mr_strokes(reference)
    labels.data = strokes.copy()
    tab = panel.assist
    viewer.dims.set_point(0, labels.data_to_world([10, 0, 0])[0])
    tab.train()
    wait_idle(qtbot, tab)
    assert tab.accept("all") > 0
    assist = state.assist_of(labels)
    (record,) = assist["accepted"]
    assert cell(tab, 10, 1) == "pre-labeled"
    labels.undo()  # Ctrl+Z
    np.testing.assert_array_equal(labels.data, strokes)
    qtbot.waitUntil(lambda: assist["accepted"] == [], timeout=5000)
    assert assist["undone"] == [record]
    qtbot.waitUntil(lambda: cell(tab, 10, 1) == "painted", timeout=5000)
    labels.redo()
    qtbot.waitUntil(lambda: assist["accepted"] == [record], timeout=5000)
    assert assist["undone"] == []
    qtbot.waitUntil(lambda: cell(tab, 10, 1) == "pre-labeled", timeout=5000)
    labels.undo()
    qtbot.waitUntil(lambda: assist["accepted"] == [], timeout=5000)
    viewer.layers.selection = {labels}
    target = viewer.layers.save(str(tmp_path / "undone.nii.gz"), selected=True,
                                plugin=PLUGIN)  # fmt: skip
    sidecar = json.loads(Path(target[0]).with_name("undone.labels.json").read_text())
    assert "assist" not in sidecar, "an undone acceptance is not exported"


def test_class_summary_rare_classes_and_next_uncertain_of_one_class(mr_panel, qtbot):
    viewer, panel, labels, reference = mr_panel
    panel.classes.set_schema(load_preset("ct_abdomen_head"))
    labels.data = mr_strokes(reference)
    tab = panel.assist
    tab.predict_after.setChecked(False)
    tab.train()
    wait_idle(qtbot, tab)
    tab.predict_all()
    wait_idle(qtbot, tab)
    rows = {
        tab.classes_table.item(r, 0).data(Qt.ItemDataRole.UserRole): r
        for r in range(tab.classes_table.rowCount())
    }
    assert set(rows) == {LIVER, SPLEEN, OTHER}
    names = panel.class_names()
    assert tab.classes_table.item(rows[LIVER], 0).text() == f"{LIVER} {names[LIVER]}"
    pixels = [int(tab.classes_table.item(r, 1).text().split()[0]) for r in rows.values()]
    assert sum(pixels) == int(tab.predicted.sum())
    spleen = int((tab.proposal_layer.data == SPLEEN).sum())
    assert tab.classes_table.item(rows[SPLEEN], 1).text().startswith(f"{spleen} ")
    rare = {v for v, r in rows.items() if tab.classes_table.item(r, 3).text() == "rare"}
    total = sum(pixels)
    for value in rows:
        count = int((tab.proposal_layer.data == value).sum())
        assert (value in rare) == (count < 500 or count < 0.01 * total)
    tab._on_class_clicked(rows[SPLEEN])
    assert tab.review_class.currentData() == SPLEEN
    first = tab.next_uncertain(SPLEEN)
    slice_ = tab.proposal_layer.data[first] == SPLEEN
    assert slice_.any()
    worst = max(
        (i for i in range(20) if (tab.proposal_layer.data[i] == SPLEEN).any()),
        key=lambda i: tab.uncertainty_layer.data[i][tab.proposal_layer.data[i] == SPLEEN].mean(),
    )
    assert first == worst
    assert round(labels.world_to_data(viewer.dims.point)[0]) == first


def test_predict_view_after_a_view_reset_covers_the_landsat_view(make_napari_viewer, shared_data,
                                                                  qtbot):  # fmt: skip
    viewer = make_napari_viewer(show=True)
    panel, labels, _, _ = open_landsat(viewer, shared_data)
    viewer.window.add_dock_widget(panel, area="right")  # the canvas narrows
    viewer.camera.zoom *= 4  # zoomed in on the centre, drawn
    qtbot.wait(300)
    tab = panel.assist
    zoomed = tab.view_region(labels)
    size = np.asarray(viewer.canvas.size, float)
    expected = size / viewer.camera.zoom / np.abs(labels.scale)  # pixels across the canvas
    got = np.array([s.stop - s.start for s in zoomed])
    assert np.all(np.abs(got - np.minimum(expected, labels.data.shape)) <= 2), (got, expected)
    viewer.reset_view()  # no draw yet: corner_pixels still describe the zoomed view
    assert tab.view_region(labels) == (slice(0, 718), slice(0, 791))
    viewer.camera.center = tuple(labels.data_to_world([650, 700]))  # the lower-right corner
    viewer.camera.zoom *= 8
    region = tab.view_region(labels)
    assert region[0].start <= 650 < region[0].stop and region[1].start <= 700 < region[1].stop
    assert region[0].stop == 718 or region[0].stop - 650 <= 650 - region[0].start + 2


def test_assist_provenance_in_every_export_sidecar(make_napari_viewer, shared_data, qtbot,
                                                   tmp_path):  # fmt: skip
    import pydicom

    from napari_domainseg.medical.dicom_seg import PRIVATE_CREATOR
    from napari_domainseg.medical.nrrd_files import ASSIST_FIELD

    viewer = make_napari_viewer()
    viewer.open(str(shared_data / "medical/seg_dcmqi/ct-3slice"), plugin=PLUGIN)
    image = viewer.layers[-1]
    panel = AnnotationPanel(viewer)
    labels = panel.new_annotation_layer()
    hu = np.asarray(image.data)
    strokes = np.zeros(labels.data.shape, np.uint8)
    strokes[:, ::7, ::7] = np.where(
        hu[:, ::7, ::7] > 200, 2, np.where(hu[:, ::7, ::7] > -300, 1, 3)
    )
    labels.data = strokes.copy()
    tab = panel.assist
    tab.predict_after.setChecked(False)
    tab.train()
    wait_idle(qtbot, tab)
    tab.predict_all()
    wait_idle(qtbot, tab)
    changed = tab.accept("all")
    assert changed > 0
    viewer.layers.selection = {labels}
    written = {}
    for name in ("ct.nii.gz", "ct.nrrd", "ct.seg.nrrd", "ct.dcm"):
        written[name] = viewer.layers.save(str(tmp_path / name), selected=True, plugin=PLUGIN)
    nifti = json.loads((tmp_path / "ct.labels.json").read_text())["assist"]
    assert nifti["assisted_pixels"] == changed
    written_mask = np.asarray(labels.data) != strokes
    flat = runs_to_flat(nifti["accepted"][0]["pixels"])
    np.testing.assert_array_equal(flat, np.flatnonzero(written_mask.ravel()))
    assert nifti["status"]["counts"]["pre-labeled"] == 3
    assert nifti["models"][tab.model_id]["classes"] == [1, 2, 3]
    import nrrd

    for name in ("ct.nrrd", "ct.seg.nrrd"):
        header = nrrd.read_header(str(tmp_path / name))
        assert json.loads(header[ASSIST_FIELD]) == nifti
    seg = pydicom.dcmread(tmp_path / "ct.dcm")
    block = seg.private_block(0x0073, PRIVATE_CREATOR)
    assert json.loads(str(block[0x01].value))["assist"] == nifti


def test_landsat_geotiff_and_cog_carry_the_provenance_tag(make_napari_viewer, shared_data,
                                                          qtbot, tmp_path):  # fmt: skip
    viewer = make_napari_viewer()
    panel, labels, red, blue = open_landsat(viewer, shared_data)
    strokes = landsat_strokes(red, blue)
    labels.data = strokes.copy()
    tab = panel.assist
    tab.predict_after.setChecked(False)
    tab.train()
    wait_idle(qtbot, tab)
    tab.predict_all()
    wait_idle(qtbot, tab)
    changed = tab.accept("all")
    counts = tab.review_counts.text()
    assert counts.startswith("Tiles: ") and "pre-labeled" in counts
    viewer.layers.selection = {labels}
    viewer.layers.save(str(tmp_path / "cover.tif"), selected=True, plugin=PLUGIN)
    data, attributes, _ = labels.as_layer_data_tuple()
    write_geo_labels_cog(str(tmp_path / "cover_cog.tif"), data, attributes)
    for name in ("cover.tif", "cover_cog.tif"):
        info = json.loads(
            subprocess.run(
                ["gdalinfo", "-json", str(tmp_path / name)], check=True, capture_output=True
            ).stdout
        )
        record = json.loads(info["metadata"][""]["DOMAINSEG_ASSIST"])
        assert record["assisted_pixels"] == changed
        assert record["status"]["units"] == "tile 256"
        assert sum(record["status"]["counts"].values()) == 12  # 3 x 4 tiles of 718 x 791
        flat = runs_to_flat(record["accepted"][0]["pixels"])
        np.testing.assert_array_equal(
            flat, np.flatnonzero((np.asarray(labels.data) != strokes).ravel())
        )
    viewer.layers.save(str(tmp_path / "cover.gpkg"), selected=True, plugin=PLUGIN)
    fields = subprocess.run(
        ["ogrinfo", "-so", str(tmp_path / "cover.gpkg"), "cover"], check=True,
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert "assisted: Real" in fields
    polygons = gpd.read_file(tmp_path / "cover.gpkg")
    with rasterio.open(shared_data / "geo/landsat_rgb/RGB.byte.tif") as source:
        pixel_area = abs(source.transform.a * source.transform.e)
    pixels = np.rint(polygons.area.to_numpy() / pixel_area)
    assert round(float((polygons["assisted"] * pixels).sum())) == pytest.approx(changed, rel=1e-3)
    assert (polygons["assisted"] == 0).any() and (polygons["assisted"] == 1).any()


def test_docked_panel_tiles_status_follow_a_correction(make_napari_viewer, shared_data, qtbot):
    """Through the plugin menu (layers seen through napari's proxies), on the Landsat tiles."""
    viewer = make_napari_viewer()
    viewer.open(str(shared_data / "geo/landsat_rgb/RGB.byte.tif"), plugin=PLUGIN)
    _, panel = viewer.window.add_plugin_dock_widget(PLUGIN, "Annotation")
    panel.image_box.setCurrentText("RGB.byte red")
    panel.classes.set_schema(load_preset("land_cover"))
    labels = panel.new_annotation_layer()
    red = np.asarray(viewer.layers["RGB.byte red"].data)
    blue = np.asarray(viewer.layers["RGB.byte blue"].data)
    labels.data = landsat_strokes(red, blue)
    tab = panel.assist
    tab.predict_after.setChecked(False)
    tab.train()
    wait_idle(qtbot, tab)
    tab.predict_all()
    wait_idle(qtbot, tab)
    tab.accept("all")
    row = [cell(tab, r, 0) for r in range(12)].index("row 256, col 256")
    assert cell(tab, row, 1) == "pre-labeled"
    value = int(labels.data[300, 300])
    labels.data_setitem((np.array([300]), np.array([300])), 7 if value != 7 else 1)
    qtbot.waitUntil(lambda: cell(tab, row, 1) == "corrected", timeout=5000)
    assert tab.review_counts.text() == "Tiles: 2 not started · 9 pre-labeled · 1 corrected"
    tab._on_unit_clicked(row)
    centre = labels.world_to_data(viewer.camera.center[-2:])
    assert 256 <= centre[0] < 512 and 256 <= centre[1] < 512


# -- review board: undo outside the view, other layers and grids, removed layers ----------------


def _paint_slice(labels, index: int, value: int = SPLEEN) -> None:
    """A stroke (one history item) on an empty part of slice ``index``."""
    rows, cols = np.nonzero(np.asarray(labels.data[index]) == 0)
    labels.data_setitem((np.full(5, index), rows[:5], cols[:5]), value)


def test_undo_of_a_stroke_on_another_slice_refreshes_its_status(mr_panel, qtbot):
    viewer, panel, labels, _ = mr_panel
    tab = panel.assist
    tab.refresh_review()
    viewer.dims.set_point(0, labels.data_to_world([3, 0, 0])[0])
    _paint_slice(labels, 3)
    qtbot.waitUntil(lambda: cell(tab, 3, 1) == "painted", timeout=5000)
    viewer.dims.set_point(0, labels.data_to_world([4, 0, 0])[0])  # step to 4, then Ctrl+Z
    labels.undo()
    qtbot.waitUntil(lambda: cell(tab, 3, 1) == "not started", timeout=5000)
    labels.redo()
    qtbot.waitUntil(lambda: cell(tab, 3, 1) == "painted", timeout=5000)
    assert tab.review_counts.text().startswith("Slices: 19 not started · 1 painted")


def test_undo_while_the_layer_is_hidden_is_caught_up_when_shown(mr_panel, qtbot):
    viewer, panel, labels, _ = mr_panel
    tab = panel.assist
    tab.refresh_review()
    _paint_slice(labels, 3)
    qtbot.waitUntil(lambda: cell(tab, 3, 1) == "painted", timeout=5000)
    viewer.dims.set_point(0, labels.data_to_world([4, 0, 0])[0])
    labels.visible = False
    labels.undo()  # napari emits no set_data for a hidden layer
    np.testing.assert_array_equal(labels.data[3], 0)
    labels.visible = True
    qtbot.waitUntil(lambda: cell(tab, 3, 1) == "not started", timeout=5000)


def test_a_new_stroke_forgets_undone_acceptances(mr_panel, qtbot):
    viewer, panel, labels, reference = mr_panel
    labels.data = mr_strokes(reference)
    tab = panel.assist
    viewer.dims.set_point(0, labels.data_to_world([10, 0, 0])[0])
    tab.train()
    wait_idle(qtbot, tab)
    assert tab.accept("this slice") > 0
    assist = state.assist_of(labels)
    labels.undo()
    qtbot.waitUntil(lambda: len(assist.get("undone", [])) == 1, timeout=5000)
    _paint_slice(labels, 2)  # napari forgets its redo steps: the acceptance cannot come back
    assert assist["undone"] == [] and assist["accepted"] == []


def test_next_uncertain_on_an_annotation_of_another_grid_is_a_warning(mr_panel, qtbot):
    viewer, panel, labels, reference = mr_panel
    labels.data = mr_strokes(reference)
    tab = panel.assist
    viewer.dims.set_point(0, labels.data_to_world([10, 0, 0])[0])
    tab.train()  # then predicts slice 10
    wait_idle(qtbot, tab)
    assert tab.next_uncertain() == 10
    other = viewer.add_labels(np.zeros((5, 40, 40), np.uint8), name="other grid")
    panel.refresh_layers()
    panel.labels_box.setCurrentText(other.name)
    assert panel.labels() is not None and panel.labels().data.shape == (5, 40, 40)
    assert tab.next_uncertain() is None  # no IndexError: a proposal for another grid
    assert any("another annotation layer" in m for m in _messages())


def test_busy_while_the_box_prompt_runs(mr_panel):
    _, panel, _, _ = mr_panel
    tab = panel.assist
    assert not tab.busy
    tab.box_prompt.worker = object()  # a box proposal being computed
    try:
        assert tab.busy
        assert tab.train() is None  # waits for the running job
    finally:
        tab.box_prompt.worker = None
    assert not tab.busy


def _tab_callbacks(layer, tab) -> list[str]:
    """The tab's methods connected to the layer's edit events."""
    names = []
    for event in ("paint", "set_data", "data", "visible"):
        for callback in getattr(layer.events, event).callbacks:
            owner = callback[0]() if isinstance(callback, tuple) else None
            if owner is tab:
                names.append(f"{event}: {callback[1]}")
    return names


def test_a_removed_layer_is_disconnected_and_forgotten(mr_panel, qtbot):
    viewer, panel, labels, _ = mr_panel
    tab = panel.assist
    tab.on_stroke.setChecked(True)
    tab.refresh_review()
    _paint_slice(labels, 3)
    qtbot.waitUntil(lambda: cell(tab, 3, 1) == "painted", timeout=5000)
    assert tab._watching and tab._board_layer is not None
    assert "paint: _on_layer_paint" in _tab_callbacks(labels, tab)
    viewer.layers.remove(labels)
    assert _tab_callbacks(labels, tab) == [], "every connection of the tab to the layer is removed"
    assert tab._watching == {} and tab._strokes == {}
    assert tab._board is None and tab._board_layer is None and tab._watched is None
    assert tab.units_model.rowCount() == 0


def test_go_to_a_slice_of_an_oblique_volume(mr_panel):
    viewer, panel, _, _ = mr_panel
    tab = panel.assist
    angle = np.deg2rad(6.0)  # a gantry tilt: a rotation in the z-y plane
    rotate = np.array([
        [np.cos(angle), -np.sin(angle), 0.0],
        [np.sin(angle), np.cos(angle), 0.0],
        [0.0, 0.0, 1.0],
    ])  # fmt: skip
    oblique = viewer.add_labels(
        np.zeros((30, 200, 120), np.uint8), scale=(3.0, 1.0, 1.0), rotate=rotate, name="tilted"
    )
    for k in (0, 7, 18, 29):
        tab.go_to(oblique, k)
        world = np.asarray(viewer.dims.point)[-3:]
        assert int(np.round(oblique.world_to_data(world)[0])) == k
        assert current_index(viewer, oblique, 0) == k


def test_units_table_is_filled_once_per_board_and_virtual_on_tiles(make_napari_viewer,
                                                                  shared_data):  # fmt: skip
    viewer = make_napari_viewer()
    viewer.open(str(shared_data / "geo/landsat_rgb/RGB.byte.tif"), plugin=PLUGIN)
    panel = AnnotationPanel(viewer)
    panel.image_box.setCurrentText("RGB.byte red")
    labels = panel.new_annotation_layer()
    tab = panel.assist
    resets = []
    tab.units_model.modelReset.connect(lambda: resets.append(1))
    tab._board = None
    tab.refresh_review()
    assert len(resets) == 1, "one fill of the table per board"
    rows, cols = -(-np.asarray(labels.data.shape) // 256)
    assert tab.units_model.rowCount() == rows * cols
    assert isinstance(tab.units_table, QTableView), "rows drawn from a model, not one item each"
    assert cell(tab, 1, 0) == "row 0, col 256" and cell(tab, 1, 1) == "not started"


def test_other_axes_digests_are_recorded_off_the_gui_thread(mr_panel, qtbot):
    viewer, panel, labels, reference = mr_panel
    strokes = mr_strokes(reference)
    labels.data = strokes.copy()
    tab = panel.assist
    viewer.dims.set_point(0, labels.data_to_world([10, 0, 0])[0])
    tab.train()
    wait_idle(qtbot, tab)
    assert tab.accept("this slice") > 0
    (record,) = state.assist_of(labels)["accepted"]
    assert "axis 0" in record["units"]  # the board's axis, at once
    qtbot.waitUntil(lambda: not tab.units_pending, timeout=20000)
    written = np.nonzero(np.asarray(labels.data) != strokes)
    for axis in (1, 2):
        layout = Layout(labels.data.shape, axis=axis)
        entry = record["units"][layout.name]
        assert sorted(int(k) for k in entry["digests"]) == layout.keys_of(written)
        for text, value in entry["digests"].items():
            assert value == digest(labels.data, layout.region(int(text)))
        assert entry["corrected"] == []
    viewer.dims.order = (1, 0, 2)  # step through the rows now
    tab.refresh_review()
    assert tab._board.layout.axis == 1
    touched = Layout(labels.data.shape, axis=1).keys_of(written)
    assert {cell(tab, k, 1) for k in touched} == {"pre-labeled"}


def test_deferred_digests_equal_the_eager_ones_with_corrected_units(shared_data):
    """What the tab relies on: ``complete`` on a copy gives what ``after`` gives for all axes."""
    from napari_domainseg.files import load

    truth = np.asarray(load(shared_data / "medical/totalseg_mr/labels.nii.gz").array)
    labels = np.zeros(truth.shape, np.uint8)
    first = [(np.nonzero(truth == 5), LIVER)]
    units = AcceptedUnits(labels, first, [])
    for indices, value in first:
        labels[indices] = value
    records = [{"units": units.after(labels)}]
    z, y, x = (int(v[0]) for v in first[0][0])
    labels[z, y, x] = 0  # a correction: its slices along every axis are now corrected
    second = [(np.nonzero((truth == 1) | ((truth == 5) & (labels == 0))), SPLEEN)]
    eager = AcceptedUnits(labels, second, records)
    lazy = AcceptedUnits(labels, second, records, eager=["axis 0"])
    assert [lay.name for lay in lazy.deferred] == ["axis 1", "axis 2"]
    for indices, value in second:
        labels[indices] = value
    expected = eager.after(labels)
    got = lazy.after(labels)
    assert list(got) == ["axis 0"]
    got.update(lazy.complete(np.array(labels, copy=True)))
    assert got == expected
    assert str(x) in expected["axis 2"]["corrected"] and str(y) in expected["axis 1"]["corrected"]


def test_switching_axes_keeps_boards_and_tallies(mr_panel, qtbot, monkeypatch):
    import napari_domainseg._widgets._assist_review as review

    viewer, panel, labels, reference = mr_panel
    labels.data = mr_strokes(reference)
    tab = panel.assist
    viewer.dims.set_point(0, labels.data_to_world([10, 0, 0])[0])
    tab.train()  # then predicts slice 10
    wait_idle(qtbot, tab)
    counted, refreshed = [], []
    real_tally, real_refresh = review.tally, StatusBoard.refresh
    monkeypatch.setattr(review, "tally", lambda *a: counted.append(1) or real_tally(*a))

    def refresh(board, data, keys=None):
        refreshed.append((board.layout.axis, None if keys is None else sorted(keys)))
        return real_refresh(board, data, keys)

    monkeypatch.setattr(StatusBoard, "refresh", refresh)
    tab.refresh_review()
    viewer.dims.order = (1, 0, 2)
    tab.refresh_review()
    assert tab._board.layout.axis == 1 and len(counted) == 1
    rows, cols = np.nonzero(np.asarray(labels.data[3]) == 0)
    labels.data_setitem((np.full(3, 3), rows[:3], cols[:3]), SPLEEN)  # slice 3, seen as rows
    qtbot.waitUntil(lambda: not tab.review_timer.isActive(), timeout=5000)  # refreshed
    assert {cell(tab, int(r), 1) for r in rows[:3]} == {"painted"}
    refreshed.clear()
    viewer.dims.order = (0, 1, 2)
    tab.refresh_review()
    assert tab._board.layout.axis == 0
    assert len(counted) == 1, "the tally of axis 0 is kept, not counted again"
    assert refreshed[0] == (0, [3]), "the kept board refreshes the slice painted since only"
    assert cell(tab, 3, 1) == "painted"
    assert tab.review_counts.text().startswith("Slices: 16 not started · 4 painted")
