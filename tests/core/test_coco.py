"""COCO export of instance maps: RLE masks, boxes, categories from the hierarchy, panoptic PNGs."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from napari_domainseg.atomic import OutputExistsError
from napari_domainseg.labels.coco import (
    CocoError,
    CocoImage,
    coco_dataset,
    counts_to_string,
    decode_rle,
    encode_png,
    encode_rle,
    rgb_to_ids,
    slice_images,
    string_to_counts,
    write_coco,
    write_coco_panoptic,
)
from napari_domainseg.labels.instances import Instance, InstanceTable
from napari_domainseg.labels.schema import LabelClass, LabelSchema

SCHEMA = LabelSchema(
    "scene",
    (
        LabelClass(1, "vehicle", (200, 0, 0, 255)),
        LabelClass(2, "car", (255, 40, 40, 255), parent=1, kind="objects"),
        LabelClass(3, "water", (0, 0, 255, 255)),
        LabelClass(4, "building", (120, 120, 120, 255), kind="objects"),
    ),
)


def _reference_decode(segmentation: dict) -> np.ndarray:
    """A COCO RLE (list counts) decoded pixel by pixel down the columns: the spec, no NumPy."""
    height, width = segmentation["size"]
    flat, value = [], False
    for count in segmentation["counts"]:
        flat.extend([value] * count)
        value = not value
    assert len(flat) == height * width
    mask = np.zeros((height, width), bool)
    for index, pixel in enumerate(flat):
        mask[index % height, index // height] = pixel  # column-major: down a column first
    return mask


def _scene() -> tuple[np.ndarray, InstanceTable]:
    """Two touching cars, a building with a hole, water in two parts (one instance)."""
    instances = np.zeros((12, 16), np.uint16)
    instances[2:5, 1:4] = 1  # car
    instances[2:5, 4:7] = 2  # car touching car 1 along a column edge
    instances[6:11, 8:14] = 3  # building
    instances[8, 10] = 0  # a hole in it
    instances[0, 10:16] = 4  # water, part one
    instances[11, 0:3] = 4  # water, part two
    table = InstanceTable(
        (
            Instance(1, 2, {"occluded": True}),
            Instance(2, 2, {"occluded": False}, "assisted"),
            Instance(3, 4),
            Instance(4, 3, {}, "imported"),
        )
    )
    return instances, table


@pytest.mark.parametrize("rle", ["compressed", "uncompressed"])
def test_rle_decodes_to_the_mask(rle):
    rng = np.random.default_rng(1)
    for shape in [(1, 1), (5, 4), (37, 23), (64, 64)]:
        for density in (0.0, 0.05, 0.5, 1.0):
            mask = rng.random(shape) < density
            encoded = encode_rle(mask, rle)
            assert encoded["size"] == list(shape)
            np.testing.assert_array_equal(decode_rle(encoded), mask)
            counts = encoded["counts"]
            listed = string_to_counts(counts) if rle == "compressed" else counts
            np.testing.assert_array_equal(
                _reference_decode({"size": shape, "counts": listed}), mask
            )


def test_rle_counts_start_with_zeros_and_run_down_columns():
    mask = np.zeros((3, 2), bool)
    mask[0, 0] = True  # first pixel set: the leading zero run is empty
    mask[2, 0] = mask[0, 1] = True  # one run across the column break (column-major)
    assert encode_rle(mask, "uncompressed")["counts"] == [0, 1, 1, 2, 2]
    assert encode_rle(np.zeros((2, 2), bool), "uncompressed")["counts"] == [4]


def test_compressed_counts_are_pycocotools_strings():
    # Worked through rleToString by hand: values up to index 2 as they are, then deltas to the
    # count two before; 5 bits a character, 0x20 = more follows, plus 48.
    assert counts_to_string([2, 3, 1]) == "231"
    assert counts_to_string([2, 3, 1, 5]) == "2312"  # 5 - 3 = 2
    assert counts_to_string([100]) == "T3"  # 100 = 4 + 3 * 32
    assert counts_to_string([2, 30, 1, 4]) == "2n01VO"  # 30 needs a sign group; 4 - 30 = -26
    rng = np.random.default_rng(2)
    counts = rng.integers(0, 100_000, 500).tolist()
    assert string_to_counts(counts_to_string(counts)) == counts


def test_pycocotools_reads_our_rle():
    mask_api = pytest.importorskip("pycocotools.mask")
    instances, table = _scene()
    document = coco_dataset([CocoImage("a.png", instances)], table, SCHEMA)
    for annotation in document["annotations"]:
        rle = dict(annotation["segmentation"], counts=annotation["segmentation"]["counts"].encode())
        expected = instances == annotation["instance_id"]
        np.testing.assert_array_equal(mask_api.decode(rle).astype(bool), expected)
        assert mask_api.area(rle) == annotation["area"]
        assert mask_api.toBbox(rle).tolist() == annotation["bbox"]


def test_annotations_have_exact_boxes_areas_and_stay_separate_when_touching():
    instances, table = _scene()
    document = coco_dataset([CocoImage("scene.png", instances)], table, SCHEMA)
    assert document["images"] == [{"id": 1, "file_name": "scene.png", "width": 16, "height": 12}]
    by_instance = {a["instance_id"]: a for a in document["annotations"]}
    assert sorted(by_instance) == [1, 2, 3, 4], "one annotation per instance"
    assert by_instance[1]["bbox"] == [1, 2, 3, 3] and by_instance[1]["area"] == 9
    assert by_instance[2]["bbox"] == [4, 2, 3, 3] and by_instance[2]["area"] == 9
    assert by_instance[3]["bbox"] == [8, 6, 6, 5] and by_instance[3]["area"] == 29  # the hole
    assert by_instance[4]["bbox"] == [0, 0, 16, 12] and by_instance[4]["area"] == 9
    union = np.zeros(instances.shape, int)
    for instance_id, annotation in by_instance.items():
        mask = decode_rle(annotation["segmentation"])
        np.testing.assert_array_equal(mask, instances == instance_id)
        union += mask
    assert union.max() == 1, "touching cars are two disjoint masks"
    np.testing.assert_array_equal(union > 0, instances > 0)
    assert by_instance[1]["category_id"] == 2 and by_instance[4]["category_id"] == 3
    assert by_instance[1]["attributes"] == {"occluded": True} and by_instance[3]["attributes"] == {}
    assert by_instance[2]["provenance"] == "assisted" and by_instance[1]["iscrowd"] == 0
    assert len({a["id"] for a in document["annotations"]}) == 4


def test_categories_follow_the_hierarchy():
    document = coco_dataset(
        [CocoImage("a.png", np.zeros((2, 2), np.uint8))], InstanceTable(), SCHEMA
    )
    categories = {c["id"]: c for c in document["categories"]}
    assert categories[2] == {
        "id": 2,
        "name": "car",
        "supercategory": "vehicle",
        "path": "vehicle/car",
    }
    assert categories[1]["supercategory"] == "" and categories[3]["supercategory"] == ""
    assert document["annotations"] == []


def test_more_than_255_and_65535_instances_keep_their_ids():
    instances = np.zeros((40, 40), np.uint32)
    ids = 70_000 + np.arange(400)  # beyond uint16
    instances.reshape(-1)[::4] = ids  # 400 one-pixel instances, touching diagonally
    table = InstanceTable(tuple(Instance(int(i), 4) for i in ids))
    document = coco_dataset([CocoImage("many.png", instances)], table, SCHEMA, "uncompressed")
    assert len(document["annotations"]) == 400
    for annotation in document["annotations"][::37]:
        mask = _reference_decode(annotation["segmentation"])
        np.testing.assert_array_equal(mask, instances == annotation["instance_id"])
        assert annotation["area"] == 1 and annotation["bbox"][2:] == [1, 1]
    assert {a["instance_id"] for a in document["annotations"]} == set(ids.tolist())


def test_volume_slices_are_images_and_tables_may_differ_per_image():
    volume = np.zeros((3, 6, 5), np.uint16)
    volume[1, 1:3, 1:3] = 7
    images = slice_images("ct", volume)
    assert [i.file_name for i in images] == ["ct_z0000.png", "ct_z0001.png", "ct_z0002.png"]
    along_x = slice_images("ct", volume, axis=2)
    assert len(along_x) == 5 and along_x[1].instance_map.shape == (3, 6)
    document = coco_dataset(images, InstanceTable((Instance(7, 2),)), SCHEMA)
    assert [a["image_id"] for a in document["annotations"]] == [2]
    assert document["images"][1]["slice_index"] == 1
    with pytest.raises(CocoError, match="one per image"):
        coco_dataset(images, [InstanceTable()], SCHEMA)


def test_painted_ids_missing_from_the_table_are_refused_not_dropped(tmp_path):
    instances, table = _scene()
    with pytest.raises(CocoError, match="instance ids 3 are painted"):
        write_coco(tmp_path / "c.json", [CocoImage("s.png", instances)], table.without([3]), SCHEMA)
    assert not list(tmp_path.iterdir()), "nothing written, no partial file"
    unknown = table.with_instance(Instance(3, 99))
    with pytest.raises(CocoError, match="class ids 99"):
        coco_dataset([CocoImage("s.png", instances)], unknown, SCHEMA)


def test_written_atomically_and_never_over_an_existing_file(tmp_path):
    instances, table = _scene()
    path = tmp_path / "coco.json"
    write_coco(path, [CocoImage("s.png", instances)], table, SCHEMA)
    first = path.read_bytes()
    assert len(json.loads(first)["annotations"]) == 4
    with pytest.raises(OutputExistsError):
        write_coco(path, [CocoImage("t.png", instances)], table, SCHEMA)
    assert path.read_bytes() == first
    write_coco(path, [CocoImage("t.png", instances)], table, SCHEMA, overwrite=True)
    assert json.loads(path.read_text())["images"][0]["file_name"] == "t.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco.json"]


def test_png_writer_is_lossless():
    rgb = np.random.default_rng(3).integers(0, 256, (17, 31, 3), dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(rgb))))
    np.testing.assert_array_equal(decoded, rgb)


def test_panoptic_png_decodes_back_to_the_instance_map(tmp_path):
    instances, table = _scene()
    many = np.zeros((30, 30), np.uint32)
    many.reshape(-1)[::3] = np.arange(1, 301)  # 300 touching building instances: ids > 255
    many_table = InstanceTable(tuple(Instance(i, 4) for i in range(1, 301)))
    images = [CocoImage("scene.tif", instances), CocoImage("many.tif", many)]
    paths = write_coco_panoptic(tmp_path / "panoptic.json", images, [table, many_table], SCHEMA)
    assert [p.name for p in paths] == ["panoptic.json", "scene.png", "many.png"]
    assert paths[1].parent == tmp_path / "panoptic"
    document = json.loads(paths[0].read_text())
    categories = {c["id"]: c for c in document["categories"]}
    assert categories[2]["isthing"] == 1 and categories[3]["isthing"] == 0
    assert categories[1]["isthing"] == 0 and categories[2]["color"] == [255, 40, 40]
    for image, annotation, png in zip(images, document["annotations"], paths[1:], strict=True):
        assert annotation["file_name"] == png.name
        segments = rgb_to_ids(np.asarray(Image.open(png).convert("RGB")))
        info = {s["id"]: s for s in annotation["segments_info"]}
        assert set(np.unique(segments)) - {0} == set(info)
        restored = np.zeros(image.instance_map.shape, np.int64)
        for segment_id, segment in info.items():
            mask = segments == segment_id
            assert segment["area"] == int(mask.sum()) and segment["iscrowd"] == 0
            rows, cols = np.nonzero(mask)
            assert segment["bbox"] == [
                int(cols.min()), int(rows.min()),
                int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1),
            ]  # fmt: skip
            if "instance_id" in segment:  # a thing: exactly its instance
                restored[mask] = segment["instance_id"]
            else:  # stuff: one segment for the class, the instances it joins listed
                assert categories[segment["category_id"]]["isthing"] == 0
                restored[mask] = segment["instance_ids"][0]
        np.testing.assert_array_equal(restored, image.instance_map)
    assert len(document["annotations"][1]["segments_info"]) == 300
    with pytest.raises(OutputExistsError):
        write_coco_panoptic(tmp_path / "panoptic.json", images, [table, many_table], SCHEMA)


def test_panoptic_joins_stuff_instances_of_a_class_into_one_segment(tmp_path):
    instances = np.zeros((4, 4), np.uint8)
    instances[0] = 1
    instances[3] = 2
    table = InstanceTable((Instance(1, 3), Instance(2, 3)))  # two water instances
    paths = write_coco_panoptic(tmp_path / "p.json", [CocoImage("w.png", instances)], table, SCHEMA)
    segments = json.loads(paths[0].read_text())["annotations"][0]["segments_info"]
    assert len(segments) == 1 and segments[0]["instance_ids"] == [1, 2]
    assert segments[0]["area"] == 8 and segments[0]["bbox"] == [0, 0, 4, 4]


def test_a_panoptic_png_in_the_way_stops_everything_before_writing(tmp_path):
    instances, table = _scene()
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "b.png").write_bytes(b"keep")
    images = [CocoImage("a.png", instances), CocoImage("b.png", instances)]
    with pytest.raises(OutputExistsError):
        write_coco_panoptic(tmp_path / "p.json", images, table, SCHEMA)
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["b.png"]
    assert not (tmp_path / "p.json").exists()
