"""Clean-up of one class at a time: islands, largest component, holes, smoothing.

Sizes are physical (mm3 for volumes, m2 for rasters) through the pixel spacing.
Each function returns the new mask of the class; :func:`class_edit` turns it
into the voxels to change.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def _voxel_size(spacing: Sequence[float]) -> float:
    return float(np.prod(spacing))


def remove_islands(mask: np.ndarray, min_size: float, spacing: Sequence[float]) -> np.ndarray:
    """``mask`` without connected components smaller than ``min_size`` (physical units)."""
    components, count = ndimage.label(mask)
    if count == 0:
        return mask.copy()
    sizes = np.bincount(components.ravel())[1:] * _voxel_size(spacing)
    keep = np.concatenate([[False], sizes >= min_size])
    return keep[components]


def keep_largest(mask: np.ndarray) -> np.ndarray:
    """Only the largest connected component of ``mask``."""
    components, count = ndimage.label(mask)
    if count <= 1:
        return mask.copy()
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return components == int(np.argmax(sizes))


def fill_holes(mask: np.ndarray, axis: int | None = None) -> np.ndarray:
    """``mask`` with enclosed holes filled, in 3D or slice by slice along ``axis``."""
    if axis is None or mask.ndim == 2:
        return ndimage.binary_fill_holes(mask)
    moved = np.moveaxis(mask, axis, 0)
    filled = np.stack([ndimage.binary_fill_holes(plane) for plane in moved])
    return np.moveaxis(filled, 0, axis)


def _structure(radius: float, spacing: Sequence[float]) -> np.ndarray:
    """An ellipsoidal structuring element of physical ``radius``."""
    half = [max(0, int(radius // s)) for s in spacing]
    grids = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    scale = max(radius, 1e-12)
    distance = sum((g * s / scale) ** 2 for g, s in zip(grids, spacing, strict=True))
    return distance <= 1.0


def smooth(mask: np.ndarray, operation: str, radius: float, spacing: Sequence[float]) -> np.ndarray:
    """Morphological ``"opening"``, ``"closing"`` or ``"median"`` of physical ``radius``."""
    structure = _structure(radius, spacing)
    if operation == "opening":
        return ndimage.binary_opening(mask, structure)
    if operation == "closing":
        return ndimage.binary_closing(mask, structure)
    if operation == "median":
        return ndimage.median_filter(mask.astype(np.uint8), footprint=structure).astype(bool)
    raise ValueError(f"unknown smoothing {operation!r}: use opening, closing or median")


def class_edit(
    labels: np.ndarray, class_id: int, new_mask: np.ndarray
) -> list[tuple[tuple[np.ndarray, ...], int]]:
    """Edits turning the class into ``new_mask``: removals to 0, additions over 0 only."""
    old = labels == class_id
    removed = old & ~new_mask
    added = new_mask & ~old & (labels == 0)
    edits = []
    if removed.any():
        edits.append((np.nonzero(removed), 0))
    if added.any():
        edits.append((np.nonzero(added), class_id))
    return edits
