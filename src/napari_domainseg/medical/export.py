"""Export label maps and images by file extension: NIfTI, NRRD, Slicer .seg.nrrd, DICOM SEG.

One entry point for the napari writers and the command line. Every format
is written atomically and refuses to replace an existing file unless
``overwrite`` is set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_domainseg.labels.instances import warn_attribute_problems
from napari_domainseg.labels.schema import MAX_CLASS_ID, LabelSchema, covering_schema
from napari_domainseg.medical.dicom_seg import (
    DEFAULT_SEG_COMPRESSION,
    DEFAULT_SEGMENTATION_TYPE,
    write_dicom_seg,
)
from napari_domainseg.medical.instance_segments import checked_instance_map
from napari_domainseg.medical.nifti import write_nifti
from napari_domainseg.medical.nrrd_files import write_nrrd
from napari_domainseg.medical.provenance import check_geometry_known, source_record
from napari_domainseg.medical.volume_geometry import VolumeGeometry

if TYPE_CHECKING:
    from napari_domainseg.labels.instances import InstanceTable

LABEL_EXTENSIONS = {
    ".nii.gz": "NIfTI (gzip)",
    ".nii": "NIfTI",
    ".seg.nrrd": "3D Slicer segmentation (NRRD)",
    ".nrrd": "NRRD",
    ".dcm": "DICOM SEG",
}
IMAGE_EXTENSIONS = {".nii.gz": "NIfTI (gzip)", ".nii": "NIfTI", ".nrrd": "NRRD"}


def extension_of(path: str | os.PathLike[str], known: dict[str, str]) -> str:
    """The longest known extension ``path`` ends with.

    Raises
    ------
    ValueError
        If the name ends with none of them.
    """
    name = Path(path).name.lower()
    matches = [ext for ext in known if name.endswith(ext)]
    if not matches:
        raise ValueError(
            f"{path}: unknown extension; use one of {', '.join(known)} "
            f"({', '.join(f'{k} = {v}' for k, v in known.items())})"
        )
    return max(matches, key=len)


def export_labels(
    path: str | os.PathLike[str],
    labels: np.ndarray,
    geometry: VolumeGeometry,
    schema: LabelSchema | None = None,
    image_metadata: dict[str, Any] | None = None,
    overwrite: bool = False,
    segmentation_type: str = DEFAULT_SEGMENTATION_TYPE,
    seg_compression: str = DEFAULT_SEG_COMPRESSION,
    seg_new_uids: bool = False,
    allow_unknown_geometry: bool = False,
    instances: InstanceTable | None = None,
) -> list[Path]:
    """Write a label map (world-ordered, on ``geometry``) in the format its extension names.

    Parameters
    ----------
    path
        Output file; ``.nii.gz``, ``.nii``, ``.seg.nrrd``, ``.nrrd`` or ``.dcm``.
    labels
        Integer label map, axes world (z, y, x) as the image is shown.
    geometry
        The image's geometry: the exact voxel-to-LPS affine (tilt and obliquity
        included) and, for DICOM SEG, the source series it references.
    schema
        Class names and colours; painted values it lacks are named ``"label N"``.
    image_metadata
        The source image's description (scaling, resampling and geometry-unknown records,
        patient data when shown); recorded in the sidecar, header or SEG.
    overwrite
        Replace existing files.
    segmentation_type
        DICOM SEG only: ``"BINARY"`` or ``"LABELMAP"``.
    seg_compression
        DICOM SEG only: ``"none"`` (default; what dcmqi and 3D Slicer read) or
        ``"jpeg2000"`` (lossless).
    seg_new_uids
        DICOM SEG only: generate the UIDs an anonymised source series lacks
        instead of refusing (recorded in the SEG).
    allow_unknown_geometry
        Export a volume whose geometry is unknown (``image_metadata`` says so)
        on its stand-in grid instead of refusing; recorded in the sidecar
        (NIfTI ``.labels.json``) or header (NRRD).
    instances
        With an instance table, ``labels`` is the *instance map* (values are instance ids,
        written as uint16, or uint32 beyond 65535) and ``schema`` names their classes. DICOM SEG:
        one segment per instance (label ``"<class> <n>"``, TrackingID ``"<class path>/<n>"``, a
        TrackingUID each, the class's codes, at most 65535 instances); NIfTI: the records under
        ``"instances"`` in the ``.labels.json``; NRRD: the header field ``DomainSeg_Instances``,
        and for ``.seg.nrrd`` one Slicer segment per instance
        (:mod:`napari_domainseg.medical.instance_segments`).

    ``image_metadata["assist"]``, when present, is the provenance of assisted labeling
    (:func:`napari_domainseg.ops.assist.accept.export_record`); it is written into the
    NIfTI ``.labels.json`` (key ``"assist"``), the NRRD header (``DomainSeg_Assist``) or the
    DICOM SEG's private block (key ``"assist"``).

    Returns
    -------
    list of Path
        The files written (NIfTI adds a ``.labels.json`` label table, which also
        records the source's scaling and geometry: :func:`.provenance.source_record`).

    Raises
    ------
    UnknownGeometryError
        If the geometry is unknown and ``allow_unknown_geometry`` is not set.
    InstanceError
        If the instance map holds ids ``instances`` does not list.
    """
    extension = extension_of(path, LABEL_EXTENSIONS)
    check_geometry_known(path, image_metadata, allow_unknown_geometry)
    labels = np.asarray(labels)
    if instances is not None:
        labels = checked_instance_map(path, labels, instances)
        warn_attribute_problems(path, instances, schema)
        full_schema = covering_schema({i.class_id for i in instances}, schema)
    else:
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{path}: labels must be integers, got {labels.dtype}")
        if labels.min(initial=0) < 0:
            raise ValueError(f"{path}: labels must be 0 (unlabeled) or positive class ids")
        _check_class_ids(path, labels)
        full_schema = covering_schema(np.unique(labels), schema)
    assist = (image_metadata or {}).get("assist") or None
    if extension == ".dcm":
        return write_dicom_seg(
            path,
            labels,
            geometry,
            image_metadata or {},
            full_schema,
            segmentation_type,
            overwrite,
            compression=seg_compression,
            new_uids=seg_new_uids,
            assist=assist,
            instances=instances,
        )
    record = source_record(image_metadata)
    writer = write_nrrd if extension in (".nrrd", ".seg.nrrd") else write_nifti
    affine = np.array(geometry.affine)
    return writer(
        path,
        labels,
        affine,
        full_schema,
        overwrite,
        source=record,
        assist=assist,
        instances=instances,
    )


def _check_class_ids(path: str | os.PathLike[str], labels: np.ndarray) -> None:
    """Refuse class ids above 65535 in every label format.

    NIfTI and NRRD would store them, but the label schema (class ids 1-65535)
    cannot name them, so their names would be dropped on re-reading; a DICOM SEG
    would renumber them.
    """
    high = int(labels.max(initial=0))
    if high <= MAX_CLASS_ID:
        return
    bad = np.unique(labels[labels > MAX_CLASS_ID])
    shown = ", ".join(str(int(v)) for v in bad[:5]) + (", ..." if bad.size > 5 else "")
    raise ValueError(
        f"{path}: label values {shown} exceed the largest class id, {MAX_CLASS_ID}: class ids "
        "are 16-bit (label schema, DICOM SEG), so they would come back renumbered or without "
        f"their names. Renumber the classes to 1-{MAX_CLASS_ID} before exporting."
    )


def export_image(
    path: str | os.PathLike[str],
    array: np.ndarray,
    geometry: VolumeGeometry,
    overwrite: bool = False,
    metadata: dict[str, Any] | None = None,
    allow_unknown_geometry: bool = False,
) -> list[Path]:
    """Write an image volume as NIfTI or NRRD (no label table).

    Parameters
    ----------
    path
        Output file; ``.nii.gz``, ``.nii`` or ``.nrrd``.
    array, geometry
        The volume (world z, y, x) and its geometry (the exact voxel-to-LPS affine).
    overwrite
        Replace existing files.
    metadata
        The volume's description. What it says about the values (display or
        Philips precise scaling) and the geometry is recorded: NIfTI in a
        ``.json`` sidecar (with dcm2niix's ``UsePhilipsFloatNotDisplayScaling``),
        NRRD in its header (:data:`.provenance.SOURCE_FIELD`).
    allow_unknown_geometry
        Export a volume whose geometry is unknown instead of refusing.

    Returns
    -------
    list of Path
        The files written (the image, then a NIfTI's sidecar when there is a record).

    Raises
    ------
    UnknownGeometryError
        If the geometry is unknown and ``allow_unknown_geometry`` is not set.
    """
    extension = extension_of(path, IMAGE_EXTENSIONS)
    check_geometry_known(path, metadata, allow_unknown_geometry)
    record = source_record(metadata)
    affine = np.array(geometry.affine)
    if extension == ".nrrd":
        return write_nrrd(path, array, affine, None, overwrite, source=record)
    return write_nifti(path, array, affine, None, overwrite, source=record)
