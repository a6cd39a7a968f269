"""DICOM Segmentation objects (SEG): write labels over a DICOM series, read them back.

Writing uses highdicom. The SEG references the source series the labels were
drawn on (its files are listed in the image metadata by
:func:`~napari_domainseg.medical.series.read_series`), so the labels must sit
on that series' acquired voxel grid: a resampled volume cannot be referenced.
Segments are numbered 1..N in schema order (SEG requires consecutive numbers)
and carry the class name, description, colour and terminology codes.

An instance map (with its :class:`~napari_domainseg.labels.instances.InstanceTable`) is
written with one segment per instance instead: label ``"<class> <n>"``, TrackingID
``"<class path>/<instance id>"``, a TrackingUID stable per object, the class's codes, a colour near
the class's. Reading such a SEG back (ours, or any whose segments all carry distinct
TrackingIDs: one segment per tracked object) gives one instance map and its instance
records (:attr:`SegmentLabels.instances`).

Reading returns label maps placed in world (z, y, x) like any volume, and,
given the referenced series' grid, pasted onto it voxel for voxel (a SEG
omits empty frames, so its own extent is usually smaller).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom

from napari_domainseg import __version__
from napari_domainseg.atomic import atomic_write
from napari_domainseg.errors import DomainSegError
from napari_domainseg.labels.colors import default_color
from napari_domainseg.labels.instances import InstanceTable, instance_dtype
from napari_domainseg.labels.schema import (
    MAX_CLASS_ID,
    ClassCodes,
    Code,
    LabelClass,
    LabelSchema,
    covering_schema,
)
from napari_domainseg.medical.discovery import (
    SEGMENTATION_CLASSES,
    Discovery,
    discover,
)
from napari_domainseg.medical.geometry import (
    TILT_TOLERANCE_DEG,
    apply_reorient,
    paste_on_grid,
    reorient,
    undo_reorient,
)
from napari_domainseg.medical.instance_segments import (
    GENERIC_CATEGORY,
    GENERIC_TYPE,
    INSTANCES_KEY,
    instance_segments,
)
from napari_domainseg.medical.volume_geometry import VolumeGeometry

SEGMENTATION_TYPES = ("BINARY", "LABELMAP")
DEFAULT_SEGMENTATION_TYPE = "BINARY"
"""BINARY by default: LABELMAP (DICOM 2024) is unknown to older validators and viewers."""

SEG_COMPRESSIONS = {
    "none": pydicom.uid.ExplicitVRLittleEndian,
    "jpeg2000": pydicom.uid.JPEG2000Lossless,
}
"""Pixel data encodings a SEG can be written with (``compression`` argument)."""
DEFAULT_SEG_COMPRESSION = "none"
"""Uncompressed (Explicit VR Little Endian) by default: dcmqi, and so 3D Slicer and the Imaging
Data Commons tools, refuse JPEG 2000 SEGs ("uses lossy compression, not supported for
Segmentation objects"). A 1-bit BINARY SEG is small uncompressed: frames without labels are
omitted and each labelled frame takes Rows x Columns / 8 bytes."""

GENERATED_UIDS_NOTE = "source UIDs generated (anonymised series)"
"""ContentDescription of a SEG whose source series had no UIDs (see ``new_uids``)."""


class DicomSegError(DomainSegError, ValueError):
    """A DICOM SEG cannot be written or read; the message says why and what to do."""


class DicomSegWarning(UserWarning):
    """A DICOM SEG was read or written, with something the user must know."""


@dataclass
class SegmentLabels:
    """One label map read from a SEG: all segments, or one segment when they overlap.

    ``instances`` holds the instance records (:meth:`InstanceTable.to_records`) when the SEG
    has one segment per instance: ``array`` is then the instance map and ``schema`` its classes.
    """

    array: np.ndarray
    affine: np.ndarray
    name: str
    schema: LabelSchema
    instances: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class _SegmentSpec:
    """What one segment says: its label value, label, colour, codes and tracking."""

    value: int
    label: str
    description: str
    color: tuple[int, ...]
    codes: Any = None
    tracking_id: str | None = None
    tracking_uid: str | None = None


@dataclass
class SegRead:
    """What a SEG holds, in the plugin's world convention."""

    label_maps: list[SegmentLabels]
    referenced_series_uid: str | None
    frame_of_reference_uid: str
    overlapping: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """What the user must be told (also issued as :class:`DicomSegWarning`)."""


def _source_datasets(
    geometry: VolumeGeometry, metadata: dict[str, Any], new_uids: bool, keep_equipment: bool
) -> tuple[list[pydicom.Dataset], dict[str, Any] | None]:
    """Headers of the source series, ready for highdicom, and the UIDs generated for them.

    Returns the headers (acquired order) and, when ``new_uids`` filled UIDs the
    series lacks, a record of what was generated (``None`` otherwise).
    """
    files = geometry.source.source_files
    if metadata.get("resampled"):
        raise DicomSegError(
            "the image was resampled on opening ("
            + "; ".join(metadata["resampled"])
            + "), so its voxels are not the acquired DICOM pixels a SEG must reference. "
            "Export NIfTI or NRRD instead, or annotate the series opened without resampling."
        )
    if metadata.get("seg_unsupported"):
        raise DicomSegError(
            f"the image is {metadata['seg_unsupported']}. Export NIfTI or NRRD instead."
        )
    if not files:
        raise DicomSegError(
            "a DICOM SEG must reference the DICOM series the labels were drawn on, and this "
            "layer does not come from one. Open the series with the DomainSeg DICOM reader and "
            "make the labels with 'New annotation layer for image', or export NIfTI/NRRD."
        )
    datasets = []
    for file in files:
        try:
            ds = pydicom.dcmread(file, stop_before_pixels=True)
        except (OSError, pydicom.errors.InvalidDicomError) as exc:
            raise DicomSegError(
                f"the source image {file} cannot be read ({exc}); a SEG must reference "
                "the source series, so it must still be on disk."
            ) from None
        datasets.append(copy.copy(ds))
    generated = _complete_uids(datasets, [Path(f) for f in files], new_uids)
    datasets = [_with_required_attributes(ds, keep_equipment) for ds in datasets]
    _set_missing_frame_of_reference(datasets)
    _set_missing_slice_thickness(datasets)
    return datasets, generated


UID_KEYWORDS = ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID")
"""UIDs a SEG copies from (or uses to reference) each source image."""


def _complete_uids(
    datasets: list[pydicom.Dataset], files: list[Path], new_uids: bool
) -> dict[str, Any] | None:
    """Fill empty source UIDs: from the file meta, else generated when ``new_uids`` is set.

    SOPClassUID and SOPInstanceUID fall back to MediaStorageSOPClassUID and
    MediaStorageSOPInstanceUID (the standard requires them to be equal).
    Instance, series and study UIDs are generated only when asked, derived from
    the files' contents so every export of the same series references the same
    UIDs.

    Raises
    ------
    DicomSegError
        If UIDs are missing and ``new_uids`` is not set, naming which and what works instead.
    """
    for ds in datasets:
        meta = getattr(ds, "file_meta", None) or pydicom.Dataset()
        for keyword, fallback in (
            ("SOPClassUID", "MediaStorageSOPClassUID"),
            ("SOPInstanceUID", "MediaStorageSOPInstanceUID"),
        ):
            if not str(ds.get(keyword, "") or "").strip() and str(meta.get(fallback, "")).strip():
                setattr(ds, keyword, str(meta.get(fallback)).strip())
    missing = {
        keyword: [f for f, ds in zip(files, datasets, strict=True) if not _uid(ds, keyword)]
        for keyword in UID_KEYWORDS
    }
    missing = {keyword: where for keyword, where in missing.items() if where}
    if not missing:
        return None
    folder = files[0].parent
    described = _describe_missing(missing, len(files))
    if "SOPClassUID" in missing:
        raise DicomSegError(
            f"a DICOM SEG cannot reference the series in {folder}: it has no SOP class, so the "
            f"SEG cannot say what images it references. Export NIfTI or NRRD instead. Empty: "
            f"{described}."
        )
    if not new_uids:
        raise DicomSegError(
            f"a DICOM SEG cannot reference the series in {folder}: its UIDs are empty (as some "
            "anonymisers leave them). Export NIfTI or NRRD instead, or ask for a SEG with new "
            "UIDs (domainseg export --seg-new-uids; napari: the 'DICOM SEG (generate source "
            "UIDs ...)' file type; seg_new_uids=True), which it records. "
            f"Empty: {described}."
        )
    return _generate_uids(datasets, files, missing)


def _describe_missing(missing: dict[str, list[Path]], n_files: int) -> str:
    """``"SOPInstanceUID, SeriesInstanceUID in 3 of 3 files (e.g. 03.dcm)"``, grouped by count."""
    groups: dict[int, list[str]] = {}
    for keyword, where in missing.items():
        groups.setdefault(len(where), []).append(keyword)
    example = next(iter(missing.values()))[0].name
    parts = [f"{', '.join(keys)} in {count} of {n_files} files" for count, keys in groups.items()]
    return "; ".join(parts) + f" (e.g. {example})"


def _uid(ds: pydicom.Dataset, keyword: str) -> str:
    return str(ds.get(keyword, "") or "").strip()


def _generate_uids(
    datasets: list[pydicom.Dataset], files: list[Path], missing: dict[str, list[Path]]
) -> dict[str, Any]:
    """Give the source headers stable UIDs derived from their files' contents."""
    digests = [hashlib.sha256(file.read_bytes()).hexdigest() for file in files]
    series_entropy = ["series", *sorted(digests)]
    shared = {
        "SeriesInstanceUID": pydicom.uid.generate_uid(entropy_srcs=series_entropy),
        "StudyInstanceUID": pydicom.uid.generate_uid(entropy_srcs=["study", *series_entropy]),
    }
    for ds, digest in zip(datasets, digests, strict=True):
        if not _uid(ds, "SOPInstanceUID"):
            ds.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=["instance", digest])
        for keyword, value in shared.items():
            if not _uid(ds, keyword):
                setattr(ds, keyword, value)
    return {
        "reason": "the source series had empty UIDs (anonymised); napari-domainseg generated "
        "them from the files' contents",
        "generated": sorted(missing),
        "series_instance_uid": str(datasets[0].SeriesInstanceUID),
        "study_instance_uid": str(datasets[0].StudyInstanceUID),
    }


