"""DICOM Segmentation objects (SEG): write labels over a DICOM series, read them back.

Writing uses highdicom. The SEG references the source series the labels were
drawn on (its files are listed in the image metadata by
:func:`~napari_domainseg.medical.series.read_series`), so the labels must sit
on that series' acquired voxel grid: a resampled volume cannot be referenced.
Segments are numbered 1..N in schema order (SEG requires consecutive numbers)
and carry the class name, description and colour.

Reading returns label maps placed in world (z, y, x) like any volume, and,
given the referenced series' grid, pasted onto it voxel for voxel (a SEG
omits empty frames, so its own extent is usually smaller).
"""

from __future__ import annotations

import copy
import json
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes

from napari_domainseg import __version__
from napari_domainseg.atomic import atomic_write
from napari_domainseg.labels.colors import default_color
from napari_domainseg.labels.schema import LabelClass, LabelSchema, covering_schema
from napari_domainseg.medical.discovery import SEGMENTATION_CLASSES, Discovery, discover
from napari_domainseg.medical.geometry import (
    apply_reorient,
    paste_on_grid,
    reorient,
    undo_reorient,
)

SEGMENTATION_TYPES = ("BINARY", "LABELMAP")
DEFAULT_SEGMENTATION_TYPE = "BINARY"
"""BINARY by default: LABELMAP (DICOM 2024) is unknown to older validators and viewers."""


class DicomSegError(ValueError):
    """A DICOM SEG cannot be written or read; the message says why and what to do."""


@dataclass
class SegmentLabels:
    """One label map read from a SEG: all segments, or one segment when they overlap."""

    array: np.ndarray
    affine: np.ndarray
    name: str
    schema: LabelSchema


@dataclass
class SegRead:
    """What a SEG holds, in the plugin's world convention."""

    label_maps: list[SegmentLabels]
    referenced_series_uid: str | None
    frame_of_reference_uid: str
    overlapping: bool
    metadata: dict[str, Any] = field(default_factory=dict)


def _source_datasets(metadata: dict[str, Any]) -> list[pydicom.Dataset]:
    files = metadata.get("source_files")
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
        datasets.append(_with_required_attributes(ds))
    _set_missing_slice_thickness(datasets)
    return datasets


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


def _with_required_attributes(ds: pydicom.Dataset) -> pydicom.Dataset:
    """A copy of a source header that highdicom accepts (anonymised files drop type 2 tags)."""
    ds = copy.copy(ds)
    if not ds.get("SpecificCharacterSet"):  # an empty value breaks highdicom
        ds.pop("SpecificCharacterSet", None)
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
    if not ds.get("FrameOfReferenceUID"):
        # Anonymisers sometimes drop it, but a SEG needs one: derive a stable one from the
        # series, so every export of this series shares it, and say so.
        ds.FrameOfReferenceUID = pydicom.uid.generate_uid(
            entropy_srcs=["frame of reference", str(ds.SeriesInstanceUID)]
        )
        warnings.warn(
            f"source series {ds.SeriesInstanceUID} has no FrameOfReferenceUID; the SEG uses "
            f"{ds.FrameOfReferenceUID}, derived from the SeriesInstanceUID",
            stacklevel=3,
        )
    return ds


def build_dicom_seg(
    labels: np.ndarray,
    metadata: dict[str, Any],
    schema: LabelSchema | None = None,
    segmentation_type: str = DEFAULT_SEGMENTATION_TYPE,
    series_description: str = "Segmentation",
) -> hd.seg.Segmentation:
    """A highdicom Segmentation of ``labels`` (world-ordered) over its source series.

    Parameters
    ----------
    labels
        Label map on the image's world-ordered voxel grid (as the image layer shows it).
    metadata
        The image's plugin metadata: ``source_files`` (acquired order),
        ``reorientation``, and for enhanced objects ``frame_order``.
    schema
        Names, colours and descriptions of the classes; values missing from it
        become segments named ``"label N"``.
    segmentation_type
        ``"BINARY"`` (default) or ``"LABELMAP"``.
    """
    segmentation_type = segmentation_type.upper()
    if segmentation_type not in SEGMENTATION_TYPES:
        raise DicomSegError(f"segmentation type must be one of {SEGMENTATION_TYPES}")
    sources = _source_datasets(metadata)
    reorientation = metadata.get("reorientation", {"permutation": [0, 1, 2], "flips": [0, 0, 0]})
    acquired = undo_reorient(
        np.asarray(labels), tuple(reorientation["permutation"]), tuple(reorientation["flips"])
    )
    frame_order = metadata.get("frame_order")
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
    plan = [(c.id, c) for c in covering_schema(np.unique(acquired), schema).classes]
    if not plan:
        raise DicomSegError("the labels are empty and no schema names a class: nothing to export")
    number_of_value = np.zeros(int(max(v for v, _ in plan)) + 1, dtype=np.uint16)
    for number, (value, _) in enumerate(plan, start=1):
        number_of_value[value] = number
    if int(acquired.max(initial=0)) >= len(number_of_value):
        raise DicomSegError("label values exceed the schema")
    pixel_dtype = np.uint8 if len(plan) < 256 else np.uint16
    pixel_array = number_of_value[acquired].astype(pixel_dtype)
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=label_class.name[:64],
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            display_color=hd.color.CIELabColor.from_rgb(*label_class.color[:3]),
        )
        for number, (_, label_class) in enumerate(plan, start=1)
    ]
    for description, (_, label_class) in zip(descriptions, plan, strict=True):
        if label_class.description:
            description.SegmentDescription = label_class.description[:1024]
    source_number = sources[0].get("SeriesNumber")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # e.g. single-component patient names
        segmentation = hd.seg.Segmentation(
            source_images=sources,
            pixel_array=pixel_array,
            segmentation_type=segmentation_type,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=1000 + int(source_number or 0),
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="napari-domainseg",
            manufacturer_model_name="napari-domainseg",
            software_versions=__version__,
            device_serial_number="0",
            content_label="SEGMENTATION",
            content_description=series_description[:64] or None,
            series_description=series_description[:64],
            transfer_syntax_uid=_transfer_syntax(pixel_array),
        )
    _store_schema(segmentation, plan)
    return segmentation


