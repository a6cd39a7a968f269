"""DICOM Segmentation objects: label maps placed on the series they reference."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from napari_domainseg.formats.base import IMAGE, LABELS, Format, Read

SEG_FILE = "seg_file"
"""Description entry of a label map read from a SEG: the SEG file (to place it again)."""
SEG_SERIES = "seg_referenced_series"
"""Its series instance UIDs the SEG references."""
SEG_INDEX = "seg_layer_index"
"""Which of the SEG's label maps it is."""
OPENED_FOR_SEG = "opened_for_seg"
"""Description entry of an image read from beside a SEG because the SEG references it."""
INSTANCES = "instances"
"""Metadata entry of an instance map: its instance records (one segment per instance)."""
OVERLAP_NOTE = "{name}: segments overlap, so each opens as its own layer."


class DicomSegFormat(Format):
    """A DICOM SEG file (BINARY, FRACTIONAL or LABELMAP)."""

    name = "dicom_seg"
    description = "DICOM Segmentation (.dcm)"

    def claims(self, path: Path) -> bool:
        """True for the files this format reads (cheap; never raises)."""
        try:
            from napari_domainseg.medical.sniff import is_dicom_file

            if isinstance(path, (list, tuple)) or not Path(path).is_file():
                return False
            if not is_dicom_file(path):
                return False
            from napari_domainseg.medical.dicom_seg import is_dicom_seg  # DICOM files only

            return is_dicom_seg(path)
        except Exception:  # claims never raises
            return False

    def read(self, path: Path, **options: Any) -> list[Read]:
        """Read the SEG's label maps on the series it references.

        Options: ``on`` (a volume :class:`Read` of the referenced series: the maps land on
        its grid); ``open_series`` (series instance UIDs already open where the maps will be
        shown: when the SEG references one, no search is made and the maps keep their own
        geometry, marked, to be placed on it there). Without either, the series is looked
        for beside the file (bounded search) and
        read too (first in the list, marked :data:`OPENED_FOR_SEG`); failing that the maps
        keep the SEG's own geometry, with a warning saying where it looked. Maps not placed
        on an image given by the caller carry :data:`SEG_FILE`, :data:`SEG_SERIES` and
        :data:`SEG_INDEX`, so a viewer can place them on the series when it has it open.

        A SEG with one segment per instance (ours, or one whose segments all carry distinct
        TrackingIDs) reads as one instance map: the class schema, and the instance records
        in ``metadata["instances"]`` (see
        :meth:`~napari_domainseg.labels.instances.InstanceTable.from_records`).
        """
        import pydicom

        from napari_domainseg.formats.dicom import DicomFormat
        from napari_domainseg.medical.dicom_seg import (
            referenced_series_uids,
            search_referenced_series,
        )

        path = Path(path)
        on = options.get("on")
        if on is not None:
            return seg_on_image(path, on)
        header = pydicom.dcmread(path, stop_before_pixels=True)
        series = list(referenced_series_uids(header))
        if set(series) & set(options.get("open_series") or ()):
            return _in_own_geometry(path, series, told=[])  # placed on it where it is open
        search = search_referenced_series(path)
        if search.found is not None:
            folder, discovery, series_uid = search.found
            (image,) = DicomFormat().read(folder, series_uid=series_uid, discovery=discovery)
            maps = seg_on_image(path, image)
            for index, labels in enumerate(maps):
                labels.metadata.update(_marks(path, series, index))
            image.metadata[OPENED_FOR_SEG] = str(path)
            return [image, *maps]
        told = [
            f"{path.name}: the series it references is not beside the file "
            f"({search.summary()}); the labels keep the SEG's own geometry."
        ]
        return _in_own_geometry(path, series, told)


def _in_own_geometry(path: Path, series: list[str], told: list[str]) -> list[Read]:
    """The SEG's label maps in its own geometry, marked with the series they belong on."""
    from napari_domainseg.medical.volume import Volume

    seg = _read_seg(path)
    told = [*told, *seg.warnings]
    reads = []
    for index, label_map in enumerate(seg.label_maps):
        volume = Volume(label_map.array, label_map.affine, dict(seg.metadata))
        reads.append(
            Read(
                label_map.array,
                path,
                geometry=volume.geometry,
                kind=LABELS,
                name=label_map.name,
                schema=label_map.schema,
                metadata={
                    **volume.description,
                    **_marks(path, series, index),
                    **_instances(label_map),
                },
                warnings=told if index == 0 else [],  # told once, not once per map
                notes=[OVERLAP_NOTE.format(name=path.name)]
                if seg.overlapping and index == 0
                else [],
            )
        )
    return reads


def _instances(label_map: Any) -> dict[str, Any]:
    """The ``"instances"`` metadata entry of an instance map read from a SEG (else nothing)."""
    records = getattr(label_map, "instances", None)
    return {INSTANCES: records} if records is not None else {}


def _marks(path: Path, series: list[str], index: int) -> dict[str, Any]:
    return {SEG_FILE: str(path), SEG_SERIES: list(series), SEG_INDEX: index}


def _read_seg(path: Path, reference: Any = None) -> Any:
    """Read a SEG; what the user must know (frames of undefined segments) is in its warnings.

    Raises
    ------
    DicomSegError
        When the SEG holds no segment.
    """
    from napari_domainseg.medical.dicom_seg import DicomSegError, DicomSegWarning, read_dicom_seg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DicomSegWarning)  # in seg.warnings instead
        seg = read_dicom_seg(path, reference)
    if not seg.label_maps:
        raise DicomSegError(f"{path}: the SEG holds no segment, so there are no labels to open")
    return seg


def seg_on_image(path: Path, image: Read) -> list[Read]:
    """A SEG's label maps on the grid of the series ``image`` (a volume read).

    Raises
    ------
    DicomSegError
        When ``image`` is not a DICOM series read as acquired (resampled, a mosaic, or not
        from DICOM): its frames cannot be matched.
    """
    from napari_domainseg.medical.dicom_seg import DicomSegError, SegReference

    geometry = image.volume_geometry
    reference = SegReference.from_geometry(geometry, bool(image.metadata.get("resampled")))
    if reference is None:
        raise DicomSegError(
            f"{path}: the image it should land on was resampled, is a mosaic or is not a DICOM "
            "series, so the SEG's frames cannot be matched to its slices; open the series "
            "itself, without resampling"
        )
    seg = _read_seg(path, reference)
    notes = [OVERLAP_NOTE.format(name=path.name)]
    return [
        Read(
            label_map.array,
            path,
            geometry=geometry,
            kind=LABELS,
            name=label_map.name,
            schema=label_map.schema,
            metadata={**image.metadata, **_instances(label_map)},
            warnings=list(seg.warnings) if index == 0 else [],
            notes=notes if seg.overlapping and index == 0 else [],
            image=image.name,
        )
        for index, label_map in enumerate(seg.label_maps)
    ]


__all__ = ["IMAGE", "LABELS", "DicomSegFormat", "seg_on_image"]
