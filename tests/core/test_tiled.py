"""Tiled polygonize and rasterize give exactly the whole-raster results."""

from __future__ import annotations

import numpy as np
import rasterio
import shapely
from rasterio.transform import from_origin
from scipy import ndimage

from napari_domainseg.geo.grid import RasterGrid
from napari_domainseg.geo.label_raster import write_label_geotiff
from napari_domainseg.geo.tiled import polygonize_file, rasterize_file
from napari_domainseg.geo.vectors import polygonize, rasterize_vectors, read_vectors


def blobs(size: int = 1200, seed: int = 3) -> np.ndarray:
    """Smooth random classes: regions of every size crossing any strip seam."""
    rng = np.random.default_rng(seed)
    field = ndimage.zoom(rng.normal(size=(size // 60 + 2, size // 60 + 2)), 60, order=3)[
        :size, :size
    ]
    labels = np.digitize(field, np.quantile(field, [0.25, 0.5, 0.7, 0.85])).astype(np.uint8)
    labels[rng.random(labels.shape) < 0.002] = 0  # single-pixel holes and specks
    return labels


def normalised(frame) -> list:
    geometries = shapely.normalize(frame.geometry.values)
    return sorted(zip(frame.label, shapely.to_wkt(geometries, rounding_precision=4), strict=True))


def test_tiled_polygonize_equals_the_whole_raster(tmp_path):
    labels = blobs()
    grid = RasterGrid(1200, 1200, from_origin(500000, 4000000, 10, 10), "EPSG:32633")
    (path,) = write_label_geotiff(tmp_path / "l.tif", labels, grid)
    whole = polygonize(labels, grid.transform, grid.crs)
    tiled = polygonize_file(path, strip_rows=256, scheduler="threads")
    assert len(tiled) == len(whole) > 100
    assert normalised(tiled) == normalised(whole)
    np.testing.assert_allclose(sorted(tiled.area_m2), sorted(whole.area_m2))


def test_tiled_polygonize_in_worker_processes(tmp_path):
    labels = blobs(600, seed=5)
    grid = RasterGrid(600, 600, from_origin(0, 600, 1, 1))
    (path,) = write_label_geotiff(tmp_path / "l.tif", labels, grid)
    tiled = polygonize_file(path, strip_rows=150, scheduler="processes")
    assert normalised(tiled) == normalised(polygonize(labels, grid.transform))


def test_tiled_rasterize_equals_the_whole_raster(shared_data, tmp_path):
    reference = shared_data / "geo/landsat_rgb/RGB.byte.tif"
    frame = read_vectors(shared_data / "geo/landsat_rgb/box.shp")
    with rasterio.open(reference) as src:
        grid = RasterGrid.of_dataset(src)
    whole = rasterize_vectors(frame, grid)
    path = rasterize_file(frame, reference, tmp_path / "box.tif", strip_rows=100)
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(1), whole)
        assert src.transform == grid.transform and src.nodata == 0
