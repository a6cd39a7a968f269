"""Annotation operations on real data: thresholds, region growing, clean-up, slices, statistics."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from napari_domainseg.geo.scene import find_band, open_scene
from napari_domainseg.medical.series import read_series
from napari_domainseg.ops.cleanup import (
    class_edit,
    fill_holes,
    keep_largest,
    remove_islands,
    smooth,
)
from napari_domainseg.ops.indices import ndvi, ndwi
from napari_domainseg.ops.interpolate import fill_between
from napari_domainseg.ops.recovery import RecoveryStore, recovery_key
from napari_domainseg.ops.region import grow_region, magic_wand
from napari_domainseg.ops.slices import annotated_slices, copy_slice, coverage_text, neighbour_slice
from napari_domainseg.ops.statistics import ClassStatistics, rows_to_csv
from napari_domainseg.ops.threshold import HU_RANGES, label_edit, threshold_mask


@pytest.fixture(scope="module")
def head_ct(shared_data):
    return read_series(shared_data / "medical/ct_head_study").volume


def test_bone_threshold_and_island_removal_on_a_real_ct(head_ct):
    spacing = head_ct.spacing
    bone = threshold_mask(head_ct.array, *HU_RANGES["bone"])
    assert 0.001 < bone.mean() < 0.2
    cleaned = remove_islands(bone, min_size=100.0, spacing=spacing)  # 0.1 mL
    assert cleaned.sum() <= bone.sum() and not (cleaned & ~bone).any()
    from scipy import ndimage

    components, count = ndimage.label(cleaned)
    sizes = np.bincount(components.ravel())[1:] * np.prod(spacing)
    assert count and sizes.min() >= 100.0
    removed_components, removed_count = ndimage.label(bone & ~cleaned)
    if removed_count:
        assert (np.bincount(removed_components.ravel())[1:] * np.prod(spacing)).max() < 100.0


def test_label_edit_honours_the_painting_policy():
    labels = np.array([[0, 2, 0], [1, 1, 0]], np.uint8)
    mask = np.ones_like(labels, bool)
    indices, value = label_edit(mask, labels, 1, "unlabeled")
    assert value == 1 and sorted(zip(*indices, strict=True)) == [(0, 0), (0, 2), (1, 2)]
    indices, _ = label_edit(mask, labels, 1, "overwrite")
    assert (0, 1) in set(zip(*indices, strict=True))


def test_fill_between_two_of_ten_slices_interpolates_the_shape():
    labels = np.zeros((10, 40, 40), np.uint8)
    rows, cols = np.indices((40, 40))
    labels[1][(rows - 20) ** 2 + (cols - 20) ** 2 <= 5**2] = 3
    labels[8][(rows - 20) ** 2 + (cols - 20) ** 2 <= 12**2] = 3
    labels[5, 0, 0] = 1  # another class in the way is never overwritten
    fill = fill_between(labels, 3, axis=0, spacing=(0.8, 0.8))
    assert not fill[[0, 1, 8, 9]].any(), "only between the annotated slices"
    areas = [fill[k].sum() for k in range(2, 8)]
    assert all(a < b for a, b in pairwise(areas)), "grows from 5 to 12 px radius"
    radius_mid = np.sqrt(fill[4].sum() / np.pi)
    assert 7.0 < radius_mid < 10.0
    assert not fill[5, 0, 0]


def test_fill_between_along_another_axis_with_anisotropic_spacing():
    labels = np.zeros((20, 6, 20), np.uint8)
    labels[5:15, 0, 5:15] = 2
    labels[5:15, 5, 5:15] = 2
    fill = fill_between(labels, 2, axis=1, spacing=(1.0, 1.0))
    assert fill[:, 1:5].sum() == 4 * 100


def test_slice_bookkeeping_and_copy():
    labels = np.zeros((6, 4, 4), np.uint8)
    labels[1, 0, 0] = labels[4, 1, 1] = 2
    labels[3, 2, 2] = 5
    slices = annotated_slices(labels)
    assert list(slices[2]) == [1, 4] and list(slices[5]) == [3]
    assert coverage_text(slices, 2, 6) == "annotated 2 of 6 slices"
    assert neighbour_slice(slices[2], 1, 1) == 4 and neighbour_slice(slices[2], 1, -1) is None
    indices, values = copy_slice(labels, 0, 4, 5)
    target = labels.copy()
    target[indices] = values
    np.testing.assert_array_equal(target[5], labels[4])


def test_region_growing_in_physical_units(head_ct):
    image = head_ct.array
    bone = threshold_mask(image, 300, 3000)
    seed = tuple(np.argwhere(bone)[len(np.argwhere(bone)) // 2])
    grown = grow_region(image, seed, lower=300, upper=3000, spacing=head_ct.spacing)
    assert grown[seed] and not (grown & ~bone).any()
    slice_grown = grow_region(
        image[seed[0]], seed[1:], lower=300, upper=3000, spacing=head_ct.spacing[1:]
    )
    assert slice_grown.ndim == 2 and slice_grown[seed[1:]]
    confident = grow_region(image, seed, spacing=head_ct.spacing)
    assert confident[seed]


def test_magic_wand_stays_within_tolerance():
    image = np.zeros((20, 20))
    image[5:10, 5:10] = 100
    image[12:15, 12:15] = 100  # same value, not connected
    mask = magic_wand(image, (6, 6), tolerance=10)
    assert mask.sum() == 25 and not mask[13, 13]


def test_cleanup_per_class():
    mask = np.zeros((30, 30), bool)
    mask[2:12, 2:12] = True
    mask[5:7, 5:7] = False  # hole
    mask[20:22, 20:22] = True  # island
    assert keep_largest(mask).sum() == 96
    assert fill_holes(mask)[5, 5]
    assert not smooth(mask, "opening", 2.0, (1.0, 1.0))[20, 20]
    labels = mask.astype(np.uint8) * 4
    edits = class_edit(labels, 4, keep_largest(mask))
    ((indices, value),) = edits
    assert value == 0 and len(indices[0]) == 4


def test_ndvi_on_a_four_band_scene(tmp_path):
    from napari_domainseg.geo.synthetic import write_synthetic_scene

    scene = open_scene(write_synthetic_scene(tmp_path / "scene.tif"))
    red, nir = find_band(list(scene.band_names), "red"), find_band(list(scene.band_names), "nir")
    assert (red, nir) == (2, 3)
    index = ndvi(scene.band_pyramid(nir)[0], scene.band_pyramid(red)[0])
    assert type(index).__module__.startswith("dask"), "computed lazily"
    vegetation = threshold_mask(np.asarray(index), 0.4, 1.0)
    assert 0.01 < vegetation.mean() < 0.99
    green = find_band(list(scene.band_names), "green")
    assert (
        np.nanmax(np.asarray(ndwi(scene.band_pyramid(green)[0], scene.band_pyramid(nir)[0]))) <= 1.0
    )


def test_statistics_in_millilitres_and_incremental_refresh(head_ct):
    labels = np.zeros(head_ct.shape, np.uint8)
    labels[threshold_mask(head_ct.array, 300, 3000)] = 5
    labels[10, 100:110, 100:110] = 2
    voxel = float(np.prod(head_ct.spacing))
    stats = ClassStatistics(labels, head_ct.array, voxel, "mL", 1e-3)
    rows = {r.label: r for r in stats.rows({5: "bone"})}
    assert rows[5].name == "bone" and rows[2].count == 100
    assert rows[2].size == pytest.approx(100 * voxel / 1000)
    under = head_ct.array[labels == 5]
    assert rows[5].mean == pytest.approx(under.mean()) and rows[5].sd == pytest.approx(
        under.std(), rel=1e-6
    )
    assert rows[5].minimum == under.min() and rows[5].maximum == under.max()
    assert sum(r.share for r in rows.values()) == pytest.approx(1.0)
    labels[12, 0:10, 0:10] = 2  # an edit on slice 12: refresh only that block
    stats.refresh([stats.block_of(12)])
    assert {r.label: r for r in stats.rows()}[2].count == 200
    assert rows_to_csv(stats.rows(), "mL").splitlines()[0].startswith("label,name,count,size_mL")


def test_recovery_store_keeps_the_newest_complete_save(tmp_path):
    store = RecoveryStore(tmp_path)
    key = recovery_key("1.2.3", (4, 5, 6))
    assert key == recovery_key("1.2.3", (4, 5, 6))
    assert store.latest(key) is None
    for value in range(1, 6):
        store.save(key, np.full((4, 5, 6), value, np.uint8), "liver", {"annotation_id": "a"})
        store.save(key, np.full((4, 5, 6), 10 + value, np.uint8), "tumour", {"annotation_id": "b"})
    latest = store.latest(key)
    assert latest.labels[0, 0, 0] == 15 and latest.name == "tumour"
    each = {r.name: int(r.labels[0, 0, 0]) for r in store.latest_each(key)}
    assert each == {"liver": 5, "tumour": 15}, "two layers of one image keep their own saves"
    assert len(list((tmp_path / key).glob("*.npy"))) == 6, "three saves kept per layer"
    (tmp_path / key / "99999999999999999999_b.npy").write_bytes(b"torn")  # a broken newest save
    assert store.latest(key).labels[0, 0, 0] == 15
    store.discard(key)
    assert store.latest(key) is None
