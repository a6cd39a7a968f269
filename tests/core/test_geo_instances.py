"""Instance exports on a real grid: one feature per instance, a class band and an instance band.

Round trips through the core writers and readers, the command line, and the peers GDAL ships
(``ogrinfo``, ``gdalinfo``); the polygons of an instance map are checked to be a coverage
with shapely (no gaps, no overlaps, shared edges identical).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely

from napari_domainseg.cli import main
from napari_domainseg.formats import read as read_any
from napari_domainseg.geo.export import export_labels
from napari_domainseg.geo.grid import RasterGrid
from napari_domainseg.geo.instance_polygons import (
    instance_table_of,
    polygonize_instances,
    read_instance_vectors,
)
from napari_domainseg.geo.label_raster import (
    INSTANCES_TAG,
    SCHEMA_TAG,
    InstanceWarning,
    read_label_raster,
)
from napari_domainseg.geo.vectors import read_vectors
from napari_domainseg.labels.instances import Instance, InstanceTable, semantic_map
from napari_domainseg.labels.schema import AttributeSpec, LabelClass, LabelSchema

LANDSAT = "geo/landsat_rgb/RGB.byte.tif"
POLYGONS = (".gpkg", ".fgb", ".geojson")
needs_gdal = pytest.mark.skipif(
    shutil.which("ogrinfo") is None or shutil.which("gdalinfo") is None,
    reason="GDAL command-line tools not installed",
)


def landsat_grid(shared_data: Path) -> RasterGrid:
    with rasterio.open(shared_data / LANDSAT) as src:
        return RasterGrid.of_dataset(src)


def schema() -> LabelSchema:
    specs = (AttributeSpec("occluded", "bool"), AttributeSpec("confidence", "float"))
    return LabelSchema(
        "city",
        (
            LabelClass(1, "built-up", (200, 0, 0, 255)),
            LabelClass(2, "building", (255, 0, 0, 255), parent=1, kind="objects", attributes=specs),
            LabelClass(3, "water", (0, 0, 255, 255)),
        ),
    )


def touching(grid: RasterGrid) -> tuple[np.ndarray, InstanceTable]:
    """Two touching buildings (one with a hole), a two-part building, a water body beside."""
    instance_map = np.zeros(grid.array_shape, np.uint16)
    instance_map[100:140, 200:240] = 1
    instance_map[110:120, 210:220] = 0  # a hole
    instance_map[100:140, 240:280] = 2  # shares the column-240 edge with instance 1
    instance_map[150:160, 200:210] = 3
    instance_map[150:160, 230:240] = 3  # second part of instance 3
    instance_map[140:150, 240:280] = 7  # water, touching instance 2 below
    table = InstanceTable(
        (
            Instance(1, 2, {"occluded": True, "confidence": 0.75}, "manual"),
            Instance(2, 2, {"occluded": False}, "assisted"),
            Instance(3, 2, {}, "imported"),
            Instance(7, 3, {}, "manual"),
        )
    )
    return instance_map, table


def blocks(grid: RasterGrid, count: int, size: int) -> tuple[np.ndarray, InstanceTable]:
    """``count`` touching square instances of ``size`` pixels, all of class 2, row by row."""
    instance_map = np.zeros(grid.array_shape, np.uint32)
    per_row = 600 // size
    for number in range(count):
        row, col = divmod(number, per_row)
        top, left = 20 + row * size, 20 + col * size
        instance_map[top : top + size, left : left + size] = number + 1
    table = InstanceTable(tuple(Instance(i, 2) for i in range(1, count + 1)))
    return instance_map, table


def assert_coverage(geometries: np.ndarray, instance_map: np.ndarray, grid: RasterGrid) -> None:
    """No overlaps, shared edges identical, and the union's area is the painted pixels'."""
    pixel_area = abs(grid.transform.determinant)
    painted = float(np.count_nonzero(instance_map)) * pixel_area
    assert bool(shapely.coverage_is_valid(geometries))
    union = shapely.coverage_union_all(geometries)
    assert union.area == pytest.approx(painted, rel=1e-12)
    assert float(np.sum(shapely.area(geometries))) == pytest.approx(painted, rel=1e-12)


def ogr_summary(path: Path) -> str:
    return subprocess.run(
        ["ogrinfo", "-ro", "-al", "-so", str(path)], capture_output=True, text=True, check=True
    ).stdout


def gdal_info(path: Path) -> dict:
    out = subprocess.run(
        ["gdalinfo", "-json", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)


# ---------------------------------------------------------------------- polygons


def test_polygonize_instances_keeps_touching_instances_apart(shared_data: Path) -> None:
    grid = landsat_grid(shared_data)
    instance_map, table = touching(grid)
    frame = polygonize_instances(instance_map, table, grid.transform, grid.crs, schema())
    assert frame["instance_id"].tolist() == [1, 2, 3, 7]
    assert frame["class_id"].tolist() == [2, 2, 2, 3]
    assert frame["class_path"].tolist() == ["built-up/building"] * 3 + ["water"]
    assert frame["name"].tolist() == ["building"] * 3 + ["water"]
    assert frame["provenance"].tolist() == ["manual", "assisted", "imported", "manual"]
    assert frame.geom_type.tolist() == ["Polygon", "Polygon", "MultiPolygon", "Polygon"]
    assert len(frame.geometry[0].interiors) == 1  # the hole kept
    assert_coverage(frame.geometry.values, instance_map, grid)
    # the shared edge: the same line in both, and no area in common
    shared = frame.geometry[0].intersection(frame.geometry[1])
    assert shared.area == 0 and shared.length == pytest.approx(40 * abs(grid.transform.e))
    # a class polygonize would have merged 1 and 2 into one building
    classes = polygonize_instances(
        semantic_map(instance_map, table), InstanceTable((Instance(2, 2), Instance(3, 3))),
        grid.transform, grid.crs,
    )  # fmt: skip
    assert len(classes) == 2


@needs_gdal
@pytest.mark.parametrize("suffix", POLYGONS)
def test_instance_polygons_round_trip(shared_data: Path, tmp_path: Path, suffix: str) -> None:
    grid = landsat_grid(shared_data)
    instance_map, table = touching(grid)
    path = tmp_path / f"buildings{suffix}"
    assert export_labels(path, instance_map, grid, schema(), instances=table) == [path]

    summary = ogr_summary(path)
    assert "Feature Count: 4" in summary
    for field in ("instance_id", "class_id", "class_path", "name", "occluded", "confidence"):
        assert f"{field}:" in summary
    assert "provenance:" in summary

    frame = read_vectors(path)
    assert sorted(frame["instance_id"]) == [1, 2, 3, 7]  # one feature per instance
    if suffix != ".geojson":  # GeoJSON is lon/lat; the coverage is checked in the raster's CRS
        assert_coverage(frame.geometry.values, instance_map, grid)
    back, restored = read_instance_vectors(path, grid, schema())
    np.testing.assert_array_equal(back, instance_map)
    assert back.dtype == np.uint16
    assert restored == table
    assert restored[1].attributes == {"occluded": True, "confidence": 0.75}
    assert isinstance(restored[2].attributes["occluded"], bool)


def test_untabled_ids_are_exported_and_named(shared_data: Path, tmp_path: Path) -> None:
    grid = landsat_grid(shared_data)
    instance_map, table = touching(grid)
    instance_map[300:305, 300:305] = 42  # painted, not in the table
    path = tmp_path / "b.gpkg"
    with pytest.warns(InstanceWarning, match=r"instance ids 42 .*repair"):
        export_labels(path, instance_map, grid, schema(), instances=table)
    frame = read_vectors(path)
    assert 42 in frame["instance_id"].tolist()  # never dropped
    assert frame.loc[frame["instance_id"] == 42, "class_id"].item() == 0
    with pytest.warns(InstanceWarning, match=r"instance ids 42 "):
        back, restored = read_instance_vectors(path, grid, schema())
    np.testing.assert_array_equal(back, instance_map)
    assert 42 not in restored and restored == table


def test_not_an_instance_export_is_refused(shared_data: Path, tmp_path: Path) -> None:
    grid = landsat_grid(shared_data)
    labels = np.zeros(grid.shape, np.uint8)
    labels[10:20, 10:20] = 1
    path = tmp_path / "classes.gpkg"
    export_labels(path, labels, grid)
    with pytest.raises(ValueError, match=r"no instance_id .*not an instance export"):
        instance_table_of(read_vectors(path))


# ---------------------------------------------------------------------- GeoTIFF


@needs_gdal
def test_instance_geotiff_two_bands_round_trip(shared_data: Path, tmp_path: Path) -> None:
    grid = landsat_grid(shared_data)
    instance_map, table = touching(grid)
    path = tmp_path / "buildings.tif"
    export_labels(path, instance_map, grid, schema(), instances=table)

    info = gdal_info(path)
    assert len(info["bands"]) == 2
    assert [b["description"] for b in info["bands"]] == ["class", "instance"]
    assert {b["type"] for b in info["bands"]} == {"UInt16"}
    assert "colorTable" in info["bands"][0] and "colorTable" not in info["bands"][1]
    tags = info["metadata"][""]
    assert json.loads(tags[INSTANCES_TAG]) == table.to_records()
    assert json.loads(tags[SCHEMA_TAG])["classes"][1]["parent"] == 1
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(1), semantic_map(instance_map, table))
        np.testing.assert_array_equal(src.read(2), instance_map)
        assert src.crs == grid.crs and src.transform == grid.transform

    read = read_label_raster(path)
    np.testing.assert_array_equal(read.array, instance_map)
    assert read.kind == "labels" and read.warnings == []
    assert InstanceTable.from_records(read.metadata["instances"]) == table
    assert read.schema.path(2) == "built-up/building"
    for in_memory in (True, False):  # the format registry: command line and napari reader
        (via,) = read_any(path, in_memory=in_memory)
        np.testing.assert_array_equal(np.asarray(via.array), instance_map)
        assert via.metadata["instances"] == table.to_records()


def test_instance_geotiff_on_a_window_and_as_cog(shared_data: Path, tmp_path: Path) -> None:
    grid = landsat_grid(shared_data).with_window((100, 200, 60, 90))
    instance_map, table = touching(landsat_grid(shared_data))
    window = instance_map[100:160, 200:290]
    path = tmp_path / "w.tif"
    export_labels(path, window, grid, schema(), instances=table, cog=True)
    read = read_label_raster(path)
    np.testing.assert_array_equal(read.array, instance_map)  # the full grid, placed
    assert InstanceTable.from_records(read.metadata["instances"]) == table


def test_untabled_ids_in_a_geotiff_are_kept_and_named(shared_data: Path, tmp_path: Path) -> None:
    grid = landsat_grid(shared_data)
    instance_map, table = touching(grid)
    path = tmp_path / "b.tif"
    with pytest.warns(InstanceWarning, match="instance ids 7 "):
        export_labels(path, instance_map, grid, schema(), instances=table.without([7]))
    read = read_label_raster(path)
    np.testing.assert_array_equal(read.array, instance_map)
    assert len(read.warnings) == 1 and "instance ids 7 " in read.warnings[0]
    assert "repair" in read.warnings[0]


@needs_gdal
def test_more_than_255_instances_uint16(shared_data: Path, tmp_path: Path) -> None:
    grid = landsat_grid(shared_data)
    instance_map, table = blocks(grid, 300, 6)
    export_labels(tmp_path / "m.tif", instance_map, grid, schema(), instances=table)
    info = gdal_info(tmp_path / "m.tif")
    assert {b["type"] for b in info["bands"]} == {"UInt16"}
    back = read_label_raster(tmp_path / "m.tif")
    np.testing.assert_array_equal(back.array, instance_map)
    assert back.array.dtype == np.uint16

    export_labels(tmp_path / "m.gpkg", instance_map, grid, schema(), instances=table)
    assert "Feature Count: 300" in ogr_summary(tmp_path / "m.gpkg")
    frame = read_vectors(tmp_path / "m.gpkg")
    assert_coverage(frame.geometry.values, instance_map, grid)
    back_map, restored = read_instance_vectors(tmp_path / "m.gpkg", grid, schema())
    np.testing.assert_array_equal(back_map, instance_map)
    assert restored == table


@needs_gdal
def test_more_than_65535_instances_uint32(shared_data: Path, tmp_path: Path) -> None:
    grid = landsat_grid(shared_data)
    count = 70_000
    instance_map = np.zeros(grid.shape, np.uint32)
    instance_map[:100, :700].flat[:count] = np.arange(1, count + 1)  # 1-pixel instances
    table = InstanceTable(tuple(Instance(i, 2 if i % 2 else 3) for i in range(1, count + 1)))
    tif = tmp_path / "many.tif"
    export_labels(tif, instance_map, grid, schema(), instances=table)
    info = gdal_info(tif)
    assert [b["type"] for b in info["bands"]] == ["UInt32", "UInt32"]
    assert len(json.loads(info["metadata"][""][INSTANCES_TAG])) == count
    read = read_label_raster(tif)
    np.testing.assert_array_equal(read.array, instance_map)
    assert len(read.metadata["instances"]) == count

    out = tmp_path / "many.fgb"
    assert main(["polygonize", str(tif), "-o", str(out), "--instances"]) == 0
    assert f"Feature Count: {count}" in ogr_summary(out)
    back, restored = read_instance_vectors(out, grid, schema())
    assert back.dtype == np.uint32
    np.testing.assert_array_equal(back, instance_map)
    assert restored == table.__class__(
        tuple(Instance(i.id, i.class_id, {}, i.provenance) for i in table)
    )


# ---------------------------------------------------------------------- command line


@needs_gdal
def test_cli_polygonize_instances(shared_data: Path, tmp_path: Path, capsys) -> None:
    grid = landsat_grid(shared_data)
    instance_map, table = touching(grid)
    tif = tmp_path / "buildings.tif"
    export_labels(tif, instance_map, grid, schema(), instances=table)
    out = tmp_path / "buildings.gpkg"
    capsys.readouterr()
    assert main(["polygonize", str(tif), "-o", str(out), "--instances", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["features"] == 4
    summary = ogr_summary(out)
    assert "Feature Count: 4" in summary and "class_path:" in summary
    back, restored = read_instance_vectors(out, grid, schema())
    np.testing.assert_array_equal(back, instance_map)
    assert restored == table
    # without --instances the same file gives class regions: buildings 1 and 2 merge, the
    # two parts of building 3 are two regions, and the water one
    classes = tmp_path / "classes.gpkg"
    assert main(["polygonize", str(tif), "-o", str(classes)]) == 0
    frame = read_vectors(classes)
    assert sorted(frame["name"]) == ["building"] * 3 + ["water"]
    assert sorted(frame["label"]) == [2, 2, 2, 3]


def test_cli_polygonize_instances_needs_an_instance_raster(
    shared_data: Path, tmp_path: Path, capsys
) -> None:
    grid = landsat_grid(shared_data)
    labels = np.zeros(grid.shape, np.uint8)
    labels[10:20, 10:20] = 1
    tif = tmp_path / "classes.tif"
    export_labels(tif, labels, grid)
    assert main(["polygonize", str(tif), "-o", str(tmp_path / "o.gpkg"), "--instances"]) != 0
    assert "no instance band" in capsys.readouterr().err
