"""Read a DICOM image series into a :class:`~napari_domainseg.medical.volume.Volume`.

Slices are ordered by their position along the slice normal (never by
InstanceNumber); the slice step comes from the positions, not from
SliceThickness or SpacingBetweenSlices; origin and directions come from
ImagePositionPatient and ImageOrientationPatient.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from napari_domainseg.medical.volume import Volume


class DicomSeriesError(ValueError):
    """A DICOM series cannot be turned into a volume; the message says why."""


@dataclass(frozen=True)
class _SliceHeader:
    path: Path
    series_uid: str
    position: np.ndarray  # IPP, LPS x, y, z
    orientation: np.ndarray  # IOP, 6 values


def find_dicom_files(path: str | os.PathLike[str]) -> list[Path]:
    """List candidate files: every file under a folder, or the folder of a single file."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "DICOMDIR")


def _read_headers(files: Iterable[Path]) -> tuple[list[_SliceHeader], list[str]]:
    headers: list[_SliceHeader] = []
    skipped: list[str] = []
    for file in files:
        try:
            ds = pydicom.dcmread(file, stop_before_pixels=True)
        except (InvalidDicomError, OSError, EOFError) as exc:
            skipped.append(f"{file.name}: not DICOM ({exc.__class__.__name__})")
            continue
        if "PixelData" not in ds and "Rows" not in ds:
            skipped.append(f"{file.name}: no pixel data")
            continue
        if "ImagePositionPatient" not in ds or "ImageOrientationPatient" not in ds:
            skipped.append(f"{file.name}: no patient position/orientation")
            continue
        headers.append(
            _SliceHeader(
                path=file,
                series_uid=str(ds.SeriesInstanceUID),
                position=np.array(ds.ImagePositionPatient, dtype=float),
                orientation=np.array(ds.ImageOrientationPatient, dtype=float),
            )
        )
    return headers, skipped


def read_dicom_series(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> Volume:
    """Read the largest image series found at ``path`` into a volume.

    Parameters
    ----------
    path
        A folder (searched recursively), one file of the series, or a list of files.

    Returns
    -------
    Volume
        Voxel values after RescaleSlope/Intercept (HU for CT), axes (k, j, i)
        ordered along the slice normal, and the voxel-to-LPS affine.

    Raises
    ------
    DicomSeriesError
        If no image series is found or the slices do not form a regular volume.
    """
    if isinstance(path, (str, os.PathLike)):
        files = find_dicom_files(path)
        source = str(path)
    else:
        files = [Path(p) for p in path]
        source = f"{len(files)} files"
    headers, skipped = _read_headers(files)
    if not headers:
        raise DicomSeriesError(
            f"{source}: no DICOM image slices found ({len(skipped)} files skipped)"
        )
    by_series: dict[str, list[_SliceHeader]] = defaultdict(list)
    for header in headers:
        by_series[header.series_uid].append(header)
    series = max(by_series.values(), key=len)
    return _stack(series, source)


def _stack(slices: list[_SliceHeader], source: str) -> Volume:
    orientation = slices[0].orientation
    row_direction, column_direction = orientation[:3], orientation[3:]
    normal = np.cross(row_direction, column_direction)
    slices = sorted(slices, key=lambda s: float(np.dot(s.position, normal)))
    distances = np.array([np.dot(s.position, normal) for s in slices])
    if len(slices) > 1:
        steps = np.diff(distances)
        if np.any(steps < 1e-3):
            raise DicomSeriesError(f"{source}: several slices share one position; not a volume")
        if np.ptp(steps) > 1e-2 * max(float(np.median(steps)), 1e-6) + 1e-3:
            raise DicomSeriesError(
                f"{source}: slice spacing is not regular (steps {steps.min():.3f} to "
                f"{steps.max():.3f} mm)"
            )
        step_vector = (slices[-1].position - slices[0].position) / (len(slices) - 1)
    else:
        step_vector = normal

    datasets = [pydicom.dcmread(s.path) for s in slices]
    first = datasets[0]
    row_spacing, column_spacing = (float(v) for v in first.PixelSpacing)
    array = np.stack([_scaled_pixels(ds) for ds in datasets])

    # Columns of the LPS (x, y, z) matrix for array axes (k, j, i).
    linear_xyz = np.column_stack(
        [step_vector, column_direction * row_spacing, row_direction * column_spacing]
    )
    affine = np.eye(4)
    affine[:3, :3] = linear_xyz[::-1]  # rows reordered to world (z, y, x)
    affine[:3, 3] = slices[0].position[::-1]
    metadata = {
        "modality": str(first.get("Modality", "")),
        "series_description": str(first.get("SeriesDescription", "")),
        "series_instance_uid": str(first.SeriesInstanceUID),
        "window": _first_window(first),
        "source": source,
    }
    return Volume(array=array, affine=affine, metadata=metadata)


def _scaled_pixels(ds: pydicom.Dataset) -> np.ndarray:
    pixels = ds.pixel_array
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    if slope == 1 and intercept == int(intercept):
        low, high = int(pixels.min()) + int(intercept), int(pixels.max()) + int(intercept)
        dtype = np.int16 if -(2**15) <= low and high < 2**15 else np.int32
        return pixels.astype(dtype) + dtype(intercept)
    return pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept)


def _first_window(ds: pydicom.Dataset) -> tuple[float, float] | None:
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is None or width is None:
        return None
    center = center[0] if isinstance(center, pydicom.multival.MultiValue) else center
    width = width[0] if isinstance(width, pydicom.multival.MultiValue) else width
    return float(center), float(width)
