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

from napari_domainseg._napari._layer_data import METADATA_KEY
from napari_domainseg._napari._writers import write_geo_labels_cog
from napari_domainseg._widgets._annotation_panel import AnnotationPanel
from napari_domainseg.labels import load_preset
from napari_domainseg.ops.assist.accept import pixel_runs, runs_to_flat

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
    assert tab.units_table.rowCount() == 20
    assert tab.units_table.item(10, 2).text() != "" and tab.units_table.item(9, 2).text() == ""
    tab.accept("this slice")
    assert tab._board.status[10] == "pre-labeled"
    assert "1 pre-labeled" in tab.review_counts.text()
    assert tab.units_table.item(10, 1).text() == "pre-labeled"
    labels.brush_size = 3
    labels.paint((10, 45, 60), SPLEEN)  # a correction on the accepted slice
    qtbot.waitUntil(lambda: tab.units_table.item(10, 1).text() == "corrected", timeout=5000)
    labels.undo()  # the correction only
    qtbot.waitUntil(lambda: tab.units_table.item(10, 1).text() == "pre-labeled", timeout=5000)
    rows, cols = np.nonzero(np.asarray(labels.data[12]) == 0)  # a stroke by data_setitem
    labels.data_setitem((np.full(5, 12), rows[:5], cols[:5]), SPLEEN)
    qtbot.waitUntil(lambda: tab.units_table.item(12, 1).text() == "painted", timeout=5000)
    assert labels.metadata[METADATA_KEY]["assist"]["accepted"], "the acceptance stays"
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
    assist = labels.metadata[METADATA_KEY]["assist"]
    (record,) = assist["accepted"]
    assert tab.units_table.item(10, 1).text() == "pre-labeled"
    labels.undo()  # Ctrl+Z
    np.testing.assert_array_equal(labels.data, strokes)
    qtbot.waitUntil(lambda: assist["accepted"] == [], timeout=5000)
    assert assist["undone"] == [record]
    qtbot.waitUntil(lambda: tab.units_table.item(10, 1).text() == "painted", timeout=5000)
    labels.redo()
    qtbot.waitUntil(lambda: assist["accepted"] == [record], timeout=5000)
    assert assist["undone"] == []
    qtbot.waitUntil(lambda: tab.units_table.item(10, 1).text() == "pre-labeled", timeout=5000)
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
    runs = nifti["accepted"][0]["pixels"]
    written_mask = np.asarray(labels.data) != strokes
    assert runs == pixel_runs(np.nonzero(written_mask), labels.data.shape)
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
    row = [tab.units_table.item(r, 0).text() for r in range(12)].index("row 256, col 256")
    assert tab.units_table.item(row, 1).text() == "pre-labeled"
    value = int(labels.data[300, 300])
    labels.data_setitem((np.array([300]), np.array([300])), 7 if value != 7 else 1)
    qtbot.waitUntil(lambda: tab.units_table.item(row, 1).text() == "corrected", timeout=5000)
    assert tab.review_counts.text() == "Tiles: 2 not started · 9 pre-labeled · 1 corrected"
    tab._on_unit_clicked(row)
    centre = labels.world_to_data(viewer.camera.center[-2:])
    assert 256 <= centre[0] < 512 and 256 <= centre[1] < 512
