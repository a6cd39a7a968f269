"""Instances: the core model (labels/instances.py), its edits (ops/instances.py), statistics.

Real data: the TotalSegmentator MR labels (23 structures, some in several parts) read as a class
map; synthetic maps where a property needs exact control (touching objects, holes, gaps, more
than 255 and 65535 instances).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_domainseg.files import load
from napari_domainseg.labels.instances import (
    Instance,
    InstanceError,
    InstanceTable,
    check_instances,
    instance_dtype,
    repair,
    semantic_map,
)
from napari_domainseg.labels.schema import AttributeSpec, LabelClass, LabelSchema
from napari_domainseg.ops.instances import (
    add_to_instance,
    delete_instances,
    make_instances,
    merge_instances,
    new_instance,
    paint_new_object,
    relabel_instance,
    snap_to_neighbours,
    split_instance,
)
from napari_domainseg.ops.statistics import class_summary, instance_statistics, size_unit

MR = "medical/totalseg_mr"
OBJECTS = {5, 7, 15, 19, 20}  # liver, pancreas, colon, vertebrae, discs: several parts each


def _class(class_id, name, parent=None, kind="stuff", attributes=()):
    return LabelClass(
        class_id,
        name,
        (class_id % 256, 80, 160, 255),
        parent=parent,
        kind=kind,
        attributes=attributes,
    )


@pytest.fixture(scope="module")
def mr_labels(shared_data):
    read = load(shared_data / MR / "labels.nii.gz")
    return np.asarray(read.array), read.spacing, read.unit


@pytest.fixture(scope="module")
def mr_image(shared_data):
    return np.asarray(load(shared_data / MR / "mr.nii.gz", labels=False).array)


@pytest.fixture(scope="module")
def mr_schema(mr_labels):
    """The MR's classes under two parents: 'organs' (stuff) and 'spine' (objects below it)."""
    present = [int(c) for c in np.unique(mr_labels[0]) if c]
    spine = (19, 20, 21)
    classes = [_class(100, "organs"), _class(101, "spine")]
    for class_id in present:
        parent = 101 if class_id in spine else 100
        kind = "objects" if class_id in OBJECTS else "stuff"
        confidence = (
            (AttributeSpec("confidence", "float", default=1.0),) if kind == "objects" else ()
        )
        classes.append(_class(class_id, f"s{class_id}", parent, kind, confidence))
    return LabelSchema("totalseg mr", tuple(classes))


def _table(*classes, provenance="manual"):
    return InstanceTable(tuple(Instance(i + 1, c, {}, provenance) for i, c in enumerate(classes)))


# --------------------------------------------------------------------------- real data


def test_make_instances_on_the_real_mr_gives_back_the_class_map_exactly(mr_labels, mr_schema):
    classes = mr_labels[0]
    instance_map, table = make_instances(classes, mr_schema)
    assert instance_map.dtype == np.uint16
    np.testing.assert_array_equal(semantic_map(instance_map, table), classes)
    assert (
        check_instances(instance_map, table).ok and not check_instances(instance_map, table).unused
    )
    for class_id in (int(c) for c in np.unique(classes) if c):
        ids = table.ids_of_class(class_id)
        parts = ndimage.label(classes == class_id)[1]
        expected = parts if class_id in OBJECTS else 1
        assert len(ids) == expected, f"class {class_id}: {len(ids)} instances, not {expected}"
        for instance_id in ids:  # each object instance is one connected part
            if class_id in OBJECTS:
                assert ndimage.label(instance_map == instance_id)[1] == 1
    assert len(table.ids_of_class(101, mr_schema)) == sum(
        len(table.ids_of_class(c)) for c in (19, 20, 21)
    )
    colon = table[table.ids_of_class(15)[0]]
    assert colon.provenance == "assisted" and colon.attributes == {"confidence": 1.0}
    assert table[table.ids_of_class(1)[0]].attributes == {}, "a stuff class without attributes"


