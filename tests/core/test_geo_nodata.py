"""Geo exports honour nodata (issue 10, section 2), checked against GDAL's own tools.

Nodata and masked pixels of a label raster are unlabeled (0) on every path: the reader, the
whole and tiled polygonize (``gdal_polygonize.py`` with its mask is the oracle), chips and stats.
Invalid polygons are repaired on import so every format burns the same pixels; the grid of a
reference comes from its header; GCP-only rasters say so and can be warped with GDAL's GCP
transformer (``gdalwarp`` is the oracle).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.transform import from_origin

from napari_domainseg.geo.grid import RasterGrid
from napari_domainseg.geo.label_raster import (
    LabelValueError,
    read_grid,
    read_label_raster,
)
from napari_domainseg.geo.nodata import image_validity
from napari_domainseg.geo.scene import RasterOpenError, open_scene
from napari_domainseg.geo.tiled import polygonize_file, rasterize_file
from napari_domainseg.geo.vectors import (
    VectorWarning,
    napari_polygons,
    polygonize,
    rasterize_vectors,
    read_vectors,
)
from napari_domainseg.ops.chips import plan_chips
from napari_domainseg.ops.statistics import ClassStatistics

from ..helpers.cli import cli
from ..helpers.geotiffs import with_gcps_without_crs

GOLDEN = "geo/polygonize_golden/polygonize_in.grd"
UTM = CRS.from_epsg(32633)


def write_raster(
    path: Path,
    values: np.ndarray,
    nodata: float | None = None,
    mask: np.ndarray | None = None,
    crs: CRS | None = UTM,
) -> Path:
    """A GeoTIFF of ``values`` (bands first or one band) with a nodata value or a mask band."""
    bands = values if values.ndim == 3 else values[None]
    profile = {
        "driver": "GTiff", "height": bands.shape[1], "width": bands.shape[2],
        "count": bands.shape[0], "dtype": bands.dtype, "nodata": nodata,
        "transform": from_origin(500000, 4000000, 10, 10), "crs": crs,
    }  # fmt: skip
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
        if mask is not None:
            dst.write_mask(mask.astype(np.uint8) * 255)
    return path


def gdal_polygons(path: Path, tmp_path: Path) -> gpd.GeoDataFrame:
    """``gdal_polygonize.py`` (which honours the band's mask) of ``path``, class 0 left out."""
    out = tmp_path / f"gdal_{path.stem}.gpkg"
    subprocess.run(
        ["gdal_polygonize.py", "-q", str(path), "-f", "GPKG", str(out), "out", "DN"],
        check=True, capture_output=True,
    )  # fmt: skip
    count = subprocess.run(
        ["ogrinfo", "-ro", "-so", str(out), "out"], check=True, capture_output=True, text=True
    ).stdout
    frame = gpd.read_file(out)
    assert f"Feature Count: {len(frame)}" in count
    return frame[frame.DN != 0]


def normalised(labels, geometries) -> list[tuple[int, str]]:
    wkt = shapely.to_wkt(shapely.normalize(np.asarray(geometries)), rounding_precision=3)
    return sorted(zip((int(v) for v in labels), wkt, strict=True))


# --- polygonize --------------------------------------------------------------------------------


@pytest.mark.parametrize("tiled", [None, "2"], ids=["whole", "tiled"])
def test_cli_polygonize_of_the_golden_grid_matches_gdal_polygonize(shared_data, tmp_path, tiled):
    source = shared_data / GOLDEN  # nodata 132: 13 polygons with the mask, 17 without
    out = tmp_path / "ours.gpkg"
    code, stdout, err = cli(
        "polygonize", source, "-o", out, "--json", *(["--tiled", tiled] if tiled else [])
    )
    assert code == 0, err
    assert json.loads(stdout)["features"] == 13
    ours, gdal = gpd.read_file(out), gdal_polygons(source, tmp_path)
    assert len(gdal) == 13
    assert 132 not in set(ours.label)
    assert normalised(ours.label, ours.geometry) == normalised(gdal.DN, gdal.geometry)


@pytest.mark.parametrize("kind", ["nodata", "mask"])
def test_nodata_and_masked_label_pixels_match_gdal_polygonize(tmp_path, kind):
    rng = np.random.default_rng(7)
    labels = rng.integers(1, 4, (40, 50)).astype(np.uint8)
    labels = np.kron(labels[::5, ::5], np.ones((5, 5), np.uint8))
    invalid = np.zeros(labels.shape, bool)
    invalid[10:25, 5:30] = True
    if kind == "nodata":
        labels[invalid] = 255
        path = write_raster(tmp_path / "l.tif", labels, nodata=255)
    else:  # an internal per-dataset mask band; the values under it are a real class
        labels[invalid] = 2
        path = write_raster(tmp_path / "l.tif", labels, mask=~invalid)
    gdal = gdal_polygons(path, tmp_path)
    read = read_label_raster(path)
    assert not read.array[invalid].any(), "nodata and masked pixels read as 0 (unlabeled)"
    whole = polygonize(read.array, read.grid.transform, read.grid.crs_wkt)
    tiled = polygonize_file(path, strip_rows=8, scheduler="threads")
    expected = normalised(gdal.DN, gdal.geometry)
    assert normalised(whole.label, whole.geometry) == expected
    assert normalised(tiled.label, tiled.geometry) == expected


def test_an_all_nodata_raster_yields_no_polygon(tmp_path):
    path = write_raster(tmp_path / "empty.tif", np.full((30, 30), 9, np.uint8), nodata=9)
    assert len(gdal_polygons(path, tmp_path)) == 0
    for extra in ([], ["--tiled", "7"]):
        out = tmp_path / f"out{len(extra)}.gpkg"
        code, stdout, err = cli("polygonize", path, "-o", out, "--json", *extra)
        assert code == 0, err
        assert json.loads(stdout)["features"] == 0
        assert len(gpd.read_file(out)) == 0


def test_polygonize_mask_never_makes_zero_a_class():
    labels = np.array([[0, 1], [1, 0]], np.uint8)
    frame = polygonize(labels, from_origin(0, 2, 1, 1), mask=np.ones((2, 2), bool))
    assert set(frame.label) == {1}


def test_negative_labels_are_refused_on_every_path(tmp_path):
    labels = np.ones((20, 20), np.int16)
    labels[3, 4] = -5
    path = write_raster(tmp_path / "negative.tif", labels)
    with pytest.raises(LabelValueError, match="negative label -5"):
        polygonize(labels, from_origin(0, 20, 1, 1))
    with pytest.raises(LabelValueError, match=r"negative\.tif.*negative label -5"):
        read_label_raster(path)
    with pytest.raises(LabelValueError, match="negative label -5"):
        polygonize_file(path, strip_rows=8, scheduler="threads")
    for extra in ([], ["--tiled", "8"]):
        out = tmp_path / f"n{len(extra)}.gpkg"
        code, _, err = cli("polygonize", path, "-o", out, *extra)
        assert code == 1 and "negative.tif" in err and "negative label -5" in err
        assert "nodata" in err, "says how to declare it as nodata"
        assert not out.exists(), "refused, not written empty"
    labels[3, 4] = -9999  # declared as nodata: unlabeled, no longer refused
    path = write_raster(tmp_path / "declared.tif", labels, nodata=-9999)
    assert read_label_raster(path).array[3, 4] == 0


@pytest.mark.parametrize("rows", ["0", "-3"])
def test_tiled_with_a_non_positive_strip_height_is_refused(shared_data, tmp_path, rows):
    out = tmp_path / "o.gpkg"
    code, _, err = cli("polygonize", shared_data / GOLDEN, "-o", out, "--tiled", rows)
    assert code == 1 and f"strips of {rows} rows" in err and "positive" in err
    assert not out.exists()
    vectors = tmp_path / "v.geojson"
    gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)], crs=4326).to_file(vectors)
    reference = write_raster(tmp_path / "ref.tif", np.zeros((10, 10), np.uint8))
    code, _, err = cli("rasterize", vectors, "--like", reference, "-o", tmp_path / "r.tif",
                       "--tiled", rows)  # fmt: skip
    assert code == 1 and f"strips of {rows} rows" in err
    assert not (tmp_path / "r.tif").exists()


