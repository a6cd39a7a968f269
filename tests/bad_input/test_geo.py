"""Hostile geospatial inputs: nodata, negative labels, invalid or non-polygon vectors, GCPs.

Each case generates its input under ``tmp_path`` and opens it the way a user does (the CLI, the
core readers); :func:`corpus.check` asserts one clear message that names the file.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.crs import CRS
from rasterio.transform import from_origin

from napari_domainseg.geo.label_raster import read_label_raster
from napari_domainseg.geo.scene import open_scene
from napari_domainseg.geo.vectors import read_vectors

from ..helpers.cli import cli
from ..helpers.geotiffs import with_gcps_without_crs
from .corpus import BadInput, check, ids

UTM = CRS.from_epsg(32633)


def _raster(path: Path, values: np.ndarray, nodata=None, crs=UTM, **extra) -> Path:
    with rasterio.open(
        path, "w", driver="GTiff", height=values.shape[0], width=values.shape[1], count=1,
        dtype=values.dtype, nodata=nodata, crs=crs, transform=from_origin(500000, 4000000, 10, 10),
        **extra,
    ) as dst:  # fmt: skip
        dst.write(values, 1)
    return path


def _negative_labels(folder: Path) -> Path:
    values = np.ones((16, 16), np.int16)
    values[5, 5] = -1
    return _raster(folder / "negative_labels.tif", values)


def _golden_like(folder: Path) -> Path:
    return _raster(folder / "labels_with_nodata.tif", np.full((8, 8), 3, np.uint8), nodata=255)


def _vectors(folder: Path, name: str, geometries: list) -> Path:
    path = folder / name
    gpd.GeoDataFrame(geometry=geometries, crs=UTM).to_file(path)
    return path


def _only_points(folder: Path) -> Path:
    return _vectors(folder, "only_points.geojson", [shapely.Point(500010, 3999990)] * 4)


def _only_lines(folder: Path) -> Path:
    line = shapely.LineString([(500000, 3999990), (500100, 3999990)])
    return _vectors(folder, "only_lines.gpkg", [line, line])


def _bowtie(folder: Path) -> Path:
    bowtie = shapely.Polygon([(500000, 4000000), (500100, 3999900), (500100, 4000000),
                              (500000, 3999900)])  # fmt: skip
    return _vectors(folder, "bowtie.geojson", [bowtie])


def _collapsed(folder: Path) -> Path:  # a ring with no area: nothing polygonal once repaired
    flat = shapely.Polygon([(500000, 4000000), (500100, 4000000), (500050, 4000000)])
    return _vectors(folder, "collapsed.geojson", [flat])


def _huge_reference(folder: Path) -> Path:
    vrt = folder / "huge_reference.vrt"
    vrt.write_text(textwrap.dedent("""\
        <VRTDataset rasterXSize="1000000" rasterYSize="1000000">
          <SRS>EPSG:32633</SRS>
          <GeoTransform>500000, 10, 0, 4000000, 0, -10</GeoTransform>
          <VRTRasterBand dataType="Byte" band="1"/>
        </VRTDataset>
        """))  # fmt: skip
    return vrt


def _gcps_without_crs(folder: Path) -> Path:
    plain = _raster(folder / "plain.tif", np.ones((10, 10), np.uint8), crs=None)
    return with_gcps_without_crs(plain, folder / "gcps_without_crs.tif")


def _polygonize(path: Path, *extra: str) -> tuple[int, str, str]:
    return cli("polygonize", path, "-o", path.with_suffix(".out.gpkg"), *extra)


def _rasterize_onto(path: Path) -> tuple[int, str, str]:
    vectors = path.parent / "square.gpkg"
    gpd.GeoDataFrame(geometry=[shapely.box(500000, 3999900, 500100, 4000000)], crs=UTM).to_file(
        vectors
    )
    return cli("rasterize", vectors, "--like", path, "-o", path.parent / "burnt.tif")


def _warns_with_name(path: Path):
    import warnings

    for line in open_scene(path).warnings:
        warnings.warn(line, UserWarning, stacklevel=1)


CASES = [
    BadInput("geo-negative-labels-polygonize", _negative_labels, _polygonize,
             message="negative label -1.*nodata", outcome="exit"),
    BadInput("geo-negative-labels-polygonize-tiled", _negative_labels,
             lambda p: _polygonize(p, "--tiled", "4"), message="negative label -1",
             outcome="exit"),
    BadInput("geo-negative-labels-reader", _negative_labels, read_label_raster,
             message="negative label -1.*class ids are 0"),
    BadInput("geo-tiled-zero-rows", _golden_like, lambda p: _polygonize(p, "--tiled", "0"),
             message="strips of 0 rows.*positive", outcome="exit"),
    BadInput("geo-tiled-negative-rows", _golden_like, lambda p: _polygonize(p, "--tiled", "-5"),
             message="strips of -5 rows.*positive", outcome="exit"),
    BadInput("geo-vectors-only-points", _only_points, read_vectors,
             message="no polygons.*4 points"),
    BadInput("geo-vectors-only-lines", _only_lines, read_vectors,
             message="no polygons.*2 lines"),
    BadInput("geo-vectors-bowtie", _bowtie, read_vectors,
             message="repaired 1 invalid polygon.*Self-intersection.*feature id 0",
             outcome="warning"),
    BadInput("geo-vectors-collapsed-ring", _collapsed, read_vectors,
             message="no polygons.*invalid polygon"),
    BadInput("geo-huge-reference-in-memory", _huge_reference, _rasterize_onto,
             message="too large to burn in memory.*--tiled", outcome="exit", names_file=False),
    BadInput("geo-gcps-without-crs-warp", _gcps_without_crs,
             lambda p: open_scene(p, gcps="warp"), message="ground control points without a CRS"),
    BadInput("geo-gcps-without-crs-pixels", _gcps_without_crs, _warns_with_name,
             message="georeferenced by 3 ground control points", outcome="warning"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_input(case, tmp_path):
    check(case, tmp_path)
