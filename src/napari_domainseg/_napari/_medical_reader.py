"""npe2 reader for DICOM series (folders or files) and NIfTI volumes.

``get_reader`` never raises: it returns ``None`` for anything it cannot read.
The returned reader reports the series it chose, the others it found, the
skipped files and any geometry warning as napari notifications; errors reach
the user as a clear message naming the series and the measured numbers.
"""

from __future__ import annotations

import os
from pathlib import Path

from napari_domainseg._napari._layer_data import LayerData, volume_layer_data
from napari_domainseg._napari._orientation import follow_in_current_viewer

__all__ = ["get_dicom_reader", "get_nifti_reader"]

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def _single_path(path: str | list[str]) -> str | None:
    if isinstance(path, (list, tuple)):
        return path[0] if len(path) == 1 else None
    return path


def _folder_has_dicom(folder: Path, limit: int = 50) -> bool:
    from napari_domainseg.medical.discovery import is_dicom_file

    checked = 0
    for root, _, files in os.walk(folder):
        for name in files:
            if name.upper() == "DICOMDIR":
                continue
            if is_dicom_file(Path(root) / name):
                return True
            checked += 1
            if checked >= limit:
                return False
    return False


def get_dicom_reader(path: str | list[str]):
    """Return a reader for a DICOM folder, a DICOM file or a list of DICOM files."""
    try:
        from napari_domainseg.medical.discovery import is_dicom_file

        if isinstance(path, (list, tuple)) and len(path) > 1:
            return read_dicom if all(is_dicom_file(p) for p in path) else None
        single = _single_path(path)
        if single is None:
            return None
        candidate = Path(single)
        if candidate.is_dir():
            return read_dicom if _folder_has_dicom(candidate) else None
        if candidate.name.lower().endswith(NIFTI_SUFFIXES):
            return None
        return read_dicom if candidate.is_file() and is_dicom_file(candidate) else None
    except Exception:  # a reader lookup must never raise
        return None


def read_dicom(path: str | list[str]) -> list[LayerData]:
    """Read the best image series at ``path`` into an image layer (LPS millimetres)."""
    from napari.utils.notifications import show_info, show_warning

    from napari_domainseg.medical.series import DicomSeriesError, read_series

    source = list(path) if isinstance(path, (list, tuple)) and len(path) > 1 else _single_path(path)
    try:
        loaded = read_series(source)
    except (DicomSeriesError, FileNotFoundError) as exc:
        raise ValueError(f"Cannot open {source} as a volume: {exc}") from None
    for warning in loaded.warnings:
        show_warning(warning)
    volume_others = [c for c in loaded.others if c.is_volume_capable]
    if loaded.others:
        listed = "; ".join(c.summary() for c in loaded.others)
        show_info(
            f"Opened {loaded.candidate.summary()}. Also in this folder: {listed}. "
            f"({loaded.skipped})"
            + (" Use the series picker to open another." if volume_others else "")
        )
    volume = loaded.volume
    name = volume.metadata.get("series_description") or Path(str(source)).name
    follow_in_current_viewer()
    return [volume_layer_data(volume, name)]


def get_nifti_reader(path: str | list[str]):
    """Return a reader for a ``.nii``/``.nii.gz`` file."""
    single = _single_path(path)
    if single is None or not str(single).lower().endswith(NIFTI_SUFFIXES):
        return None
    return read_nifti


def read_nifti(path: str | list[str]) -> list[LayerData]:
    """Read a NIfTI volume (RAS on disk) into LPS (z, y, x) millimetres."""
    from napari_domainseg.medical.nifti import nifti_stem, volume_from_nifti

    single = _single_path(path)
    try:
        volume = volume_from_nifti(single)
    except Exception as exc:
        raise ValueError(f"Cannot open {single} as a NIfTI volume: {exc}") from None
    follow_in_current_viewer()
    return [volume_layer_data(volume, nifti_stem(single))]
