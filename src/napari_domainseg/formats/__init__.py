"""Every file type the plugin reads, in one registry.

Each format is one module with one :class:`~.base.Format` (``claims`` a path cheaply,
``read`` returns :class:`~.base.Read` values with typed geometry). The napari readers
(``napari.yaml``), :func:`napari_domainseg.files.load` (the command line) and the
conformance tests all go through :data:`FORMATS`. **To add a format**: write its module
here, add one line to :data:`FORMATS`, and one entry to ``tests/conformance/formats.py``.

Importing this package is cheap (no pydicom, rasterio or nibabel): napari asks the DICOM
format about every file it opens.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from napari_domainseg.formats.base import IMAGE, LABELS, Format, Read
from napari_domainseg.formats.dicom import DicomFormat
from napari_domainseg.formats.dicom_seg import DicomSegFormat
from napari_domainseg.formats.nifti import NiftiFormat
from napari_domainseg.formats.nrrd import NrrdFormat
from napari_domainseg.formats.numpy_array import NumpyFormat
from napari_domainseg.formats.raster import RasterFormat

FORMATS: tuple[Format, ...] = (
    NumpyFormat(),
    NiftiFormat(),
    NrrdFormat(),
    RasterFormat(),
    DicomSegFormat(),
    DicomFormat(),
)
"""The formats, in the order they are asked (the first that claims a path reads it)."""

__all__ = ["FORMATS", "IMAGE", "LABELS", "Format", "Read", "format_for", "named", "read"]


def named(name: str) -> Format:
    """The format registered as ``name`` (``"nifti"``, ``"dicom"``, ...)."""
    for fmt in FORMATS:
        if fmt.name == name:
            return fmt
    raise KeyError(f"no format named {name!r}; known: {', '.join(f.name for f in FORMATS)}")


def format_for(path: str | Path | Sequence[str | Path], among: Sequence[str] = ()) -> Format | None:
    """The first format (of ``among``, default all) that claims ``path``; never raises."""
    target: Any = [Path(p) for p in path] if isinstance(path, (list, tuple)) else Path(path)
    for fmt in FORMATS:
        if among and fmt.name not in among:
            continue
        if fmt.claims(target):
            return fmt
    return None


def read(path: str | Path | Sequence[str | Path], **options: Any) -> list[Read]:
    """Read ``path`` with the format that claims it.

    Raises
    ------
    InputError
        When no format claims it.
    """
    fmt = format_for(path)
    if fmt is None:
        from napari_domainseg.errors import InputError

        raise InputError(
            f"{path}: not a file format domainseg reads "
            f"({', '.join(f.description for f in FORMATS)})"
        )
    target = [Path(p) for p in path] if isinstance(path, (list, tuple)) else Path(path)
    return fmt.read(target, **options)