def test_make_instances_min_size_drops_small_parts_only(mr_labels, mr_schema):
    classes = mr_labels[0]
    pieces, _ = ndimage.label(classes == 15)
    sizes = np.bincount(pieces.ravel())[1:]
    limit = int(np.sort(sizes)[-2])  # keep the two largest colon parts
    instance_map, table = make_instances(classes, mr_schema, min_size=limit)
    assert len(table.ids_of_class(15)) == 2
    derived = semantic_map(instance_map, table)
    changed = derived != classes
    assert changed.any() and (derived[changed] == 0).all(), "small parts become unlabeled"
    assert set(np.unique(classes[changed])) <= OBJECTS, "stuff classes keep every part"
    assert (derived[np.isin(classes, [1, 2, 3, 21])] != 0).all()


def test_instance_statistics_on_the_real_mr(mr_labels, mr_image, mr_schema):
    classes, spacing, unit = mr_labels
    instance_map, table = make_instances(classes, mr_schema)
    rows = instance_statistics(instance_map, table, spacing, unit, mr_image, mr_schema)
    assert len(rows) == len(table)
    voxel_ml = float(np.prod(spacing)) / 1000
    for row in rows:
        inside = instance_map == row.id
        assert row.voxels == int(inside.sum())
        assert row.unit == "mL" and row.size == pytest.approx(row.voxels * voxel_ml)
        assert row.mean == pytest.approx(mr_image[inside].mean())
        assert row.sd == pytest.approx(mr_image[inside].std(), rel=1e-6, abs=1e-6)
        assert row.class_path == mr_schema.path(row.class_id)
    liver = [r for r in rows if r.class_id == 5]
    assert [r.number for r in liver] == [1, 2] and liver[0].class_path == "organs/s5"
    summary = {s.class_id: s for s in class_summary(rows, mr_schema)}
    spine = summary[101]
    assert spine.own_instances == 0 and spine.depth == 0 and spine.class_path == "spine"
    assert spine.instances == sum(summary[c].instances for c in (19, 20, 21))
    assert spine.voxels == int(np.isin(classes, (19, 20, 21)).sum())
    assert spine.mean == pytest.approx(mr_image[np.isin(classes, (19, 20, 21))].mean())
    assert summary[100].voxels + spine.voxels == int((classes != 0).sum())
    assert summary[19].instances == 2 and summary[19].depth == 1


# --------------------------------------------------------------------------- the table


def test_table_round_trips_and_checks():
    table = InstanceTable(
        (Instance(300, 2, {"occluded": True}, "assisted"), Instance(1, 1), Instance(7, 1))
    )
    assert table.ids == (1, 7, 300) and table.next_id() == 301
    assert table.number_in_class(7) == 2 and table.dtype == np.uint16
    assert InstanceTable.from_records(table.to_records()) == table
    assert InstanceTable.from_features(table.to_features()) == table
    features = table.to_features()
    features["provenance"][0] = float("nan")  # an empty cell, as pandas gives it
    assert InstanceTable.from_features(features)[1].provenance == "manual"
    with pytest.raises(InstanceError, match="listed twice"):
        InstanceTable((Instance(1, 1), Instance(1, 2)))
    with pytest.raises(InstanceError, match="provenance"):
        Instance(1, 1, provenance="guessed")
    assert instance_dtype(65535) == np.uint16 and instance_dtype(65536) == np.uint32


def test_check_and_repair_never_drop_an_untabled_id():
    instance_map = np.zeros((4, 4), np.uint8)  # a uint8 map, a table with ids beyond uint8
    instance_map[0, 0], instance_map[1, 1], instance_map[2, 2] = 1, 9, 12
    table = InstanceTable((Instance(1, 1), Instance(300, 1)))
    check = check_instances(instance_map, table)
    assert check.untabled == (9, 12) and check.unused == (300,) and not check.ok
    assert "9, 12" in check.message()
    assert semantic_map(instance_map, table)[1, 1] == 0
    repaired = repair(instance_map, table, class_id=5)
    assert check_instances(instance_map, repaired).ok
    assert repaired[9].class_id == 5 and repaired[12].provenance == "imported"
    many = np.arange(1, 20001, dtype=np.uint16).reshape(100, 200)
    assert len(repair(many, InstanceTable(), 1)) == 20000


