"""Patient geometry of a slice stack: order, spacing, tilt, and lossless reorientation.

Affines here map a homogeneous voxel index ``(k, j, i, 1)`` (slice, row,
column) to LPS world ``(z, y, x, 1)`` in millimetres, as in
:class:`~napari_domainseg.medical.volume.Volume`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from napari_domainseg.errors import DomainSegError

SPACING_TOLERANCE_MM = 0.01
"""Slice steps may differ by this much (plus 0.1 %) and still count as regular."""
TILT_TOLERANCE_DEG = 0.01
OBLIQUE_TOLERANCE_DEG = 0.01


class DicomGeometryError(DomainSegError, ValueError):
    """The slices do not form a volume (for example, all at one position)."""


class IrregularSpacingError(DicomGeometryError):
    """Slice spacing is not regular (missing slices); resampling must be asked for."""


@dataclass
class StackGeometry:
    """Where each slice of a stack lies.

    Attributes
    ----------
    order
        Indices that sort the input slices along the slice normal.
    affine
        Exact voxel-to-LPS affine of the sorted stack, tilt (shear) included.
    steps
        Distances in mm between consecutive sorted slices, along the normal.
    tilt_deg
        Angle between the slice-to-slice vector and the slice normal
        (gantry tilt); 0 for an ordinary stack.
    warnings
        Human-readable warnings with the measured numbers.
    """

    order: np.ndarray
    affine: np.ndarray
    steps: np.ndarray
    tilt_deg: float = 0.0
    warnings: list[str] = field(default_factory=list)
    distances: np.ndarray | None = None
    """Position of each sorted slice along the normal, in mm from the first."""

    @property
    def is_regular(self) -> bool:
        """True when the slices are equally spaced."""
        return steps_are_regular(self.steps)


def steps_are_regular(steps: np.ndarray) -> bool:
    """True when the slice steps are equal within :data:`SPACING_TOLERANCE_MM` (+0.1 %)."""
    if len(steps) < 2:
        return True
    tolerance = SPACING_TOLERANCE_MM + 1e-3 * float(np.median(steps))
    return bool(np.ptp(steps) <= tolerance)


def slice_normal(orientation: np.ndarray) -> np.ndarray:
    """Unit normal (row direction x column direction) of an ImageOrientationPatient."""
    row_direction, column_direction = orientation[:3], orientation[3:6]
    normal = np.cross(row_direction, column_direction)
    return normal / np.linalg.norm(normal)


def stack_geometry(
    positions: np.ndarray,
    orientation: np.ndarray,
    pixel_spacing: tuple[float, float],
    name: str = "series",
    allow_irregular: bool = False,
) -> StackGeometry:
    """Sort slices along their normal and measure the stack's geometry.

    Parameters
    ----------
    positions
        ImagePositionPatient of each slice, shape (n, 3), LPS (x, y, z).
    orientation
        ImageOrientationPatient (6 values) shared by all slices.
    pixel_spacing
        PixelSpacing (row spacing, column spacing) in mm.
    name
        Series name used in messages.
    allow_irregular
        Return the geometry of an unequally spaced stack (its affine then uses
        the mean step) instead of raising, so the caller can resample it.

    Raises
    ------
    DicomGeometryError
        If two slices share one position (not a volume).
    IrregularSpacingError
        If the steps between slices differ.
    """
    positions = np.asarray(positions, dtype=float)
    orientation = np.asarray(orientation, dtype=float)
    row_direction, column_direction = orientation[:3], orientation[3:6]
    normal = slice_normal(orientation)
    distances = positions @ normal
    order = np.argsort(distances, kind="stable")
    positions, distances = positions[order], distances[order]
    steps = np.diff(distances)
    warnings: list[str] = []
    n = len(positions)
    if n > 1 and np.any(steps < 1e-3):
        duplicates = int(np.sum(steps < 1e-3)) + 1
        if np.ptp(distances) < 1e-3:
            raise DicomGeometryError(
                f"{name}: all {n} images sit at one position ({distances[0]:.3f} mm along the "
                "slice normal): this is not a volume (a time series or repeated acquisition?). "
                "Open the images one at a time, or choose another series."
            )
        raise DicomGeometryError(
            f"{name}: {duplicates} images share a position along the slice normal: not a single "
            "volume (several acquisitions mixed in one series?)."
        )
    if n > 1 and not steps_are_regular(steps) and not allow_irregular:
        raise IrregularSpacingError(
            f"{name}: slice spacing is not regular: steps from {steps.min():.3f} to "
            f"{steps.max():.3f} mm (median {np.median(steps):.3f} mm) over {n} slices; "
            "slices may be missing. Stacking them as a regular volume would misplace labels; "
            "open it resampled to a regular grid (series picker: 'Resample irregular or tilted "
            "series'; command line: --resample), as dcm2niix's _Eq output does."
        )

    if n > 1:
        step_vector = (positions[-1] - positions[0]) / (n - 1)
    else:
        step_vector = normal * float(pixel_spacing[0])  # one slice: unit thickness along normal
    cosine = float(np.dot(step_vector, normal) / np.linalg.norm(step_vector))
    tilt_deg = float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))
    if tilt_deg > TILT_TOLERANCE_DEG:
        warnings.append(
            f"{name}: gantry tilt of {tilt_deg:.2f} degrees (measured from slice positions). "
            "Shown straightened on the acquired grid; exports keep the exact sheared geometry. "
            "If another tool needs an orthogonal grid, open it resampled (series picker: "
            "'Resample irregular or tilted series'; command line: --resample), as dcm2niix's "
            "_Tilt output does."
        )
    row_spacing, column_spacing = (float(v) for v in pixel_spacing)
    linear_xyz = np.column_stack(
        [step_vector, column_direction * row_spacing, row_direction * column_spacing]
    )
    affine = np.eye(4)
    affine[:3, :3] = linear_xyz[::-1]
    affine[:3, 3] = positions[0][::-1]
    return StackGeometry(
        order=order,
        affine=affine,
        steps=steps,
        tilt_deg=tilt_deg,
        warnings=warnings,
        distances=distances - distances[0],
    )


def obliquity_deg(affine: np.ndarray) -> float:
    """Largest angle in degrees between an array axis and its nearest patient axis."""
    linear = np.asarray(affine, dtype=float)[:3, :3]
    directions = linear / np.linalg.norm(linear, axis=0)
    return float(np.degrees(np.arccos(np.clip(np.abs(directions).max(axis=0), 0.0, 1.0))).max())


def is_axis_aligned(affine: np.ndarray) -> bool:
    """True when every array axis lies along a patient axis (within the oblique tolerance)."""
    return obliquity_deg(affine) <= OBLIQUE_TOLERANCE_DEG


def canonical_axes(affine: np.ndarray) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]]:
    """Permutation and flips that bring the array axes nearest to world (z, y, x), positive.

    Returns
    -------
    permutation
        ``permutation[w]`` is the current array axis that becomes array axis ``w``
        (which then runs along world axis ``w``).
    flips
        Whether the new axis ``w`` is reversed.
    """
    linear = np.asarray(affine, dtype=float)[:3, :3]
    directions = np.abs(linear / np.linalg.norm(linear, axis=0))
    permutation = [-1, -1, -1]
    taken: set[int] = set()
    # Greedy on the strongest alignments first, so a 45-degree case still yields a permutation.
    for flat in np.argsort(-directions, axis=None):
        world_axis, array_axis = np.unravel_index(flat, directions.shape)
        if permutation[world_axis] == -1 and array_axis not in taken:
            permutation[world_axis] = int(array_axis)
            taken.add(int(array_axis))
    flips = tuple(bool(linear[w, permutation[w]] < 0) for w in range(3))
    return (permutation[0], permutation[1], permutation[2]), flips  # type: ignore[return-value]


def reorient(
    array: np.ndarray, affine: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int], tuple[bool, bool, bool]]:
    """Permute and flip ``array`` (a view, no resampling) so its axes follow world (z, y, x).

    Returns the reoriented array, its exact affine, and the permutation and flips applied.
    """
    permutation, flips = canonical_axes(affine)
    shape = np.array(array.shape)
    transform = np.zeros((4, 4))
    transform[3, 3] = 1.0
    # new index n -> old index o: o[permutation[w]] = flip ? (shape_old - 1 - n[w]) : n[w]
    for w, old_axis in enumerate(permutation):
        if flips[w]:
            transform[old_axis, w] = -1.0
            transform[old_axis, 3] = shape[old_axis] - 1
        else:
            transform[old_axis, w] = 1.0
    new_affine = np.asarray(affine, dtype=float) @ transform
    return apply_reorient(array, permutation, flips), new_affine, permutation, flips


def apply_reorient(
    array: np.ndarray, permutation: tuple[int, ...], flips: tuple[bool, ...]
) -> np.ndarray:
    """Permute then flip ``array`` (a view) as :func:`reorient` decided."""
    view = np.transpose(array, permutation)
    for w in range(3):
        if flips[w]:
            view = np.flip(view, axis=w)
    return view


def straightened_affine(affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Diagonal affine (spacing only) placed so the volume's centre stays where it really is.

    This is what napari displays for oblique or tilted stacks, which it cannot slice exactly;
    the exact affine is kept for exports.
    """
    affine = np.asarray(affine, dtype=float)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    centre_index = (np.asarray(shape, dtype=float) - 1.0) / 2.0
    centre_world = affine[:3, :3] @ centre_index + affine[:3, 3]
    straight = np.eye(4)
    straight[:3, :3] = np.diag(spacing)
    straight[:3, 3] = centre_world - spacing * centre_index
    return straight


