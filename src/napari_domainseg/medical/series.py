"""Read a DICOM image series into a :class:`~napari_domainseg.medical.volume.Volume`.

The steps: discover the series at a path (:mod:`.discovery`), choose the best
volume candidate, sort its slices along the slice normal and measure the
geometry (:mod:`.geometry`), decode and rescale the pixels, then permute and
flip the array (lossless) so its axes follow world (z, y, x). The exact
voxel-to-LPS affine, tilt and obliquity included, is kept in the metadata.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom

from napari_domainseg.medical.discovery import (
    Discovery,
    SeriesCandidate,
    choose_series,
    discover,
    image_type,
)
from napari_domainseg.medical.geometry import (
    OBLIQUE_TOLERANCE_DEG,
    DicomGeometryError,
    is_axis_aligned,
    obliquity_deg,
    reorient,
    stack_geometry,
    straightened_affine,
)
from napari_domainseg.medical.volume import Volume
from napari_domainseg.medical.windowing import default_window


class DicomSeriesError(ValueError):
    """A DICOM series cannot be turned into a volume; the message says why."""


@dataclass
class LoadedSeries:
    """A volume with what the user should be told about it."""

    volume: Volume
    candidate: SeriesCandidate
    others: list[SeriesCandidate] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: str = ""


def read_series(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    series_uid: str | None = None,
    discovery: Discovery | None = None,
) -> LoadedSeries:
    """Read the best (or the given) image series at ``source``.

    Parameters
    ----------
    source
        A folder (searched recursively), one file of the series, or a list of files.
    series_uid
        SeriesInstanceUID (or SeriesNumber) to load instead of the best candidate.
    discovery
        A previous :func:`~.discovery.discover` result, to avoid reading headers twice.

    Raises
    ------
    DicomSeriesError
        If no volume series is found or its slices do not form a volume; the
        message names the series and the measured numbers.
    """
    discovery = discovery or discover(source)
    try:
        candidate = _candidate_of_file(discovery, source) if series_uid is None else None
        candidate = candidate or choose_series(discovery, series_uid)
    except LookupError as exc:
        raise DicomSeriesError(f"{source}: {exc}") from None
    name = f"series {candidate.summary()}"
    try:
        if candidate.kind == "enhanced":
            volume, warnings = _read_enhanced(candidate, name)
        elif _is_mosaic(candidate.headers[0]):
            volume, warnings = _read_mosaic(candidate, name)
        else:
            volume, warnings = _read_classic(candidate, name)
    except DicomGeometryError as exc:
        raise DicomSeriesError(str(exc)) from None
    others = [c for c in discovery.candidates if c is not candidate and c.kind != "segmentation"]
    return LoadedSeries(
        volume=volume,
        candidate=candidate,
        others=others,
        warnings=warnings,
        skipped=discovery.skipped_summary(),
    )


def _candidate_of_file(discovery: Discovery, source: object) -> SeriesCandidate | None:
    """When ``source`` is one file, the stack that holds it (its whole series is loaded)."""
    if not isinstance(source, (str, os.PathLike)) or not Path(source).is_file():
        return None
    target = Path(source).resolve()
    for candidate in discovery.candidates:
        if any(f.resolve() == target for f in candidate.files):
            return candidate
    return None


def read_dicom_series(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    series_uid: str | None = None,
) -> Volume:
    """Read the best (or the given) series at ``source`` and return only the volume."""
    return read_series(source, series_uid).volume


def _read_classic(candidate: SeriesCandidate, name: str) -> tuple[Volume, list[str]]:
    headers = candidate.headers
    first = headers[0]
    orientation = np.array(first.ImageOrientationPatient, dtype=float)
    positions = np.array([h.ImagePositionPatient for h in headers], dtype=float)
    geometry = stack_geometry(positions, orientation, _pixel_spacing(first), name)
    files = [candidate.files[i] for i in geometry.order]
    slices = [_scaled_pixels(pydicom.dcmread(f)) for f in files]
    array = _stack(slices)
    return _finish(array, geometry.affine, first, geometry.warnings, geometry.tilt_deg, name)


def _read_enhanced(candidate: SeriesCandidate, name: str) -> tuple[Volume, list[str]]:
    if len(candidate.files) != 1:
        raise DicomSeriesError(f"{name}: several enhanced multi-frame objects in one stack")
    ds = pydicom.dcmread(candidate.files[0])
    frames = ds.PerFrameFunctionalGroupsSequence
    shared = ds.get("SharedFunctionalGroupsSequence", [pydicom.Dataset()])[0]

    def group(frame: pydicom.Dataset, keyword: str) -> pydicom.Dataset | None:
        for source in (frame, shared):
            if keyword in source:
                return source[keyword][0]
        return None

    positions, slopes, intercepts = [], [], []
    orientation = spacing = None
    for frame in frames:
        plane_position = group(frame, "PlanePositionSequence")
        plane_orientation = group(frame, "PlaneOrientationSequence")
        measures = group(frame, "PixelMeasuresSequence")
        if plane_position is None or plane_orientation is None or measures is None:
            raise DicomSeriesError(f"{name}: a frame has no plane position/orientation")
        positions.append([float(v) for v in plane_position.ImagePositionPatient])
        frame_orientation = np.array(plane_orientation.ImageOrientationPatient, dtype=float)
        if orientation is None:
            orientation, spacing = frame_orientation, _pixel_spacing(measures)
        elif not np.allclose(frame_orientation, orientation, atol=1e-4):
            raise DicomSeriesError(f"{name}: frames have different orientations")
        transformation = group(frame, "PixelValueTransformationSequence")
        slopes.append(float(getattr(transformation, "RescaleSlope", 1) or 1))
        intercepts.append(float(getattr(transformation, "RescaleIntercept", 0) or 0))
    geometry = stack_geometry(np.array(positions), orientation, spacing, name)
    pixels = ds.pixel_array.reshape(len(frames), int(ds.Rows), int(ds.Columns))
    slices = [_rescale(pixels[i], slopes[i], intercepts[i]) for i in geometry.order]
    return _finish(_stack(slices), geometry.affine, ds, geometry.warnings, geometry.tilt_deg, name)


def _is_mosaic(header: pydicom.Dataset) -> bool:
    return "MOSAIC" in image_type(header)


def _read_mosaic(candidate: SeriesCandidate, name: str) -> tuple[Volume, list[str]]:
    """A Siemens mosaic: one image tiling every slice of a volume (fMRI, DWI).

    nibabel's ``MosaicWrapper`` reads the Siemens CSA header for the slice count
    and the slice normal and corrects the mosaic's position to the first slice.
    """
    from nibabel.nicom import dicomwrappers

    warnings = []
    if len(candidate.files) > 1:
        warnings.append(
            f"{name}: {len(candidate.files)} mosaic volumes (a time series); "
            "the first one is loaded"
        )
    ordered = sorted(
        zip(candidate.files, candidate.headers, strict=True),
        key=lambda item: int(item[1].get("InstanceNumber", 0) or 0),
    )
    ds = pydicom.dcmread(ordered[0][0])
    wrapper = dicomwrappers.wrapper_from_data(ds)
    if not wrapper.is_mosaic:
        raise DicomSeriesError(f"{name}: marked MOSAIC but its Siemens CSA header is unreadable")
    data = wrapper.get_data()  # (rows, columns, slices), scaled
    array = np.ascontiguousarray(np.transpose(data, (2, 0, 1)))
    if np.issubdtype(array.dtype, np.floating) and np.all(array == np.round(array)):
        array = _rescale(array.astype(np.int64), 1.0, 0.0)
    nib_affine = np.asarray(wrapper.affine, dtype=float)  # (row, col, slice) -> LPS (x, y, z)
    affine = np.eye(4)
    affine[:3, :3] = nib_affine[:3, [2, 0, 1]][::-1]
    affine[:3, 3] = nib_affine[:3, 3][::-1]
    return _finish(array, affine, ds, warnings, 0.0, name)


def _finish(
    array: np.ndarray,
    acquired_affine: np.ndarray,
    header: pydicom.Dataset,
    warnings: list[str],
    tilt_deg: float,
    name: str,
) -> tuple[Volume, list[str]]:
    view, affine, permutation, flips = reorient(array, acquired_affine)
    # The acquired slice axis (0) now runs along world axis z, y or x.
    plane = ("axial", "coronal", "sagittal")[permutation.index(0)]
    view = np.ascontiguousarray(view, dtype=view.dtype.newbyteorder("="))
    oblique = obliquity_deg(affine)
    warnings = list(warnings)
    if oblique > OBLIQUE_TOLERANCE_DEG and tilt_deg <= OBLIQUE_TOLERANCE_DEG:
        warnings.append(
            f"{name}: oblique acquisition, {oblique:.2f} degrees from the nearest patient axes. "
            "Shown straightened on its own voxel grid; exports keep the exact geometry."
        )
    exact = is_axis_aligned(affine)
    display_affine = affine if exact else straightened_affine(affine, view.shape)
    modality = str(header.get("Modality", ""))
    window = default_window(_header_window(header), modality, view)
    metadata = {
        "modality": modality,
        "series_description": str(header.get("SeriesDescription", "")),
        "series_number": _optional_int(header.get("SeriesNumber")),
        "series_instance_uid": str(header.SeriesInstanceUID),
        "study_instance_uid": str(header.get("StudyInstanceUID", "")),
        "frame_of_reference_uid": str(header.get("FrameOfReferenceUID", "")),
        "acquisition_plane": plane,
        "window": window,
        "display_affine": display_affine.tolist(),
        "straightened": not exact,
        "obliquity_deg": round(oblique, 4),
        "tilt_deg": round(tilt_deg, 4),
        "reorientation": {"permutation": list(permutation), "flips": list(flips)},
        "warnings": warnings,
    }
    return Volume(array=view, affine=affine, metadata=metadata), warnings


def _optional_int(value: object) -> int | None:
    return None if value in (None, "") else int(value)


def _pixel_spacing(ds: pydicom.Dataset) -> tuple[float, float]:
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    if not spacing:
        return (1.0, 1.0)
    return (float(spacing[0]), float(spacing[1]))


def _stack(slices: list[np.ndarray]) -> np.ndarray:
    dtype = np.result_type(*[s.dtype for s in slices])
    return np.stack([s.astype(dtype, copy=False) for s in slices])


def _scaled_pixels(ds: pydicom.Dataset) -> np.ndarray:
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    return _rescale(ds.pixel_array, slope, intercept)


def _rescale(pixels: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """Apply RescaleSlope/Intercept, keeping integers when the result is integral."""
    if slope == 1 and intercept == int(intercept):
        low, high = int(pixels.min()) + int(intercept), int(pixels.max()) + int(intercept)
        dtype = np.int16 if -(2**15) <= low and high < 2**15 else np.int32
        return pixels.astype(dtype) + dtype(intercept)
    return pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept)


def _header_window(ds: pydicom.Dataset) -> tuple[float, float] | None:
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is None and "SharedFunctionalGroupsSequence" in ds:
        voi = ds.SharedFunctionalGroupsSequence[0].get("FrameVOILUTSequence")
        if voi:
            center, width = voi[0].get("WindowCenter"), voi[0].get("WindowWidth")
    if center is None or width is None:
        return None
    center = center[0] if isinstance(center, pydicom.multival.MultiValue) else center
    width = width[0] if isinstance(width, pydicom.multival.MultiValue) else width
    return float(center), float(width)