# --------------------------------------------------------------------------- painting


def test_new_objects_against_a_neighbour_share_the_border_and_stay_separate():
    instance_map = np.zeros((20, 20), np.uint16)
    first = paint_new_object(instance_map, InstanceTable(), _box(2, 10, 2, 10), 3)
    assert first.instance_ids == (1,) and not instance_map.any(), "the input is not modified"
    stroke = _box(5, 15, 5, 15)  # overlaps the first object
    before = first.instance_map.copy()
    second = paint_new_object(*first, stroke, 3, attributes={"occluded": True})
    instance_map, table = second
    np.testing.assert_array_equal(first.instance_map, before)
    assert second.instance_ids == (2,) and table[2].attributes == {"occluded": True}
    assert (instance_map[_box(2, 10, 2, 10)] == 1).all(), "no overlap: the first stays whole"
    assert (instance_map[stroke & ~_box(2, 10, 2, 10)] == 2).all(), "no gap"
    assert (semantic_map(instance_map, table)[instance_map > 0] == 3).all()
    rows = instance_statistics(instance_map, table, (0.5, 0.5), "m")
    assert [(r.id, r.voxels, r.size, r.unit) for r in rows] == [
        (1, 64, 16.0, "m2"),
        (2, 100 - 25, 75 * 0.25, "m2"),
    ]
    assert class_summary(rows)[0].instances == 2, "touching instances of one class: two"
    over = paint_new_object(instance_map, table, stroke, 4, only_unlabeled=False)
    assert (over.instance_map[stroke] == 3).all() and over.instance_map[2, 2] == 1
    nothing = paint_new_object(instance_map, table, _box(2, 4, 2, 4), 3)
    assert nothing.instance_ids == () and nothing.table == table and not len(nothing.edit)


def test_an_edit_is_one_undo_step_on_the_layer_data():
    instance_map = np.zeros((10, 10), np.uint16)
    result = paint_new_object(instance_map, InstanceTable(), _box(0, 5, 0, 5, (10, 10)), 1)
    layer = instance_map.copy()
    result.edit.apply_in_place(layer)
    np.testing.assert_array_equal(layer, result.instance_map)
    result.edit.revert_in_place(layer)
    np.testing.assert_array_equal(layer, instance_map)
    grown = add_to_instance(*result, _box(3, 8, 3, 8, (10, 10)), 1)
    assert len(grown.edit) == 25 - 4 and (grown.edit.old_values == 0).all()
    with pytest.raises(InstanceError, match="not in the instance table"):
        add_to_instance(*result, _box(3, 8, 3, 8, (10, 10)), 2)


def test_ids_never_reuse_an_untabled_painted_id_and_widen_past_65535():
    instance_map = np.zeros((4, 4), np.uint16)
    instance_map[0, 0] = 65535  # painted, not in the table
    result = paint_new_object(instance_map, InstanceTable(), _box(2, 4, 2, 4, (4, 4)), 1)
    assert result.instance_ids == (65536,) and result.instance_map.dtype == np.uint32
    assert result.instance_map[0, 0] == 65535 and result.instance_map[3, 3] == 65536
    table, instance_id = new_instance(InstanceTable(), 2, {"confidence": 0.5})
    assert instance_id == 1 and table[1].attributes == {"confidence": 0.5}
    assert relabel_instance(table, 1, 4)[1].class_id == 4
    with pytest.raises(InstanceError):
        relabel_instance(table, 9, 4)


