"""``domainseg chips --instances [--coco]``: instance masks beside class masks, on real data."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import rasterio

from napari_domainseg.geo.grid import RasterGrid
from napari_domainseg.geo.label_raster import write_label_geotiff
from napari_domainseg.labels.coco import decode_rle
from napari_domainseg.labels.instances import Instance, InstanceTable

from .cli_helpers import run

LANDSAT = "geo/landsat_rgb/RGB.byte.tif"


@pytest.fixture
def scene(shared_data, tmp_path):
    """Class and instance rasters on the Landsat grid: 600 touching 8x8 buildings (ids > 255)
    in class 2 and one water instance (class 1) with a hole."""
    with rasterio.open(shared_data / LANDSAT) as src:
        grid = RasterGrid.of_dataset(src)
    instances = np.zeros((718, 791), np.uint16)
    number = 0
    for row in range(100, 100 + 20 * 8, 8):
        for col in range(100, 100 + 30 * 8, 8):
            number += 1
            instances[row : row + 8, col : col + 8] = number  # shares its edges with neighbours
    water = number + 1
    instances[400:500, 300:600] = water
    instances[440:460, 400:420] = 0  # an island
    labels = np.where(instances == water, 1, np.where(instances > 0, 2, 0)).astype(np.uint8)
    write_label_geotiff(tmp_path / "labels.tif", labels, grid)
    write_label_geotiff(tmp_path / "instances.tif", instances, grid)
    return shared_data / LANDSAT, tmp_path / "labels.tif", tmp_path / "instances.tif", instances


def test_instance_chips_and_coco_on_landsat(capsys, scene, tmp_path):
    image, labels, instance_path, instances = scene
    out = tmp_path / "chips"
    code, stdout, err = run(
        capsys, "chips", image, labels, "-o", out, "--size", "256", "--overlap", "16",
        "--min-labelled", "0.01", "--instances", instance_path, "--coco", "--json",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["instances"] == 601 and summary["coco"] == str(out / "coco.json")
    rows = list(csv.DictReader(open(out / "manifest.csv")))
    assert rows and all(r["instances"] == f"{r['chip']}_instances.tif" for r in rows)
    coco = json.loads((out / "coco.json").read_text())
    assert [i["file_name"] for i in coco["images"]] == [r["image"] for r in rows]
    assert {c["id"]: c["name"] for c in coco["categories"]} == {1: "label 1", 2: "label 2"}
    by_image: dict[int, list[dict]] = {}
    for annotation in coco["annotations"]:
        by_image.setdefault(annotation["image_id"], []).append(annotation)
    for entry, row in zip(coco["images"], rows, strict=True):
        r, c = int(row["row"]), int(row["col"])
        window = instances[r : r + 256, c : c + 256]
        with (
            rasterio.open(out / row["instances"]) as chip,
            rasterio.open(out / row["mask"]) as mask,
        ):
            assert chip.dtypes[0] == "uint16" and chip.nodata == 0
            assert chip.transform == mask.transform and chip.crs == mask.crs
            np.testing.assert_array_equal(chip.read(1), window)
            records = json.loads(chip.tags()["DOMAINSEG_INSTANCES"])
            class_mask = mask.read(1)
        present = set(np.unique(window).tolist()) - {0}
        assert {rec["id"] for rec in records} == present
        annotations = by_image.get(entry["id"], [])
        assert {a["instance_id"] for a in annotations} == present, "one annotation per instance"
        assert entry["mask"] == row["mask"] and (entry["row"], entry["col"]) == (r, c)
        for annotation in annotations:
            pixels = window == annotation["instance_id"]
            np.testing.assert_array_equal(decode_rle(annotation["segmentation"]), pixels)
            assert annotation["area"] == int(pixels.sum())
            assert set(np.unique(class_mask[pixels]).tolist()) == {annotation["category_id"]}
    buildings = [a for a in coco["annotations"] if a["category_id"] == 2 and a["area"] == 64]
    assert len(buildings) >= 600, "touching buildings stay one annotation each"


def test_an_instance_table_gives_attributes_and_must_agree_with_the_labels(capsys, scene, tmp_path):
    image, labels, instance_path, _ = scene
    records = [Instance(i, 2, {"floors": i % 5}, "manual") for i in range(1, 601)]
    table = InstanceTable((*records, Instance(601, 1, {}, "imported")))
    (tmp_path / "table.json").write_text(json.dumps(table.to_records()))
    code, _, err = run(
        capsys, "chips", image, labels, "-o", tmp_path / "a", "--size", "256",
        "--min-labelled", "0.01", "--instances", instance_path,
        "--instance-table", tmp_path / "table.json", "--coco",
    )  # fmt: skip
    assert code == 0, err
    coco = json.loads((tmp_path / "a" / "coco.json").read_text())
    some = next(a for a in coco["annotations"] if a["instance_id"] == 37)
    assert some["attributes"] == {"floors": 2} and some["provenance"] == "manual"

    wrong = table.relabeled(5, 1)  # building 5 said to be water
    (tmp_path / "wrong.json").write_text(json.dumps(wrong.to_records()))
    code, _, err = run(
        capsys, "chips", image, labels, "-o", tmp_path / "b", "--size", "256",
        "--instances", instance_path, "--instance-table", tmp_path / "wrong.json",
    )  # fmt: skip
    assert code == 1 and "instances 5 (class 1)" in err and "agree" in err
    assert not (tmp_path / "b").exists()

    (tmp_path / "short.json").write_text(json.dumps(table.without([7, 8]).to_records()))
    code, _, err = run(
        capsys, "chips", image, labels, "-o", tmp_path / "c", "--size", "256",
        "--instances", instance_path, "--instance-table", tmp_path / "short.json",
    )  # fmt: skip
    assert code == 1 and "instance ids 7, 8 are painted" in err


def test_coco_needs_instances_and_plain_chips_are_unchanged(capsys, scene, tmp_path):
    image, labels, _, _ = scene
    code, _, err = run(capsys, "chips", image, labels, "-o", tmp_path / "x", "--coco")
    assert code == 1 and "--coco needs --instances" in err
    code, _, err = run(capsys, "chips", image, labels, "-o", tmp_path / "y", "--size", "256")
    assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "y" / "manifest.csv")))
    assert "instances" not in rows[0]
    assert not list((tmp_path / "y").glob("*_instances.tif"))
    assert not (tmp_path / "y" / "coco.json").exists()


def test_instances_on_unlabeled_pixels_have_no_class(capsys, scene, tmp_path):
    image, labels, instance_path, instances = scene
    with rasterio.open(labels) as src:
        grid = RasterGrid.of_dataset(src)
        classes = src.read(1)
    classes[instances == 3] = 0  # instance 3 has no class under it
    write_label_geotiff(tmp_path / "holes.tif", classes, grid)
    code, _, err = run(
        capsys, "chips", image, tmp_path / "holes.tif", "-o", tmp_path / "z",
        "--instances", instance_path,
    )  # fmt: skip
    assert code == 1 and "instances 3 lie on unlabeled pixels" in err


def test_volume_chips_carry_their_instances(capsys, tmp_path):
    import nibabel as nib

    image = np.random.default_rng(0).normal(100, 20, (64, 64, 4)).astype(np.float32)
    nib.save(nib.Nifti1Image(image, np.diag([0.7, 0.7, 2.5, 1.0])), tmp_path / "image.nii.gz")
    instances = np.zeros((4, 64, 64), np.uint16)
    instances[1, 8:20, 8:20] = 1
    instances[1, 8:20, 20:30] = 2  # touching
    labels = (instances > 0).astype(np.uint8) * 3
    np.save(tmp_path / "labels.npy", labels)
    np.save(tmp_path / "instances.npy", instances)
    code, _, err = run(
        capsys, "chips", tmp_path / "image.nii.gz", tmp_path / "labels.npy", "-o", tmp_path / "c",
        "--size", "32", "--min-labelled", "0.01", "--instances", tmp_path / "instances.npy",
        "--coco",
    )  # fmt: skip
    assert code == 0, err
    coco = json.loads((tmp_path / "c" / "coco.json").read_text())
    for entry in coco["images"]:
        chip = np.load(tmp_path / "c" / entry["file_name"])
        assert entry["slice_index"] == int(chip["slice_index"]) == 1
        np.testing.assert_array_equal(
            chip["instances"],
            instances[1, entry["row"] : entry["row"] + 32, entry["col"] : entry["col"] + 32],
        )
    assert {a["instance_id"] for a in coco["annotations"]} == {1, 2}