# --- chips and stats ---------------------------------------------------------------------------


def test_chips_skip_all_nodata_tiles_and_read_label_nodata_as_unlabeled(tmp_path):
    image = np.full((3, 64, 64), 50, np.uint8)
    image[:, :32, :32] = 0  # the top-left chip is all nodata
    image_path = write_raster(tmp_path / "image.tif", image, nodata=0)
    labels = np.ones((64, 64), np.uint8)
    labels[40:, 40:] = 200  # the label raster's own nodata
    labels_path = write_raster(tmp_path / "labels.tif", labels, nodata=200)
    valid = image_validity(image_path)
    assert not valid[:32, :32].any() and valid[32:, 32:].all()
    chips = plan_chips(np.ones((64, 64), np.uint8), 32, valid=valid)
    assert (0, 0) not in {(c.row, c.col) for c in chips} and len(chips) == 3
    out = tmp_path / "chips"
    code, stdout, err = cli("chips", image_path, labels_path, "-o", out, "--size", "32", "--json")
    assert code == 0, err
    assert json.loads(stdout)["chips"] == 3
    assert set(json.loads(stdout)["class_pixels"]) == {"1"}, "nodata 200 is never a class"
    for mask in out.glob("*_mask.tif"):
        with rasterio.open(mask) as src:
            assert src.nodata == 0 and 200 not in src.read(1)
    for chip in out.glob("*_image.tif"):
        with rasterio.open(chip) as src:
            assert src.nodata == 0, "image chips keep the image's nodata"