def test_more_than_255_and_65535_instances():
    dots = np.zeros((40, 40), np.uint8)
    dots[::2, ::2] = 1  # 400 separate pixels of one "objects" class
    instance_map, table = make_instances(dots, None)
    assert len(table) == 400 and instance_map.dtype == np.uint16 and instance_map.max() == 400
    np.testing.assert_array_equal(semantic_map(instance_map, table), dots)
    rows, columns = np.indices((530, 530))
    many = ((rows + columns) % 2 == 0).astype(np.uint8)  # a checkerboard: diagonal neighbours
    instance_map, table = make_instances(many, None)
    assert len(table) == 530 * 530 // 2 and instance_map.dtype == np.uint32
    np.testing.assert_array_equal(semantic_map(instance_map, table), many)
    assert np.unique(instance_map).size == len(table) + 1
    joined, joined_table = make_instances(many, None, connectivity=2)
    assert len(joined_table) == 1 and joined.dtype == np.uint16, "one object at connectivity 2"
    rows = instance_statistics(instance_map, table, (1.0, 1.0), "")
    assert len(rows) == len(table) and {r.voxels for r in rows} == {1}
    assert rows[0].unit == "pixels"


def test_holes_stay_unlabeled_or_hold_their_own_instance():
    ring = np.zeros((3, 12, 12), np.uint8)
    ring[:, 2:10, 2:10] = 1
    ring[:, 4:8, 4:8] = 0  # a hole through the object
    ring[1, 5:7, 5:7] = 2  # a small object inside it on one slice
    schema = LabelSchema(
        "s", (_class(1, "wall", kind="objects"), _class(2, "core", kind="objects"))
    )
    instance_map, table = make_instances(ring, schema)
    assert len(table) == 2
    np.testing.assert_array_equal(semantic_map(instance_map, table), ring)
    assert (instance_map[:, 4:8, 4:8][ring[:, 4:8, 4:8] == 0] == 0).all()
    stuff = LabelSchema("s", (_class(1, "wall"), _class(2, "core")))
    split_parts = ring.copy()
    split_parts[:, 0, 0] = 1  # a second part of a "stuff" class: still one region
    _, stuff_table = make_instances(split_parts, stuff)
    assert len(stuff_table) == 2


# --------------------------------------------------------------------------- split, merge, delete


def test_split_by_a_stroke_then_merge_back_round_trip():
    instance_map = np.zeros((12, 20), np.uint16)
    instance_map[2:10, 2:18] = 1
    instance_map[2:10, 18:20] = 2  # a touching neighbour of another class
    table = InstanceTable((Instance(1, 7, {"occluded": True}, "assisted"), Instance(2, 8)))
    stroke = np.zeros_like(instance_map, bool)
    stroke[:, 7:9] = True  # a 2-pixel cut across the object, and beyond it
    original = instance_map.copy()
    result = split_instance(instance_map, table, 1, stroke)
    np.testing.assert_array_equal(instance_map, original)
    split, split_table = result
    assert result.instance_ids == (1, 3)
    assert split_table[3] == Instance(3, 7, {"occluded": True}, "assisted")
    assert ((split == 1) | (split == 3)).sum() == (original == 1).sum(), "no gap left"
    assert (split[original != 1] == original[original != 1]).all(), "nothing else changes"
    assert (split[2:10, 2:8] == 3).all() == (split[2:10, 9:18] == 1).all()
    left, right = split[5, 2], split[5, 17]
    assert {int(left), int(right)} == {1, 3} and right == 1, "the larger piece keeps the id"
    assert (split[2:10, 7] == left).all() and (split[2:10, 8] == right).all(), "nearest piece"
    merged, merged_table = merge_instances(split, split_table, [3, 1])
    np.testing.assert_array_equal(merged, original)
    assert merged_table == table
    layer = split.copy()
    result.edit.revert_in_place(layer)
    np.testing.assert_array_equal(layer, original)
    with pytest.raises(InstanceError, match="pass class_id"):
        merge_instances(split, split_table, [1, 2])
    relabelled = merge_instances(split, split_table, [1, 2, 3], class_id=8)
    assert (relabelled.instance_map[original > 0] == 1).all()
    assert relabelled.table.ids == (1,) and relabelled.table[1].class_id == 8