PRIVATE_CREATOR = "napari-domainseg"
_PRIVATE_GROUP = 0x0073
_SCHEMA_ELEMENT = 0x01


def _store_schema(segmentation: hd.seg.Segmentation, plan: list[tuple[int, LabelClass]]) -> None:
    """Keep the whole schema and each segment's label value in a private block.

    Segment numbers must run 1..N, so label values (ids) such as 200 would
    otherwise come back renumbered; descriptions and shortcuts would be lost.
    """
    schema = LabelSchema(name="labels", classes=tuple(c for _, c in plan))
    block = segmentation.private_block(_PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    payload = {"label_schema": schema.to_dict(), "segment_values": [v for v, _ in plan]}
    block.add_new(_SCHEMA_ELEMENT, "UT", json.dumps(payload, separators=(",", ":")))


def _stored_schema(
    segmentation: pydicom.Dataset, n_segments: int
) -> tuple[LabelSchema, list[int]] | None:
    """The schema and segment values written by :func:`_store_schema`, if present and valid."""
    try:
        block = segmentation.private_block(_PRIVATE_GROUP, PRIVATE_CREATOR)
        payload = json.loads(str(block[_SCHEMA_ELEMENT].value))
        schema = LabelSchema.from_dict(payload["label_schema"])
        values = [int(v) for v in payload["segment_values"]]
    except Exception:  # absent or damaged: fall back to the segment descriptions
        return None
    if len(values) != n_segments or sorted(values) != sorted(c.id for c in schema.classes):
        return None
    return schema, values


def _transfer_syntax(pixel_array: np.ndarray) -> str:
    """Lossless JPEG 2000; uncompressed for frames under 32 pixels on a side (it cannot encode)."""
    if min(pixel_array.shape[1:]) < 32:
        return pydicom.uid.ExplicitVRLittleEndian
    return pydicom.uid.JPEG2000Lossless


def write_dicom_seg(
    path: str | os.PathLike[str],
    labels: np.ndarray,
    metadata: dict[str, Any],
    schema: LabelSchema | None = None,
    segmentation_type: str = DEFAULT_SEGMENTATION_TYPE,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``labels`` as a DICOM SEG file referencing its source series, atomically."""
    path = Path(path)
    segmentation = build_dicom_seg(
        labels, metadata, schema, segmentation_type, series_description=_description(path)
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
    def from_metadata(
        cls,
        metadata: dict[str, Any],
        shape: tuple[int, int, int],
        affine: np.ndarray | None = None,
    ) -> SegReference | None:
        """The reference of an image with this metadata and world ``shape``.

        Layer metadata holds the exact affine; pass ``affine`` for a core volume.
        """
        uids = metadata.get("sop_instance_uids")
        if not uids or metadata.get("resampled"):
            return None
        frame_order = metadata.get("frame_order")
        reorientation = metadata["reorientation"]
        return cls(
            sop_instance_uids=list(uids),
            frame_numbers=[int(i) + 1 for i in frame_order] if frame_order else None,
            permutation=tuple(reorientation["permutation"]),  # type: ignore[arg-type]
            flips=tuple(bool(f) for f in reorientation["flips"]),  # type: ignore[arg-type]
            affine=np.asarray(metadata["affine"] if affine is None else affine, dtype=float),
            shape=tuple(int(n) for n in shape),  # type: ignore[arg-type]
        )


def _world(volume: hd.Volume) -> tuple[np.ndarray, np.ndarray]:
    """A highdicom volume (slice, row, column -> LPS x, y, z) as a world-ordered array."""
    affine = np.eye(4)
    affine[:3, :3] = volume.affine[:3, :3][::-1]
    affine[:3, 3] = volume.affine[:3, 3][::-1]
    view, world_affine, _, _ = reorient(np.asarray(volume.array), affine)
    return np.ascontiguousarray(view), world_affine


def _on_reference(
    segmentation: hd.seg.Segmentation, reference: SegReference, number: int
) -> np.ndarray:
    """Mask of segment ``number`` on the referenced series' world grid.

    Each SEG frame lands on the source frame it references (exact, tilted
    series included). Older SEGs that do not declare spatial locations
    preserved are placed by geometry instead, which must then match voxel for voxel.
    """
    if not _references_instances(segmentation, reference.sop_instance_uids):
        return _placed_by_geometry(segmentation, reference, number)
    options = {
        "segment_numbers": [number],
        "combine_segments": True,
        "relabel": True,
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
        return _placed_by_geometry(segmentation, reference, number)
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
    segmentation: hd.seg.Segmentation, reference: SegReference, number: int
) -> np.ndarray:
    """Segment ``number`` pasted onto the reference grid by position (voxels must coincide)."""
    array, affine = _world(_segment_volume(segmentation, number))
    placed = paste_on_grid(array, affine, reference.shape, reference.affine)
    if placed is None:
        raise ValueError(
            "its frames neither reference this series' images nor lie on its voxel grid "
            "(different spacing, orientation or position)"
        )
    return placed


def _segment_volume(segmentation: hd.seg.Segmentation, number: int) -> hd.Volume:
    """Segment ``number`` as a 0/1 volume in the SEG's own geometry."""
    return segmentation.get_volume(segment_numbers=[number], combine_segments=True, relabel=True)


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

    Raises
    ------
    DicomSegError
        If the file is not a readable SEG, holds fractional segments, does not
        reference the given series, or (without a reference) its frames do not
        form a regular volume.
    """
    path = Path(path)
    try:
        segmentation = hd.seg.segread(path)
    except Exception as exc:
        raise DicomSegError(f"{path} is not a readable DICOM SEG: {exc}") from None
    if segmentation.segmentation_type == hd.seg.SegmentationTypeValues.FRACTIONAL:
        raise DicomSegError(f"{path}: FRACTIONAL segmentations are not label maps; not supported")
    numbers = list(segmentation.segment_numbers)
    stored = _stored_schema(segmentation, len(numbers))
    if stored is not None:
        schema, values = stored
    else:
        schema, values = _schema_of(segmentation, numbers), numbers
    value_of = dict(zip(numbers, values, strict=True))
    try:
        label_maps, overlapping = _label_maps(
            _segment_masks(segmentation, reference, numbers, value_of), schema, _description(path)
        )
    except (RuntimeError, ValueError, KeyError) as exc:
        where = "the referenced series" if reference is not None else "a regular volume"
        raise DicomSegError(f"{path}: cannot place its frames on {where}: {exc}") from None
    referenced = None
    if "ReferencedSeriesSequence" in segmentation:
        referenced = str(segmentation.ReferencedSeriesSequence[0].SeriesInstanceUID)
    return SegRead(
        label_maps=label_maps,
        referenced_series_uid=referenced,
        frame_of_reference_uid=str(segmentation.get("FrameOfReferenceUID", "")),
        overlapping=overlapping,
        metadata={
            "modality": "SEG",
            "series_description": str(segmentation.get("SeriesDescription", "")),
            "series_instance_uid": str(segmentation.SeriesInstanceUID),
            "segmentation_type": segmentation.segmentation_type.value,
        },
    )


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


def find_referenced_series(path: str | os.PathLike[str]) -> tuple[Path, Discovery, str] | None:
    """Find the series a SEG file references, in its folder or its parent folder.

    Returns the folder searched, its discovery, and the series UID; ``None``
    when the series is not there.
    """
    path = Path(path)
    header = pydicom.dcmread(path, stop_before_pixels=True)
    wanted = referenced_series_uids(header)
    for folder in (path.parent, path.parent.parent):
        discovery = discover(folder)
        for candidate in discovery.candidates:
            if candidate.is_volume_capable and candidate.series_uid in wanted:
                return folder, discovery, candidate.series_uid
    return None


def segs_referencing(discovery: Discovery, series_uid: str) -> list[Path]:
    """SEG files among ``discovery``'s candidates that reference ``series_uid``."""
    return [
        file
        for candidate in discovery.candidates
        if candidate.kind == "segmentation"
        for file, header in zip(candidate.files, candidate.headers, strict=True)
        if series_uid in referenced_series_uids(header)
    ]