def test_stats_leave_nodata_out_of_classes_and_intensities(tmp_path):
    labels = np.ones((20, 20), np.uint8)
    labels[:5] = 7  # nodata of the label raster
    labels[10:, :] = 2
    labels_path = write_raster(tmp_path / "labels.tif", labels, nodata=7)
    image = np.full((20, 20), 10.0, np.float32)
    image[15:, :] = -9999  # nodata of the image, under class 2
    image_path = write_raster(tmp_path / "image.tif", image, nodata=-9999)
    code, stdout, err = cli("stats", labels_path, "--like", image_path, "--json")
    assert code == 0, err
    classes = {row["label"]: row for row in json.loads(stdout)["classes"]}
    assert set(classes) == {1, 2}, "nodata 7 is not a class"
    assert classes[1]["count"] == 100 and classes[2]["count"] == 200
    assert classes[2]["mean"] == pytest.approx(10.0) and classes[2]["minimum"] == 10.0
    table = ClassStatistics(labels, image, valid=image != -9999)
    assert {r.label: r.mean for r in table.rows()}[2] == pytest.approx(10.0)


# --- vectors -----------------------------------------------------------------------------------


def bowtie_frame() -> gpd.GeoDataFrame:
    bowtie = shapely.Polygon([(500010, 3999990), (500190, 3999810), (500190, 3999990),
                              (500010, 3999810)])  # fmt: skip
    return gpd.GeoDataFrame(
        {"value": [3, 4, 5, 6]},
        geometry=[bowtie, shapely.Point(500050, 3999950),
                  shapely.LineString([(500000, 3999900), (500100, 3999900)]), None],
        crs=UTM,
    )  # fmt: skip


@pytest.mark.parametrize("extension", [".geojson", ".gpkg", ".shp", ".fgb"])
def test_invalid_polygons_are_repaired_so_every_format_burns_the_same(tmp_path, extension):
    grid = RasterGrid(20, 20, from_origin(500000, 4000000, 10, 10), UTM)
    path = tmp_path / f"bowtie{extension}"
    if extension == ".shp":  # one geometry type per shapefile
        bowtie_frame().iloc[:1].to_file(path, engine="pyogrio")
    else:
        options = {"SPATIAL_INDEX": "NO"} if extension == ".fgb" else {}
        bowtie_frame().to_file(path, engine="pyogrio", **options)
    with pytest.warns(VectorWarning) as caught:
        frame = read_vectors(path)
    texts = " ".join(str(w.message) for w in caught)
    assert path.name in texts and "repaired 1 invalid polygon" in texts
    assert "Self-intersection" in texts
    if extension != ".shp":
        assert "1 point" in texts and "1 line" in texts and "1 empty geometry" in texts
    assert frame.geometry.is_valid.all() and len(frame) == 1
    labels = rasterize_vectors(frame, grid, "value")
    expected = rasterio.features.rasterize(
        [(shapely.make_valid(bowtie_frame().geometry[0]), 3)], out_shape=(20, 20),
        transform=grid.transform,
    )  # fmt: skip
    np.testing.assert_array_equal(labels, expected)
    assert labels[9, 2] == labels[9, 17] == 3, "both triangles burn"
    assert labels[2, 9] == labels[17, 9] == 0, "nothing between them"
    reference = write_raster(tmp_path / "ref.tif", np.zeros((20, 20), np.uint8))
    tiled = rasterize_file(frame, reference, tmp_path / f"t{extension}.tif", "value", strip_rows=6)
    with rasterio.open(tiled) as src:
        np.testing.assert_array_equal(src.read(1), expected)


