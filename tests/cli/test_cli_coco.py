"""``domainseg coco``: instance files and class maps as COCO instance segmentation and panoptic.

On the real CT ``seg_dcmqi/ct-3slice`` (an instance NIfTI written by our exporter) and on the
real Landsat grid (class and instance GeoTIFFs under the ``buildings`` preset). Every mask is
decoded back (our RLE decoder; the panoptic PNGs with Pillow) and compared with the pixels.
"""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from napari_domainseg.cli import main
from napari_domainseg.geo.label_raster import read_grid, write_label_geotiff
from napari_domainseg.labels import load_preset
from napari_domainseg.labels.coco import decode_rle, rgb_to_ids
from napari_domainseg.labels.instances import Instance, InstanceTable
from napari_domainseg.medical.export import export_labels
from napari_domainseg.medical.series import read_series

from .cli_helpers import run

CT = "medical/seg_dcmqi/ct-3slice"
LANDSAT = "geo/landsat_rgb/RGB.byte.tif"


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ct_volume(shared_data):
    return read_series(shared_data / CT).volume


@pytest.fixture(scope="module")
def ct_instances(ct_volume, tmp_path_factory):
    """An instance NIfTI on the real CT: a liver (stuff) over slices 0-1, two touching lesions
    (objects, children of liver) on slice 1, a kidney on slice 0; slice 2 holds nothing."""
    volume = ct_volume
    labels = np.zeros(volume.shape, dtype=np.uint16)
    labels[0:2, 100:300, 100:300] = 1  # liver, on two slices
    labels[1, 120:140, 120:140] = 2  # lesion
    labels[1, 120:140, 140:165] = 3  # lesion touching it along x = 140
    labels[0, 350:400, 50:90] = 7  # kidney (non-consecutive id)
    table = InstanceTable(
        (Instance(1, 1), Instance(2, 2, {"confidence": 0.9}), Instance(3, 2, {}, "assisted"),
         Instance(7, 3))
    )  # fmt: skip
    path = tmp_path_factory.mktemp("ct") / "m.nii.gz"
    export_labels(
        path, labels, volume.geometry, load_preset("ct_lesions"), volume.metadata,
        instances=table,
    )  # fmt: skip
    return path, labels, table


@pytest.fixture(scope="module")
def landsat_grid(shared_data):
    return read_grid(shared_data / LANDSAT)


def building_classes(shape: tuple[int, int]) -> np.ndarray:
    """Built-up in two parts (stuff), three separate buildings, a car (objects)."""
    classes = np.zeros(shape, dtype=np.uint8)
    classes[10:60, 10:40] = 1  # built-up, part 1
    classes[500:520, 700:760] = 1  # built-up, part 2
    classes[15:25, 15:25] = 2  # a building inside the built-up area
    classes[100:130, 200:220] = 2
    classes[100:130, 222:240] = 2  # two columns apart: not touching
    classes[300:306, 400:412] = 4  # a car
    return classes


@pytest.fixture
def class_tif(landsat_grid, tmp_path):
    classes = building_classes(landsat_grid.array_shape)
    (path,) = write_label_geotiff(
        tmp_path / "b.tif", classes, landsat_grid, load_preset("buildings")
    )
    return path, classes


def coco_json(capsys, *arguments):
    code, out, err = run(capsys, "coco", *arguments, "--json")
    assert code == 0, err
    return json.loads(out)


def check_annotation(annotation, plane, instance_id):
    """The annotation's RLE, area and box are exactly the instance's pixels in ``plane``."""
    mask = plane == instance_id
    np.testing.assert_array_equal(decode_rle(annotation["segmentation"]), mask)
    rows, columns = np.nonzero(mask)
    x, y = int(columns.min()), int(rows.min())
    assert annotation["bbox"] == [x, y, int(columns.max()) - x + 1, int(rows.max()) - y + 1]
    assert annotation["area"] == int(mask.sum())


def panoptic_ids(folder, annotation):
    """The instance ids a panoptic PNG encodes (Pillow), through its segments_info."""
    segments = rgb_to_ids(np.asarray(Image.open(folder / annotation["file_name"]).convert("RGB")))
    lookup = np.zeros(int(segments.max()) + 1, dtype=np.int64)
    for segment in annotation["segments_info"]:
        ids = segment.get("instance_ids", [segment.get("instance_id")])
        assert len(ids) == 1  # one instance per region in these maps
        lookup[segment["id"]] = ids[0]
    return lookup[segments], segments


# ---------------------------------------------------------------------------- volumes


