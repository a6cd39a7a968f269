"""Agreement per level of a class tree and per instance: known answers and real labels."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from napari_domainseg.labels.instances import Instance, InstanceTable
from napari_domainseg.labels.schema import LabelClass, LabelSchema
from napari_domainseg.ops.instance_metrics import (
    Instances,
    figures,
    instance_figures,
    level_classes,
    match_pairs,
    overlaps,
)
from napari_domainseg.ops.metrics import agreement, class_metrics, compare

GREY = (128, 128, 128, 255)
TOTALSEG_LABELS = "medical/totalseg_mr/labels.nii.gz"


def tree_schema(kind: str = "stuff") -> LabelSchema:
    """vehicle > (car, truck), animal; ``kind`` for every class."""
    return LabelSchema(
        "tree",
        (
            LabelClass(1, "vehicle", GREY, kind=kind),
            LabelClass(2, "car", GREY, parent=1, kind=kind),
            LabelClass(3, "truck", GREY, parent=1, kind=kind),
            LabelClass(4, "animal", GREY, kind=kind),
        ),
    )


def instances(instance_map: np.ndarray, classes: dict[int, int]) -> Instances:
    table = InstanceTable(tuple(Instance(i, c) for i, c in classes.items()))
    return Instances(instance_map, table)


# ---------------------------------------------------------------- instances, known answers


def test_two_touching_objects_against_one_merged_blob_match_nothing():
    merged = np.zeros((12, 14), np.uint8)
    merged[2:8, 2:12] = 1  # 60 pixels, one object
    drawn = np.zeros((12, 14), np.uint16)
    drawn[2:8, 2:6] = 1  # 24 pixels
    drawn[2:8, 6:10] = 2  # 24 pixels, touching the first
    a = Instances.from_classes(merged)
    b = instances(drawn, {1: 1, 2: 1})
    result = compare(merged, (drawn > 0).astype(np.uint8), (1.0, 1.0), instances=(a, b))
    one = result["instances"]["classes"]["1"]
    assert one["count_a"] == 1 and one["count_b"] == 2
    assert one["matched"] == 0, "IoU 24/60 = 0.4 each: below 0.5"
    assert one["count_difference"] == 1
    assert one["f1"] == 0 and one["pq"] == 0 and one["precision"] == 0 and one["recall"] == 0
    assert result["instances"]["overall"] == {k: v for k, v in one.items() if k != "id"}
    # B's class map alone merges the touching objects: one part, IoU 48/60 -> matched
    parts = Instances.from_classes((drawn > 0).astype(np.uint8))
    assert len(parts.table) == 1
    alone = instance_figures(a, parts, [1])["classes"]["1"]
    assert alone["matched"] == 1 and alone["sq"] == pytest.approx(0.8)


def test_iou_of_exactly_one_half_matches():
    merged = np.zeros((6, 8), np.uint8)
    merged[:, :] = 1
    halves = np.zeros((6, 8), np.uint16)
    halves[:, :4], halves[:, 4:] = 1, 2
    found = instance_figures(Instances.from_classes(merged), instances(halves, {1: 1, 2: 1}), [1])[
        "classes"
    ]["1"]
    assert found["matched"] == 1 and found["sq"] == pytest.approx(0.5), "one to one"
    assert found["precision"] == 0.5 and found["recall"] == 1.0
    assert found["f1"] == pytest.approx(2 / 3) and found["pq"] == pytest.approx(1 / 3)


def test_shifted_object_at_iou_0_6_is_matched_in_a_volume():
    a = np.zeros((3, 20, 20), np.uint8)
    b = np.zeros_like(a)
    a[1, 5:13, 2:10] = 2  # 8 x 8
    b[1, 5:13, 4:12] = 2  # shifted 2 columns: 48 / 80
    a[1, 15:18, 15:18] = 2  # an object only A has
    result = compare(
        a, b, (3.0, 1.0, 1.0), instances=(Instances.from_classes(a), Instances.from_classes(b))
    )
    two = result["instances"]["classes"]["2"]
    assert two["matched"] == 1 and two["sq"] == pytest.approx(0.6)
    assert two["precision"] == 1.0 and two["recall"] == 0.5
    assert two["rq"] == pytest.approx(2 / 3) and two["pq"] == pytest.approx(0.6 * 2 / 3)
    assert two["count_difference"] == -1
    assert set(result) == {"classes", "kappa", "instances"}


def test_instances_of_other_classes_never_match():
    a = np.zeros((10, 10), np.uint8)
    a[2:8, 2:8] = 1
    b = np.where(a == 1, 2, 0).astype(np.uint8)
    result = instance_figures(Instances.from_classes(a), Instances.from_classes(b), [1, 2])
    assert result["overall"]["matched"] == 0 and result["overall"]["count_a"] == 1
    assert result["classes"]["1"]["recall"] == 0 and result["classes"]["2"]["precision"] == 0
    assert result["pq_mean"] == 0


def test_sparse_overlaps_equal_a_dense_count():
    rng = np.random.default_rng(7)
    a = rng.integers(0, 9, (40, 30)).astype(np.uint32)
    b = rng.integers(0, 7, (40, 30)).astype(np.uint16)
    found = overlaps(a, b)
    dense = np.zeros((9, 7), np.int64)
    np.add.at(dense, (a.ravel(), b.ravel()), 1)
    dense[0, :] = dense[:, 0] = 0
    assert {(i, j): n for i, j, n in zip(found.a, found.b, found.intersection, strict=True)} == {
        (i, j): dense[i, j] for i, j in zip(*np.nonzero(dense), strict=True)
    }
    i, j = int(found.a[0]), int(found.b[0])
    union = np.count_nonzero((a == i) | (b == j))
    assert found.iou[0] == pytest.approx(found.intersection[0] / union)


def test_large_ids_use_unique_rows():
    a = np.zeros((4, 4), np.uint64)
    b = np.zeros((4, 4), np.uint64)
    a[:2], b[:2] = 2**40, 2**40 + 1
    found = overlaps(a, b)
    assert found.a.tolist() == [2**40] and found.b.tolist() == [2**40 + 1]
    assert found.iou.tolist() == [1.0]


def test_greedy_matching_is_one_to_one_largest_first():
    matches = match_pairs(
        np.array([1, 1, 2]), np.array([5, 6, 5]), np.array([0.5, 0.9, 0.7]), threshold=0.5
    )
    assert matches == [(1, 6, 0.9), (2, 5, 0.7)]


def test_figures_of_nothing_and_of_one_side_only():
    assert figures(0, 0, [])["pq"] == 1.0
    assert figures(3, 0, []) | {} == {
        "count_a": 3, "count_b": 0, "matched": 0, "precision": 0.0, "recall": 0.0,
        "f1": 0.0, "sq": 0.0, "rq": 0.0, "pq": 0.0, "count_difference": -3,
    }  # fmt: skip


# ---------------------------------------------------------------- the class tree


def test_a_parent_level_aggregates_its_children():
    schema = tree_schema()
    a = np.zeros((20, 20), np.uint8)
    b = np.zeros_like(a)
    a[2:10, 2:10] = 2  # car
    a[12:18, 2:10] = 3  # truck
    b[2:10, 2:10] = 3  # B called the car a truck
    b[12:18, 2:8] = 1  # ... and the truck only "vehicle", and smaller
    a[15:19, 15:19] = 4
    b[15:19, 15:19] = 4
    result = compare(a, b, (0.5, 0.5), schema=schema)
    levels = result["levels"]
    assert list(levels) == ["vehicle", "vehicle/car", "vehicle/truck", "animal"], "tree order"
    assert [m["depth"] for m in levels.values()] == [1 - 1, 1, 1, 0]
    vehicle_a, vehicle_b = np.isin(a, [1, 2, 3]), np.isin(b, [1, 2, 3])
    expected = class_metrics(vehicle_a, vehicle_b, (0.5, 0.5))
    assert levels["vehicle"] == {"id": 1, "depth": 0, **expected}
    assert levels["vehicle"]["dice"] == pytest.approx(2 * (64 + 36) / (112 + 100))
    assert levels["vehicle/car"]["dice"] == 0.0 and result["classes"]["2"]["dice"] == 0.0
    assert levels["animal"]["dice"] == 1.0
    assert levels["vehicle/truck"]["dice"] == pytest.approx(
        class_metrics(a == 3, b == 3, (0.5, 0.5))["dice"]
    )
    assert set(result["classes"]) == {"1", "2", "3", "4"}, "per painted value as before"


def test_a_parent_only_present_through_its_children_is_reported():
    schema = tree_schema()
    a = np.zeros((5, 5), np.uint8)
    a[1:3, 1:3] = 2
    assert [(c, d) for c, d in level_classes(schema, [2])] == [(1, 0), (2, 1)]
    result = compare(a, a, (1.0, 1.0), schema=schema)
    assert list(result["levels"]) == ["vehicle", "vehicle/car"]
    assert list(result["classes"]) == ["2"]


def test_flat_schema_and_no_instances_give_todays_output():
    flat = LabelSchema("flat", (LabelClass(1, "a", GREY), LabelClass(2, "b", GREY)))
    a = np.zeros((10, 10), np.uint8)
    a[2:6, 2:6] = 1
    b = np.roll(a, 1, axis=0)
    b[7:9, 7:9] = 2
    assert compare(a, b, (1.0, 1.0), schema=flat) == compare(a, b, (1.0, 1.0))
    assert set(compare(a, b, (1.0, 1.0))) == {"classes", "kappa"}
    assert agreement([a, b], (1.0, 1.0), schema=flat) == agreement([a, b], (1.0, 1.0))


def test_instance_levels_match_a_car_and_a_truck_as_vehicles():
    schema = tree_schema("objects")
    a_map = np.zeros((10, 10), np.uint16)
    b_map = np.zeros_like(a_map)
    a_map[1:5, 1:5] = 1
    b_map[1:5, 1:5] = 7
    a = instances(a_map, {1: 2})  # a car
    b = instances(b_map, {7: 3})  # the same pixels as a truck
    result = compare(
        a_map.astype(bool) * 2, b_map.astype(bool) * 3, (1.0, 1.0), schema=schema,
        instances=(a, b),
    )  # fmt: skip
    section = result["instances"]
    assert list(section["classes"]) == ["vehicle", "vehicle/car", "vehicle/truck"]
    assert section["classes"]["vehicle"]["matched"] == 1
    assert (
        section["classes"]["vehicle"]["pq"] == 1.0 and section["classes"]["vehicle"]["depth"] == 0
    )
    assert section["classes"]["vehicle/car"]["matched"] == 0
    assert section["classes"]["vehicle/car"]["count_a"] == 1
    assert section["classes"]["vehicle/truck"]["count_b"] == 1
    assert section["overall"]["matched"] == 0, "overall: each instance's own class"


def test_stuff_classes_get_no_instance_rows():
    schema = LabelSchema(
        "mixed",
        (
            LabelClass(1, "water", GREY, kind="stuff"),
            LabelClass(2, "building", GREY, kind="objects"),
        ),
    )
    a = np.zeros((10, 10), np.uint8)
    a[:, :3] = 1
    a[5:7, 5:7] = 2
    a[1:3, 5:7] = 2
    parts = Instances.from_classes(a, schema)
    result = compare(a, a, (1.0, 1.0), schema=schema, instances=(parts, parts))
    assert list(result["instances"]["classes"]) == ["2"]
    assert result["instances"]["classes"]["2"]["count_a"] == 2
    assert "levels" not in result, "a flat schema has no levels"


def test_agreement_levels_and_instances_per_pair():
    schema = tree_schema("objects")
    a = np.zeros((10, 10), np.uint8)
    a[1:4, 1:4] = 2
    a[6:9, 6:9] = 3
    b = a.copy()
    b[6:9, 6:9] = 2
    maps = [a, b, a]
    result = agreement(
        maps, (1.0, 1.0), schema=schema, instances=[Instances.from_classes(m, schema) for m in maps]
    )
    assert result["levels"] == {
        "vehicle": {"id": 1, "depth": 0},
        "vehicle/car": {"id": 2, "depth": 1},
        "vehicle/truck": {"id": 3, "depth": 1},
    }
    first = result["pairs"][0]
    assert first["levels"]["vehicle"] == 1.0 and first["levels"]["vehicle/truck"] == 0.0
    assert first["instances"]["classes"]["vehicle"]["matched"] == 2
    assert first["instances"]["overall"]["matched"] == 1
    assert result["pairs"][1]["instances"]["overall"]["pq"] == 1.0, "a against a"
    with pytest.raises(ValueError, match="instance maps"):
        agreement(maps, (1.0, 1.0), instances=[Instances.from_classes(a)])


# ---------------------------------------------------------------- real labels


@pytest.fixture(scope="module")
def totalseg(shared_data):
    image = nib.load(shared_data / TOTALSEG_LABELS)
    return np.asarray(image.dataobj).astype(np.uint8), tuple(map(float, image.header.get_zooms()))


def test_real_labels_against_themselves(totalseg):
    labels, spacing = totalseg
    parts = Instances.from_classes(labels)
    overall = compare(labels, labels, spacing, instances=(parts, parts))["instances"]["overall"]
    assert overall["count_a"] == 33, "23 structures, 33 connected parts"
    assert overall["pq"] == 1.0 and overall["f1"] == 1.0 and overall["matched"] == 33


def test_real_labels_with_an_eroded_organ(totalseg):
    labels, spacing = totalseg
    a = Instances.from_classes(labels)
    # the spleen (1) eroded by 2 voxels keeps 574 of 1941 voxels: IoU 0.30, unmatched
    spleen = labels == 1
    eroded = labels.copy()
    eroded[spleen & ~ndimage.binary_erosion(spleen, iterations=2)] = 0
    result = compare(labels, eroded, spacing, instances=(a, Instances.from_classes(eroded)))
    one, overall = result["instances"]["classes"]["1"], result["instances"]["overall"]
    assert one["count_a"] == one["count_b"] == 1 and one["matched"] == 0 and one["pq"] == 0
    assert overall["matched"] == 32 and overall["count_difference"] == 0
    assert overall["f1"] == pytest.approx(64 / 66) and overall["pq"] == pytest.approx(64 / 66)
    assert result["classes"]["1"]["dice"] == pytest.approx(2 * 574 / (1941 + 574))
    # the liver (5, two parts) eroded by 2 voxels: each part matched at its own IoU
    liver = labels == 5
    kept = ndimage.binary_erosion(liver, iterations=2)
    eroded = labels.copy()
    eroded[liver & ~kept] = 0
    parts, count = ndimage.label(liver)
    ious = [np.count_nonzero(kept & (parts == k)) / np.count_nonzero(parts == k) for k in (1, 2)]
    expected = [iou for iou in ious if iou >= 0.5]
    five = instance_figures(a, Instances.from_classes(eroded), [5])["classes"]["5"]
    assert count == 2 and five["matched"] == len(expected) >= 1
    assert five["sq"] == pytest.approx(np.mean(expected))
    assert five["pq"] == pytest.approx(np.mean(expected) * five["f1"]) and five["pq"] < 1