def _set_missing_slice_thickness(datasets: list[pydicom.Dataset]) -> None:
    """Give classic slices without SliceThickness their spacing along the normal.

    highdicom copies SliceThickness into the SEG's pixel measures; anonymised
    test data sometimes lacks it. The spacing measured from the positions is
    what the volume uses.
    """
    if len(datasets) < 2 or all("SliceThickness" in ds for ds in datasets):
        return
    first, second = datasets[0], datasets[1]
    if "ImagePositionPatient" not in first or "ImageOrientationPatient" not in first:
        return
    orientation = np.asarray(first.ImageOrientationPatient, dtype=float)
    normal = np.cross(orientation[:3], orientation[3:6])
    step = np.asarray(second.ImagePositionPatient, dtype=float) - np.asarray(
        first.ImagePositionPatient, dtype=float
    )
    thickness = abs(float(np.dot(step, normal))) or 1.0
    for ds in datasets:
        if "SliceThickness" not in ds:
            ds.SliceThickness = round(thickness, 6)


_TYPE2_PATIENT_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)
"""Type 2 attributes a SEG copies from its source: present, possibly empty."""


EQUIPMENT_KEYWORDS = (
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "InstitutionalDepartmentTypeCodeSequence",
    "StationName",
    "DeviceSerialNumber",
)
"""Where the source was acquired: highdicom copies these into the SEG's
ContributingEquipmentSequence, where they are optional (type 3). Kept only
with *show patient data*."""


def _with_required_attributes(ds: pydicom.Dataset, keep_equipment: bool) -> pydicom.Dataset:
    """A copy of a source header that highdicom accepts (anonymised files drop type 2 tags)."""
    ds = copy.copy(ds)
    if not ds.get("SpecificCharacterSet"):  # an empty value breaks highdicom
        ds.pop("SpecificCharacterSet", None)
    if not keep_equipment:
        for keyword in EQUIPMENT_KEYWORDS:
            ds.pop(keyword, None)
    for keyword in _TYPE2_PATIENT_STUDY:
        if keyword not in ds:
            setattr(ds, keyword, "")
    age = str(ds.get("PatientAge", ""))
    if age and not re.fullmatch(r"\d{3}[DWMY]", age):
        # Invalid ages ("0Y") would make the SEG invalid; zero-pad or drop them.
        padded = age.rjust(4, "0")
        if re.fullmatch(r"\d{3}[DWMY]", padded):
            ds.PatientAge = padded
        else:
            del ds.PatientAge
    return ds


def _set_missing_frame_of_reference(datasets: list[pydicom.Dataset]) -> None:
    """Give headers without FrameOfReferenceUID one derived from the series, and say so once.

    Anonymisers sometimes drop it, but a SEG needs one; deriving it from the
    series means every export of this series shares it.
    """
    lacking = [ds for ds in datasets if not ds.get("FrameOfReferenceUID")]
    if not lacking:
        return
    series_uid = str(lacking[0].SeriesInstanceUID)
    uid = pydicom.uid.generate_uid(entropy_srcs=["frame of reference", series_uid])
    for ds in lacking:
        ds.FrameOfReferenceUID = uid
    warnings.warn(
        f"source series {series_uid} has no FrameOfReferenceUID; the SEG uses {uid}, "
        "derived from the SeriesInstanceUID",
        DicomSegWarning,
        stacklevel=4,
    )


