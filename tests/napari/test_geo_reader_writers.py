"""Rasters and vectors through the npe2 readers and writers, placed in map coordinates."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import npe2
import numpy as np
import pytest
import rasterio
from napari.layers import Image, Labels, Shapes
from rasterio.crs import CRS

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._geo_reader import get_raster_reader, get_vector_reader
from napari_domainseg._napari._writers import write_geo_labels, write_geo_labels_cog
from napari_domainseg.labels import load_preset

from .layer_helpers import labels_for

PLUGIN = "napari-domainseg"
PLACEMENT_CASES = [
    "landsat_rgb/RGB.byte.tif",
    "sentinel2_tci/S2A_MSIL1C_20170102T111442_N0204_R137_T30TXT_20170102T111441_TCI_cloudoptimized_512_200m.tif",
    "edge_cases/float.tif",
    "edge_cases/rotated.tif",
    "edge_cases/cogeo.tif",
]


@pytest.fixture(autouse=True, scope="module")
def _discover_plugins():
    npe2.PluginManager.instance().discover()


def read_layers(path: Path) -> list:
    layers = []
    for data, kwargs, kind in npe2.read([str(path)], stack=False, plugin_name=PLUGIN):
        layers.append({"image": Image, "labels": Labels, "shapes": Shapes}[kind](data, **kwargs))
    return layers


@pytest.mark.parametrize(
    "source",
    PLACEMENT_CASES,
    ids=[Path(c).parent.name + "/" + Path(c).name[:20] for c in PLACEMENT_CASES],
)
def test_every_pixel_centre_is_where_rasterio_puts_it(shared_data, source):
    path = shared_data / "geo" / source
    layers = read_layers(path)
    with rasterio.open(path) as src:
        transform, shape, count = src.transform, src.shape, src.count
    assert len(layers) == count
    layer = layers[0]
    pixel = max(abs(transform.a) + abs(transform.b), abs(transform.d) + abs(transform.e))
    rows, cols = np.meshgrid(
        np.unique(np.linspace(0, shape[0] - 1, 7).astype(int)),
        np.unique(np.linspace(0, shape[1] - 1, 7).astype(int)),
        indexing="ij",
    )
    for row, col in zip(rows.ravel(), cols.ravel(), strict=True):
        x, y = rasterio.transform.xy(transform, row, col)
        np.testing.assert_allclose(layer.data_to_world((row, col)), (y, x), atol=1e-6 * pixel)


def test_cog_opens_as_a_lazy_pyramid(shared_data):
    layers = read_layers(shared_data / "geo/edge_cases/cogeo.tif")
    red = layers[0]
    assert red.multiscale and len(red.data) == 7
    assert red.colormap.name == "red" and red.blending == "additive"
    assert type(red.data[0]).__module__.startswith("dask"), "nothing read at full resolution"


def test_nodata_other_than_the_lowest_value_shows_transparent(shared_data):
    (layer,) = read_layers(shared_data / "geo/edge_cases/shade.tif")  # nodata 255
    data = np.asarray(layer.data)
    with rasterio.open(shared_data / "geo/edge_cases/shade.tif") as src:
        original = src.read(1)
    assert not np.any(data == 255) and np.all(data[original == 255] == 0)


def test_raster_without_crs_loads_and_says_so(shared_data, recwarn):
    (layer,) = read_layers(shared_data / "geo/edge_cases/float.tif")
    assert state.raster_grid_of(layer).crs is None


def test_readers_decline_what_they_cannot_read(shared_data, tmp_path):
    (tmp_path / "notes.tif").write_text("not a raster")
    assert get_raster_reader(str(tmp_path / "notes.tif")) is None
    assert get_raster_reader(str(tmp_path / "missing.tif")) is None
    assert get_raster_reader(str(shared_data / "medical/mr_sagittal")) is None
    assert get_vector_reader(str(tmp_path / "x.tif")) is None


@pytest.mark.parametrize("extension", [".tif", ".gpkg", ".geojson"])
def test_labels_saved_by_napari_reopen_on_the_same_pixels(shared_data, tmp_path, extension):
    image = read_layers(shared_data / "geo/landsat_rgb/RGB.byte.tif")[0]
    labels = labels_for(image, load_preset("land_cover"))
    labels.data[100:200, 300:420] = 1
    labels.data[400:450, 50:60] = 2
    (written, *_) = npe2.write(
        str(tmp_path / f"lc{extension}"), [labels.as_layer_data_tuple()], plugin_name=PLUGIN
    )
    if extension == ".tif":
        (again,) = read_layers(Path(written))
        assert isinstance(again, Labels)
        np.testing.assert_array_equal(again.data, labels.data)
        np.testing.assert_allclose(again.data_to_world((5, 7)), labels.data_to_world((5, 7)))
        assert state.schema_of(again).classes[0].name == "water"
    else:
        frame = gpd.read_file(written)
        assert sorted(frame.label) == [1, 2]
        assert set(frame.name) == {
            c.name for c in load_preset("land_cover").classes if c.id in (1, 2)
        }


def test_cog_writer(shared_data, tmp_path):
    image = read_layers(shared_data / "geo/landsat_rgb/RGB.byte.tif")[0]
    labels = labels_for(image)
    labels.data[10:20, 10:20] = 4
    (path,) = write_geo_labels_cog(str(tmp_path / "lc.tif"), labels.data, labels._get_state())
    with rasterio.open(path) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"


def test_geo_writer_replaces_whole_what_napari_confirmed_and_refuses_3d(shared_data, tmp_path):
    image = read_layers(shared_data / "geo/edge_cases/byte.tif")[0]
    labels = labels_for(image)
    labels.data[2, 3] = 5
    (tmp_path / "x.tif").write_text("yesterday's labels")
    # napari's Save dialog asked before calling the writer: the file is replaced, whole
    write_geo_labels(str(tmp_path / "x.tif"), labels.data, labels._get_state())
    with rasterio.open(tmp_path / "x.tif") as src:
        np.testing.assert_array_equal(src.read(1), labels.data)
    assert [p.name for p in tmp_path.iterdir()] == ["x.tif"], "no temporary file left"
    with pytest.raises(ValueError, match="2D labels"):
        write_geo_labels(str(tmp_path / "x.tif"), np.zeros((2, 3, 3), np.uint8), {})
    with rasterio.open(tmp_path / "x.tif") as src:
        np.testing.assert_array_equal(src.read(1), labels.data)


def test_moved_labels_export_where_napari_shows_them(shared_data, tmp_path):
    image = read_layers(shared_data / "geo/edge_cases/byte.tif")[0]
    labels = labels_for(image)
    labels.data[3, 4] = 9
    labels.translate = np.asarray(labels.translate) + np.array([60.0, 120.0])
    with pytest.warns(UserWarning, match="no longer sit on their raster"):
        (path,) = write_geo_labels(str(tmp_path / "moved.tif"), labels.data, labels._get_state())
    with rasterio.open(path) as src:
        ((row, col),) = np.argwhere(src.read(1) == 9)
        x, y = rasterio.transform.xy(src.transform, row, col)
    np.testing.assert_allclose(labels.data_to_world((3, 4)), (y, x))


def test_vectors_open_as_shapes_in_the_map_of_an_open_raster(make_napari_viewer, shared_data):
    viewer = make_napari_viewer()
    viewer.open(str(shared_data / "geo/landsat_rgb/RGB.byte.tif"), plugin=PLUGIN)
    viewer.open(str(shared_data / "geo/landsat_rgb/box.shp"), plugin=PLUGIN)
    shapes = viewer.layers[-1]
    assert isinstance(shapes, Shapes) and len(shapes.data) == 1
    frame = gpd.read_file(shared_data / "geo/landsat_rgb/box.shp")
    minx, miny, maxx, maxy = frame.total_bounds
    vertices = shapes.data[0]
    np.testing.assert_allclose(vertices.min(axis=0), (miny, minx))
    np.testing.assert_allclose(vertices.max(axis=0), (maxy, maxx))


def test_vectors_open_in_their_own_crs_without_a_viewer(shared_data):
    ((polygons, kwargs, kind),) = npe2.read(
        [str(shared_data / "geo/landsat_rgb/box.shp")], stack=False, plugin_name=PLUGIN
    )
    frame = gpd.read_file(shared_data / "geo/landsat_rgb/box.shp")
    assert kind == "shapes" and len(polygons) == len(frame)
    minx, miny, maxx, maxy = frame.total_bounds
    vertices = np.concatenate(polygons)  # world (y, x) = the file's own map coordinates
    np.testing.assert_allclose(vertices.min(axis=0), (miny, minx))
    np.testing.assert_allclose(vertices.max(axis=0), (maxy, maxx))
    assert CRS.from_wkt(state.get(kwargs, "crs_wkt")).to_epsg() == frame.crs.to_epsg()
