"""Which slices of a volume are annotated, and moving labels between slices."""

from __future__ import annotations

import numpy as np

from napari_domainseg.ops.planes import plane_indices


def annotated_slices(labels: np.ndarray, axis: int = 0) -> dict[int, np.ndarray]:
    """For each class present, the sorted indices of the slices along ``axis`` that hold it.

    One pass over the volume: per slice, the classes it contains.
    """
    moved = np.moveaxis(np.asarray(labels), axis, 0)
    result: dict[int, list[int]] = {}
    for index in range(moved.shape[0]):
        for value in np.unique(moved[index]):
            if value != 0:
                result.setdefault(int(value), []).append(index)
    return {value: np.asarray(indices) for value, indices in sorted(result.items())}


def coverage_text(slices: dict[int, np.ndarray], class_id: int, n_slices: int) -> str:
    """``"annotated 12 of 300 slices"`` for one class."""
    count = len(slices.get(class_id, ()))
    return f"annotated {count} of {n_slices} slices"


def neighbour_slice(slices: np.ndarray, current: int, direction: int) -> int | None:
    """The next (``direction`` 1) or previous (-1) annotated slice after ``current``, if any."""
    slices = np.asarray(slices)
    candidates = slices[slices > current] if direction > 0 else slices[slices < current][::-1]
    return int(candidates[0]) if len(candidates) else None


def copy_slice(
    labels: np.ndarray, axis: int, source: int, target: int, only_unlabeled: bool = True
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The edit that copies slice ``source``'s labels onto slice ``target``.

    Returns ``(indices, values)`` for the voxels to change (full-volume index
    arrays, as napari's ``Labels.data_setitem`` takes them), so the caller
    applies it with undo. With ``only_unlabeled``, labelled target voxels are kept.
    """
    labels = np.asarray(labels)
    source_plane = np.take(labels, source, axis=axis)
    target_plane = np.take(labels, target, axis=axis)
    change = (source_plane != 0) & (source_plane != target_plane)
    if only_unlabeled:
        change &= target_plane == 0
    return plane_indices(change, axis, target), source_plane[change]
