"""The GIS analyst's path in a real viewer: open a scene, annotate, export, import vectors."""

from __future__ import annotations

import numpy as np
import pyproj
import rasterio

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._annotation import add_region_annotation_layer, new_annotation_layer
from napari_domainseg._napari._map_cursor import map_cursor_text
from napari_domainseg._widgets._vector_import import import_vectors
from napari_domainseg.geo.label_raster import read_label_raster

PLUGIN = "napari-domainseg"
LANDSAT = "geo/landsat_rgb/RGB.byte.tif"


def test_open_annotate_and_export_a_scene(
    make_napari_viewer, shared_data, tmp_path, screenshot_folder, assert_not_blank
):
    viewer = make_napari_viewer(show=True)
    viewer.open(str(shared_data / LANDSAT), plugin=PLUGIN)
    red, green, blue = viewer.layers
    assert (red.colormap.name, green.colormap.name, blue.colormap.name) == ("red", "green", "blue")
    assert viewer.camera.orientation2d[0] == "up", "north up"
    viewer.layers.selection.active = red
    new_annotation_layer()
    labels = viewer.layers[-1]
    assert labels.data.shape == (718, 791) and labels.data.dtype == np.uint8
    np.testing.assert_allclose(labels.data_to_world((3, 5)), red.data_to_world((3, 5)))
    labels.data[300:420, 250:400] = 1
    labels.refresh()
    viewer.window.resize(1200, 820)
    viewer.reset_view()

    # The cursor readout: map coordinates and longitude/latitude.
    with rasterio.open(shared_data / LANDSAT) as src:
        x, y = rasterio.transform.xy(src.transform, 359, 395)
        crs = src.crs
    viewer.cursor.position = (y, x)
    text = map_cursor_text(viewer, {})
    assert f"E {x:.2f}" in text and f"N {y:.2f}" in text and "EPSG:32618" in text
    lon, lat = pyproj.Transformer.from_crs(crs.to_wkt(), 4326, always_xy=True).transform(x, y)
    assert f"{abs(lat):.5f} N" in text and f"{abs(lon):.5f} W" in text
    assert viewer.text_overlay.visible and viewer.text_overlay.text == text

    canvas = viewer.screenshot(str(screenshot_folder / "geo-annotated.png"))
    assert_not_blank(canvas)
    viewer.layers.selection = {labels}
    viewer.layers.save(str(tmp_path / "landcover.tif"), selected=True, plugin=PLUGIN)
    written = read_label_raster(tmp_path / "landcover.tif")
    np.testing.assert_array_equal(written.array, labels.data)


def test_region_annotation_exports_on_the_full_grid(make_napari_viewer, shared_data, tmp_path):
    viewer = make_napari_viewer()
    viewer.open(str(shared_data / LANDSAT), plugin=PLUGIN)
    image = viewer.layers[0]
    y0, x0 = image.data_to_world((100, 200))
    y1, x1 = image.data_to_world((149, 259))
    labels = add_region_annotation_layer(viewer, image, (y0, x0, y1, x1))
    assert labels.data.shape == (50, 60)
    assert state.raster_grid_of(labels).region == (100, 200, 50, 60)
    np.testing.assert_allclose(labels.data_to_world((0, 0)), image.data_to_world((100, 200)))
    labels.data[:] = 5
    viewer.layers.selection = {labels}
    viewer.layers.save(str(tmp_path / "roi.tif"), selected=True, plugin=PLUGIN)
    full = read_label_raster(tmp_path / "roi.tif").array
    assert full.shape == (718, 791)
    assert (
        np.array_equal(np.argwhere(full == 5).min(axis=0), [100, 200]) and (full == 5).sum() == 3000
    )


def test_vector_import_burns_onto_the_raster_grid(make_napari_viewer, shared_data):
    viewer = make_napari_viewer()
    viewer.open(str(shared_data / LANDSAT), plugin=PLUGIN)
    image = viewer.layers[0]
    import_vectors(viewer, shared_data / "geo/landsat_rgb/box.shp", image)
    labels = viewer.layers[-1]
    assert labels.name == "box on " + image.name
    assert labels.data.shape == (718, 791) and 0 < labels.data.sum()
    assert state.raster_grid_of(labels).crs_wkt == state.raster_grid_of(image).crs_wkt


def test_vector_import_widget_builds_and_runs(make_napari_viewer, shared_data):
    from napari_domainseg._widgets._vector_import import vector_import_widget

    viewer = make_napari_viewer()
    viewer.open(str(shared_data / LANDSAT), plugin=PLUGIN)
    widget = vector_import_widget()
    widget.vector_file.value = shared_data / "geo/landsat_rgb/box.shp"
    widget.image.value = viewer.layers[0]
    widget()
    assert viewer.layers[-1].name.startswith("box on")
