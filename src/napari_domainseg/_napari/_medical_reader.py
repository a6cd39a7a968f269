"""npe2 readers for DICOM series and SEG objects, NIfTI and NRRD volumes and masks.

Each reader asks the format registry (:mod:`napari_domainseg.formats`) and returns layer
data, nothing else: ``get_*_reader`` never raises and returns ``None`` for anything its
format does not claim; the reader shows what the format read says (warnings, other series
in the folder) as napari notifications and raises a clear message naming the file when it
cannot read it. What the viewer needs for the layers (the view for the acquisition plane,
autosave notices, a SEG placed on its open series) is done by the viewer's set-up when they
arrive (:mod:`._viewer_setup`).

Label maps (DICOM SEG, ``.seg.nrrd``, NIfTI/NRRD masks) open as Labels layers with their
class names and colours. A DICOM SEG lands on the series it references: the series found
beside the SEG file (opened with it), or the one open in the viewer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from napari_domainseg._napari._layer_data import LayerData
from napari_domainseg._napari._reading import cannot_open, layers_of

__all__ = ["get_dicom_reader", "get_nifti_reader", "get_nrrd_reader"]


def _single_path(path: str | list[str]) -> str | None:
    if isinstance(path, (list, tuple)):
        return path[0] if len(path) == 1 else None
    return path


def _format(name: str) -> Any:
    from napari_domainseg import formats

    return formats.named(name)


def get_dicom_reader(path: str | list[str]):
    """Return a reader for a DICOM folder, a DICOM file (image or SEG) or a list of files."""
    try:
        from napari_domainseg import formats

        several = isinstance(path, (list, tuple)) and len(path) > 1
        source = list(path) if several else _single_path(path)
        if source is None:
            return None
        fmt = formats.format_for(source, among=("dicom_seg", "dicom"))
        if fmt is None:
            return None
        return read_dicom_seg if fmt.name == "dicom_seg" else read_dicom
    except Exception:  # a reader lookup must never raise
        return None


def read_dicom(path: str | list[str]) -> list[LayerData]:
    """Read the best image series at ``path`` into an image layer (LPS millimetres).

    DICOM SEG objects found beside the series that reference it open as labels.
    """
    from napari_domainseg.medical.series import DicomSeriesError

    source = list(path) if isinstance(path, (list, tuple)) and len(path) > 1 else _single_path(path)
    try:
        reads = _format("dicom").read(source, with_segs=True)
    except (DicomSeriesError, FileNotFoundError) as exc:
        raise cannot_open(source, exc) from None
    return layers_of(reads)


def read_dicom_seg(path: str | list[str]) -> list[LayerData]:
    """Read a DICOM SEG as Labels layers on the series it references.

    With the series beside the file (a bounded search), the series opens with it; without,
    the labels keep the SEG's own geometry and move onto the series when it is open in the
    viewer they land in.
    """
    import pydicom

    from napari_domainseg.medical.dicom_seg import DicomSegError
    from napari_domainseg.medical.series import DicomSeriesError

    single = str(_single_path(path))
    from napari_domainseg._napari._viewer_setup import open_series

    try:
        reads = _format("dicom_seg").read(Path(single), open_series=open_series())
    except (DicomSegError, DicomSeriesError, OSError, pydicom.errors.InvalidDicomError) as exc:
        raise cannot_open(single, exc) from None
    if reads[0].kind == "labels":  # in its own geometry: where it goes from here
        reads[0].notes.append(
            "The labels land on the series when it is open in the viewer; open the series "
            "first to annotate on it."
        )
    return layers_of(reads)


def _reader_for(path: str | list[str], name: str, reader: Any) -> Any:
    """``reader`` when ``path`` is one file the format ``name`` claims."""
    single = _single_path(path)
    if single is None:
        return None
    try:
        return reader if _format(name).claims(Path(single)) else None
    except Exception:  # a reader lookup must never raise
        return None


def get_nifti_reader(path: str | list[str]):
    """Return a reader for a ``.nii``/``.nii.gz`` file."""
    return _reader_for(path, "nifti", read_nifti)


def read_nifti(path: str | list[str]) -> list[LayerData]:
    """Read a NIfTI volume or mask (RAS on disk) into LPS (z, y, x) millimetres.

    A label map (label intent, ``.labels.json`` sidecar, or few non-negative
    integer values) opens as a Labels layer with the sidecar's classes.
    """
    single = _single_path(path)
    try:
        reads = _format("nifti").read(Path(single))
    except Exception as exc:
        raise cannot_open(single, exc) from None
    return layers_of(reads)


def get_nrrd_reader(path: str | list[str]):
    """Return a reader for a ``.nrrd`` or ``.seg.nrrd`` file."""
    return _reader_for(path, "nrrd", read_nrrd)


def read_nrrd(path: str | list[str]) -> list[LayerData]:
    """Read an NRRD volume, mask or 3D Slicer segmentation into LPS (z, y, x) millimetres."""
    from napari_domainseg.medical.nrrd_files import NrrdError

    single = _single_path(path)
    try:
        reads = _format("nrrd").read(Path(single))
    except NrrdError as exc:
        raise cannot_open(single, exc) from None
    return layers_of(reads)
