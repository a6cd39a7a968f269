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

from napari_domainseg.errors import DomainSegError
from napari_domainseg.medical.discovery import (
    Discovery,
    SeriesCandidate,
    choose_series,
    discover,
    gc_paused,
    image_type,
)
from napari_domainseg.medical.geometry import (
    OBLIQUE_TOLERANCE_DEG,
    TILT_TOLERANCE_DEG,
    DicomGeometryError,
    obliquity_deg,
    reorient,
    stack_geometry,
)
from napari_domainseg.medical.geometry_checks import (
    dicom_stack_geometry,
    mark_geometry_unknown,
)
from napari_domainseg.medical.header_values import float_values
from napari_domainseg.medical.native_pixels import PixelDataError, read_native_stack
from napari_domainseg.medical.parallel_decode import decode_pixel_arrays
from napari_domainseg.medical.scaling import (
    PhilipsScaling,
    SliceScaling,
    is_philips,
    scaling_metadata,
    stack_scaling,
)
from napari_domainseg.medical.volume import Volume
from napari_domainseg.medical.windowing import default_window


class DicomSeriesError(DomainSegError, ValueError):
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
    resample: bool = False,
    include_patient: bool = False,
    skip_unreadable: bool = False,
    philips_scaling: PhilipsScaling = "display",
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
    resample
        Resample unequally spaced or gantry-tilted stacks to a regular orthogonal
        grid (:mod:`.resample`) instead of refusing them (spacing) or keeping the
        sheared acquired grid (tilt). Never done unless asked.
    include_patient
        Add the patient and study identification (name, ID, birth date, sex,
        age, study date, accession number) to the metadata, under ``"patient"``.
        Off by default: layer metadata is shown and shared, and must not carry PHI.
    skip_unreadable
        Open the readable slices when some files of the series have truncated
        or inconsistent pixel data (named in a warning). Off by default: such a
        series is refused, naming the files. A gap the skipped files leave is
        still found by the geometry checks (refused, or resampled when asked).
    philips_scaling
        ``"display"`` (default, the DICOM standard): RescaleSlope/Intercept.
        ``"precise"``: Philips MR's floating-point values from the private
        scale slope (2005,100E), as dcm2niix writes by default. The choice is
        recorded in the metadata under ``"rescale"``.

    Raises
    ------
    DicomSeriesError
        If no volume series is found or its slices do not form a volume; the
        message names the series and the measured numbers.
    """
    with gc_paused():
        return _read_series(
            source,
            series_uid,
            discovery,
            ReadOptions(resample, include_patient, skip_unreadable, philips_scaling),
        )


@dataclass(frozen=True)
class ReadOptions:
    """What the user asked for when reading a series (see :func:`read_series`)."""

    resample: bool = False
    include_patient: bool = False
    skip_unreadable: bool = False
    philips_scaling: PhilipsScaling = "display"


def _read_series(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    series_uid: str | None,
    discovery: Discovery | None,
    options: ReadOptions,
) -> LoadedSeries:
    if options.philips_scaling not in ("display", "precise"):
        raise ValueError(
            f"philips_scaling must be 'display' or 'precise', not {options.philips_scaling!r}"
        )
    discovery = discovery or discover(source)
    try:
        candidate = _candidate_of_file(discovery, source) if series_uid is None else None
        candidate = candidate or choose_series(discovery, series_uid)
    except LookupError as exc:
        raise DicomSeriesError(f"{source}: {exc}") from None
    name = f"series {candidate.summary()}"
    unreadable = _unreadable_warnings(candidate, name, options.skip_unreadable)
    resample = options.resample
    try:
        if candidate.kind == "enhanced":
            volume, warnings = _read_enhanced(candidate, name, resample)
        elif _is_mosaic(candidate.headers[0]):
            volume, warnings = _read_mosaic(candidate, name)
        else:
            volume, warnings = _read_classic(candidate, name, resample, options.philips_scaling)
        if options.philips_scaling == "precise" and "rescale" not in volume.metadata:
            kind = "enhanced multi-frame" if candidate.kind == "enhanced" else "mosaic"
            warnings.append(  # only classic one-slice-per-file series are rescaled per slice
                f"{name}: Philips precise values were asked for, but they are applied to classic "
                f"series only, not to this {kind} object; display values "
                "(RescaleSlope/Intercept) are shown."
            )
    except DicomGeometryError as exc:
        notes = ([discovery.skipped_summary()] if discovery.skipped else []) + unreadable
        raise DicomSeriesError(f"{exc}" + "".join(f" ({note})" for note in notes)) from None
    except PixelDataError as exc:
        raise DicomSeriesError(f"{name}: {exc}") from None
    warnings = unreadable + warnings
    volume.metadata["warnings"] = warnings
    if unreadable:
        volume.metadata["skipped_unreadable"] = [str(f) for f, _ in candidate.unreadable]
    include_patient = options.include_patient
    if include_patient:
        volume.metadata["patient"] = patient_data(candidate.headers[0])
    others = [c for c in discovery.candidates if c is not candidate and c.kind != "segmentation"]
    return LoadedSeries(
        volume=volume,
        candidate=candidate,
        others=others,
        warnings=warnings,
        skipped=discovery.skipped_summary(),
    )


PATIENT_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "StudyDate",
    "StudyDescription",
    "AccessionNumber",
)
"""Identifying attributes shown only when the user asks for patient data."""


def patient_data(header: pydicom.Dataset) -> dict[str, str]:
    """The identifying attributes of a header (see :data:`PATIENT_KEYWORDS`), as text."""
    return {k: str(header.get(k, "")) for k in PATIENT_KEYWORDS if header.get(k) not in (None, "")}


def _unreadable_warnings(candidate: SeriesCandidate, name: str, skip: bool) -> list[str]:
    """Refuse a series with unreadable files, or (when asked) the warning that names them.

    Raises
    ------
    DicomSeriesError
        If files are unreadable and ``skip`` is false.
    """
    if not candidate.unreadable:
        return []
    total = len(candidate.files) + len(candidate.unreadable)
    listed = "; ".join(f"{f.name}: {reason}" for f, reason in candidate.unreadable[:3])
    more = f"; and {len(candidate.unreadable) - 3} more" if len(candidate.unreadable) > 3 else ""
    what = f"{len(candidate.unreadable)} of {total} files cannot be read ({listed}{more})"
    if not skip:
        raise DicomSeriesError(
            f"{name}: {what}. Restore those files, or open the readable slices only "
            "(series picker: 'Skip unreadable slices'; command line: --skip-unreadable; "
            "Python: skip_unreadable=True); "
            "a gap they leave is still detected."
        )
    return [f"{name}: {what}; opened without them, as asked."]


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
    resample: bool = False,
) -> Volume:
    """Read the best (or the given) series at ``source`` and return only the volume."""
    return read_series(source, series_uid, resample=resample).volume


def _read_classic(
    candidate: SeriesCandidate,
    name: str,
    resample: bool,
    philips_scaling: PhilipsScaling = "display",
) -> tuple[Volume, list[str]]:
    layout = series_layout(candidate, name, allow_irregular=resample)
    first = candidate.headers[0]
    files = [candidate.files[i] for i in layout.order]
    headers = [candidate.headers[i] for i in layout.order]
    scalings = stack_scaling(headers, philips_scaling)
    pairs = [(s.slope, s.intercept) for s in scalings]
    varies = len(set(pairs)) > 1
    locations = (
        [candidate.pixel_locations[i] for i in layout.order] if candidate.pixel_locations else []
    )
    array = None
    if locations and all(location is not None for location in locations):
        array = read_native_stack(files, locations, first, layout.affine, headers, pairs)
    if array is None:  # compressed or unusual pixels: pydicom decodes them, on every core
        pixels = decode_pixel_arrays(files)  # parallel_decode: a file that fails is named
        array = _stack(
            [_rescale(p, s.slope, s.intercept) for p, s in zip(pixels, scalings, strict=True)]
        )
        if varies:
            array = array.astype(np.float32, copy=False)
    volume, warnings = _finish_stack(array, layout, first, name, [str(f) for f in files], resample)
    volume.metadata["rescale"] = scaling_metadata(scalings, philips_scaling)
    warnings += _scaling_warnings(scalings, headers, philips_scaling, name)
    if "source_files" in volume.metadata:
        volume.metadata["sop_instance_uids"] = [
            str(candidate.headers[i].SOPInstanceUID) for i in layout.order
        ]
    return volume, warnings


def _scaling_warnings(
    scalings: list[SliceScaling],
    headers: list[pydicom.Dataset],
    philips_scaling: PhilipsScaling,
    name: str,
) -> list[str]:
    """Say when slices are scaled differently, and when Philips precise values were not found."""
    warnings = []
    slopes = [s.slope for s in scalings]
    intercepts = [s.intercept for s in scalings]
    if len(set(zip(slopes, intercepts, strict=True))) > 1:
        warnings.append(
            f"{name}: RescaleSlope/Intercept differ between slices (slope {min(slopes):.6g} to "
            f"{max(slopes):.6g}, intercept {min(intercepts):.6g} to {max(intercepts):.6g}); "
            "each slice is scaled by its own values and the volume is stored as float32."
        )
    if philips_scaling == "precise" and not any(s.source == "philips_precise" for s in scalings):
        why = "not a Philips series" if not is_philips(headers[0]) else "no scale slope (2005,100E)"
        warnings.append(
            f"{name}: Philips precise values were asked for, but this is {why}; "
            "display values (RescaleSlope/Intercept) are shown."
        )
    return warnings


def _finish_stack(
    array: np.ndarray,
    layout: SeriesLayout,
    header: pydicom.Dataset,
    name: str,
    source_files: list[str],
    resample: bool,
) -> tuple[Volume, list[str]]:
    """Resample an irregular or tilted stack when asked to, then finish the volume."""
    affine, warnings, tilt, resampled = layout.affine, list(layout.warnings), layout.tilt_deg, []
    if resample and (not layout.is_regular or tilt > TILT_TOLERANCE_DEG):
        from napari_domainseg.medical.resample import equalize_spacing, remove_tilt  # scipy
    if resample and not layout.is_regular:
        array, affine = equalize_spacing(array, layout.distances, affine)
        resampled.append(f"equal slice spacing ({layout.shape[0]} -> {array.shape[0]} slices)")
    if resample and tilt > TILT_TOLERANCE_DEG:
        array, affine = remove_tilt(array, affine)
        resampled.append(f"gantry tilt of {tilt:.2f} degrees removed")
        tilt = 0.0
    if resampled:
        warnings = [f"{name}: resampled on request ({'; '.join(resampled)})."]
    volume, warnings = _finish(array, affine, header, warnings, tilt, name)
    for reason in layout.geometry_unknown:
        mark_geometry_unknown(volume.metadata, reason)
    if resampled:
        volume.metadata["resampled"] = resampled
    else:  # voxels are the acquired pixels: a DICOM SEG can reference the source images
        volume.metadata["source_files"] = source_files
    return volume, warnings


@dataclass
class SeriesLayout:
    """Where a stack's slices lie, from the headers alone (no pixel data read).

    Attributes
    ----------
    order
        ``order[k]`` is the file (classic series) or frame (enhanced object)
        holding acquired slice ``k``, slices sorted along the slice normal.
    affine
        Exact voxel-to-LPS affine of the acquired stack (k, j, i), tilt included.
    shape
        Acquired shape (slices, rows, columns).
    """

    order: np.ndarray
    affine: np.ndarray
    shape: tuple[int, int, int]
    tilt_deg: float = 0.0
    warnings: list[str] = field(default_factory=list)
    slopes: list[float] = field(default_factory=list)
    intercepts: list[float] = field(default_factory=list)
    distances: np.ndarray | None = None
    is_regular: bool = True
    geometry_unknown: list[str] = field(default_factory=list)
    """Why the geometry is unknown (a unit grid stands in); empty when it is known."""

    def world_grid(self) -> tuple[tuple[int, int, int], np.ndarray]:
        """Shape and exact affine of the volume once reoriented to world (z, y, x)."""
        placeholder = np.broadcast_to(np.zeros((), dtype=np.uint8), self.shape)
        view, affine, _, _ = reorient(placeholder, self.affine)
        return tuple(view.shape), affine  # type: ignore[return-value]


def series_layout(
    candidate: SeriesCandidate, name: str | None = None, allow_irregular: bool = False
) -> SeriesLayout:
    """Measure a candidate's geometry from its headers (classic or enhanced multi-frame).

    Raises
    ------
    DicomGeometryError
        If the slices do not form a regular volume.
    DicomSeriesError
        For Siemens mosaics and malformed enhanced objects.
    """
    name = name or f"series {candidate.summary()}"
    first = candidate.headers[0]
    rows, columns = int(first.Rows), int(first.Columns)
    if candidate.kind == "enhanced":
        if len(candidate.files) != 1:
            raise DicomSeriesError(f"{name}: several enhanced multi-frame objects in one stack")
        frame_positions, frame_orientation, frame_spacing, slopes, intercepts = _frame_geometry(
            first, name
        )
        checked = dicom_stack_geometry(
            frame_positions,
            frame_orientation,
            frame_spacing,
            [f"{candidate.files[0].name} frame {k + 1}" for k in range(len(frame_positions))],
            name,
        )
    elif _is_mosaic(first):
        raise DicomSeriesError(f"{name}: a Siemens mosaic has no per-slice geometry in its headers")
    else:
        checked = dicom_stack_geometry(
            [float_values(h, "ImagePositionPatient") for h in candidate.headers],
            float_values(first, "ImageOrientationPatient"),
            _pixel_spacing_values(first),
            candidate.files,
            name,
        )
        slopes, intercepts = [], []
    positions, orientation, spacing = checked.positions, checked.orientation, checked.spacing
    unknown, checks = checked.unknown, checked.warnings
    geometry = stack_geometry(positions, orientation, spacing, name, allow_irregular)
    return SeriesLayout(
        order=geometry.order,
        affine=geometry.affine,
        shape=(len(positions), rows, columns),
        tilt_deg=geometry.tilt_deg,
        warnings=checks + geometry.warnings,
        geometry_unknown=unknown,
        slopes=slopes,
        intercepts=intercepts,
        distances=geometry.distances,
        is_regular=geometry.is_regular,
    )


def _frame_geometry(
    ds: pydicom.Dataset, name: str
) -> tuple[list[list[float]], list[float], list[float], list[float], list[float]]:
    """Per-frame positions, the shared orientation and spacing, and per-frame rescale.

    The geometry values are returned as read; :func:`.geometry_checks.dicom_stack_geometry`
    validates them.
    """
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
        positions.append([float(v) for v in plane_position.get("ImagePositionPatient") or []])
        frame_orientation = [
            float(v) for v in plane_orientation.get("ImageOrientationPatient") or []
        ]
        if orientation is None:
            orientation, spacing = frame_orientation, _pixel_spacing_values(measures)
        elif not np.allclose(frame_orientation, orientation, atol=1e-4, equal_nan=True):
            raise DicomSeriesError(f"{name}: frames have different orientations")
        transformation = group(frame, "PixelValueTransformationSequence")
        slopes.append(float(getattr(transformation, "RescaleSlope", 1) or 1))
        intercepts.append(float(getattr(transformation, "RescaleIntercept", 0) or 0))
    return positions, orientation or [], spacing or [], slopes, intercepts


def _read_enhanced(
    candidate: SeriesCandidate, name: str, resample: bool
) -> tuple[Volume, list[str]]:
    layout = series_layout(candidate, name, allow_irregular=resample)
    ds = pydicom.dcmread(candidate.files[0])
    pixels = ds.pixel_array.reshape(layout.shape[0], layout.shape[1], layout.shape[2])
    slices = [_rescale(pixels[i], layout.slopes[i], layout.intercepts[i]) for i in layout.order]
    volume, warnings = _finish_stack(
        _stack(slices), layout, ds, name, [str(candidate.files[0])], resample
    )
    if "source_files" in volume.metadata:
        volume.metadata["frame_order"] = [int(i) for i in layout.order]
        volume.metadata["sop_instance_uids"] = [str(ds.SOPInstanceUID)]
    return volume, warnings


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
    volume, warnings = _finish(array, affine, ds, warnings, 0.0, name)
    volume.metadata["seg_unsupported"] = (
        "a Siemens mosaic (its slices are tiles of one image, which a DICOM SEG cannot reference)"
    )
    return volume, warnings


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
        "obliquity_deg": round(oblique, 4),
        "tilt_deg": round(tilt_deg, 4),
        "reorientation": {"permutation": list(permutation), "flips": list(flips)},
        "warnings": warnings,
    }
    return Volume(array=view, affine=affine, metadata=metadata), warnings


def _optional_int(value: object) -> int | None:
    return None if value in (None, "") else int(value)


def _pixel_spacing_values(ds: pydicom.Dataset) -> list[float]:
    """PixelSpacing (else ImagerPixelSpacing) as read; empty when absent. Validated elsewhere."""
    return float_values(ds, "PixelSpacing") or float_values(ds, "ImagerPixelSpacing")


def _stack(slices: list[np.ndarray]) -> np.ndarray:
    dtype = np.result_type(*[s.dtype for s in slices])
    return np.stack([s.astype(dtype, copy=False) for s in slices])


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
    try:
        center, width = float(center), float(width)
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(center) and np.isfinite(width) and width > 0):
        return None  # an unusable window: the default one is computed from the data
    return center, width