def test_burning_and_showing_an_unrepaired_frame_repairs_it_too():
    grid = RasterGrid(20, 20, from_origin(500000, 4000000, 10, 10), UTM)
    frame = bowtie_frame().iloc[:1]
    with pytest.warns(VectorWarning, match="repaired 1 invalid polygon"):
        labels = rasterize_vectors(frame, grid, "value")
    assert labels.sum() > 0
    swap = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    polygons, rows = napari_polygons(frame, swap)
    assert len(polygons) == 2 and list(rows) == [0, 0], "the bow-tie shows as its two triangles"


def test_a_file_without_polygons_is_refused_with_what_it_holds(tmp_path):
    path = tmp_path / "points.geojson"
    gpd.GeoDataFrame(geometry=[shapely.Point(0, 0)] * 3, crs=4326).to_file(path)
    with pytest.raises(ValueError, match=r"points\.geojson holds no polygons.*3 points"):
        read_vectors(path)


# --- grids from the header, pixels lazily ------------------------------------------------------

HUGE = 1_000_000


def huge_references(folder: Path) -> list[Path]:
    """A 1e6 x 1e6 VRT without sources and a sparse tiled GTiff of that size (no block written)."""
    vrt = folder / "huge.vrt"
    vrt.write_text(textwrap.dedent(f"""\
        <VRTDataset rasterXSize="{HUGE}" rasterYSize="{HUGE}">
          <SRS>EPSG:32633</SRS>
          <GeoTransform>500000, 10, 0, 4000000, 0, -10</GeoTransform>
          <VRTRasterBand dataType="Byte" band="1"><NoDataValue>0</NoDataValue></VRTRasterBand>
        </VRTDataset>
        """))  # fmt: skip
    sparse = folder / "huge.tif"
    profile = {
        "driver": "GTiff", "height": HUGE, "width": HUGE, "count": 1, "dtype": "uint8",
        "crs": UTM, "transform": from_origin(500000, 4000000, 10, 10), "nodata": 0,
        "tiled": True, "blockxsize": 8192, "blockysize": 8192, "compress": "deflate",
        "SPARSE_OK": "TRUE", "BIGTIFF": "YES",
    }  # fmt: skip
    with rasterio.open(sparse, "w", **profile) as dst:
        dst.write(np.full((4, 4), 3, np.uint8), 1, window=rasterio.windows.Window(0, 0, 4, 4))
    return [vrt, sparse]


