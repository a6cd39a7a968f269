"""Planes of a volume: the 2-D plane through a point along an axis, and back.

Region growing and the magic wand work on the slice the user is looking at: take the plane
through the seed (reading only that plane, so lazy arrays stay lazy), run the 2-D operation,
and put its mask back as a one-plane slab or as indices into the volume. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def _check_axis(ndim: int, axis: int) -> None:
    if not 0 <= axis < ndim:
        raise ValueError(f"axis {axis} is not an axis of a {ndim}-D array")


def without_axis(values: Sequence[T], axis: int) -> tuple[T, ...]:
    """``values`` (a point, a shape or a spacing) with the entry of ``axis`` left out."""
    _check_axis(len(values), axis)
    return tuple(v for i, v in enumerate(values) if i != axis)


def slab(ndim: int, axis: int, index: int) -> tuple[slice, ...]:
    """The slices selecting plane ``index`` along ``axis``, keeping the axis (one thick)."""
    _check_axis(ndim, axis)
    region = [slice(None)] * ndim
    region[axis] = slice(index, index + 1)
    return tuple(region)


def plane_through(volume: Any, point: Sequence[int], axis: int) -> tuple[np.ndarray, tuple]:
    """The 2-D plane of ``volume`` through ``point`` along ``axis``, and the point in it.

    Only that plane is read from ``volume`` (a numpy, dask or zarr array).
    """
    if len(point) != volume.ndim:
        raise ValueError(f"a point of {len(point)} coordinates in a {volume.ndim}-D volume")
    _check_axis(volume.ndim, axis)
    index = int(point[axis])
    if not 0 <= index < volume.shape[axis]:
        raise ValueError(f"plane {index} is outside axis {axis} of {volume.shape[axis]} planes")
    key = tuple(index if i == axis else slice(None) for i in range(volume.ndim))
    return np.asarray(volume[key]), without_axis(tuple(int(p) for p in point), axis)


def to_slab(mask: np.ndarray, axis: int) -> np.ndarray:
    """A 2-D plane mask as a one-plane slab of the volume (the axis put back, length 1)."""
    return np.expand_dims(np.asarray(mask), axis)


def plane_indices(mask: np.ndarray, axis: int, index: int) -> tuple[np.ndarray, ...]:
    """The volume indices of a 2-D plane mask's pixels, the plane being ``index`` along ``axis``."""
    in_plane = np.nonzero(np.asarray(mask))
    _check_axis(len(in_plane) + 1, axis)
    where = np.full(in_plane[0].shape, index, dtype=np.intp)
    return (*in_plane[:axis], where, *in_plane[axis:])


def on_plane(
    operation: Callable[[np.ndarray, tuple], np.ndarray],
    volume: Any,
    point: Sequence[int],
    axis: int,
) -> np.ndarray:
    """Run a 2-D ``operation(plane, point_2d)`` on the plane through ``point``; a slab mask.

    The result has the volume's shape with ``axis`` of length 1: the mask for
    ``volume[slab(volume.ndim, axis, point[axis])]``.
    """
    plane, point_2d = plane_through(volume, point, axis)
    return to_slab(operation(plane, point_2d), axis)
