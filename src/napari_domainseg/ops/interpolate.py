"""Fill between annotated slices: spacing-aware signed-distance interpolation of each class.

Between two slices that hold a class, each intermediate slice gets the
shape whose signed distance map is the linear blend of the two annotated
slices' maps (distances in millimetres or metres, so anisotropic pixels
interpolate correctly). Only unlabeled voxels are filled; slices beyond the
first and last annotated slice are left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
from scipy import ndimage

from napari_domainseg.ops.slices import annotated_slices


def signed_distance(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Signed distance to the mask's boundary, negative inside (physical units)."""
    if not mask.any():
        return np.full(mask.shape, np.inf)
    if mask.all():
        return np.full(mask.shape, -np.inf)
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing)
    inside = ndimage.distance_transform_edt(mask, sampling=spacing)
    return np.where(mask, -inside + 0.5 * min(spacing), outside - 0.5 * min(spacing))


def fill_between(
    labels: np.ndarray,
    class_id: int,
    axis: int = 0,
    spacing: Sequence[float] = (1.0, 1.0),
) -> np.ndarray:
    """Voxels to set to ``class_id`` so that it is interpolated between its annotated slices.

    Parameters
    ----------
    labels
        Label volume.
    class_id
        The class to interpolate.
    axis
        The slice axis (0, 1 or 2).
    spacing
        In-plane pixel spacing (the two remaining axes, in order), physical units.

    Returns
    -------
    numpy.ndarray
        Boolean mask of the voxels to fill: unlabeled voxels of intermediate slices only.
    """
    labels = np.asarray(labels)
    moved = np.moveaxis(labels, axis, 0)
    fill = np.zeros(moved.shape, dtype=bool)
    slices = annotated_slices(labels, axis).get(class_id, np.empty(0, int))
    for start, stop in pairwise(slices):
        if stop - start < 2:
            continue
        first = signed_distance(moved[start] == class_id, spacing)
        last = signed_distance(moved[stop] == class_id, spacing)
        for index in range(start + 1, stop):
            weight = (index - start) / (stop - start)
            with np.errstate(invalid="ignore"):
                blended = (1 - weight) * first + weight * last
            fill[index] = (blended < 0) & (moved[index] == 0)
    return np.moveaxis(fill, 0, axis)


def fill_between_classes(
    labels: np.ndarray, axis: int = 0, spacing: Sequence[float] = (1.0, 1.0)
) -> np.ndarray:
    """Labels with every class interpolated between its annotated slices, one class after another.

    Each class fills only voxels still unlabeled when its turn comes (classes in increasing
    order), so no voxel gets two classes and no drawn voxel changes.
    """
    out = np.array(labels, copy=True)
    for value in np.unique(out[out != 0]):
        out[fill_between(labels, int(value), axis, spacing) & (out == 0)] = value
    return out
