"""Rasters, label rasters and vectors in the raster's map coordinates (no napari)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.crs import CRS
from rasterio.features import rasterize

from napari_domainseg.atomic import OutputExistsError
from napari_domainseg.geo.grid import RasterGrid
from napari_domainseg.geo.label_raster import read_label_raster, write_label_geotiff
from napari_domainseg.geo.scene import open_scene
from napari_domainseg.geo.vectors import (
    VectorError,
    export_polygons,
    napari_polygons,
    polygonize,
    rasterize_vectors,
    read_vectors,
)
from napari_domainseg.labels import load_preset

GEO = "geo"


def grid_of(path: Path) -> RasterGrid:
    with rasterio.open(path) as src:
        return RasterGrid.of_dataset(src)


def painted(shape: tuple[int, int]) -> np.ndarray:
    rows, cols = np.indices(shape)
    labels = np.zeros(shape, np.uint8)
    labels[(rows - shape[0] // 2) ** 2 + (cols - shape[1] // 3) ** 2 < (min(shape) // 4) ** 2] = 1
    labels[: shape[0] // 5, shape[1] // 2 :] = 3
    labels[shape[0] // 2 - 2 : shape[0] // 2 + 2, shape[1] // 3 - 2 : shape[1] // 3 + 2] = (
        0  # a hole
    )
    labels[-3:, :4] = 7
    return labels


# --- opening scenes -------------------------------------------------------------------------


def test_sentinel2_nodata_comes_from_its_metadata(shared_data):
    scene = open_scene(next((shared_data / GEO / "sentinel2_tci").glob("*.tif")))
    assert scene.nodata == 0 and scene.nodata_source == "metadata"
    assert scene.band_names[0].startswith("B4") and scene.composite() == (0, 1, 2)
    assert scene.factors == [1, 4], "the COG's internal overview is a pyramid level"
    low, high = scene.stretch(0)
    assert 0 < low < high <= 255, "nodata is left out of the stretch"


def test_cog_pyramid_levels_are_its_overviews(shared_data):
    scene = open_scene(shared_data / GEO / "edge_cases/cogeo.tif")
    levels = scene.band_pyramid(0)
    assert [level.shape for level in levels][:3] == [(1024, 1024), (512, 512), (256, 256)]
    with rasterio.open(shared_data / GEO / "edge_cases/cogeo.tif", overview_level=2) as src:
        np.testing.assert_array_equal(np.asarray(levels[3]), src.read(1))


def test_a_scene_without_overviews_gets_decimated_levels(shared_data):
    path = shared_data / GEO / "edge_cases/all-nodata.tif"  # 2475 x 71, no overviews
    scene = open_scene(path)
    assert scene.factors == [1, 2, 4]
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(np.asarray(scene.band_pyramid(3)[0]), src.read(4))
        np.testing.assert_array_equal(np.asarray(scene.band_pyramid(0)[1]), src.read(1)[::2, ::2])


def test_all_nodata_and_nan_nodata_do_not_break_the_stretch(shared_data):
    assert open_scene(shared_data / GEO / "edge_cases/all-nodata.tif").stretch(0) == (0.0, 1.0)
    scene = open_scene(shared_data / GEO / "edge_cases/float_nan.tif")
    assert np.isnan(scene.nodata)
    low, high = scene.stretch(0)
    assert np.isfinite(low) and np.isfinite(high) and low < high


def test_missing_crs_is_reported(shared_data):
    scene = open_scene(shared_data / GEO / "edge_cases/float.tif")
    assert scene.crs_wkt is None
    assert any("no coordinate reference system" in w for w in scene.warnings)


def test_composite_from_colour_interpretation_and_band_names(shared_data):
    assert open_scene(shared_data / GEO / "landsat_rgb/RGB.byte.tif").composite() == (0, 1, 2)
    assert open_scene(shared_data / GEO / "edge_cases/all-nodata.tif").composite() == (2, 1, 0)
    assert open_scene(shared_data / GEO / "edge_cases/byte.tif").composite() is None


def test_true_colour_from_descriptive_band_names(tmp_path):
    from napari_domainseg.geo.synthetic import write_synthetic_scene

    scene = open_scene(write_synthetic_scene(tmp_path / "scene.tif"))
    assert scene.band_names[:3] == ("B2 blue", "B3 green", "B4 red")
    assert scene.composite() == (2, 1, 0)


# --- label GeoTIFF ----------------------------------------------------------------------------


@pytest.mark.parametrize("cog", [False, True], ids=["GeoTIFF", "COG"])
@pytest.mark.parametrize(
    "source", ["landsat_rgb/RGB.byte.tif", "edge_cases/rotated.tif", "edge_cases/float.tif"]
)
def test_label_geotiff_round_trip_keeps_pixels_and_georeferencing(
    shared_data, tmp_path, source, cog
):
    grid = grid_of(shared_data / GEO / source)
    labels = painted((grid.height, grid.width))
    (path,) = write_label_geotiff(
        tmp_path / "labels.tif", labels, grid, load_preset("land_cover"), cog=cog
    )
    back = read_label_raster(path)
    np.testing.assert_array_equal(back.array, labels)
    assert back.grid == grid, "size, transform and CRS"
    assert back.schema.classes[0].name == load_preset("land_cover")[1].name
    with rasterio.open(path) as src, rasterio.open(shared_data / GEO / source) as original:
        assert src.profile["width"] == original.width and src.profile["height"] == original.height
        assert src.nodata == 0 and src.compression.name == "deflate"
        assert src.block_shapes[0] == (512, 512)
        assert src.colormap(1)[1][:3] == tuple(load_preset("land_cover")[1].color[:3])
        assert src.tags(1)["CLASS_1"] == load_preset("land_cover")[1].name


def test_gdalinfo_sees_the_source_crs_and_geotransform(shared_data, tmp_path):
    source = shared_data / GEO / "landsat_rgb/RGB.byte.tif"
    grid = grid_of(source)
    (path,) = write_label_geotiff(tmp_path / "labels.tif", painted((grid.height, grid.width)), grid)
    tool = shutil.which("gdalinfo")
    assert tool, "gdalinfo (Debian gdal-bin) is required; scripts/bootstrap.sh installs it"

    def info(p: Path) -> dict:
        return json.loads(
            subprocess.run([tool, "-json", str(p)], capture_output=True, check=True).stdout
        )

    ours, theirs = info(path), info(source)
    assert ours["geoTransform"] == theirs["geoTransform"]
    assert ours["size"] == theirs["size"]
    assert CRS.from_wkt(ours["coordinateSystem"]["wkt"]) == CRS.from_wkt(
        theirs["coordinateSystem"]["wkt"]
    )
    overviews = ours["bands"][0]["overviews"]
    assert [o["size"] for o in overviews] == [[396, 359], [198, 180]]


def test_overviews_use_a_class_never_an_average(tmp_path):
    labels = np.zeros((1024, 1024), np.uint8)
    labels[::2, ::2] = 1  # a checkerboard of 1 and 0 and ...
    labels[1::2, 1::2] = 3  # ... 3: averaging would invent 1s and 2s
    grid = RasterGrid(
        1024, 1024, rasterio.transform.from_origin(0, 1024, 1, 1), CRS.from_epsg(32633)
    )
    (path,) = write_label_geotiff(tmp_path / "l.tif", labels, grid)
    with rasterio.open(path, overview_level=0) as src:
        assert set(np.unique(src.read(1))) <= {0, 1, 3}


def test_window_labels_export_onto_the_full_grid(shared_data, tmp_path):
    grid = grid_of(shared_data / GEO / "landsat_rgb/RGB.byte.tif")
    window = (100, 200, 50, 60)
    labels = np.full((50, 60), 2, np.uint8)
    (path,) = write_label_geotiff(tmp_path / "w.tif", labels, grid.with_window(window))
    full = read_label_raster(path).array
    assert full.shape == (grid.height, grid.width)
    np.testing.assert_array_equal(np.argwhere(full == 2).min(axis=0), [100, 200])
    assert (full == 2).sum() == 50 * 60
    frame = polygonize(full, grid.transform, grid.crs_wkt)
    (gpkg,) = export_polygons(tmp_path / "w.gpkg", labels, grid.with_window(window))
    exported = gpd.read_file(gpkg).geometry.iloc[0]
    assert exported.symmetric_difference(frame.geometry.iloc[0]).area < 1e-6 * exported.area


def test_existing_files_are_not_replaced(shared_data, tmp_path):
    grid = grid_of(shared_data / GEO / "edge_cases/byte.tif")
    for name in ("l.tif", "l.gpkg", "l.geojson"):
        (tmp_path / name).write_text("keep me")
        with pytest.raises(OutputExistsError):
            if name.endswith(".tif"):
                write_label_geotiff(tmp_path / name, painted((20, 20)), grid)
            else:
                export_polygons(tmp_path / name, painted((20, 20)), grid)
        assert (tmp_path / name).read_text() == "keep me"


# --- polygons -------------------------------------------------------------------------------


def test_gdal_golden_polygon_counts(shared_data):
    with rasterio.open(shared_data / GEO / "polygonize_golden/polygonize_in.grd") as src:
        values, transform, nodata = src.read(1), src.transform, src.nodata
    everything = np.ones_like(values, bool)
    assert len(polygonize(values, transform, mask=values != nodata)) == 13
    assert len(polygonize(values, transform, mask=everything)) == 17
    assert len(polygonize(values, transform, mask=everything, connectivity=8)) == 16
    frame = polygonize(values, transform, mask=values != nodata)
    (holed,) = frame[frame.label == 156].geometry
    assert len(holed.interiors) == 1


@pytest.mark.parametrize("extension", [".geojson", ".gpkg", ".fgb"])
def test_polygons_rasterize_back_to_the_same_labels(shared_data, tmp_path, extension):
    grid = grid_of(shared_data / GEO / "landsat_rgb/RGB.byte.tif")
    labels = painted((grid.height, grid.width))
    (path,) = export_polygons(tmp_path / f"l{extension}", labels, grid, load_preset("land_cover"))
    frame = gpd.read_file(path)
    if extension == ".geojson":
        assert frame.crs.to_epsg() == 4326
        text = path.read_text()
        assert '"crs"' not in text and "FeatureCollection" in text
        coordinate = json.loads(text)["features"][0]["geometry"]["coordinates"][0][0]
        assert all(len(str(v).split(".")[-1]) <= 7 for v in coordinate)
        assert all(shapely.is_ccw(g.exterior) for g in frame.geometry)
    else:
        assert CRS.from_user_input(frame.crs) == CRS.from_wkt(grid.crs_wkt)
    assert set(frame.columns) >= {"label", "name", "area_m2", "geometry"}
    assert frame.geometry.is_valid.all()
    assert (frame.groupby("label").size() > 0).all()
    assert frame.loc[frame.label == 1, "name"].iloc[0] == load_preset("land_cover")[1].name
    np.testing.assert_allclose(
        frame.groupby("label")["area_m2"].sum().to_numpy(),
        [
            np.sum(labels == v) * 300.0379266750948 * 300.041782729805
            for v in sorted(set(labels.ravel()) - {0})
        ],
        rtol=1e-6,
    )
    back = rasterize(
        zip(frame.to_crs(grid.crs_wkt).geometry, frame.label, strict=True),
        out_shape=labels.shape,
        transform=grid.transform,
        dtype="uint8",
    )
    assert int((back != labels).sum()) == 0, "0 mismatched pixels"
    assert any(len(g.interiors) for g in frame.geometry), "the hole is kept"


def test_min_area_and_coverage_simplification(shared_data):
    grid = grid_of(shared_data / GEO / "landsat_rgb/RGB.byte.tif")
    labels = painted((grid.height, grid.width))
    labels[10, 10] = 5  # one pixel, 90,000 m2
    small = polygonize(labels, grid.transform, grid.crs_wkt, min_area=100_000)
    assert 5 not in set(small.label)
    simple = polygonize(labels, grid.transform, grid.crs_wkt, simplify_tolerance=600)
    full = polygonize(labels, grid.transform, grid.crs_wkt)
    assert (
        shapely.get_num_coordinates(simple.geometry).sum()
        < shapely.get_num_coordinates(full.geometry).sum()
    )
    union = shapely.union_all(simple.geometry.values)
    assert union.area == pytest.approx(simple.geometry.area.sum(), rel=1e-9)


def test_wide_label_types_are_accepted_after_a_range_check(shared_data):
    grid = grid_of(shared_data / GEO / "edge_cases/byte.tif")
    labels = painted((20, 20)).astype(np.uint32) * 70_000
    frame = polygonize(labels, grid.transform, grid.crs_wkt)
    assert set(frame.label) == {70_000, 210_000, 490_000}
    with pytest.raises(ValueError, match="do not fit 32-bit"):
        polygonize(np.full((2, 2), 2**40, np.int64), grid.transform)


# --- vector import --------------------------------------------------------------------------


def test_box_covers_exactly_the_pixels_whose_centres_are_inside(shared_data):
    grid = grid_of(shared_data / GEO / "landsat_rgb/RGB.byte.tif")
    frame = read_vectors(shared_data / GEO / "landsat_rgb/box.shp")
    labels = rasterize_vectors(frame, grid)
    rows, cols = np.indices((grid.height, grid.width))
    xs, ys = rasterio.transform.xy(grid.transform, rows.ravel(), cols.ravel())
    inside = shapely.contains_xy(frame.to_crs(grid.crs_wkt).union_all(), xs, ys).reshape(
        labels.shape
    )
    assert inside.sum() > 100
    np.testing.assert_array_equal(labels == 1, inside)


def test_countries_keep_their_holes_through_rasterize_and_polygonize(shared_data, tmp_path):
    countries = read_vectors(shared_data / GEO / "vectors_naturalearth/naturalearth_lowres.shp")
    holed = countries[
        [any(len(p.interiors) for p in getattr(g, "geoms", [g])) for g in countries.geometry]
    ]
    assert len(holed), "the test data has countries with holes"
    grid = RasterGrid(
        1800, 3600, rasterio.transform.from_origin(-180, 90, 0.1, 0.1), CRS.from_epsg(4326)
    )
    countries = countries.assign(code=np.arange(1, len(countries) + 1, dtype=np.int32))
    labels = rasterize_vectors(countries, grid, attribute="code", dtype=np.uint16)
    frame = polygonize(labels, grid.transform, grid.crs_wkt)
    for code in holed.index + 1:
        assert any(len(g.interiors) for g in frame[frame.label == code].geometry), code


def test_vectors_outside_the_raster_or_without_crs_are_refused(shared_data, tmp_path):
    grid = grid_of(shared_data / GEO / "landsat_rgb/RGB.byte.tif")
    countries = read_vectors(shared_data / GEO / "vectors_naturalearth/naturalearth_lowres.shp")
    with pytest.raises(VectorError, match="overlaps the raster"):
        rasterize_vectors(countries[countries.name == "Australia"], grid)
    no_crs = tmp_path / "nocrs.gpkg"
    countries.head(2).set_crs(None, allow_override=True).to_file(no_crs, engine="pyogrio")
    with pytest.raises(VectorError, match="no coordinate reference system"):
        read_vectors(no_crs)


def test_class_names_map_through_the_schema(shared_data):
    grid = grid_of(shared_data / GEO / "landsat_rgb/RGB.byte.tif")
    frame = read_vectors(shared_data / GEO / "landsat_rgb/box.shp").assign(kind="Water")
    labels = rasterize_vectors(frame, grid, attribute="kind", schema=load_preset("land_cover"))
    water = next(c.id for c in load_preset("land_cover").classes if c.name == "water")
    assert set(np.unique(labels)) == {0, water}
    with pytest.raises(VectorError, match="not in schema"):
        rasterize_vectors(
            frame.assign(kind="lava"), grid, attribute="kind", schema=load_preset("land_cover")
        )


def test_napari_polygons_keep_holes_as_closed_rings():
    square = shapely.Polygon(
        [(0, 0), (10, 0), (10, 10), (0, 10)],
        [[(2, 2), (4, 2), (4, 4), (2, 4)], [(6, 6), (8, 6), (8, 8)]],
    )
    frame = gpd.GeoDataFrame(geometry=[square])
    swap = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    (vertices,), rows = napari_polygons(frame, swap)
    assert list(rows) == [0]
    # exterior (5 closed) + hole 1 (5) + back to anchor (1) + hole 2 (4) + anchor (1)
    assert len(vertices) == 16
    np.testing.assert_array_equal(
        vertices[0], vertices[5 + 5]
    )  # the anchor is the exterior's start


def test_opening_a_big_scene_never_reads_it_at_full_resolution(tmp_path, monkeypatch):
    """Open a 6000x6000 scene without overviews; every pixel read must be decimated or windowed."""
    path = tmp_path / "big.tif"
    profile = {
        "driver": "GTiff", "height": 6000, "width": 6000, "count": 3, "dtype": "uint16",
        "crs": "EPSG:32633", "transform": rasterio.transform.from_origin(500000, 4000000, 10, 10),
        "tiled": True, "blockxsize": 512, "blockysize": 512,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(
            np.full((3, 512, 6000), 1000, np.uint16),
            window=rasterio.windows.Window(0, 0, 6000, 512),
        )
    reads: list[int] = []
    original = rasterio.io.DatasetReader.read

    def counting_read(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        reads.append(int(np.prod(result.shape[-2:])))
        return result

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", counting_read)
    scene = open_scene(path)
    composite = scene.composite()
    stretches = [scene.stretch(band) for band in composite]
    first_view = [np.asarray(scene.band_pyramid(band)[-1]) for band in composite]
    assert stretches and all(view.shape[0] <= 1024 for view in first_view)
    assert reads and max(reads) <= 1024 * 1024, "no read larger than a screen"
    assert sum(reads) < 0.05 * 6000 * 6000 * 3


def test_attribute_values_that_do_not_fit_are_refused(shared_data):
    grid = grid_of(shared_data / GEO / "landsat_rgb/RGB.byte.tif")
    frame = read_vectors(shared_data / GEO / "landsat_rgb/box.shp").assign(code=300)
    with pytest.raises(VectorError, match="do not fit uint8"):
        rasterize_vectors(frame, grid, attribute="code")
    assert rasterize_vectors(frame, grid, attribute="code", dtype=np.uint16).max() == 300


def test_geojson_properties_stay_valid_json(shared_data, tmp_path):
    from napari_domainseg.geo.vectors import write_frame

    frame = read_vectors(shared_data / GEO / "landsat_rgb/box.shp")
    frame = frame.assign(area_m2=float("nan"), note="x", when=np.datetime64("2026-01-02"))
    (path,) = write_frame(tmp_path / "p.geojson", frame)
    feature = json.loads(path.read_text())["features"][0]
    assert feature["properties"]["area_m2"] is None and feature["properties"]["note"] == "x"
