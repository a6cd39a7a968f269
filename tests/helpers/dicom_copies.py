"""Edited copies of a real DICOM series, generated under ``tmp_path`` (never committed)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pydicom

from napari_domainseg.medical.series import read_series

#: Edits one slice in place: ``change(k, ds)`` for slice ``k`` (files in name order).
SliceChange = Callable[[int, pydicom.Dataset], None]


def copied_series(
    source: Path,
    target: Path,
    change: SliceChange | None = None,
    *,
    enforce_file_format: bool = True,
) -> Path:
    """Copy the series in ``source`` to ``target``, editing each slice with ``change``.

    Parameters
    ----------
    source
        Folder of the real series.
    target
        Folder to create (with its parents); the copies keep the source file names.
    change
        ``change(k, ds)`` edits slice ``k`` (files in name order) before it is written.
    enforce_file_format
        Passed to ``Dataset.save_as``; ``False`` only where the test needs file meta that pydicom's
        check refuses (an empty MediaStorageSOPInstanceUID).

    Returns
    -------
    Path
        ``target``.
    """
    target.mkdir(parents=True)
    for k, file in enumerate(sorted(source.iterdir())):
        ds = pydicom.dcmread(file)
        if change is not None:
            change(k, ds)
        ds.save_as(target / file.name, enforce_file_format=enforce_file_format)
    return target


def without_pixel_spacing(source: Path, target: Path) -> Path:
    """A copy of a real series without PixelSpacing: opened on 1 mm pixels, geometry unknown."""

    def change(_k: int, ds: pydicom.Dataset) -> None:
        del ds.PixelSpacing

    return copied_series(source, target, change)


def philips_like(source: Path, target: Path, scale: float = 0.0731) -> Path:
    """A Philips-like copy: RescaleSlope 2.5, private scale slope 2005,100E ``scale``."""

    def change(_k: int, ds: pydicom.Dataset) -> None:
        ds.Manufacturer = "Philips Medical Systems"
        ds.RescaleSlope, ds.RescaleIntercept = "2.5", "-10"
        block = ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True)
        block.add_new(0x0E, "FL", scale)

    return copied_series(source, target, change)


def rewritten_series(source: Path, target: Path, change: Callable[[pydicom.Dataset], None]) -> Path:
    """A copy with every slice edited by ``change(ds)``, saved without pydicom's file-format check.

    For header edits as scanners and anonymisers leave them, which may empty file meta elements
    the check requires (MediaStorageSOPInstanceUID, MediaStorageSOPClassUID).
    """
    return copied_series(source, target, lambda _k, ds: change(ds), enforce_file_format=False)


def anonymised_copy(source: Path, target: Path) -> Path:
    """A copy whose SOP, series and study instance UIDs are empty (as anonymisers leave them)."""

    def change(ds: pydicom.Dataset) -> None:
        for keyword in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"):
            setattr(ds, keyword, "")
        ds.file_meta.MediaStorageSOPInstanceUID = ""

    return rewritten_series(source, target, change)


def with_last_slice_truncated(source: Path, target: Path) -> Path:
    """A copy whose last slice along the slice normal is cut short (no gap if it is skipped).

    Returns
    -------
    Path
        The truncated file, in ``target``.
    """
    shutil.copytree(source, target)
    last = Path(read_series(target).volume.metadata["source_files"][-1])
    last.write_bytes(last.read_bytes()[:-50_000])
    return last
