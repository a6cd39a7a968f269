"""Geometry validation shared by every medical reader: finite, positive, orthonormal, invertible.

Each format checks its geometry here, in one place: DICOM (pixel spacing,
positions, orientation) in :func:`dicom_stack_geometry`, NIfTI
(sform, qform, pixdim) and NRRD (space directions, origin) through
:func:`affine_problem`. A problem either refuses the file (the caller raises
with the message) or, when the voxels are still worth seeing, the volume is
opened on a unit grid and marked *geometry unknown*: a warning, the metadata
entry :data:`GEOMETRY_UNKNOWN_KEY` (the reasons) and the layer name suffix
:data:`GEOMETRY_UNKNOWN_SUFFIX`. No reader ever computes a NaN affine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_domainseg.medical.geometry import DicomGeometryError

GEOMETRY_UNKNOWN_KEY = "geometry_unknown"
"""Metadata entry: the reasons why the voxel-to-patient geometry is unknown (a list of text)."""
GEOMETRY_UNKNOWN_SUFFIX = " (geometry unknown)"
"""Appended to the layer name of a volume whose geometry is unknown."""
MAX_SPACING_MM = 1000.0
"""A voxel larger than a metre is a corrupt header, not an image."""
ORTHONORMAL_TOLERANCE = 0.01
"""Largest deviation of an orientation vector's length from 1, and of their dot product from 0."""
SINGULAR_TOLERANCE = 1e-3
"""Smallest |det| of an affine's direction cosines (columns normalised) still invertible."""


class GeometryWarning(UserWarning):
    """A file's geometry is unusable, or partly so; the message says what was done instead."""


def spacing_problem(values: Sequence[Any] | None, what: str = "PixelSpacing") -> str | None:
    """Why ``values`` is not a usable voxel spacing in mm, or ``None`` when it is.

    Usable: present, every value finite, positive and at most :data:`MAX_SPACING_MM`.
    """
    if values is None or len(values) == 0:
        return f"no {what}"
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        return f"{what} {_shown(values)} is not a number"
    if not all(math.isfinite(v) and 0 < v <= MAX_SPACING_MM for v in numbers):
        return f"{what} {_shown(numbers)} is not a positive finite spacing (mm)"
    return None


def orientation_problem(orientation: Sequence[Any] | None) -> str | None:
    """Why an ImageOrientationPatient is unusable, or ``None``.

    Usable: six finite values forming two unit vectors (within
    :data:`ORTHONORMAL_TOLERANCE`) that are perpendicular (same tolerance).
    Zero, parallel or NaN vectors are refused: the slice normal, and so the
    slice order, would be undefined.
    """
    if orientation is None or len(orientation) == 0:
        return "no ImageOrientationPatient"
    values = np.asarray(orientation, dtype=float)
    if values.shape != (6,):
        return f"ImageOrientationPatient has {values.size} values, not 6"
    if not np.all(np.isfinite(values)):
        return f"ImageOrientationPatient {_shown(values)} is not finite"
    row, column = values[:3], values[3:]
    norms = np.linalg.norm(row), np.linalg.norm(column)
    if min(norms) < 1e-6:
        return f"ImageOrientationPatient {_shown(values)} has a zero direction vector"
    if max(abs(n - 1.0) for n in norms) > ORTHONORMAL_TOLERANCE:
        return (
            f"ImageOrientationPatient {_shown(values)} has direction vectors of length "
            f"{norms[0]:.4g} and {norms[1]:.4g}, not 1"
        )
    cosine = float(np.dot(row, column) / (norms[0] * norms[1]))
    if abs(cosine) > ORTHONORMAL_TOLERANCE:
        angle = math.degrees(math.acos(max(-1.0, min(1.0, cosine))))
        return (
            f"ImageOrientationPatient {_shown(values)}: row and column directions are "
            f"{angle:.2f} degrees apart, not perpendicular"
        )
    return None


def position_problem(position: Sequence[Any] | None) -> str | None:
    """Why an ImagePositionPatient is unusable (missing, not 3 values, not finite), or ``None``."""
    if position is None or len(position) == 0:
        return "no ImagePositionPatient"
    values = np.asarray(position, dtype=float)
    if values.shape != (3,):
        return f"ImagePositionPatient has {values.size} values, not 3"
    if not np.all(np.isfinite(values)) or np.any(np.abs(values) > 1e7):
        return f"ImagePositionPatient {_shown(values)} is not a finite position (mm)"
    return None


def affine_problem(affine: np.ndarray | None, what: str = "affine") -> str | None:
    """Why a 4x4 voxel-to-world affine is unusable, or ``None``.

    Usable: every entry finite, every axis step positive and at most
    :data:`MAX_SPACING_MM` long, and the axes independent (shear allowed;
    |det| of the normalised columns above :data:`SINGULAR_TOLERANCE`).
    """
    if affine is None:
        return f"no {what}"
    matrix = np.asarray(affine, dtype=float)
    if matrix.shape != (4, 4):
        return f"{what} is {matrix.shape}, not 4x4"
    if not np.all(np.isfinite(matrix)):
        return f"{what} is not finite (NaN or infinite entries)"
    linear = matrix[:3, :3]
    steps = np.linalg.norm(linear, axis=0)
    if np.any(steps <= 1e-9):
        return f"{what} has a zero axis (voxel size {_shown(steps)} mm)"
    if np.any(steps > MAX_SPACING_MM) or np.any(np.abs(matrix[:3, 3]) > 1e7):
        return f"{what} has an implausible voxel size {_shown(steps)} mm or origin"
    if abs(float(np.linalg.det(linear / steps))) < SINGULAR_TOLERANCE:
        return f"{what} is singular (its axes are parallel)"
    return None


