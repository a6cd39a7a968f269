"""Planes of a volume (ops.planes): the plane through a point, and its mask put back."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from napari_domainseg.medical.series import read_series
from napari_domainseg.ops.planes import (
    on_plane,
    plane_indices,
    plane_through,
    slab,
    to_slab,
    without_axis,
)
from napari_domainseg.ops.region import grow_region, magic_wand
from napari_domainseg.ops.threshold import threshold_mask


@pytest.fixture(scope="module")
def head_ct(shared_data):
    return read_series(shared_data / "medical/ct_head_study").volume


def test_without_axis_and_slab():
    assert without_axis((4, 5, 6), 1) == (4, 6)
    assert without_axis([0.5, 0.8, 5.0], 2) == (0.5, 0.8)
    assert slab(3, 0, 7) == (slice(7, 8), slice(None), slice(None))
    assert slab(3, 2, 0) == (slice(None), slice(None), slice(0, 1))
    with pytest.raises(ValueError, match="axis 3"):
        slab(3, 3, 0)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_plane_through_a_real_ct_along_every_axis(head_ct, axis):
    volume = head_ct.array
    point = tuple(s // 2 for s in volume.shape)
    plane, point_2d = plane_through(volume, point, axis)
    np.testing.assert_array_equal(plane, np.take(volume, point[axis], axis=axis))
    assert point_2d == without_axis(point, axis)
    assert plane[point_2d] == volume[point]


def test_plane_through_reads_only_that_plane_of_a_lazy_volume(head_ct):
    volume = da.from_array(head_ct.array, chunks=(1, -1, -1))
    plane, _ = plane_through(volume, (3, 0, 0), 0)
    assert isinstance(plane, np.ndarray)
    np.testing.assert_array_equal(plane, head_ct.array[3])


def test_plane_through_rejects_a_point_outside_the_volume():
    volume = np.zeros((4, 5, 6))
    with pytest.raises(ValueError, match="plane 4 is outside axis 0"):
        plane_through(volume, (4, 0, 0), 0)
    with pytest.raises(ValueError, match="2 coordinates"):
        plane_through(volume, (1, 1), 0)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_a_plane_mask_goes_back_to_the_same_voxels(axis):
    rng = np.random.default_rng(0)
    volume = rng.random((6, 7, 8)) > 0.5
    index = 3
    mask, _ = plane_through(volume, [index] * 3, axis)
    written = np.zeros_like(volume)
    written[plane_indices(mask, axis, index)] = True
    expected = np.zeros_like(volume)
    expected[slab(3, axis, index)] = to_slab(mask, axis)
    np.testing.assert_array_equal(written, expected)
    np.testing.assert_array_equal(np.take(written, index, axis=axis), mask)
    assert written.sum() == mask.sum()


def test_growing_on_the_plane_through_the_seed_of_a_real_ct(head_ct):
    volume, spacing = head_ct.array, head_ct.spacing
    bone = threshold_mask(volume, 300, 3000)
    seed = tuple(int(v) for v in np.argwhere(bone)[len(np.argwhere(bone)) // 2])
    axis = 0
    in_plane = without_axis(spacing, axis)
    grown = on_plane(
        lambda plane, s: grow_region(plane, s, 300, 3000, in_plane), volume, seed, axis
    )
    assert grown.shape == (1, *volume.shape[1:])
    region = slab(3, axis, seed[axis])
    assert grown[0][seed[1:]] and not (grown & ~bone[region]).any()
    np.testing.assert_array_equal(
        grown[0], grow_region(volume[seed[0]], seed[1:], 300, 3000, in_plane)
    )


def test_the_wand_on_a_sagittal_plane_stays_in_that_plane(head_ct):
    volume = head_ct.array
    seed = (volume.shape[0] // 2, volume.shape[1] // 2, volume.shape[2] // 2)
    mask = on_plane(lambda plane, s: magic_wand(plane, s, 50.0), volume, seed, 2)
    assert mask.shape == (*volume.shape[:2], 1) and mask[seed[0], seed[1], 0]
    plane = volume[:, :, seed[2]].astype(float)
    assert (np.abs(plane[mask[..., 0]] - float(volume[seed])) <= 50.0).all()
