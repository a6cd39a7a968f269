"""Layers > Register > Warp raster by its ground control points, in a real viewer."""

from __future__ import annotations

import rasterio
from rasterio.crs import CRS

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._gcp_warp import warp_layers

from ..helpers.geotiffs import gcp_geotiff

PLUGIN = "napari-domainseg"


def test_the_warp_command_replaces_pixel_layers_by_warped_ones(make_napari_viewer, tmp_path):
    path = gcp_geotiff(tmp_path / "gcps.tif")
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin=PLUGIN)
    (pixels,) = viewer.layers
    assert state.get(pixels, "gcp_only")
    assert warp_layers(viewer, []) == [], "nothing selected that can be warped"
    (warped,) = warp_layers(viewer, [pixels])
    assert list(viewer.layers) == [warped], "the pixel-coordinate layer is replaced"
    grid = state.raster_grid_of(warped)
    assert state.get(warped, "gcps") == "warp"
    assert CRS.from_wkt(grid.crs_wkt) == CRS.from_epsg(32630)
    with rasterio.open(path) as src:
        xs = [p.x for p in src.gcps[0]]
        ys = [p.y for p in src.gcps[0]]
    y, x = warped.data_to_world((0, 0))
    assert min(xs) <= x <= max(xs) and min(ys) <= y <= max(ys), "the warped grid is on the map"
    assert warp_layers(viewer, [warped]) == [], "a warped layer is not warped twice"