@dataclass
class DicomStackGeometry:
    """Validated geometry inputs of a DICOM stack (what :func:`.geometry.stack_geometry` takes).

    ``unknown`` lists why the geometry is unknown (then a unit grid stands in);
    ``warnings`` says so to the user.
    """

    positions: np.ndarray
    orientation: np.ndarray
    spacing: tuple[float, float]
    warnings: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def dicom_stack_geometry(
    positions: Sequence[Sequence[float]],
    orientation: Sequence[float],
    spacing: Sequence[float] | None,
    files: Sequence[str | Path],
    name: str,
) -> DicomStackGeometry:
    """Check a DICOM stack's positions, orientation and pixel spacing: the one DICOM check.

    Decisions (documented in docs/medical.md, "Geometry checks"):

    - missing or unusable PixelSpacing: opened with 1 mm pixels, *geometry unknown*;
    - no ImagePositionPatient and no ImageOrientationPatient in any file (a
      stack without patient geometry): opened in file order on a unit grid,
      *geometry unknown*;
    - an unusable position (NaN, missing in some files) or orientation (NaN,
      zero, parallel or not unit vectors): refused, naming the files, because
      the slice order itself would be a guess.

    Raises
    ------
    DicomGeometryError
        For the refused cases.
    """
    warnings: list[str] = []
    unknown: list[str] = []
    in_plane = (1.0, 1.0)
    problem = spacing_problem(spacing)
    if problem is None:
        in_plane = (float(spacing[0]), float(spacing[1]))  # type: ignore[index]
    else:
        unknown.append(f"{problem} (in {Path(files[0]).name}); 1 mm pixels assumed")
    if not any(len(p) for p in positions) and not len(orientation):
        unknown.append("no ImagePositionPatient or ImageOrientationPatient; file order used")
        stand_in = np.array([[0.0, 0.0, float(k)] for k in range(len(positions))])
        orientation_array = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    else:
        problem = orientation_problem(orientation)
        if problem is not None:
            raise DicomGeometryError(
                f"{name}: {problem} (in {Path(files[0]).name}): the slice direction is "
                "undefined, so the slices cannot be ordered or placed. Fix the header or "
                "choose another series."
            )
        bad = [(f, p) for f, p in zip(files, positions, strict=True) if position_problem(p)]
        if bad:
            listed = ", ".join(Path(f).name for f, _ in bad[:3]) + (" ..." if len(bad) > 3 else "")
            raise DicomGeometryError(
                f"{name}: {len(bad)} of {len(positions)} files have no usable position "
                f"({position_problem(bad[0][1])} in {listed}), so the slices cannot be placed. "
                "Remove those files or fix their headers."
            )
        stand_in = np.asarray(positions, dtype=float)
        orientation_array = np.asarray(orientation, dtype=float)
    for reason in unknown:
        warnings.append(
            f"{name}: geometry unknown: {reason}. Distances, volumes and exported positions "
            "are not in patient millimetres."
        )
    return DicomStackGeometry(stand_in, orientation_array, in_plane, warnings, unknown)


def unit_affine(spacing: Sequence[float] | None = None) -> np.ndarray:
    """The fallback grid of a volume whose geometry is unknown: axis-aligned, origin 0.

    ``spacing`` (k, j, i) is used when it is a usable spacing, else 1 mm.
    """
    affine = np.eye(4)
    if spacing is not None and spacing_problem(spacing, "spacing") is None:
        affine[:3, :3] = np.diag([float(v) for v in spacing])
    return affine


def mark_geometry_unknown(metadata: dict[str, Any], reason: str) -> None:
    """Record in ``metadata`` that the geometry is unknown, and why."""
    metadata.setdefault(GEOMETRY_UNKNOWN_KEY, [])
    if reason not in metadata[GEOMETRY_UNKNOWN_KEY]:
        metadata[GEOMETRY_UNKNOWN_KEY].append(reason)


def geometry_unknown(metadata: dict[str, Any]) -> bool:
    """True when ``metadata`` says the volume's geometry is unknown."""
    return bool(metadata.get(GEOMETRY_UNKNOWN_KEY))


def layer_name(name: str, metadata: dict[str, Any]) -> str:
    """``name``, with :data:`GEOMETRY_UNKNOWN_SUFFIX` when the geometry is unknown."""
    if geometry_unknown(metadata) and not name.endswith(GEOMETRY_UNKNOWN_SUFFIX):
        return name + GEOMETRY_UNKNOWN_SUFFIX
    return name


def _shown(values: Any) -> str:
    """Short text of a few values for messages (never a huge dump)."""
    try:
        items = [float(v) for v in values][:6]
        return "[" + ", ".join(f"{v:.6g}" for v in items) + "]"
    except (TypeError, ValueError):
        return repr(values)[:80]
