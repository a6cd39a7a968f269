"""Readers return layer data only; the viewer is set up when the layers arrive in it."""

from __future__ import annotations

import shutil

import geopandas as gpd
import numpy as np
import pytest
from napari.layers import Layer

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._geo_reader import read_raster
from napari_domainseg._napari._viewer_setup import watch
from napari_domainseg.medical.export import export_labels
from napari_domainseg.medical.series import read_series
from napari_domainseg.ops.recovery import RecoveryStore

PLUGIN = "napari-domainseg"
LANDSAT = "geo/landsat_rgb/RGB.byte.tif"


def test_a_reader_changes_nothing_the_layers_arriving_set_the_viewer_up(
    make_napari_viewer, shared_data
):
    viewer = make_napari_viewer()
    camera, overlay = tuple(viewer.camera.orientation2d), viewer.text_overlay.text
    layer_data = read_raster(str(shared_data / LANDSAT))
    assert len(viewer.layers) == 0
    assert tuple(viewer.camera.orientation2d) == camera and camera[0] == "down"
    assert viewer.text_overlay.text == overlay
    for data, kwargs, kind in layer_data:
        viewer.add_layer(Layer.create(data, kwargs, kind))
    assert viewer.camera.orientation2d[0] == "up", "north up once a raster arrives"
    viewer.cursor.position = tuple(viewer.layers[0].data_to_world((10, 10)))
    assert "EPSG:32618" in viewer.text_overlay.text, "the map readout is installed"


def test_each_viewer_is_set_up_by_its_own_hook(make_napari_viewer, shared_data):
    first, second = make_napari_viewer(), make_napari_viewer()
    watch(first), watch(second)
    assert watch(first) is watch(first), "one set-up per viewer"
    for data, kwargs, kind in read_raster(str(shared_data / LANDSAT)):
        first.add_layer(Layer.create(data, kwargs, kind))
    assert first.camera.orientation2d[0] == "up"
    assert second.camera.orientation2d[0] == "down", "the other viewer is left alone"


def test_a_raster_with_autosaved_labels_is_announced_once(
    make_napari_viewer, shared_data, tmp_path, monkeypatch
):
    from napari.utils import notifications

    monkeypatch.setenv("NAPARI_DOMAINSEG_RECOVERY", str(tmp_path))
    shown: list[str] = []
    monkeypatch.setattr(notifications, "show_info", lambda message: shown.append(message))
    (band, *_) = read_raster(str(shared_data / LANDSAT))
    shape = band[0][0].shape if isinstance(band[0], list) else band[0].shape
    RecoveryStore(tmp_path).save(
        state.recovery_key_of(band[1], shape),
        np.ones(shape, np.uint8),
        "fields",
        state.recovery_metadata(band[1]),
    )
    viewer = make_napari_viewer()
    viewer.open(str(shared_data / LANDSAT), plugin=PLUGIN)
    assert len(viewer.layers) == 3
    assert sum("'fields'" in message for message in shown) == 1, "one notice, not one per band"


@pytest.fixture
def series_with_seg(shared_data, tmp_path):
    """A copy of a real 3-slice CT series with a DICOM SEG of it written beside it."""
    folder = tmp_path / "study"
    shutil.copytree(shared_data / "medical/seg_dcmqi/ct-3slice", folder / "ct")
    volume = read_series(folder / "ct").volume
    labels = np.zeros(volume.shape, np.uint8)
    labels[1, 100:140, 120:200] = 1
    (seg,) = export_labels(folder / "seg.dcm", labels, volume.geometry, None, volume.metadata)
    return folder / "ct", seg, labels


def test_a_seg_beside_an_open_series_lands_on_it_without_a_second_copy(
    make_napari_viewer, qtbot, series_with_seg
):
    series, seg, labels = series_with_seg
    viewer = make_napari_viewer()
    viewer.open(str(series), plugin=PLUGIN)
    image = viewer.layers[0]
    viewer.open(str(seg), plugin=PLUGIN)  # the reader also opens the series found beside it
    qtbot.waitUntil(lambda: len(viewer.layers) == 2, timeout=5000)
    assert viewer.layers[0] is image, "the series already open is kept, its copy dropped"
    placed = viewer.layers[1]
    np.testing.assert_array_equal(placed.data, labels)
    for index in ([1, 100, 120], [1, 139, 199]):
        np.testing.assert_allclose(placed.data_to_world(index), image.data_to_world(index))


def test_a_seg_opened_first_opens_its_series_with_it(make_napari_viewer, series_with_seg):
    _, seg, labels = series_with_seg
    viewer = make_napari_viewer()
    viewer.open(str(seg), plugin=PLUGIN)
    image, placed = viewer.layers
    assert image.data.shape == labels.shape
    np.testing.assert_array_equal(placed.data, labels)
    assert not state.has(image, state.OPENED_FOR_SEG) or len(viewer.layers) == 2


def test_vectors_land_reprojected_on_the_open_raster(make_napari_viewer, shared_data, tmp_path):
    box = gpd.read_file(shared_data / "geo/landsat_rgb/box.shp")
    box.to_crs(4326).to_file(tmp_path / "box_wgs84.gpkg")
    viewer = make_napari_viewer()
    viewer.open(str(shared_data / LANDSAT), plugin=PLUGIN)
    viewer.open(str(tmp_path / "box_wgs84.gpkg"), plugin=PLUGIN)
    shapes = viewer.layers[-1]
    assert state.raster_grid_of(viewer.layers[0]).crs.to_epsg() == 32618
    vertices = np.concatenate(shapes.data)  # world (y, x) in the raster's CRS (UTM 18N, m)
    corners = np.asarray(box.geometry.iloc[0].exterior.coords)[:, ::-1]
    for corner in corners:  # each corner comes back where it was (edges are densified)
        assert np.linalg.norm(vertices - corner, axis=1).min() < 0.5


def test_vectors_opened_first_move_into_the_raster_map_when_it_arrives(
    make_napari_viewer, shared_data, tmp_path
):
    box = gpd.read_file(shared_data / "geo/landsat_rgb/box.shp")
    box.to_crs(4326).to_file(tmp_path / "box_wgs84.gpkg")
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "box_wgs84.gpkg"), plugin=PLUGIN)
    shapes = viewer.layers[-1]
    assert np.abs(np.concatenate(shapes.data)).max() < 400, "degrees, until a map is open"
    viewer.open(str(shared_data / LANDSAT), plugin=PLUGIN)
    vertices = np.concatenate(shapes.data)
    corners = np.asarray(box.geometry.iloc[0].exterior.coords)[:, ::-1]
    for corner in corners:
        assert np.linalg.norm(vertices - corner, axis=1).min() < 0.5
    assert not state.has(shapes, state.VECTOR_FILE), "placed once: nothing left to do"


def test_a_copy_of_an_image_opened_with_its_seg_is_kept(make_napari_viewer, qtbot, series_with_seg):
    _, seg, _ = series_with_seg
    viewer = make_napari_viewer()
    viewer.open(str(seg), plugin=PLUGIN)
    image = viewer.layers[0]
    assert not state.has(image, state.OPENED_FOR_SEG), "the reader's mark is used once"
    copy = viewer.add_image(image.data, name="copy", metadata=dict(image.metadata))
    qtbot.wait(50)
    assert copy in viewer.layers
