"""The ``assisted`` column of polygon exports: each polygon's share of assistant-written pixels."""

from __future__ import annotations

import json

import numpy as np
import pyogrio
import pytest
import rasterio
from affine import Affine
from scipy import ndimage

from napari_domainseg.geo.assisted_polygons import assisted_share
from napari_domainseg.geo.grid import RasterGrid
from napari_domainseg.geo.label_raster import ASSIST_TAG, write_label_geotiff
from napari_domainseg.geo.vectors import export_polygons, polygonize
from napari_domainseg.ops.assist.accept import (
    acceptance_record,
    assisted_mask,
    export_record,
    pixel_runs,
    runs_to_flat,
)

TRANSFORM = Affine(30.0, 0.0, 500_000.0, 0.0, -30.0, 4_000_000.0)
CRS = "EPSG:32617"


def scene() -> tuple[np.ndarray, np.ndarray]:
    """Two classes, three regions (one with a hole), and a mask of assisted pixels."""
    labels = np.zeros((12, 14), np.uint8)
    labels[1:6, 1:6] = 1  # region A, 25 px
    labels[3, 3] = 0  # a hole in A
    labels[7:11, 2:12] = 2  # region B, 40 px
    labels[1:4, 9:13] = 1  # region C, 12 px, same class as A
    assisted = np.zeros_like(labels, bool)
    assisted[7:11, 2:7] = True  # half of B
    assisted[1:4, 9:13] = True  # all of C
    assisted[0, 0] = True  # an unlabeled pixel: counted nowhere
    return labels, assisted


def test_share_per_polygon_including_one_with_a_hole():
    labels, assisted = scene()
    frame = polygonize(labels, TRANSFORM, CRS)
    share = assisted_share(frame, labels, assisted, TRANSFORM)
    by_area = dict(zip(np.rint(frame.area / 900).astype(int), share, strict=True))
    assert by_area == {24: 0.0, 40: 0.5, 12: 1.0}


def test_export_writes_the_column_readable_by_gdal(tmp_path):
    labels, assisted = scene()
    grid = RasterGrid(*labels.shape, TRANSFORM, CRS)
    for name in ("cover.gpkg", "cover.fgb", "cover.geojson"):
        export_polygons(tmp_path / name, labels, grid, assisted=assisted)
        frame = pyogrio.read_dataframe(tmp_path / name)
        assert sorted(frame["assisted"]) == [0.0, 0.5, 1.0]


def test_no_mask_no_column_and_a_mask_on_another_grid_is_refused(tmp_path):
    labels, assisted = scene()
    grid = RasterGrid(*labels.shape, TRANSFORM, CRS)
    export_polygons(tmp_path / "plain.gpkg", labels, grid)
    assert "assisted" not in pyogrio.read_dataframe(tmp_path / "plain.gpkg").columns
    with pytest.raises(ValueError, match="must share a grid"):
        export_polygons(tmp_path / "bad.gpkg", labels, grid, assisted=assisted[:-1])
    assert not (tmp_path / "bad.gpkg").exists()


def test_mask_from_an_export_record():
    labels, assisted = scene()
    runs = pixel_runs(np.nonzero(assisted), labels.shape)  # the older form: no classes
    record = {"shape": list(labels.shape), "accepted": [{"pixels": runs}]}
    np.testing.assert_array_equal(assisted_mask(record, labels), assisted & (labels != 0))
    assert assisted_mask({"shape": [3, 3], "accepted": []}, labels) is None
    assert assisted_mask({"accepted": [{"pixels": None}]}, labels) is None
    assert assisted_mask(None, labels) is None


def test_pixels_repainted_with_another_class_no_longer_count():
    labels, assisted = scene()
    edits = [(np.nonzero(assisted & (labels == c)), c) for c in (1, 2)]
    accepted = {"accepted": [acceptance_record({"id": "test"}, edits, labels)]}
    record = export_record(accepted, labels)
    np.testing.assert_array_equal(assisted_mask(record, labels), assisted & (labels != 0))
    repainted = labels.copy()
    repainted[7:11, 2:4] = 1  # 8 accepted pixels of B painted as class 1 by hand
    mask = assisted_mask(record, repainted)
    assert not mask[7:11, 2:4].any() and mask[7:11, 4:7].all() and mask[1:4, 9:13].all()
    frame = polygonize(repainted, TRANSFORM, CRS)
    share = assisted_share(frame, repainted, mask, TRANSFORM)
    by_area = dict(zip(np.rint(frame.area / 900).astype(int), share, strict=True))
    assert by_area == {24: 0.0, 32: 0.375, 8: 0.0, 12: 1.0}


