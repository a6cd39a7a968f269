"""The ``assisted`` column of polygon exports: each polygon's share of assistant-written pixels."""

from __future__ import annotations

import numpy as np
import pyogrio
import pytest
from affine import Affine

from napari_domainseg.geo.assisted_polygons import assisted_share
from napari_domainseg.geo.label_raster import Grid
from napari_domainseg.geo.vectors import export_polygons, polygonize
from napari_domainseg.ops.assist.accept import assisted_mask, pixel_runs

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
    grid = Grid(*labels.shape, TRANSFORM, CRS)
    for name in ("cover.gpkg", "cover.fgb", "cover.geojson"):
        export_polygons(tmp_path / name, labels, grid, assisted=assisted)
        frame = pyogrio.read_dataframe(tmp_path / name)
        assert sorted(frame["assisted"]) == [0.0, 0.5, 1.0]


def test_no_mask_no_column_and_a_mask_on_another_grid_is_refused(tmp_path):
    labels, assisted = scene()
    grid = Grid(*labels.shape, TRANSFORM, CRS)
    export_polygons(tmp_path / "plain.gpkg", labels, grid)
    assert "assisted" not in pyogrio.read_dataframe(tmp_path / "plain.gpkg").columns
    with pytest.raises(ValueError, match="must share a grid"):
        export_polygons(tmp_path / "bad.gpkg", labels, grid, assisted=assisted[:-1])
    assert not (tmp_path / "bad.gpkg").exists()


def test_mask_from_an_export_record():
    labels, assisted = scene()
    runs = pixel_runs(np.nonzero(assisted), labels.shape)
    record = {"shape": list(labels.shape), "accepted": [{"pixels": runs}]}
    np.testing.assert_array_equal(assisted_mask(record, labels.shape), assisted)
    assert assisted_mask({"shape": [3, 3], "accepted": []}, labels.shape) is None
    assert assisted_mask({"accepted": [{"pixels": None}]}, labels.shape) is None
    assert assisted_mask(None, labels.shape) is None