def build_dicom_seg(
    labels: np.ndarray,
    geometry: VolumeGeometry,
    metadata: dict[str, Any] | None = None,
    schema: LabelSchema | None = None,
    segmentation_type: str = DEFAULT_SEGMENTATION_TYPE,
    series_description: str = "Segmentation",
    compression: str = DEFAULT_SEG_COMPRESSION,
    new_uids: bool = False,
    keep_equipment: bool | None = None,
    assist: dict | None = None,
    instances: InstanceTable | None = None,
) -> hd.seg.Segmentation:
    """A highdicom Segmentation of ``labels`` (world-ordered) over its source series.

    Parameters
    ----------
    labels
        Label map on the image's world-ordered voxel grid (as the image layer shows it).
    geometry
        The image's geometry: its source files (acquired order), reorientation, and for
        enhanced objects the frame order.
    metadata
        The image's description: ``patient`` (shown patient data), ``resampled`` and
        ``seg_unsupported`` (reasons a SEG cannot reference the source), ``tilt_deg``.
    schema
        Names, colours and descriptions of the classes; values missing from it
        become segments named ``"label N"``.
    segmentation_type
        ``"BINARY"`` (default) or ``"LABELMAP"``.
    series_description
        SeriesDescription (and ContentDescription) of the SEG.
    compression
        ``"none"`` (default, Explicit VR Little Endian: what dcmqi and 3D Slicer
        read) or ``"jpeg2000"`` (lossless; frames under 32 pixels a side stay
        uncompressed, JPEG 2000 cannot encode them).
    new_uids
        When the source series lacks SOP instance, series or study UIDs
        (anonymised), generate them instead of refusing. The SEG then references
        UIDs no archive holds; its ContentDescription and private block say so.
    keep_equipment
        Copy where the source was acquired (institution, station, device serial)
        into the SEG's contributing equipment. Default: only when the image was
        opened with *show patient data* (``"patient"`` in ``metadata``).
    assist
        Provenance of assisted labeling (which pixels came from the assistant), kept in the
        private block under ``"assist"`` (pixel runs index the world-ordered ``labels``).
    instances
        The instance table of ``labels``, then an instance map: one segment per instance
        (at most 65535), ``schema`` naming their classes; the records go into the private
        block under ``"instances"``.

    Raises
    ------
    DicomSegError
        If the labels or the source series cannot make a valid SEG; the message
        says what is wrong and what to export instead.
    """
    segmentation_type = segmentation_type.upper()
    if segmentation_type not in SEGMENTATION_TYPES:
        raise DicomSegError(f"segmentation type must be one of {SEGMENTATION_TYPES}")
    transfer_syntax = _compression_syntax(compression)
    if instances is None:
        check_label_values(labels)
    else:
        _check_instance_count(instances)
    metadata = metadata or {}
    if keep_equipment is None:
        keep_equipment = bool(metadata.get("patient"))
    sources, generated = _source_datasets(geometry, metadata, new_uids, keep_equipment)
    acquired = _acquired_labels(labels, geometry, sources)
    if instances is None:
        class_schema = covering_schema(np.unique(acquired), schema)
        specs = [_class_spec(c) for c in class_schema.classes]
        class_schema = LabelSchema(name="labels", classes=class_schema.classes)
    else:
        class_schema = covering_schema({i.class_id for i in instances}, schema)
        identity = str(metadata.get("annotation_id") or geometry.source.series_instance_uid)
        specs = _instance_specs(instances, class_schema, identity)
    if not specs:
        raise DicomSegError("the labels are empty and no schema names a class: nothing to export")
    pixel_array = _segment_numbers(acquired, [spec.value for spec in specs])
    if min(pixel_array.shape[1:]) < 32:  # JPEG 2000 cannot encode such small frames
        transfer_syntax = pydicom.uid.ExplicitVRLittleEndian
    description = GENERATED_UIDS_NOTE if generated else series_description[:64] or None
    source_number = sources[0].get("SeriesNumber")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # e.g. single-component patient names
        segmentation = hd.seg.Segmentation(
            source_images=sources,
            pixel_array=pixel_array,
            segmentation_type=segmentation_type,
            segment_descriptions=_segment_descriptions(specs),
            series_instance_uid=hd.UID(),
            series_number=1000 + _series_number(source_number),
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="napari-domainseg",
            manufacturer_model_name="napari-domainseg",
            software_versions=__version__,
            device_serial_number="0",
            content_label="SEGMENTATION",
            content_description=description,
            series_description=series_description[:64],
            transfer_syntax_uid=transfer_syntax,
            specific_character_set=seg_character_set(sources[0].get("SpecificCharacterSet")),
        )
    if "ContentCreatorName" not in segmentation:  # type 2 (dcmqi warns when absent)
        segmentation.ContentCreatorName = ""
    records = instances.to_records() if instances is not None else None
    _store_schema(segmentation, class_schema, [s.value for s in specs], generated, assist, records)
    _warn_if_sheared(geometry, metadata)
    return segmentation


MAX_SEGMENTS = 65535
"""Segment numbers are 16-bit: a SEG holds at most this many segments (instances)."""


def _check_instance_count(instances: InstanceTable) -> None:
    """Refuse more instances than a SEG has segment numbers for.

    Raises
    ------
    DicomSegError
        Saying how many there are and to export NIfTI or NRRD instead.
    """
    if len(instances) > MAX_SEGMENTS:
        raise DicomSegError(
            f"{len(instances)} instances: a DICOM SEG holds at most {MAX_SEGMENTS} segments "
            "(one per instance; segment numbers are 16-bit). Export NIfTI or NRRD instead, "
            "which keep any number of instances (uint32 ids)."
        )


_NO_SEGMENT = "painted label values have no segment (not in the schema or the instance table)"


def _segment_numbers(acquired: np.ndarray, values: list[int]) -> np.ndarray:
    """The pixel array highdicom takes: each voxel the segment number (1..N) of its value.

    Raises
    ------
    DicomSegError
        When a painted value has no segment.
    """
    numbers = np.arange(1, len(values) + 1)
    dtype = np.uint8 if len(values) < 256 else np.uint16
    largest = max(values)
    if int(acquired.max(initial=0)) > largest:
        raise DicomSegError(_NO_SEGMENT)
    if largest <= 1 << 20:  # a lookup table: one step over the voxels
        number_of_value = np.zeros(largest + 1, dtype=np.uint16)
        number_of_value[values] = numbers
        pixels = number_of_value[acquired]
        if np.count_nonzero(pixels) != np.count_nonzero(acquired):
            raise DicomSegError(_NO_SEGMENT)
        return pixels.astype(dtype)
    order = np.argsort(values)
    ordered = np.asarray(values)[order]
    where = np.clip(np.searchsorted(ordered, acquired), 0, len(ordered) - 1)
    found = ordered[where] == acquired
    if not np.all(found | (acquired == 0)):
        raise DicomSegError(_NO_SEGMENT)
    return np.where(found, numbers[order][where], 0).astype(dtype)


def _class_spec(label_class: LabelClass) -> _SegmentSpec:
    return _SegmentSpec(
        value=label_class.id,
        label=label_class.name,
        description=label_class.description,
        color=label_class.color,
        codes=label_class.codes,
    )