def undo_reorient(
    view: np.ndarray, permutation: tuple[int, ...], flips: tuple[bool, ...]
) -> np.ndarray:
    """Inverse of :func:`reorient`: bring a world-ordered array back to acquired (k, j, i)."""
    for w in range(3):
        if flips[w]:
            view = np.flip(view, axis=w)
    return np.transpose(view, np.argsort(permutation))


def grid_offset(
    affine: np.ndarray, target_affine: np.ndarray, tolerance_mm: float = 0.01
) -> tuple[int, int, int] | None:
    """Integer voxel offset of grid ``affine`` inside grid ``target_affine``, if they share one.

    Both affines map array indices to world and must have the same axes and
    spacing; the origin of ``affine`` must sit on a voxel of ``target_affine``
    (within ``tolerance_mm``). Returns ``None`` when the grids differ.
    """
    affine = np.asarray(affine, dtype=float)
    target_affine = np.asarray(target_affine, dtype=float)
    if not np.allclose(affine[:3, :3], target_affine[:3, :3], atol=1e-4):
        return None
    offset = np.linalg.solve(target_affine[:3, :3], affine[:3, 3] - target_affine[:3, 3])
    rounded = np.round(offset)
    residual_mm = np.linalg.norm(target_affine[:3, :3] @ (offset - rounded))
    if residual_mm > tolerance_mm:
        return None
    return tuple(int(v) for v in rounded)  # type: ignore[return-value]


def paste_on_grid(
    array: np.ndarray,
    affine: np.ndarray,
    target_shape: tuple[int, ...],
    target_affine: np.ndarray,
) -> np.ndarray | None:
    """Place ``array`` (world-ordered, grid ``affine``) into a zero array on the target grid.

    Returns ``None`` if the grids do not share voxels (different spacing,
    orientation, or an origin between voxels). Voxels outside the target are dropped.
    """
    offset = grid_offset(affine, target_affine)
    if offset is None:
        return None
    out = np.zeros(target_shape, dtype=array.dtype)
    source_slices, target_slices = [], []
    for axis, start in enumerate(offset):
        low = max(start, 0)
        high = min(start + array.shape[axis], target_shape[axis])
        if high <= low:
            return out
        target_slices.append(slice(low, high))
        source_slices.append(slice(low - start, high - start))
    out[tuple(target_slices)] = array[tuple(source_slices)]
    return out


def display_affine(affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """What napari shows: the exact affine if axis-aligned, else the straightened one."""
    if is_axis_aligned(affine):
        return np.asarray(affine, dtype=float)
    return straightened_affine(affine, shape)
