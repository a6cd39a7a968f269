"""The raster grid value (``geo.grid.RasterGrid``): validated, exact, and rasterio's window math."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import rasterio
import rasterio.windows
from affine import Affine
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.windows import Window

from napari_domainseg.errors import DomainSegError
from napari_domainseg.geo.grid import (
    GridError,
    RasterGrid,
    as_window,
    pixel_center_affine,
    same_crs,
    transform_from_world_affine,
    window_tuple,
)

LANDSAT = "geo/landsat_rgb/RGB.byte.tif"
NORTH_UP = from_origin(500_000.0, 4_000_000.0, 10.0, 10.0)
ROTATED = Affine(7.0710678, -7.0710678, 300_000.5, 7.0710678, 7.0710678, 5_000_000.25)


@pytest.fixture
def landsat(shared_data):
    with rasterio.open(shared_data / LANDSAT) as src:
        yield src


# --- construction ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("height", "width", "transform", "window", "message"),
    [
        (0, 10, NORTH_UP, None, "at least one pixel"),
        (10, -1, NORTH_UP, None, "at least one pixel"),
        (10, 10, Affine(10, 0, 0, 20, 0, 0), None, "not finite and invertible"),  # singular
        (10, 10, Affine(0, 0, 0, 0, 0, 0), None, "not finite and invertible"),
        (10, 10, Affine(float("nan"), 0, 0, 0, -10, 0), None, "not finite and invertible"),
        (10, 10, Affine(10, 0, float("inf"), 0, -10, 0), None, "not finite and invertible"),
        (10, 10, NORTH_UP, (5, 5, 6, 1), "not inside"),  # past the bottom
        (10, 10, NORTH_UP, (0, 9, 1, 2), "not inside"),  # past the right
        (10, 10, NORTH_UP, (-1, 0, 2, 2), "not inside"),
        (10, 10, NORTH_UP, (0, 0, 0, 3), "not inside"),  # no pixels
        (10, 10, NORTH_UP, Window(0.5, 0, 2, 2), "whole pixels"),  # fractional offset
        (10, 10, NORTH_UP, Window(0, 0, 2.25, 2), "whole pixels"),  # fractional size
    ],
)
def test_impossible_grids_are_refused(height, width, transform, window, message):
    with pytest.raises(GridError, match=message) as caught:
        RasterGrid(height, width, transform, None, window)
    assert isinstance(caught.value, DomainSegError) and isinstance(caught.value, ValueError)


def test_a_crs_that_is_not_one_is_refused():
    with pytest.raises(GridError, match="not a coordinate reference system"):
        RasterGrid(10, 10, NORTH_UP, "not a CRS at all")


def test_a_wkt_crs_is_parsed_once_into_a_crs_object():
    grid = RasterGrid(10, 10, NORTH_UP, CRS.from_epsg(32633).to_wkt())
    assert isinstance(grid.crs, CRS) and grid.crs == CRS.from_epsg(32633)
    assert CRS.from_wkt(grid.crs_wkt) == grid.crs
    assert RasterGrid(10, 10, NORTH_UP).crs is None and RasterGrid(10, 10, NORTH_UP).crs_wkt is None


def test_the_grid_is_immutable():
    grid = RasterGrid(10, 10, NORTH_UP, "EPSG:32633")
    with pytest.raises(AttributeError):
        grid.height = 20  # type: ignore[misc]


def test_window_tuples_and_windows_name_the_same_region():
    grid = RasterGrid(100, 200, NORTH_UP, None, (10, 20, 30, 40))
    assert grid.window == Window(20, 10, 40, 30)  # rasterio: col, row, width, height
    assert grid.region == (10, 20, 30, 40) == window_tuple(as_window(grid.region))
    assert grid.array_shape == (30, 40) and grid.shape == (100, 200)
    assert (
        grid.with_window(None).array_shape == (100, 200) and grid.with_window(None).region is None
    )


# --- serialisation --------------------------------------------------------------------------


@pytest.mark.parametrize("crs", [None, "EPSG:32633", "EPSG:4326"])
@pytest.mark.parametrize("window", [None, (3, 4, 5, 6)])
def test_to_dict_and_back_is_exact(crs, window):
    transform = Affine(0.1 + 0.2, 1e-17, 500_000.123456789, -3.3e-9, -(1 / 3), 4e6 + math.pi)
    grid = RasterGrid(40, 50, transform, crs, window)
    document = json.loads(json.dumps(grid.to_dict()))  # through JSON text
    back = RasterGrid.from_dict(document)
    assert back == grid
    assert tuple(back.transform) == tuple(grid.transform), "floats bit for bit"
    assert back.region == grid.region and same_crs(back.crs, grid.crs)


@pytest.mark.parametrize(
    "document",
    [
        {"width": 5, "transform": [1, 0, 0, 0, -1, 0]},  # no height
        {"height": 5, "width": 5, "transform": [1, 0, 0]},  # short transform
        {"height": 5, "width": 5, "transform": [1, 0, 0, 0, 0, 0]},  # singular
        {"height": 5, "width": 5, "transform": [1, 0, 0, 0, -1, 0], "window": [4, 4, 2, 2]},
        {"height": "five", "width": 5, "transform": [1, 0, 0, 0, -1, 0]},
    ],
)
def test_a_bad_description_is_a_grid_error(document):
    with pytest.raises(GridError):
        RasterGrid.from_dict(document)


# --- windows: rasterio's math on the real Landsat scene -------------------------------------


def test_of_dataset_is_the_files_grid(landsat):
    grid = RasterGrid.of_dataset(landsat)
    assert (grid.height, grid.width) == (landsat.height, landsat.width) == (718, 791)
    assert grid.transform == landsat.transform and grid.crs == landsat.crs
    assert grid.window is None and grid.array_transform == landsat.transform


@pytest.mark.parametrize(
    "region", [(0, 0, 1, 1), (100, 200, 50, 60), (717, 790, 1, 1), (0, 0, 718, 791), (3, 7, 2, 9)]
)
def test_window_transforms_are_rasterios(landsat, region):
    grid = RasterGrid.of_dataset(landsat).with_window(region)
    window = Window(region[1], region[0], region[3], region[2])
    assert grid.array_transform == rasterio.windows.transform(window, landsat.transform)
    assert grid.array_transform == landsat.window_transform(window)
    assert grid.array_shape == (region[2], region[3])
    rows, cols = np.indices(grid.array_shape)
    here = rasterio.transform.xy(grid.array_transform, rows.ravel(), cols.ravel())
    there = rasterio.transform.xy(
        landsat.transform, rows.ravel() + region[0], cols.ravel() + region[1]
    )
    np.testing.assert_allclose(here, there, rtol=0, atol=1e-6)  # the same pixel centres


def test_window_of_clips_to_the_grid(landsat):
    grid = RasterGrid.of_dataset(landsat)
    assert grid.window_of((-5, -3, 20, 30)) == (0, 0, 20, 30)
    assert grid.window_of((700, 780, 50, 50)) == (700, 780, 18, 11)
    grid.with_window(grid.window_of((700, 780, 50, 50)))  # a window the grid takes


def test_pixel_size_is_the_side_of_a_pixels_area(landsat):
    grid = RasterGrid.of_dataset(landsat)
    a, e = landsat.transform.a, landsat.transform.e
    assert grid.pixel_size == pytest.approx(math.sqrt(abs(a * e)), rel=1e-15)
    assert RasterGrid(4, 4, ROTATED).pixel_size == pytest.approx(10.0, rel=1e-7)


# --- napari placement -----------------------------------------------------------------------


@pytest.mark.parametrize("transform", [NORTH_UP, ROTATED, from_origin(-180, 90, 0.1, 0.1)])
def test_world_affine_and_back_are_inverse(transform):
    back = transform_from_world_affine(pixel_center_affine(transform))
    np.testing.assert_allclose(tuple(back), tuple(transform), rtol=1e-15, atol=1e-9)
    grid = RasterGrid(30, 40, transform, "EPSG:32633", (5, 6, 7, 8))
    placed = RasterGrid.of_world_affine(grid.world_affine, grid.array_shape, grid.crs)
    assert placed.same_as(grid, tolerance=1e-9)
    assert placed.array_shape == (7, 8) and placed.window is None


def test_world_affine_puts_an_index_at_its_pixel_centre(landsat):
    grid = RasterGrid.of_dataset(landsat).with_window((100, 200, 50, 60))
    y, x, _ = grid.world_affine @ np.array([4.0, 7.0, 1.0])
    expected_x, expected_y = rasterio.transform.xy(landsat.transform, 104, 207)
    assert (x, y) == pytest.approx((expected_x, expected_y), abs=1e-6)


# --- comparison -----------------------------------------------------------------------------


def test_same_as_sees_one_crs_given_as_epsg_or_wkt(landsat):
    epsg = f"EPSG:{landsat.crs.to_epsg()}"
    wkt = re.sub(r",AUTHORITY\[[^\]]*\]", "", landsat.crs.to_wkt())  # no EPSG codes in it
    a = RasterGrid(landsat.height, landsat.width, landsat.transform, epsg)
    b = RasterGrid(landsat.height, landsat.width, landsat.transform, wkt)
    assert "EPSG" not in b.crs_wkt and "EPSG" in a.crs_wkt, "two spellings"
    assert a.same_as(b) and b.same_as(a) and same_crs(a.crs, b.crs)


def test_same_as_can_fail():
    base = RasterGrid(10, 10, NORTH_UP, "EPSG:32633")
    assert base.same_as(RasterGrid(10, 10, NORTH_UP * Affine.translation(1e-4, 0), "EPSG:32633"))
    assert not base.same_as(RasterGrid(10, 10, NORTH_UP * Affine.translation(0.5, 0), "EPSG:32633"))
    assert not base.same_as(RasterGrid(10, 10, NORTH_UP, "EPSG:32634"))
    assert not base.same_as(RasterGrid(10, 10, NORTH_UP))
    assert not base.same_as(RasterGrid(10, 11, NORTH_UP, "EPSG:32633"))
    assert not base.same_as(base.with_window((0, 0, 5, 5)))
    wide = RasterGrid(1000, 1000, NORTH_UP, "EPSG:32633")
    stretched = Affine(10.0001, 0, NORTH_UP.c, 0, -10.0, NORTH_UP.f)  # 0.1 m at the far corner
    assert not wide.same_as(RasterGrid(1000, 1000, stretched, "EPSG:32633"))
    assert wide.same_as(RasterGrid(1000, 1000, stretched, "EPSG:32633"), tolerance=0.02)
    assert same_crs(None, None) and not same_crs(None, base.crs)


# --- who makes grids ------------------------------------------------------------------------


def test_a_scene_and_a_label_raster_give_the_files_grid(shared_data, landsat, tmp_path):
    from napari_domainseg.geo.coordinates import MapCoordinates
    from napari_domainseg.geo.label_raster import read_grid, read_label_raster, write_label_geotiff
    from napari_domainseg.geo.scene import open_scene

    scene = open_scene(shared_data / LANDSAT)
    grid = RasterGrid.of_dataset(landsat)
    assert scene.grid == grid == read_grid(shared_data / LANDSAT)
    assert isinstance(scene.crs, CRS) and CRS.from_wkt(scene.crs_wkt) == landsat.crs
    np.testing.assert_array_equal(scene.world_affine, grid.world_affine)
    (path,) = write_label_geotiff(tmp_path / "l.tif", np.ones(grid.shape, np.uint8), grid)
    assert read_label_raster(path).grid == grid
    by_object, by_wkt = MapCoordinates(grid.crs), MapCoordinates(grid.crs_wkt)
    assert by_object.crs_name == by_wkt.crs_name == "EPSG:32618"
    assert by_object.describe(2_800_000.0, 200_000.0) == by_wkt.describe(2_800_000.0, 200_000.0)
