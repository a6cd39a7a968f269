"""Resample irregular stacks to a regular grid, only when the user asks for it.

Two cases, as dcm2niix's ``_Eq`` and ``_Tilt`` outputs handle them:

- unequal slice spacing (missing slices): interpolate along the slice normal
  onto equal steps (the smallest acquired step, so no acquired slice is lost
  and acquired slices keep their exact values);
- gantry tilt (slices sheared along their column direction): shift each
  slice in-plane so the stack becomes orthogonal, with the slice step along
  the slice normal and the in-plane grid grown to hold every shifted slice.

Arrays are acquired stacks ``(k, j, i)`` with affines to LPS ``(z, y, x)``.
Interpolation is linear; integer images are rounded back to their dtype.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage


def _restore_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype, copy=False)


def equalize_spacing(
    array: np.ndarray, distances: np.ndarray, affine: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate unequally spaced slices onto equal steps.

    Parameters
    ----------
    array
        Acquired stack (k, j, i), slices sorted along the normal.
    distances
        Position of each slice along the normal, in mm from the first.
    affine
        Stack affine whose slice column is the mean step vector (first to last
        slice divided by the number of steps), as :func:`.geometry.stack_geometry` gives.

    Returns
    -------
    array, affine
        The regular stack and its exact affine. The new step is the smallest
        acquired step, adjusted so the first and last slices stay in place.
    """
    distances = np.asarray(distances, dtype=float)
    n = len(distances)
    total = float(distances[-1])
    smallest = float(np.min(np.diff(distances)))
    n_new = round(total / smallest) + 1
    targets = np.linspace(0.0, total, n_new)
    upper = np.clip(np.searchsorted(distances, targets, side="left"), 1, n - 1)
    lower = upper - 1
    span = distances[upper] - distances[lower]
    weight = np.clip((targets - distances[lower]) / span, 0.0, 1.0)
    weight = np.where(np.isclose(weight, 0.0, atol=1e-6), 0.0, weight)
    weight = np.where(np.isclose(weight, 1.0, atol=1e-6), 1.0, weight)
    w = weight[:, None, None].astype(np.float32)
    values = array[lower].astype(np.float32) * (1 - w) + array[upper].astype(np.float32) * w
    new_affine = np.asarray(affine, dtype=float).copy()
    new_affine[:3, 0] *= (n - 1) / (n_new - 1)
    return _restore_dtype(values, array.dtype), new_affine


def remove_tilt(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resample a sheared (gantry-tilted) stack onto an orthogonal grid.

    Each slice keeps its own plane; it is shifted in-plane by the shear so
    that the slice step runs along the slice normal. The in-plane grid grows
    by the total shift, so nothing is cut off; new pixels take the image minimum.

    Returns
    -------
    array, affine
        The orthogonal stack and its exact affine.
    """
    affine = np.asarray(affine, dtype=float)
    step, row_step, column_step = affine[:3, 0], affine[:3, 1], affine[:3, 2]
    normal = np.cross(row_step, column_step)
    normal /= np.linalg.norm(normal)
    if np.dot(normal, step) < 0:
        normal = -normal
    depth = float(np.dot(step, normal))
    shear = step - depth * normal
    # shear = rows_per_slice * row_step + columns_per_slice * column_step
    (rows_per_slice, columns_per_slice), *_ = np.linalg.lstsq(
        np.column_stack([row_step, column_step]), shear, rcond=None
    )
    n, rows, columns = array.shape
    total_rows, total_columns = rows_per_slice * (n - 1), columns_per_slice * (n - 1)
    row_origin = math.floor(min(0.0, total_rows) + 1e-6)
    column_origin = math.floor(min(0.0, total_columns) + 1e-6)
    new_rows = rows + math.ceil(abs(total_rows) - 1e-6)
    new_columns = columns + math.ceil(abs(total_columns) - 1e-6)
    fill = float(array.min())
    out = np.empty((n, new_rows, new_columns), dtype=np.float32)
    for k in range(n):
        ndimage.affine_transform(
            array[k].astype(np.float32),
            matrix=np.ones(2),
            offset=(row_origin - k * rows_per_slice, column_origin - k * columns_per_slice),
            output_shape=(new_rows, new_columns),
            output=out[k],
            order=1,
            mode="constant",
            cval=fill,
        )
    new_affine = affine.copy()
    new_affine[:3, 0] = depth * normal
    new_affine[:3, 3] = affine[:3, 3] + row_origin * row_step + column_origin * column_step
    return _restore_dtype(out, array.dtype), new_affine