def _instance_specs(
    instances: InstanceTable, schema: LabelSchema, identity: str
) -> list[_SegmentSpec]:
    """One segment per instance, by id, each with its TrackingID and TrackingUID.

    The TrackingUID is derived from the annotation (``identity``: its annotation id, else the
    series) and the instance id, so every export of an object gives it the same UID (what
    longitudinal tracking needs) and two annotations never share one; an instance that
    carries a ``tracking_uid`` attribute (imported from a SEG) keeps it.
    """
    return [
        _SegmentSpec(
            value=segment.instance_id,
            label=segment.label,
            description=segment.description,
            color=segment.color,
            codes=segment.codes,
            tracking_id=segment.tracking_id,
            tracking_uid=str(
                instances[segment.instance_id].attributes.get("tracking_uid")
                or pydicom.uid.generate_uid(entropy_srcs=[identity, str(segment.instance_id)])
            ),
        )
        for segment in instance_segments(instances, schema)
    ]


def _warn_if_sheared(geometry: VolumeGeometry, metadata: dict[str, Any]) -> None:
    """Say that dcmqi (3D Slicer) cannot place a SEG of a gantry-tilted (sheared) series."""
    sheared = float(metadata.get("tilt_deg") or 0.0) > TILT_TOLERANCE_DEG or geometry.sheared
    if not sheared:
        return
    warnings.warn(
        "the series is gantry-tilted (its slices are sheared): the SEG is valid, each frame "
        "references its slice and napari-domainseg reopens it exactly, but dcmqi and so "
        "3D Slicer build volumes without shear and cannot place its frames.",
        DicomSegWarning,
        stacklevel=3,
    )


def check_label_values(labels: np.ndarray) -> None:
    """Refuse label values a SEG (and the label schema) cannot hold: outside 0-65535.

    Raises
    ------
    DicomSegError
        Naming the offending values and what to do.
    """
    array = np.asarray(labels)
    if array.size == 0 or not np.issubdtype(array.dtype, np.integer):
        return
    low, high = int(array.min()), int(array.max())
    if low >= 0 and high <= MAX_CLASS_ID:
        return
    bad = np.unique(array[(array < 0) | (array > MAX_CLASS_ID)])
    shown = ", ".join(str(int(v)) for v in bad[:5]) + (", ..." if bad.size > 5 else "")
    raise DicomSegError(
        f"label values {shown} are outside 1-{MAX_CLASS_ID}: class ids are 16-bit (DICOM SEG "
        "segment values, the label schema), so they would come back renumbered or dropped. "
        f"Renumber the classes to 1-{MAX_CLASS_ID} before exporting."
    )


def _compression_syntax(compression: str) -> str:
    try:
        return SEG_COMPRESSIONS[str(compression).lower()]
    except KeyError:
        raise DicomSegError(
            f"SEG compression {compression!r} is unknown; use one of {', '.join(SEG_COMPRESSIONS)}"
        ) from None


def _series_number(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _acquired_labels(
    labels: np.ndarray, geometry: VolumeGeometry, sources: list[pydicom.Dataset]
) -> np.ndarray:
    """World-ordered labels back in the source's frame order (slices, or enhanced frames)."""
    acquired = undo_reorient(np.asarray(labels), geometry.permutation, geometry.flips)
    frame_order = geometry.source.frame_order
    n_frames = len(frame_order) if frame_order is not None else len(sources)
    expected = (n_frames, int(sources[0].Rows), int(sources[0].Columns))
    if acquired.shape != expected:
        raise DicomSegError(
            f"the labels (shape {acquired.shape} in acquisition order) do not match the source "
            f"series ({expected[0]} slices of {expected[1]}x{expected[2]}); make the labels with "
            "'New annotation layer for image' so they share the image's grid."
        )
    if frame_order is not None:  # enhanced multi-frame: back to the object's frame order
        frames = np.empty_like(acquired)
        frames[np.asarray(frame_order)] = acquired
        acquired = frames
    return acquired


def _concept(code: Any) -> hd.sr.CodedConcept:
    """A schema :class:`~napari_domainseg.labels.schema.Code` as a DICOM coded concept."""
    return hd.sr.CodedConcept(str(code.value), str(code.scheme), str(code.meaning)[:64])


def _segment_descriptions(specs: list[_SegmentSpec]) -> list[hd.seg.SegmentDescription]:
    """Segment descriptions: the codes of each class (generic Tissue when it has none)."""
    generic_category = hd.sr.CodedConcept(*GENERIC_CATEGORY)
    generic_type = hd.sr.CodedConcept(*GENERIC_TYPE)
    descriptions = []
    for number, spec in enumerate(specs, start=1):
        terms = spec.codes
        region = getattr(terms, "anatomic_region", None)
        description = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=spec.label[:64],
            segmented_property_category=_concept(terms.category) if terms else generic_category,
            segmented_property_type=_concept(terms.type) if terms else generic_type,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            tracking_id=spec.tracking_id,
            tracking_uid=spec.tracking_uid,
            anatomic_regions=[_concept(region)] if region is not None else None,
            display_color=hd.color.CIELabColor.from_rgb(*spec.color[:3]),
        )
        modifier = getattr(terms, "modifier", None)
        if modifier is not None:
            description.SegmentedPropertyTypeCodeSequence[
                0
            ].SegmentedPropertyTypeModifierCodeSequence = [_concept(modifier)]
        if spec.description:
            description.SegmentDescription = spec.description[:1024]
        descriptions.append(description)
    return descriptions


_DEFAULT_REPERTOIRE = {"", "ISO_IR 6", "ISO 2022 IR 6"}
_MULTI_BYTE_EXTENSIONS = {"ISO 2022 IR 87", "ISO 2022 IR 159", "ISO 2022 IR 149", "ISO 2022 IR 58"}


def seg_character_set(value: str | Sequence[str] | None) -> str | list[str] | None:
    """The SpecificCharacterSet a SEG may carry, from its source's value.

    highdicom (like the standard) refuses a single ISO 2022 code-extension term:
    ``"ISO 2022 IR 100"`` becomes ``"ISO_IR 100"``, ``"ISO 2022 IR 6"`` (and
    ``"ISO_IR 6"``, empty) the default repertoire (``None``). Values that have
    no single-byte equivalent (Japanese, Korean, Chinese code extensions, empty
    first values, unknown terms) become UTF-8, ``"ISO_IR 192"``: pydicom has
    already decoded the text, and UTF-8 holds every character.
    """
    known = {e.value for e in hd.SpecificCharacterSetValues}
    if value is None:
        return None
    terms = [str(value)] if isinstance(value, str) else [str(v) for v in value]
    terms = [t.strip() for t in terms]
    if len(terms) <= 1:
        term = terms[0] if terms else ""
        if term in _DEFAULT_REPERTOIRE:
            return None
        if term.startswith("ISO 2022 IR "):
            single = "ISO_IR " + term.removeprefix("ISO 2022 IR ")
            return single if single in known else "ISO_IR 192"
        return term if term in known and not term.startswith("ISO 2022") else "ISO_IR 192"
    valid = (
        all(t in known and t.startswith("ISO 2022") for t in terms)
        and terms[0] not in _MULTI_BYTE_EXTENSIONS
    )
    return terms if valid else "ISO_IR 192"


PRIVATE_CREATOR = "napari-domainseg"
_PRIVATE_GROUP = 0x0073
_SCHEMA_ELEMENT = 0x01


