"""The real 512x512 head CT, 20 slices, re-encoded losslessly in JPEG 2000, JPEG-LS and RLE.

The first 20 slices (by InstanceNumber, so contiguous along z) of the real series
``../shared/data/medical/ct_head_study/S2010`` (a Philips Ingenuity CT, uncompressed) are
compressed with pydicom's ``Dataset.compress`` (pylibjpeg-openjpeg, pyjpegls and
pydicom's RLE encoder) into ``benchmarks/.data/ct_compressed_20/{j2k,jpegls,rle}``,
generated once and cached (git-ignored, never committed). Nothing else changes: same
UIDs, headers and pixel values (each encoding is checked to decode to the source pixels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from harness import CT_HEAD_SERIES as SOURCE_SERIES  # the real series (read only)
from harness import DATA_DIR

SYNTAXES = {"j2k": JPEG2000Lossless, "jpegls": JPEGLSLossless, "rle": RLELossless}
"""Folder name to transfer syntax."""


def source_slices(n_slices: int = 20, source: Path = SOURCE_SERIES) -> list[Path]:
    """The first ``n_slices`` image files of the source series, by InstanceNumber.

    Parameters
    ----------
    n_slices
        How many slices.
    source
        The uncompressed series folder.

    Returns
    -------
    list of Path
        Files, in InstanceNumber order.

    Raises
    ------
    FileNotFoundError
        If the folder has fewer image files.
    """
    numbered = []
    for path in sorted(source.iterdir()):
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except pydicom.errors.InvalidDicomError:
            continue
        if "PixelData" in header or header.get("Rows"):
            numbered.append((int(header.InstanceNumber), path))
    numbered.sort()
    if len(numbered) < n_slices:
        raise FileNotFoundError(f"{source}: {len(numbered)} image files, {n_slices} needed")
    return [path for _, path in numbered[:n_slices]]


def make_compressed_series(name: str, n_slices: int = 20, folder: Path | None = None) -> Path:
    """The series in one compressed syntax (generated once, then reused).

    Parameters
    ----------
    name
        Key of :data:`SYNTAXES` (``j2k``, ``jpegls``, ``rle``).
    n_slices
        How many slices of the source series.
    folder
        Where to write (default ``DATA_DIR / f"ct_compressed_{n_slices}" / name``).

    Returns
    -------
    Path
        The folder holding the compressed series.
    """
    folder = folder or DATA_DIR / f"ct_compressed_{n_slices}" / name
    done = folder / ".complete"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for path in source_slices(n_slices):
        ds = pydicom.dcmread(path)
        original = ds.pixel_array.copy()
        ds.compress(SYNTAXES[name])
        target = folder / path.name
        ds.save_as(target, enforce_file_format=True)
        if not np.array_equal(pydicom.dcmread(target).pixel_array, original):
            raise RuntimeError(f"{target}: {name} encoding is not lossless")
    done.write_text("ok\n", encoding="utf-8")
    return folder


if __name__ == "__main__":
    for key in SYNTAXES:
        print(make_compressed_series(key))
