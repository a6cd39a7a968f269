"""The geo export façade (``geo.export.export_labels``) and the one atomic GeoTIFF writer."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
from affine import Affine
from rasterio.features import rasterize

from napari_domainseg.atomic import OutputExistsError
from napari_domainseg.cli import main
from napari_domainseg.geo import label_raster, vectors
from napari_domainseg.geo.export import LABEL_EXTENSIONS, export_labels
from napari_domainseg.geo.grid import RasterGrid
from napari_domainseg.geo.label_raster import SCHEMA_TAG
from napari_domainseg.labels import load_preset

LANDSAT = "geo/landsat_rgb/RGB.byte.tif"
WINDOW = (100, 200, 50, 60)  # row, col, height, width


def landsat_grid(shared_data: Path) -> RasterGrid:
    with rasterio.open(shared_data / LANDSAT) as src:
        return RasterGrid.of_dataset(src)


def window_grid(shared_data: Path) -> RasterGrid:
    """The Landsat grid with the labels of :func:`window_labels` on its window :data:`WINDOW`."""
    return landsat_grid(shared_data).with_window(WINDOW)


def window_labels() -> np.ndarray:
    labels = np.zeros(WINDOW[2:], np.uint8)
    labels[5:20, 10:30] = 1
    labels[30:45, 40:55] = 3
    labels[0, 0] = 7  # the window's corner pixel
    return labels


def on_full_grid(labels: np.ndarray, grid: RasterGrid) -> np.ndarray:
    full = np.zeros((grid.height, grid.width), labels.dtype)
    row, col, height, width = WINDOW
    full[row : row + height, col : col + width] = labels
    return full


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(
    ("name", "cog"),
    [("l.tif", None), ("l.tiff", None), ("l.tif", True), ("l.geojson", None), ("l.gpkg", None),
     ("l.fgb", None)],
)  # fmt: skip
def test_each_extension_reads_back_at_the_same_pixels(shared_data, tmp_path, name, cog):
    grid = window_grid(shared_data)
    labels = window_labels()
    expected = on_full_grid(labels, grid)
    (path,) = export_labels(tmp_path / name, labels, grid, load_preset("land_cover"), cog=cog)
    assert path == tmp_path / name and leftovers(tmp_path) == [name]
    if path.suffix in (".tif", ".tiff"):
        with rasterio.open(path) as src:
            assert (src.height, src.width) == (grid.height, grid.width)
            assert src.transform == grid.transform and src.crs.to_epsg() == 32618
            assert SCHEMA_TAG in src.tags()
            layout = src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT")
            assert (layout == "COG") == bool(cog)
            np.testing.assert_array_equal(src.read(1), expected)
        return
    info = pyogrio.read_info(path)
    assert info["features"] == 3
    frame = gpd.read_file(path).to_crs(grid.crs)
    assert sorted(frame["label"]) == [1, 3, 7]
    burnt = rasterize(
        zip(frame.geometry, frame["label"], strict=True), out_shape=(grid.height, grid.width),
        transform=grid.transform, dtype="uint8",
    )  # fmt: skip
    np.testing.assert_array_equal(burnt, expected)


@pytest.mark.parametrize(
    "name", ["edge_cases/rotated.tif", "edge_cases/float.tif", LANDSAT.removeprefix("geo/")]
)
def test_window_transform_is_the_affine_composition_bit_for_bit(shared_data, name):
    with rasterio.open(shared_data / "geo" / name) as src:
        grid = RasterGrid.of_dataset(src)
    inner = (min(3, grid.height - 1), min(7, grid.width - 1), 1, 1)  # float.tif is 2 x 3
    for window in [(0, 0, 1, 1), inner, (grid.height - 1, grid.width - 1, 1, 1)]:
        composed = grid.transform * Affine.translation(window[1], window[0])
        assert tuple(grid.with_window(window).array_transform) == tuple(composed)


def test_unknown_extension_and_cog_polygons_are_refused(shared_data, tmp_path):
    grid = window_grid(shared_data)
    with pytest.raises(ValueError, match=r"l\.png: unknown extension.*\.tif.*\.gpkg"):
        export_labels(tmp_path / "l.png", window_labels(), grid)
    with pytest.raises(ValueError, match="Cloud-Optimized GeoTIFF is a raster"):
        export_labels(tmp_path / "l.gpkg", window_labels(), grid, cog=True)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("name", sorted(LABEL_EXTENSIONS))
def test_no_overwrite_without_overwrite(shared_data, tmp_path, name):
    grid = window_grid(shared_data)
    path = tmp_path / f"l{name}"
    path.write_text("keep me")
    with pytest.raises(OutputExistsError):
        export_labels(path, window_labels(), grid)
    assert path.read_text() == "keep me"
    export_labels(path, window_labels(), grid, overwrite=True)
    assert path.read_bytes() != b"keep me" and leftovers(tmp_path) == [path.name]


def _fail(*args, **kwargs):
    raise RuntimeError("forced failure half-way through")


def _partial_geojson(path, frame):
    Path(path).write_text('{"type":"FeatureCollection","features":[')
    raise RuntimeError("forced failure half-way through")


@pytest.mark.parametrize(
    ("name", "cog", "target", "replacement"),
    [
        ("l.tif", None, (label_raster, "describe_labels"), _fail),  # after the pixels
        ("l.tif", True, (label_raster.rasterio.shutil, "copy"), _fail),  # the COG copy
        ("l.geojson", None, (vectors, "write_rfc7946"), _partial_geojson),
        ("l.gpkg", None, (gpd.GeoDataFrame, "to_file"), _fail),
    ],
)
def test_a_failure_half_way_leaves_no_partial_file(
    shared_data, tmp_path, monkeypatch, name, cog, target, replacement
):
    grid = window_grid(shared_data)
    monkeypatch.setattr(*target, replacement)
    with pytest.raises(RuntimeError, match="forced"):
        export_labels(tmp_path / name, window_labels(), grid, cog=cog)
    assert leftovers(tmp_path) == []
    (tmp_path / name).write_text("keep me")  # a failed overwrite keeps the old file
    with pytest.raises(RuntimeError, match="forced"):
        export_labels(tmp_path / name, window_labels(), grid, cog=cog, overwrite=True)
    assert leftovers(tmp_path) == [name] and (tmp_path / name).read_text() == "keep me"


def test_bad_labels_write_nothing(shared_data, tmp_path):
    grid = window_grid(shared_data)
    for name in ("l.tif", "l.gpkg"):
        with pytest.raises(ValueError):
            export_labels(tmp_path / name, -window_labels().astype(np.int16), grid)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("name", sorted(LABEL_EXTENSIONS))
def test_labels_not_of_the_grids_window_are_refused(shared_data, tmp_path, name):
    """The window is the grid's: labels of the whole grid on a windowed grid are refused."""
    whole = on_full_grid(window_labels(), landsat_grid(shared_data))
    with pytest.raises(ValueError, match=r"do not match the grid \(\(50, 60\)\)"):
        export_labels(tmp_path / f"l{name}", whole, window_grid(shared_data))
    assert leftovers(tmp_path) == []