def test_instance_nifti_one_image_per_labelled_slice(capsys, ct_instances, tmp_path):
    path, labels, table = ct_instances
    out = tmp_path / "ct.json"
    result = coco_json(capsys, path, "-o", out)
    assert result["written"] == [str(out)] and result["images"] == 2 and result["instances"] == 4
    document = json.loads(out.read_text())
    assert [i["file_name"] for i in document["images"]] == ["m_z0000.png", "m_z0001.png"]
    assert [(i["width"], i["height"], i["slice_index"]) for i in document["images"]] == [
        (512, 512, 0), (512, 512, 1)
    ]  # fmt: skip
    categories = {c["name"]: c for c in document["categories"]}
    assert categories["lesion"]["supercategory"] == "liver"
    assert categories["liver"]["supercategory"] == ""
    assert categories["lesion"]["path"] == "liver/lesion"
    seen = [(a["image_id"], a["instance_id"]) for a in document["annotations"]]
    assert seen == [(1, 1), (1, 7), (2, 1), (2, 2), (2, 3)]  # touching lesions stay two
    for annotation in document["annotations"]:
        plane = labels[document["images"][annotation["image_id"] - 1]["slice_index"]]
        check_annotation(annotation, plane, annotation["instance_id"])
        assert annotation["category_id"] == table.class_of(annotation["instance_id"])
    lesion = document["annotations"][3]
    assert lesion["attributes"] == {"confidence": 0.9} and lesion["provenance"] == "manual"
    assert document["annotations"][4]["provenance"] == "assisted"


@pytest.mark.parametrize("name", ["m.dcm", "m.seg.nrrd"])
def test_dicom_seg_and_slicer_files_give_the_same_coco(
    capsys, ct_volume, ct_instances, tmp_path, name
):
    nifti, labels, table = ct_instances
    coco_json(capsys, nifti, "-o", tmp_path / "nifti.json")
    export_labels(
        tmp_path / name, labels, ct_volume.geometry, load_preset("ct_lesions"),
        ct_volume.metadata, instances=table,
    )  # fmt: skip
    coco_json(capsys, tmp_path / name, "-o", tmp_path / "other.json")
    ours, theirs = (json.loads((tmp_path / f).read_text()) for f in ("nifti.json", "other.json"))
    assert theirs["images"] == ours["images"] and theirs["annotations"] == ours["annotations"]


