"""Apply core edits to napari layers through the Labels undo history, and read layer context."""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_domainseg._napari import _layer_state as state

Edit = tuple[tuple[np.ndarray, ...], Any]


def apply_edits(labels: Any, edits: list[Edit]) -> int:
    """Apply ``(indices, value)`` edits as one undo step (Ctrl+Z undoes them together).

    Returns the number of voxels changed.
    """
    changed = 0
    with labels.block_history():
        for indices, value in edits:
            if len(indices) and len(indices[0]):
                before = np.asarray(labels.data[indices]).copy()
                labels.data_setitem(indices, value)
                changed += int(np.count_nonzero(before != value))
    return changed


def physical_spacing(layer: Any) -> tuple[float, ...]:
    """Size of a data step along each axis in world units (mm, or map units)."""
    linear = np.asarray(layer.affine.affine_matrix)[:-1, :-1] @ np.diag(layer.scale)
    return tuple(float(v) for v in np.linalg.norm(linear, axis=0))


def element_size(layer: Any) -> tuple[float, str, float]:
    """Voxel volume or pixel area, and the unit to report sizes in (mL or ha)."""
    spacing = physical_spacing(layer)
    size = float(np.prod(spacing))
    domain = state.domain_of(layer)
    if domain == "medical" and len(spacing) == 3:
        return size, "mL", 1e-3
    if domain == "geo":
        return size, "ha", 1e-4
    return size, "units", 1.0


def slice_axis(viewer: Any) -> int:
    """The axis the dims slider steps through (the first non-displayed axis)."""
    return int(viewer.dims.order[0])


def current_index(viewer: Any, layer: Any, axis: int) -> int:
    """The data index of ``layer`` along ``axis`` at the current dims point."""
    world = np.asarray(viewer.dims.point)[-layer.ndim :]
    data = np.asarray(layer.world_to_data(world))
    return int(np.clip(np.round(data[axis]), 0, layer.data.shape[axis] - 1))


def cursor_index(viewer: Any, layer: Any) -> tuple[int, ...] | None:
    """The data index under the cursor, or ``None`` outside the layer."""
    data = np.round(np.asarray(layer.world_to_data(viewer.cursor.position))).astype(int)
    if np.any(data < 0) or np.any(data >= np.asarray(layer.data.shape[-len(data) :])):
        return None
    return tuple(int(v) for v in data)