def test_a_huge_reference_is_never_read_whole(tmp_path):
    paths = huge_references(tmp_path)
    assert sum(p.stat().st_size for p in paths) < 2_000_000, "sparse inputs stay small"
    vectors = tmp_path / "v.gpkg"
    gpd.GeoDataFrame(geometry=[shapely.box(500000, 3999900, 500100, 4000000)], crs=UTM).to_file(
        vectors
    )
    script = textwrap.dedent(f"""\
        import contextlib, io, json, resource, tracemalloc
        from pathlib import Path
        import numpy as np
        tracemalloc.start()
        from napari_domainseg.cli import main
        from napari_domainseg.geo.label_raster import read_grid, read_label_raster
        from napari_domainseg.geo.scene import open_scene
        result = {{}}
        for path in {[str(p) for p in paths]!r}:
            grid = read_grid(path)
            read = read_label_raster(path)
            corner = np.asarray(read.array[:6, :6])
            scene = open_scene(path)
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(["rasterize", {str(vectors)!r}, "--like", path,
                             "-o", str(Path(path).with_suffix(".out.tif"))])
            result[Path(path).name] = dict(
                shape=[grid.height, grid.width], lazy=not isinstance(read.array, np.ndarray),
                corner=corner.tolist(), levels=len(scene.factors), code=code, err=err.getvalue())
        result["peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    for path in paths:
        entry = result[path.name]
        assert entry["shape"] == [HUGE, HUGE] and entry["lazy"]
        assert entry["levels"] > 10
        assert entry["code"] == 1 and "too large to burn in memory" in entry["err"]
        assert "--tiled" in entry["err"]
    assert result["huge.tif"]["corner"][0][:4] == [3, 3, 3, 3]
    assert result["peak_mb"] < 128, f"peak Python allocation {result['peak_mb']:.0f} MB"
    assert result["rss_mb"] < 1500, f"peak RSS {result['rss_mb']:.0f} MB (a full read is 1 TB)"


def test_read_grid_takes_the_header(shared_data):
    grid = read_grid(shared_data / "geo/landsat_rgb/RGB.byte.tif")
    with rasterio.open(shared_data / "geo/landsat_rgb/RGB.byte.tif") as src:
        assert (grid.height, grid.width, grid.transform) == (src.height, src.width, src.transform)
        assert grid.crs == src.crs and CRS.from_wkt(grid.crs_wkt) == src.crs


# --- rasters georeferenced by ground control points -------------------------------------------


def gcp_geotiff(path: Path) -> Path:
    """A 60x80 GeoTIFF placed only by 4 GCPs (rotated by a few degrees), made with rasterio."""
    angle = np.deg2rad(7)

    def ground(row: float, col: float) -> tuple[float, float]:
        x, y = col * 10.0, -row * 10.0
        return (500000 + x * np.cos(angle) - y * np.sin(angle),
                4000000 + x * np.sin(angle) + y * np.cos(angle))  # fmt: skip

    corners = [(0, 0), (0, 80), (60, 0), (60, 80), (30, 40)]
    gcps = [GroundControlPoint(r, c, *ground(r, c)) for r, c in corners]
    values = (np.arange(60 * 80) % 251 + 1).reshape(60, 80).astype(np.uint8)
    with rasterio.open(path, "w", driver="GTiff", height=60, width=80, count=1, dtype="uint8",
                       gcps=gcps, crs=CRS.from_epsg(32630)) as dst:  # fmt: skip
        dst.write(values, 1)
    return path


def test_a_gcp_only_raster_says_so_and_opens_as_pixels_by_default(tmp_path):
    path = gcp_geotiff(tmp_path / "gcps.tif")
    scene = open_scene(path)
    text = " ".join(scene.warnings)
    assert "ground control points" in text and "5 ground control points" in text
    assert "EPSG:32630" in text and "gcps='warp'" in text
    assert "no coordinate reference system" not in text
    assert scene.crs is None and scene.crs_wkt is None
    assert scene.transform.is_identity and scene.warp is None


def test_a_gcp_only_raster_warps_lazily_like_gdalwarp(tmp_path):
    path = gcp_geotiff(tmp_path / "gcps.tif")
    scene = open_scene(path, gcps="warp")
    assert scene.crs == CRS.from_epsg(32630) == CRS.from_wkt(scene.crs_wkt)
    assert any("warped" in w for w in scene.warnings)
    warped = tmp_path / "gdalwarp.tif"
    subprocess.run(["gdalwarp", "-q", "-r", "near", str(path), str(warped)], check=True)
    with rasterio.open(warped) as oracle:
        assert (scene.height, scene.width) == oracle.shape
        assert scene.transform.almost_equals(oracle.transform, precision=1e-6)
        expected = oracle.read(1)
    level = scene.band_pyramid(0)[0]
    assert level.shape == expected.shape
    agree = np.mean(np.asarray(level) == expected)
    assert agree > 0.99, f"{agree:.4f} of pixels agree with gdalwarp"


def test_gcps_without_a_crs_cannot_be_warped(tmp_path):
    plain = write_raster(tmp_path / "plain.tif", np.ones((10, 10), np.uint8), crs=None)
    path = with_gcps_without_crs(plain, tmp_path / "nocrs.tif")
    with pytest.raises(RasterOpenError, match=r"nocrs\.tif.*without a CRS"):
        open_scene(path, gcps="warp")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "ground control points (without a CRS)" in " ".join(open_scene(path).warnings)