def _store_schema(
    segmentation: hd.seg.Segmentation,
    schema: LabelSchema,
    values: list[int],
    generated_uids: dict[str, Any] | None = None,
    assist: dict[str, Any] | None = None,
    instances: list[dict[str, Any]] | None = None,
) -> None:
    """Keep the whole schema and each segment's label value in a private block.

    Segment numbers must run 1..N, so label values (ids) such as 200 would
    otherwise come back renumbered; descriptions and shortcuts would be lost.
    UIDs generated for an anonymised source series are recorded there too, and so is the
    provenance of assisted labeling (``"assist"``). For an instance map the values are
    instance ids and the instance records are kept under ``"instances"``.
    """
    block = segmentation.private_block(_PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    payload: dict[str, Any] = {"label_schema": schema.to_dict(), "segment_values": values}
    if instances is not None:
        payload[INSTANCES_KEY] = instances
    if generated_uids:
        payload["generated_source_uids"] = generated_uids
    if assist:
        payload["assist"] = assist
    block.add_new(_SCHEMA_ELEMENT, "UT", json.dumps(payload, separators=(",", ":")))


def _private_payload(segmentation: pydicom.Dataset) -> dict[str, Any]:
    """The JSON written by :func:`_store_schema` (empty if absent or damaged)."""
    try:
        block = segmentation.private_block(_PRIVATE_GROUP, PRIVATE_CREATOR)
        payload = json.loads(str(block[_SCHEMA_ELEMENT].value))
    except Exception:
        return {}
    return payload if isinstance(payload, dict) else {}


def _stored_schema(
    segmentation: pydicom.Dataset, n_segments: int
) -> tuple[LabelSchema, list[int]] | None:
    """The schema and segment values written by :func:`_store_schema`, if present and valid."""
    try:
        payload = _private_payload(segmentation)
        schema = LabelSchema.from_dict(payload["label_schema"])
        values = [int(v) for v in payload["segment_values"]]
    except Exception:  # absent or damaged: fall back to the segment descriptions
        return None
    if INSTANCES_KEY in payload:
        return None
    if len(values) != n_segments or sorted(values) != sorted(c.id for c in schema.classes):
        return None
    return schema, values


def write_dicom_seg(
    path: str | os.PathLike[str],
    labels: np.ndarray,
    geometry: VolumeGeometry,
    metadata: dict[str, Any] | None = None,
    schema: LabelSchema | None = None,
    segmentation_type: str = DEFAULT_SEGMENTATION_TYPE,
    overwrite: bool = False,
    compression: str = DEFAULT_SEG_COMPRESSION,
    new_uids: bool = False,
    assist: dict[str, Any] | None = None,
    instances: InstanceTable | None = None,
) -> list[Path]:
    """Write ``labels`` as a DICOM SEG file referencing its source series, atomically.

    See :func:`build_dicom_seg` for ``compression``, ``new_uids``, ``assist`` and
    ``instances``.
    """
    path = Path(path)
    segmentation = build_dicom_seg(
        labels,
        geometry,
        metadata,
        schema,
        segmentation_type,
        series_description=_description(path),
        compression=compression,
        new_uids=new_uids,
        assist=assist,
        instances=instances,
    )
    with atomic_write(path, overwrite=overwrite) as tmp:
        segmentation.save_as(tmp, enforce_file_format=True)
    return [path]


def _description(path: Path) -> str:
    name = path.name
    return name[: -len(".dcm")] if name.lower().endswith(".dcm") else name


def _rgba(color: hd.color.CIELabColor | None, index: int) -> tuple[int, int, int, int]:
    if color is None:
        return default_color(index)
    r, g, b = color.to_rgb()
    return (int(r), int(g), int(b), 255)


def _schema_of(segmentation: hd.seg.Segmentation, numbers: list[int]) -> LabelSchema:
    classes = []
    for number in numbers:
        item = segmentation.get_segment_description(number)
        color = None
        if "RecommendedDisplayCIELabValue" in item:
            color = hd.color.CIELabColor.from_dicom_value(item.RecommendedDisplayCIELabValue)
        name = str(item.SegmentLabel) or f"segment {number}"
        classes.append(
            LabelClass(
                id=number,
                name=name,
                color=_rgba(color, number),
                description=str(item.get("SegmentDescription", "")),
            )
        )
    names = [c.name for c in classes]
    if len(set(names)) != len(names):  # schema names must be unique
        classes = [
            LabelClass(id=c.id, name=f"{c.name} ({c.id})", color=c.color, description=c.description)
            for c in classes
        ]
    return LabelSchema(
        name=str(segmentation.get("SeriesDescription", "DICOM SEG")), classes=tuple(classes)
    )


@dataclass
class SegReference:
    """The image series a SEG is read onto: its instances and how they form the volume.

    Attributes
    ----------
    sop_instance_uids
        SOPInstanceUID of each acquired slice, in acquisition (sorted) order;
        one UID for an enhanced multi-frame object.
    frame_numbers
        For an enhanced object, its 1-based frame number of each acquired slice.
    permutation, flips
        The lossless reorientation from acquired (k, j, i) to world (z, y, x).
    affine
        Exact voxel-to-LPS affine of the world-ordered volume.
    shape
        Shape of the world-ordered volume.
    """

    sop_instance_uids: list[str]
    frame_numbers: list[int] | None
    permutation: tuple[int, int, int]
    flips: tuple[bool, bool, bool]
    affine: np.ndarray
    shape: tuple[int, int, int]

    @classmethod
    def from_geometry(
        cls, geometry: VolumeGeometry, resampled: bool = False
    ) -> SegReference | None:
        """The reference of an image with ``geometry`` (``None`` when a SEG cannot point at it).

        An image without SOP instance UIDs (not from DICOM) or resampled on opening has no
        acquired frames a SEG could reference.
        """
        uids = geometry.source.sop_instance_uids
        if not uids or resampled:
            return None
        frame_order = geometry.source.frame_order
        return cls(
            sop_instance_uids=list(uids),
            frame_numbers=[int(i) + 1 for i in frame_order] if frame_order else None,
            permutation=geometry.permutation,
            flips=geometry.flips,
            affine=np.array(geometry.affine),
            shape=geometry.shape,
        )

    @classmethod
    def of_volume(cls, volume: Any) -> SegReference | None:
        """The reference of a reader's volume (see :meth:`from_geometry`)."""
        return cls.from_geometry(volume.geometry, bool(volume.metadata.get("resampled")))


def _world(volume: hd.Volume) -> tuple[np.ndarray, np.ndarray]:
    """A highdicom volume (slice, row, column -> LPS x, y, z) as a world-ordered array."""
    affine = np.eye(4)
    affine[:3, :3] = volume.affine[:3, :3][::-1]
    affine[:3, 3] = volume.affine[:3, 3][::-1]
    view, world_affine, _, _ = reorient(np.asarray(volume.array), affine)
    return np.ascontiguousarray(view), world_affine


def _on_reference(
    segmentation: hd.seg.Segmentation,
    reference: SegReference,
    number: int | list[int],
    relabel: bool = True,
) -> np.ndarray:
    """Mask of segment ``number`` on the referenced series' world grid.

    Given several numbers (``relabel`` False), the segments combined, each voxel its segment
    number (highdicom refuses, ``RuntimeError``, when they overlap).

    Each SEG frame lands on the source frame it references (exact, tilted
    series included). Older SEGs that do not declare spatial locations
    preserved are placed by geometry instead, which must then match voxel for voxel.
    """
    if not _references_instances(segmentation, reference.sop_instance_uids):
        return _placed_by_geometry(segmentation, reference, number, relabel)
    options = {
        "segment_numbers": _numbers(number),
        "combine_segments": True,
        "relabel": relabel,
        "assert_missing_frames_are_empty": True,
    }
    try:
        if reference.frame_numbers is not None:
            acquired = segmentation.get_pixels_by_source_frame(
                reference.sop_instance_uids[0], reference.frame_numbers, **options
            )
        else:
            acquired = segmentation.get_pixels_by_source_instance(
                reference.sop_instance_uids, **options
            )
    except (ValueError, RuntimeError) as exc:
        if "spatial locations" not in str(exc):
            raise
        return _placed_by_geometry(segmentation, reference, number, relabel)
    return np.ascontiguousarray(apply_reorient(acquired, reference.permutation, reference.flips))


def _references_instances(segmentation: hd.seg.Segmentation, uids: list[str]) -> bool:
    """True when the SEG names at least one of these source instances."""
    referenced = {
        str(instance.ReferencedSOPInstanceUID)
        for series in segmentation.get("ReferencedSeriesSequence", [])
        for instance in series.get("ReferencedInstanceSequence", [])
    }
    return bool(referenced & set(uids))


def _placed_by_geometry(
    segmentation: hd.seg.Segmentation,
    reference: SegReference,
    number: int | list[int],
    relabel: bool = True,
) -> np.ndarray:
    """Segment ``number`` pasted onto the reference grid by position (voxels must coincide)."""
    array, affine = _world(_segment_volume(segmentation, number, relabel))
    placed = paste_on_grid(array, affine, reference.shape, reference.affine)
    if placed is None:
        raise ValueError(
            "its frames neither reference this series' images nor lie on its voxel grid "
            "(different spacing, orientation or position)"
        )
    return placed


def _numbers(number: int | list[int]) -> list[int]:
    return [number] if isinstance(number, int) else list(number)


def _segment_volume(
    segmentation: hd.seg.Segmentation, number: int | list[int], relabel: bool = True
) -> hd.Volume:
    """Segment ``number`` as a 0/1 volume in the SEG's own geometry (several: combined)."""
    return segmentation.get_volume(
        segment_numbers=_numbers(number), combine_segments=True, relabel=relabel
    )


def _segment_masks(
    segmentation: hd.seg.Segmentation,
    reference: SegReference | None,
    numbers: list[int],
    value_of: dict[int, int],
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(label value, 0/1 mask, affine) for each segment, in world (z, y, x)."""
    for number in numbers:
        if reference is not None:
            mask, affine = _on_reference(segmentation, reference, number), reference.affine
        else:
            mask, affine = _world(_segment_volume(segmentation, number))
        yield value_of[number], mask, affine


def _label_maps(
    masks: Iterator[tuple[int, np.ndarray, np.ndarray]], schema: LabelSchema, default_name: str
) -> tuple[list[SegmentLabels], bool]:
    """One label map holding every segment, or one per segment if any two overlap."""
    combined: np.ndarray | None = None
    affine = np.eye(4)
    voxels: dict[int, np.ndarray] = {}  # flat indices of each segment, to split on overlap
    overlapping = False
    for value, mask, mask_affine in masks:
        affine = mask_affine
        if combined is None:
            dtype = np.uint8 if max(c.id for c in schema.classes) < 256 else np.uint16
            combined = np.zeros(mask.shape, dtype=dtype)
        if mask.shape != combined.shape:
            raise ValueError("segments span different grids")
        inside = np.flatnonzero(mask)
        voxels[value] = inside
        flat = combined.reshape(-1)
        if np.any(flat[inside]):
            overlapping = True
        flat[inside] = value
    if combined is None:
        return [], False
    if not overlapping:
        return [SegmentLabels(combined, affine, default_name, schema)], False
    maps = []
    for label_class in schema.classes:
        if label_class.id not in voxels:
            continue
        single = np.zeros_like(combined)
        single.reshape(-1)[voxels[label_class.id]] = label_class.id
        maps.append(SegmentLabels(single, affine, label_class.name, schema))
    return maps, True


def read_dicom_seg(path: str | os.PathLike[str], reference: SegReference | None = None) -> SegRead:
    """Read a DICOM SEG into label maps in world (z, y, x).

    Parameters
    ----------
    path
        The SEG file.
    reference
        The referenced series (see :class:`SegReference`). With it, every label
        map has the series' grid and each SEG frame lands on the source frame it
        references (this works for tilted series too). Without it, the label
        maps span the SEG's own frames in their own geometry.

    A SEG with one segment per instance (ours, or any whose segments all carry distinct
    TrackingIDs) reads as one instance map with its records in
    :attr:`SegmentLabels.instances` (see :func:`_instance_label_maps`).

    Raises
    ------
    DicomSegError
        If the file is not a readable SEG, holds fractional segments, does not
        reference the given series, or (without a reference) its frames do not
        form a regular volume.

    Warns
    -----
    DicomSegWarning
        When frames reference segments the SEG does not define (their pixels
        cannot be shown); the same text is in :attr:`SegRead.warnings`.
    """
    path = Path(path)
    try:
        segmentation = hd.seg.segread(path)
    except Exception as exc:
        raise DicomSegError(f"{path} is not a readable DICOM SEG: {exc}") from None
    if segmentation.segmentation_type == hd.seg.SegmentationTypeValues.FRACTIONAL:
        raise DicomSegError(f"{path}: FRACTIONAL segmentations are not label maps; not supported")
    numbers = list(segmentation.segment_numbers)
    notes = _undefined_segment_warnings(path, segmentation, numbers)
    for note in notes:
        warnings.warn(note, DicomSegWarning, stacklevel=2)
    try:
        overlapping = False
        label_maps = _instance_label_maps(segmentation, reference, numbers, _description(path))
        if label_maps is None:
            stored = _stored_schema(segmentation, len(numbers))
            if stored is not None:
                schema, values = stored
            else:
                schema, values = _schema_of(segmentation, numbers), numbers
            value_of = dict(zip(numbers, values, strict=True))
            label_maps, overlapping = _label_maps(
                _segment_masks(segmentation, reference, numbers, value_of),
                schema,
                _description(path),
            )
    except (RuntimeError, ValueError, KeyError) as exc:
        where = "the referenced series" if reference is not None else "a regular volume"
        raise DicomSegError(f"{path}: cannot place its frames on {where}: {exc}") from None
    referenced = None
    if "ReferencedSeriesSequence" in segmentation:
        referenced = str(segmentation.ReferencedSeriesSequence[0].SeriesInstanceUID)
    metadata = {
        "modality": "SEG",
        "series_description": str(segmentation.get("SeriesDescription", "")),
        "series_instance_uid": str(segmentation.SeriesInstanceUID),
        "segmentation_type": segmentation.segmentation_type.value,
    }
    generated = _private_payload(segmentation).get("generated_source_uids")
    if generated:
        metadata["generated_source_uids"] = generated
    return SegRead(
        label_maps=label_maps,
        referenced_series_uid=referenced,
        frame_of_reference_uid=str(segmentation.get("FrameOfReferenceUID", "")),
        overlapping=overlapping,
        metadata=metadata,
        warnings=notes,
    )


def _instance_label_maps(
    segmentation: hd.seg.Segmentation,
    reference: SegReference | None,
    numbers: list[int],
    name: str,
) -> list[SegmentLabels] | None:
    """The SEG as one instance map, when it has one segment per instance (else ``None``).

    Ours (the private block lists the instances) come back exactly: same ids, classes,
    attributes and provenance. Other SEGs whose segments all carry distinct TrackingIDs
    give one instance per segment (id = segment number, provenance ``"imported"``), grouped
    into classes by segment label (without its trailing number) and codes. Overlapping
    segments cannot share a map: ``None``, and they are read one layer per segment.
    """
    tracked = _stored_instances(segmentation, numbers) or _tracked_instances(segmentation, numbers)
    if tracked is None:
        return None
    schema, values, records = tracked
    try:
        if reference is not None:
            combined = _on_reference(segmentation, reference, numbers, relabel=False)
            affine = reference.affine
        else:
            combined, affine = _world(_segment_volume(segmentation, numbers, relabel=False))
    except RuntimeError as exc:
        if "overlap" in str(exc):
            return None
        raise
    lookup = np.zeros(max(numbers) + 1, dtype=instance_dtype(max(values)))
    lookup[numbers] = values
    instance_map = np.ascontiguousarray(lookup[np.asarray(combined)])
    return [SegmentLabels(instance_map, affine, name, schema, records)]


def _stored_instances(
    segmentation: pydicom.Dataset, numbers: list[int]
) -> tuple[LabelSchema, list[int], list[dict[str, Any]]] | None:
    """Schema, instance id per segment and instance records from our private block."""
    payload = _private_payload(segmentation)
    if INSTANCES_KEY not in payload:
        return None
    try:
        schema = LabelSchema.from_dict(payload["label_schema"])
        values = [int(v) for v in payload["segment_values"]]
        table = InstanceTable.from_records(payload[INSTANCES_KEY])
    except Exception:  # damaged: the TrackingIDs, else the segments, say what there is
        return None
    if len(values) != len(numbers) or sorted(values) != list(table.ids):
        return None
    if any(instance.class_id not in schema for instance in table):
        return None
    return schema, values, table.to_records()


_TRAILING_NUMBER = re.compile(r"\s*\d+$")


def _item_code(item: pydicom.Dataset, keyword: str) -> Code | None:
    sequence = item.get(keyword)
    if not sequence:
        return None
    code = sequence[0]
    return Code(
        str(code.get("CodeValue", "") or code.get("LongCodeValue", "") or ""),
        str(code.get("CodingSchemeDesignator", "")),
        str(code.get("CodeMeaning", "")),
    )


def _segment_codes(item: pydicom.Dataset) -> ClassCodes | None:
    """A segment's category, type, type modifier and anatomic region as class codes."""
    category = _item_code(item, "SegmentedPropertyCategoryCodeSequence")
    kind = _item_code(item, "SegmentedPropertyTypeCodeSequence")
    if category is None or kind is None:
        return None
    types = item.get("SegmentedPropertyTypeCodeSequence")
    modifier = _item_code(types[0], "SegmentedPropertyTypeModifierCodeSequence")
    region = _item_code(item, "AnatomicRegionSequence")
    return ClassCodes(category, kind, modifier, region)


def _tracked_instances(
    segmentation: hd.seg.Segmentation, numbers: list[int]
) -> tuple[LabelSchema, list[int], list[dict[str, Any]]] | None:
    """Instances of a SEG whose segments all carry distinct TrackingIDs (else ``None``).

    Only when some class has several tracked segments (objects of one kind): a SEG with one
    tracked segment per class (organs) stays a class map. The TrackingID and TrackingUID are
    kept as attributes, so a re-export keeps the objects' identities.
    """
    items = [segmentation.get_segment_description(number) for number in numbers]
    tracking = [str(item.get("TrackingID", "") or "").strip() for item in items]
    if not items or not all(tracking) or len(set(tracking)) != len(tracking):
        return None
    classes: dict[tuple, LabelClass] = {}
    records = []
    for number, item in zip(numbers, items, strict=True):
        codes = _segment_codes(item)
        label = str(item.get("SegmentLabel", "") or "")
        base = _TRAILING_NUMBER.sub("", label).strip() or (
            codes.type.meaning if codes is not None else ""
        )
        key = (base.casefold(), codes)
        if key not in classes:
            class_id = len(classes) + 1
            color = None
            if "RecommendedDisplayCIELabValue" in item:
                color = hd.color.CIELabColor.from_dicom_value(item.RecommendedDisplayCIELabValue)
            classes[key] = LabelClass(
                id=class_id,
                name=base or f"class {class_id}",
                color=_rgba(color, class_id),
                kind="objects",
                codes=codes,
            )
        tracked = {"tracking_id": tracking[len(records)]}
        if item.get("TrackingUID"):
            tracked["tracking_uid"] = str(item.TrackingUID)  # kept on re-export
        records.append(
            {
                "id": number,
                "class_id": classes[key].id,
                "attributes": tracked,
                "provenance": "imported",
            }
        )
    if len(classes) == len(records):  # one segment per class (organs): a class map, as before
        return None
    named = list(classes.values())
    names = [c.name.casefold() for c in named]
    named = [
        replace(c, name=f"{c.name} ({c.id})") if names.count(c.name.casefold()) > 1 else c
        for c in named
    ]
    schema = LabelSchema(
        name=str(segmentation.get("SeriesDescription", "DICOM SEG")), classes=tuple(named)
    )
    return schema, list(numbers), records


def _frame_segment_numbers(segmentation: pydicom.Dataset) -> list[int | None]:
    """The segment number each frame of a BINARY/FRACTIONAL SEG references (1-based frames)."""
    shared = segmentation.get("SharedFunctionalGroupsSequence")
    shared_item = shared[0] if shared else pydicom.Dataset()
    numbers: list[int | None] = []
    for item in segmentation.get("PerFrameFunctionalGroupsSequence", []):
        identification = item.get("SegmentIdentificationSequence") or shared_item.get(
            "SegmentIdentificationSequence"
        )
        try:
            numbers.append(int(identification[0].ReferencedSegmentNumber))
        except (TypeError, IndexError, AttributeError, ValueError):
            numbers.append(None)
    return numbers


def _undefined_segment_warnings(
    path: Path, segmentation: hd.seg.Segmentation, numbers: list[int]
) -> list[str]:
    """One message per segment number that frames reference but the SEG does not define."""
    if segmentation.segmentation_type == hd.seg.SegmentationTypeValues.LABELMAP:
        return []
    defined = set(numbers)
    frames_of: dict[int | None, list[int]] = {}
    for frame, number in enumerate(_frame_segment_numbers(segmentation), start=1):
        if number not in defined:
            frames_of.setdefault(number, []).append(frame)
    notes = []
    listed = ", ".join(str(n) for n in sorted(defined)) or "none"
    for number, frames in frames_of.items():
        shown = ", ".join(str(f) for f in frames[:10]) + (", ..." if len(frames) > 10 else "")
        which = (
            f"frame {shown} references"
            if len(frames) == 1
            else (f"frames {shown} ({len(frames)} frames) reference")
        )
        segment = f"segment {number}" if number is not None else "no segment"
        notes.append(
            f"{path.name}: {which} {segment}, which its segment sequence does not define "
            f"(defined: {listed}); those pixels are not shown. The file is damaged or was "
            "edited; ask its author for a corrected SEG."
        )
    return notes


def is_dicom_seg(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a DICOM Segmentation object (checked from its header)."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except Exception:
        return False
    return str(ds.get("SOPClassUID", "")) in SEGMENTATION_CLASSES


def referenced_series_uids(header: pydicom.Dataset) -> list[str]:
    """SeriesInstanceUIDs a SEG header references."""
    return [
        str(item.SeriesInstanceUID)
        for item in header.get("ReferencedSeriesSequence", [])
        if "SeriesInstanceUID" in item
    ]


SEARCH_MAX_FILES = 2000
"""At most this many files are opened when looking for a SEG's series beside it."""
SEARCH_MAX_DEPTH = 2
"""Folder levels searched below the SEG's folder and below each sibling folder."""


@dataclass
class SeriesSearch:
    """Where the series a SEG references was looked for, and what was found.

    Attributes
    ----------
    wanted
        The SeriesInstanceUIDs the SEG references.
    folders
        The folders whose files were checked (the SEG's own folder, its
        subfolders, then its sibling folders), in search order.
    files_checked
        Files whose header was read.
    max_files
        The bound on files read (default :data:`SEARCH_MAX_FILES`).
    truncated
        True when ``max_files`` stopped the search early.
    found
        ``(folder, discovery, series_uid)``: the folder holding the series and a
        discovery of the series' files only; ``None`` when not found.
    """

    wanted: list[str]
    folders: list[Path] = field(default_factory=list)
    files_checked: int = 0
    max_files: int = SEARCH_MAX_FILES
    truncated: bool = False
    found: tuple[Path, Discovery, str] | None = None

    def summary(self) -> str:
        """Say what was searched, for the message shown when the series is not found."""
        folders = ", ".join(str(f) for f in self.folders[:4])
        if len(self.folders) > 4:
            folders += f" and {len(self.folders) - 4} more"
        text = f"searched {self.files_checked} files in {folders or 'no folder'}"
        if self.truncated:
            text += f" (stopped at {self.max_files} files)"
        return text


def search_referenced_series(
    path: str | os.PathLike[str], max_files: int = SEARCH_MAX_FILES
) -> SeriesSearch:
    """Look for the series a SEG file references near it, with a bounded search.

    The SEG's own folder is searched first (and its subfolders, up to
    :data:`SEARCH_MAX_DEPTH` levels), then its sibling folders (the parent's
    other subfolders, as in ``study/ct`` beside ``study/seg``), and the parent's
    own files. Only regular files are opened, each for its header's
    SeriesInstanceUID; never more than ``max_files``. The grandparent folder is
    never searched.
    """
    path = Path(path)
    header = pydicom.dcmread(path, stop_before_pixels=True)
    search = SeriesSearch(wanted=referenced_series_uids(header), max_files=max_files)
    if not search.wanted:
        return search
    seg_folder = path.parent
    parent = seg_folder.parent
    levels: list[list[tuple[Path, int]]] = [[(seg_folder, SEARCH_MAX_DEPTH)]]
    if parent != seg_folder:
        siblings = [d for d in _subfolders(parent) if d != seg_folder]
        levels.append([(parent, 0), *((d, SEARCH_MAX_DEPTH - 1) for d in siblings)])
    budget = [max_files]
    for level in levels:
        matches: list[Path] = []
        for folder, depth in level:
            matches += _files_of_series(folder, depth, set(search.wanted), path, search, budget)
            if matches or search.truncated:  # a series sits in one folder tree
                break
        if matches:
            discovery = discover(sorted(matches))
            for candidate in discovery.candidates:
                if candidate.is_volume_capable and candidate.series_uid in search.wanted:
                    search.found = (matches[0].parent, discovery, candidate.series_uid)
                    return search
        if search.truncated:
            break
    return search


def _subfolders(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            return sorted(Path(e.path) for e in entries if e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def _files_of_series(
    folder: Path,
    depth: int,
    wanted: set[str],
    seg_path: Path,
    search: SeriesSearch,
    budget: list[int],
) -> list[Path]:
    """Regular files under ``folder`` (``depth`` levels) whose SeriesInstanceUID is wanted."""
    search.folders.append(folder)
    matches: list[Path] = []
    try:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda e: e.name)
    except OSError:
        return matches
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if depth > 0:
                matches += _files_of_series(
                    Path(entry.path), depth - 1, wanted, seg_path, search, budget
                )
            continue
        if not entry.is_file() or entry.name.upper() == "DICOMDIR":  # no FIFOs, sockets, devices
            continue
        file = Path(entry.path)
        if file == seg_path:
            continue
        if budget[0] <= 0:
            search.truncated = True
            return matches
        budget[0] -= 1
        search.files_checked += 1
        if _series_uid_of(file) in wanted:
            matches.append(file)
    return matches


_HEAD_BYTES = 65536
"""Bytes read to find a file's SeriesInstanceUID (group 0020 sits near the start)."""
_SERIES_UID_TAG = 0x0020000E


def _past_series_uid(tag: int, vr: str | None, length: int) -> bool:
    return tag > _SERIES_UID_TAG


def _series_uid_of(file: Path) -> str | None:
    """A file's SeriesInstanceUID, parsed from its first bytes only (``None`` if not DICOM)."""
    try:
        with file.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError:
        return None
    if head[128:132] != b"DICM":  # regular files only reach here (the walk checks)
        return None
    uid = None
    try:
        ds = pydicom.filereader.read_partial(io.BytesIO(head), stop_when=_past_series_uid)
        uid = ds.get("SeriesInstanceUID")
    except Exception:  # a header longer than the bytes read, or damaged
        uid = None
    if uid is None and len(head) == _HEAD_BYTES:
        try:
            ds = pydicom.dcmread(file, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
            uid = ds.get("SeriesInstanceUID")
        except Exception:
            return None
    return str(uid) if uid else None


def find_referenced_series(path: str | os.PathLike[str]) -> tuple[Path, Discovery, str] | None:
    """Find the series a SEG file references near it (see :func:`search_referenced_series`).

    Returns the folder holding the series, a discovery of its files, and the
    series UID; ``None`` when the series is not there.
    """
    return search_referenced_series(path).found


def segs_referencing(discovery: Discovery, series_uid: str) -> list[Path]:
    """SEG files among ``discovery``'s candidates that reference ``series_uid``."""
    return [
        file
        for candidate in discovery.candidates
        if candidate.kind == "segmentation"
        for file, header in zip(candidate.files, candidate.headers, strict=True)
        if series_uid in referenced_series_uids(header)
    ]