def test_split_that_leaves_one_piece_changes_nothing():
    instance_map = np.zeros((10, 10), np.uint16)
    instance_map[2:8, 2:8] = 1
    table = _table(1)
    notch = np.zeros_like(instance_map, bool)
    notch[2:5, 5] = True  # does not cut through
    result = split_instance(instance_map, table, 1, notch)
    assert result.instance_ids == () and not len(result.edit)
    np.testing.assert_array_equal(result.instance_map, instance_map)
    with pytest.raises(InstanceError, match="not in the instance table"):
        split_instance(instance_map, table, 5, notch)


def test_split_of_a_volume_by_a_stroke_on_one_slice_and_by_a_wall():
    volume = np.zeros((5, 10, 10), np.uint16)
    volume[:, 2:8, 2:8] = 1
    table = _table(4)
    stroke = np.zeros_like(volume, bool)
    stroke[2, :, 5] = True  # drawn on slice 2
    per_plane = split_instance(volume, table, 1, stroke)
    out = per_plane.instance_map
    assert per_plane.instance_ids == (1, 2)
    assert (out[[0, 1, 3, 4]] == 1)[volume[[0, 1, 3, 4]] == 1].all(), "other slices keep the id"
    assert set(np.unique(out[2][volume[2] == 1])) == {1, 2}
    assert (out[2, 2:8, 2:5] == 1).all() and (out[2, 2:8, 6:8] == 2).all(), "larger keeps id"
    assert np.unique(out[2, 2:8, 5]).size == 1, "the stroke column goes to one nearest piece"
    in_3d = split_instance(volume, table, 1, stroke, plane_axis=None)
    assert in_3d.instance_ids == (), "in 3D the slice alone does not cut the object"
    wall = np.zeros_like(volume, bool)
    wall[:, :, 3] = True  # a cut through every slice (it covers its own plane: a 3D cut)
    cut = split_instance(volume, table, 1, wall)
    assert cut.instance_ids == (1, 2)
    assert (cut.instance_map[:, 2:8, 4:8] == 1).all() and (cut.instance_map[:, 2:8, 2] == 2).all()
    assert ndimage.label(cut.instance_map == 2)[1] == 1
    assert (cut.instance_map == 2).sum() in (5 * 6, 5 * 6 * 2) and not len(
        np.setdiff1d(np.flatnonzero(volume), np.flatnonzero(cut.instance_map))
    ), "no gap"
    with pytest.raises(InstanceError, match="one plane"):
        split_instance(volume, table, 1, wall, plane_axis=0)


def test_delete_erases_and_drops():
    instance_map = np.array([[1, 1, 2], [3, 0, 2]], np.uint16)
    table = _table(1, 1)  # 3 is painted but untabled
    deleted, deleted_table = delete_instances(instance_map, table, [2, 3])
    np.testing.assert_array_equal(deleted, [[1, 1, 0], [0, 0, 0]])
    assert deleted_table.ids == (1,)
    with pytest.raises(InstanceError, match="no instance 9"):
        delete_instances(instance_map, table, [9])
    restored = np.array(deleted)
    delete_instances(instance_map, table, [2, 3]).edit.revert_in_place(restored)
    np.testing.assert_array_equal(restored, instance_map)


# --------------------------------------------------------------------------- snapping