def noisy_cover(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random classes (hundreds of regions, many touching) and a random assisted mask."""
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.random((160, 190)), 2.5)
    labels = np.digitize(noise, np.quantile(noise, [0.2, 0.4, 0.6, 0.8])).astype(np.uint8)
    return labels, rng.random(labels.shape) < 0.3


def expected_shares(labels: np.ndarray, assisted: np.ndarray, frame, connectivity: int):
    """Each polygon's share, by burning it back onto the grid (pixel centres)."""
    from rasterio.features import rasterize

    out = []
    for geometry in frame.geometry:
        inside = rasterize([geometry], labels.shape, transform=TRANSFORM).astype(bool)
        out.append(round(assisted[inside].sum() / inside.sum(), 4))
    return np.array(out)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_every_polygon_matches_its_own_region_exactly(connectivity):
    labels, assisted = noisy_cover()
    frame = polygonize(labels, TRANSFORM, CRS, connectivity=connectivity)
    assert len(frame) > 100
    share = assisted_share(frame, labels, assisted, TRANSFORM, connectivity)
    np.testing.assert_array_equal(share, expected_shares(labels, assisted, frame, connectivity))


def test_a_simplified_export_keeps_each_polygons_share(tmp_path):
    labels, assisted = noisy_cover()
    exact = assisted_share(polygonize(labels, TRANSFORM, CRS), labels, assisted, TRANSFORM)
    simplified = polygonize(labels, TRANSFORM, CRS, simplify_tolerance=45.0)
    share = assisted_share(simplified, labels, assisted, TRANSFORM)
    np.testing.assert_array_equal(share, exact), "rows, not vertices, carry the match"
    grid = RasterGrid(*labels.shape, TRANSFORM, CRS)
    export_polygons(
        tmp_path / "simple.gpkg", labels, grid, simplify_tolerance=45.0, assisted=assisted
    )
    frame = pyogrio.read_dataframe(tmp_path / "simple.gpkg")
    np.testing.assert_array_equal(frame["assisted"].to_numpy(), exact)
    # rows left out (min_area): the rest matched by geometry, still exact
    kept = polygonize(labels, TRANSFORM, CRS, min_area=900 * 20)
    assert 0 < len(kept) < len(exact)
    share = assisted_share(kept, labels, assisted, TRANSFORM)
    np.testing.assert_array_equal(share, expected_shares(labels, assisted, kept, 4))


def test_windowed_geotiff_tag_says_where_its_pixels_are(tmp_path):
    labels, assisted = scene()
    edits = [(np.nonzero(assisted & (labels == c)), c) for c in (1, 2)]
    record = export_record({"accepted": [acceptance_record({"id": "t"}, edits, labels)]}, labels)
    grid = RasterGrid(40, 50, TRANSFORM, CRS)
    window = (10, 20, *labels.shape)
    write_label_geotiff(tmp_path / "part.tif", labels, grid.with_window(window), assist=record)
    with rasterio.open(tmp_path / "part.tif") as src:
        tag = json.loads(src.tags()[ASSIST_TAG])
        full = src.read(1)
    assert "window" not in record, "the caller's record is left alone"
    row, col, height, width = tag["window"]
    assert (row, col, height, width) == window and tag["shape"] == list(labels.shape)
    flat = runs_to_flat(tag["accepted"][0]["pixels"])
    rows, cols = np.unravel_index(flat, (height, width))
    np.testing.assert_array_equal(full[rows + row, cols + col], labels[rows, cols])
    assert (full[rows + row, cols + col] != 0).all()
    write_label_geotiff(tmp_path / "whole.tif", np.pad(labels, ((10, 18), (20, 16))), grid,
                        assist=record)  # fmt: skip
    with rasterio.open(tmp_path / "whole.tif") as src:
        assert "window" not in json.loads(src.tags()[ASSIST_TAG])
