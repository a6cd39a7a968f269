"""The synthetic scene is a real georeferenced GeoTIFF that GDAL tools read the same way."""

import numpy as np
import rasterio
import rasterio.transform

from napari_domainseg.geo.grid import pixel_center_affine
from napari_domainseg.geo.scene import open_scene
from napari_domainseg.geo.synthetic import (
    BAND_NAMES,
    NODATA,
    synthetic_scene_labels,
    write_synthetic_scene,
)


def test_scene_file_is_georeferenced(tmp_path):
    path = write_synthetic_scene(tmp_path / "scene.tif")
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32633
        assert src.count == 4 and src.dtypes[0] == "uint16"
        assert src.nodata == NODATA
        assert src.descriptions == BAND_NAMES
        assert src.overviews(1) == [2, 4]
        assert (src.transform.a, src.transform.e) == (10.0, -10.0)
        bands = src.read()
    labels = synthetic_scene_labels()
    assert np.all(bands[:, labels == 0] == NODATA), "no-data border"
    assert np.all(bands[:, labels != 0] > 0), "valid pixels are never the nodata value"
    water, vegetation = labels == 1, labels == 2
    ndvi = (bands[3].astype(float) - bands[2]) / (bands[3].astype(float) + bands[2] + 1e-9)
    assert ndvi[vegetation].mean() > 0.6 and ndvi[water].mean() < 0


def test_pixel_centre_affine_matches_rasterio_xy(tmp_path):
    raster = open_scene(write_synthetic_scene(tmp_path / "scene.tif"))
    rows, cols = np.array([0, 0, 511, 100]), np.array([0, 511, 0, 37])
    xs, ys = rasterio.transform.xy(raster.transform, rows, cols, offset="center")
    mapped = raster.world_affine @ np.vstack([rows, cols, np.ones_like(rows)])
    np.testing.assert_allclose(mapped[0], ys, atol=1e-9)
    np.testing.assert_allclose(mapped[1], xs, atol=1e-9)


def test_pixel_centre_affine_with_rotation():
    transform = rasterio.Affine(2.0, 0.5, 100.0, 0.25, -3.0, 900.0)
    xs, ys = rasterio.transform.xy(transform, [4], [7], offset="center")
    y, x, _ = pixel_center_affine(transform) @ np.array([4, 7, 1])
    assert (y, x) == (ys[0], xs[0])
