"""``domainseg compare`` / ``agreement``: levels of the class tree and instance figures."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from napari_domainseg.geo.grid import RasterGrid
from napari_domainseg.geo.label_raster import write_label_geotiff

from .cli_helpers import run

TOTALSEG_LABELS = "medical/totalseg_mr/labels.nii.gz"
TODAY = {"classes", "kappa", "unit", "warnings"}


@pytest.fixture
def eroded_spleen(shared_data, tmp_path):
    """The real MR labels and a copy with the spleen (1) eroded by 2 voxels."""
    path = shared_data / TOTALSEG_LABELS
    image = nib.load(path)
    labels = np.asarray(image.dataobj)
    spleen = labels == 1
    eroded = labels.copy()
    eroded[spleen & ~ndimage.binary_erosion(spleen, iterations=2)] = 0
    copy = tmp_path / "eroded.nii.gz"
    nib.save(nib.Nifti1Image(eroded, image.affine, image.header), copy)
    return path, copy


def test_real_labels_against_themselves_and_an_eroded_copy(capsys, eroded_spleen):
    path, eroded = eroded_spleen
    code, out, _ = run(capsys, "compare", path, path, "--instances", "--json")
    result = json.loads(out)
    assert code == 0 and set(result) == TODAY | {"instances"}
    overall = result["instances"]["overall"]
    assert overall["pq"] == 1.0 and overall["f1"] == 1.0 and overall["matched"] == 33
    assert len(result["instances"]["classes"]) == 23
    assert result["instances"]["source"] == ["connected components"]
    code, out, _ = run(capsys, "compare", path, eroded, "--instances", "--json")
    result = json.loads(out)
    spleen, overall = result["instances"]["classes"]["1"], result["instances"]["overall"]
    assert spleen["matched"] == 0 and spleen["pq"] == 0, "IoU 574/1941 < 0.5"
    assert overall["f1"] == pytest.approx(64 / 66) and overall["pq"] == pytest.approx(64 / 66)
    assert result["classes"]["1"]["dice"] == pytest.approx(2 * 574 / (1941 + 574))
    code, out, _ = run(capsys, "compare", path, eroded, "--instances")
    assert code == 0 and "instances (IoU >= 0.5)" in out
    assert any(line.startswith("overall  33  33  32  ") for line in out.splitlines())


def test_without_options_the_keys_are_todays(capsys, eroded_spleen):
    path, eroded = eroded_spleen
    code, out, _ = run(capsys, "compare", path, eroded, "--json")
    assert code == 0 and set(json.loads(out)) == TODAY
    code, out, _ = run(capsys, "agreement", path, eroded, "--json")
    assert code == 0 and set(json.loads(out)) == {"pairs", "fleiss_kappa", "classes"}
    assert set(json.loads(out)["pairs"][0]) == {"a", "b", "dice"}


@pytest.fixture
def building_rasters(tmp_path):
    """Two annotators' class GeoTIFFs under the ``buildings`` preset (a tree with objects)."""
    grid = RasterGrid(32, 40, (1.0, 0, 500000.0, 0, -1.0, 4000000.0), "EPSG:32633")
    a = np.zeros((32, 40), np.uint8)
    a[:, :10] = 1  # built-up
    a[2:10, 12:20] = 2  # a building
    a[2:10, 20:28] = 2  # its neighbour, touching: one part in a class map
    a[20:26, 12:18] = 4  # a car
    b = a.copy()
    b[20:26, 12:18] = 3  # called only "vehicle"
    b[2:10, 20:28] = 0  # the neighbour missed
    paths = []
    for name, labels in (("a", a), ("b", b)):
        paths += write_label_geotiff(tmp_path / f"{name}.tif", labels, grid)
    return paths[0], paths[1]


def test_levels_and_instances_of_a_class_tree_on_rasters(capsys, building_rasters):
    path_a, path_b = building_rasters
    code, out, _ = run(
        capsys, "compare", path_a, path_b, "--schema", "buildings", "--instances", "--json"
    )
    result = json.loads(out)
    assert code == 0 and set(result) == TODAY | {"levels", "instances"}
    levels = result["levels"]
    assert list(levels) == ["built-up", "built-up/building", "vehicle", "vehicle/car"]
    assert [levels[p]["depth"] for p in levels] == [0, 1, 0, 1]
    assert levels["built-up"]["dice"] == pytest.approx(2 * (320 + 64) / (448 + 384))
    assert levels["vehicle"]["dice"] == 1.0 and levels["vehicle/car"]["dice"] == 0.0
    classes = result["instances"]["classes"]
    assert list(classes) == ["built-up/building", "vehicle", "vehicle/car"], "objects only"
    building = classes["built-up/building"]
    assert building["count_a"] == 1 and building["matched"] == 1
    assert building["sq"] == pytest.approx(0.5), "touching buildings: one part of 128 pixels"
    assert classes["vehicle"]["matched"] == 1 and classes["vehicle/car"]["matched"] == 0
    assert result["instances"]["overall"]["matched"] == 1
    code, out, _ = run(capsys, "compare", path_a, path_b, "--schema", "buildings")
    assert code == 0 and "  built-up/building  " in out, "a level row, indented by depth"


def test_agreement_per_level_and_instances(capsys, building_rasters):
    path_a, path_b = building_rasters
    code, out, _ = run(
        capsys, "agreement", path_a, path_b, path_a, "--schema", "buildings", "--instances",
        "--json",
    )  # fmt: skip
    result = json.loads(out)
    assert code == 0 and set(result) == {"pairs", "fleiss_kappa", "classes", "levels"}
    assert result["levels"]["vehicle/car"] == {"id": 4, "depth": 1}
    first, second = result["pairs"][0], result["pairs"][1]
    assert set(first) == {"a", "b", "dice", "levels", "instances"}
    assert first["levels"]["vehicle"] == 1.0 and first["levels"]["vehicle/car"] == 0.0
    assert first["instances"]["overall"]["matched"] == 1
    assert second["instances"]["overall"]["pq"] == 1.0, "a against a"
    code, out, _ = run(capsys, "agreement", path_a, path_b, "--schema", "buildings")
    assert code == 0 and "Dice per level: built-up: " in out


def test_an_unknown_schema_is_an_input_error(capsys, building_rasters):
    path_a, path_b = building_rasters
    code, _, err = run(capsys, "compare", path_a, path_b, "--schema", "nonexistent.yaml")
    assert code == 1 and "nonexistent.yaml" in err