def run(capsys, *arguments: object) -> tuple[int, str, str]:
    code = main([str(a) for a in arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _chips(capsys, shared_data, tmp_path, *extra):
    labels = np.zeros((718, 791), np.uint8)
    labels[0:300, 0:300] = 1
    labels[300:500, 300:700] = 2
    export_labels(tmp_path / "l.tif", labels, landsat_grid(shared_data))
    return labels, run(
        capsys, "chips", shared_data / LANDSAT, tmp_path / "l.tif", "-o", tmp_path / "chips",
        "--size", "128", "--min-labelled", "0.01", *extra,
    )  # fmt: skip


def test_raster_chips_go_through_the_shared_writer(capsys, shared_data, tmp_path):
    labels, (code, _, err) = _chips(capsys, shared_data, tmp_path, "--json")
    assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "chips" / "manifest.csv")))
    assert len(rows) > 3
    with rasterio.open(shared_data / LANDSAT) as source:
        for entry in rows[:3]:
            row, col, size = int(entry["row"]), int(entry["col"]), int(entry["size"])
            window = rasterio.windows.Window(col, row, size, size)
            with rasterio.open(tmp_path / "chips" / entry["image"]) as chip:
                assert chip.transform == source.window_transform(window)
                assert chip.crs == source.crs and chip.nodata == source.nodata == 0
                assert chip.compression.name == "deflate" and chip.dtypes == source.dtypes
                np.testing.assert_array_equal(chip.read(), source.read(window=window))
            with rasterio.open(tmp_path / "chips" / entry["mask"]) as mask:
                assert mask.transform == source.window_transform(window)
                assert json.loads(mask.tags()[SCHEMA_TAG])["classes"]
                np.testing.assert_array_equal(
                    mask.read(1), labels[row : row + size, col : col + size]
                )


def test_a_chips_export_that_fails_half_way_leaves_nothing(
    capsys, shared_data, tmp_path, monkeypatch
):
    real = label_raster.describe_labels
    calls = []

    def fail_on_third_mask(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # the labels, two masks, then the third mask
            raise RuntimeError("forced failure half-way through")
        real(*args, **kwargs)

    monkeypatch.setattr(label_raster, "describe_labels", fail_on_third_mask)
    (tmp_path / "chips").mkdir()
    _, (code, _, err) = _chips(capsys, shared_data, tmp_path)
    assert code != 0 and "forced failure" in err, err
    assert len(calls) == 4, "two chips were complete before the failure"
    assert leftovers(tmp_path / "chips") == []