def test_axis_y_slices_across_the_acquisition(capsys, ct_instances, tmp_path):
    path, labels, _ = ct_instances
    out = tmp_path / "ct_y.json"
    coco_json(capsys, path, "-o", out, "--axis", "y")
    document = json.loads(out.read_text())
    rows = sorted({*range(100, 300), *range(350, 400)})  # rows holding labels
    assert [i["file_name"] for i in document["images"]] == [f"m_y{r:04d}.png" for r in rows]
    first = document["images"][0]
    assert (first["width"], first["height"], first["axis"]) == (512, 3, 1)
    by_image = {i["id"]: i["slice_index"] for i in document["images"]}
    for annotation in document["annotations"][:: max(1, len(document["annotations"]) // 25)]:
        plane = labels[:, by_image[annotation["image_id"]], :]
        check_annotation(annotation, plane, annotation["instance_id"])


def test_panoptic_pngs_decode_to_the_instance_map(capsys, ct_instances, tmp_path):
    path, labels, _ = ct_instances
    out = tmp_path / "panoptic.json"
    result = coco_json(capsys, path, "-o", out, "--panoptic")
    folder = tmp_path / "panoptic"
    assert result["written"] == [str(out), str(folder)]
    assert sorted(p.name for p in folder.iterdir()) == ["m_z0000.png", "m_z0001.png"]
    document = json.loads(out.read_text())
    things = {c["name"]: c["isthing"] for c in document["categories"]}
    assert things["lesion"] == 1 and things["liver"] == 0
    for image, annotation in zip(document["images"], document["annotations"], strict=True):
        decoded, _ = panoptic_ids(folder, annotation)
        np.testing.assert_array_equal(decoded, labels[image["slice_index"]])


# ---------------------------------------------------------------------------- rasters


def test_class_geotiff_instances_from_the_schema_kinds(capsys, class_tif, tmp_path):
    path, classes = class_tif
    out = tmp_path / "b.json"
    result = coco_json(capsys, path, "-o", out)  # the schema the file carries
    assert result["images"] == 1
    document = json.loads(out.read_text())
    assert document["images"] == [{"id": 1, "file_name": "b.png", "width": 791, "height": 718}]
    assert "made from the class map" in document["info"]["instances"]
    categories = {c["name"]: c["supercategory"] for c in document["categories"]}
    assert categories["building"] == "built-up" and categories["car"] == "vehicle"
    by_class: dict[int, list] = {}
    for annotation in document["annotations"]:
        by_class.setdefault(annotation["category_id"], []).append(annotation)
    assert {k: len(v) for k, v in by_class.items()} == {1: 1, 2: 3, 4: 1}
    (built_up,) = by_class[1]  # stuff: both parts, one region
    np.testing.assert_array_equal(decode_rle(built_up["segmentation"]), classes == 1)
    assert built_up["area"] == int((classes == 1).sum())
    assert built_up["bbox"] == [10, 10, 750, 510]
    parts, count = ndimage.label(classes == 2)
    assert count == 3
    masks = sorted(decode_rle(a["segmentation"]).sum() for a in by_class[2])
    assert masks == sorted(int((parts == n).sum()) for n in range(1, 4))
    for annotation in by_class[2]:  # each annotation is exactly one building
        mask = decode_rle(annotation["segmentation"])
        (part,) = set(np.unique(parts[mask]).tolist())
        np.testing.assert_array_equal(mask, parts == part)
        check_annotation(annotation, np.where(mask, 1, 0), 1)


def test_instance_geotiff_keeps_touching_buildings_apart(capsys, landsat_grid, tmp_path):
    instances = np.zeros(landsat_grid.array_shape, dtype=np.uint16)
    instances[100:130, 200:220] = 4
    instances[100:130, 220:240] = 5  # touching building 4
    instances[400:450, 50:60] = 9  # water (stuff)
    table = InstanceTable((Instance(4, 2), Instance(5, 2, {"floors": 3}), Instance(9, 5)))
    (path,) = write_label_geotiff(
        tmp_path / "i.tif", instances, landsat_grid, load_preset("buildings"), instances=table
    )
    out = tmp_path / "i.json"
    coco_json(capsys, path, "-o", out)
    document = json.loads(out.read_text())
    assert [(a["instance_id"], a["category_id"]) for a in document["annotations"]] == [
        (4, 2), (5, 2), (9, 5)
    ]  # fmt: skip
    for annotation in document["annotations"]:
        check_annotation(annotation, instances, annotation["instance_id"])
    assert document["annotations"][1]["attributes"] == {"floors": 3}
    out = tmp_path / "ip.json"
    coco_json(capsys, path, "-o", out, "--panoptic")
    (annotation,) = json.loads(out.read_text())["annotations"]
    decoded, _ = panoptic_ids(tmp_path / "ip", annotation)
    np.testing.assert_array_equal(decoded, instances)


def test_class_geotiff_panoptic(capsys, class_tif, tmp_path):
    path, classes = class_tif
    out = tmp_path / "bp.json"
    coco_json(capsys, path, "-o", out, "--panoptic")
    (annotation,) = json.loads(out.read_text())["annotations"]
    decoded, segments = panoptic_ids(tmp_path / "bp", annotation)
    category = np.zeros(len(annotation["segments_info"]) + 1, dtype=np.int64)
    for segment in annotation["segments_info"]:
        category[segment["id"]] = segment["category_id"]
    np.testing.assert_array_equal(category[segments], classes)  # the classes, exactly
    assert len(np.unique(decoded[classes == 2])) == 3  # three buildings, three segments


# ---------------------------------------------------------------------------- refusals


def test_refuses_a_file_without_a_schema_then_takes_one(capsys, landsat_grid, tmp_path):
    (path,) = write_label_geotiff(
        tmp_path / "plain.tif", building_classes(landsat_grid.array_shape), landsat_grid
    )
    out = tmp_path / "plain.json"
    code, _, err = run(capsys, "coco", path, "-o", out)
    assert code == 1 and not out.exists()
    assert err.startswith(f"domainseg: {path}: no label schema") and "--schema" in err
    document = coco_json(capsys, path, "-o", out, "--schema", "buildings")
    assert document["images"] == 1 and len(json.loads(out.read_text())["annotations"]) == 5


def test_refuses_to_overwrite_and_other_misuse(capsys, class_tif, ct_instances, tmp_path):
    path, _ = class_tif
    out = tmp_path / "b.json"
    out.write_text("keep")
    code, _, err = run(capsys, "coco", path, "-o", out)
    assert code == 1 and "already exists" in err and out.read_text() == "keep"
    code, _, err = run(capsys, "coco", path, "-o", out, "--panoptic")
    assert code == 1 and out.read_text() == "keep" and not (tmp_path / "b").exists()
    coco_json(capsys, path, "-o", out, "--overwrite")
    assert json.loads(out.read_text())["images"][0]["file_name"] == "b.png"
    code, _, err = run(capsys, "coco", path, "-o", tmp_path / "x.json", "--axis", "y")
    assert code == 1 and "--axis" in err and not (tmp_path / "x.json").exists()
    code, _, err = run(capsys, "coco", path, "-o", tmp_path / "x.txt")
    assert code == 1 and ".json" in err
    ct_path, _, _ = ct_instances  # a schema without the file's lesions and kidney
    only_liver = tmp_path / "liver.json"
    only_liver.write_text(
        json.dumps({"name": "liver", "classes": [{"id": 1, "name": "liver", "color": "#b05a3c"}]})
    )
    code, _, err = run(capsys, "coco", ct_path, "-o", tmp_path / "y.json", "--schema", only_liver)
    assert code == 1 and str(ct_path) in err and "class ids" in err
    assert not (tmp_path / "y.json").exists()


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal (where the progress bar is drawn)."""

    def isatty(self) -> bool:
        return True


def test_progress_over_the_slices_on_a_terminal_only(monkeypatch, ct_instances, tmp_path):
    path, _, _ = ct_instances
    for extra, shown in (((), True), (("--json",), False)):
        terminal = _Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        out = tmp_path / f"p{len(extra)}.json"
        assert main(["coco", str(path), "-o", str(out), "--axis", "y", *extra]) == 0
        assert ("encoding" in terminal.getvalue() and "slices" in terminal.getvalue()) is shown