def test_snap_closes_a_one_pixel_gap_and_never_overwrites():
    instance_map = np.zeros((12, 14), np.uint16)
    instance_map[2:10, 1:6] = 1
    instance_map[2:10, 7:12] = 2  # column 6 is a one-pixel crack between them
    instance_map[0, 0] = 3
    original = instance_map.copy()
    result = snap_to_neighbours(instance_map)
    snapped = result.instance_map
    np.testing.assert_array_equal(instance_map, original)
    assert (snapped[2:10, 6] == 1).all(), "a tie goes to the smaller id"
    assert (snapped[original != 0] == original[original != 0]).all(), "never overwrites"
    changed = snapped != original
    assert changed.sum() == 8 and (original[changed] == 0).all()
    assert len(result.edit) == 8 and result.table is None
    assert (snapped[1, :] == 0).all() and (snapped[:, 12:] == 0).all(), "the outside stays"
    wide = np.zeros((6, 12), np.uint16)
    wide[:, 0:4], wide[:, 6:10] = 1, 2  # a two-pixel gap
    assert not len(snap_to_neighbours(wide).edit)
    both = snap_to_neighbours(wide, max_gap_px=2).instance_map
    assert (both[:, 4] == 1).all() and (both[:, 5] == 2).all(), "each to the nearer"
    three = np.zeros((6, 12), np.uint16)
    three[:, 0:4], three[:, 7:10] = 1, 2  # three pixels apart: wider than max_gap_px=2
    assert not len(snap_to_neighbours(three, max_gap_px=2).edit)
    assert len(snap_to_neighbours(three, max_gap_px=3).edit) == 18


def test_snap_leaves_a_notch_of_one_object_and_works_on_volumes():
    notch = np.zeros((8, 8), np.uint16)
    notch[1:7, 1:7] = 1
    notch[1:5, 4] = 0  # a one-pixel slot inside one object: not a gap between two
    assert not len(snap_to_neighbours(notch).edit)
    volume = np.zeros((6, 5, 5), np.uint16)
    volume[:2], volume[3:] = 1, 2  # slice 2 is the crack, along axis 0
    snapped = snap_to_neighbours(volume).instance_map
    assert (snapped[2] == 1).all()
    big = np.zeros((300, 40, 40), np.uint16)  # more than one block of axis-0 planes
    big[:, :, :20], big[:, :, 21:] = 5, 6
    result = snap_to_neighbours(big)
    assert len(result.edit) == 300 * 40 and (result.instance_map[:, :, 20] == 5).all()


# --------------------------------------------------------------------------- units


def test_size_units():
    assert size_unit(3, "mm") == ("mL", 1e-3)
    assert size_unit(2, "metre") == ("m2", 1.0)
    assert size_unit(2, "mm") == ("mm2", 1.0)
    assert size_unit(3, None) == ("voxels", 1.0)
    assert size_unit(2, "US survey foot") == ("US survey foot2", 1.0)


def _box(r0, r1, c0, c1, shape=(20, 20)):
    mask = np.zeros(shape, bool)
    mask[r0:r1, c0:c1] = True
    return mask


def test_attribute_values_that_do_not_fit_are_named_and_still_exported(shared_data, tmp_path):
    import warnings

    from napari_domainseg.geo.export import export_labels
    from napari_domainseg.geo.grid import RasterGrid
    from napari_domainseg.labels.instances import attribute_problems
    from napari_domainseg.labels.presets import load_preset

    schema = load_preset("buildings")
    building = schema.by_path("built-up/building").id
    table = InstanceTable(
        (Instance(1, building, {"occluded": "yes"}), Instance(2, building, {"occluded": True}))
    )
    (problem,) = attribute_problems(table, schema)
    assert "instance 1 (built-up/building): occluded = 'yes' is not a bool" == problem
    import rasterio

    with rasterio.open(shared_data / "geo/landsat_rgb/RGB.byte.tif") as src:
        grid = RasterGrid.of_dataset(src)
    labels = np.zeros(grid.shape, np.uint16)
    labels[10:20, 10:20], labels[10:20, 20:30] = 1, 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (path,) = export_labels(tmp_path / "b.gpkg", labels, grid, schema, instances=table)
    assert path.exists()
    assert any("occluded = 'yes'" in str(w.message) and "b.gpkg" in str(w.message) for w in caught)
