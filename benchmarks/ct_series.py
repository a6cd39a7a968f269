"""A realistic large CT DICOM series for benchmarks, re-stacked from one real CT slice.

One slice of the real head CT in ``../shared/data/medical/ct_head_study/S2010`` (a
Philips Ingenuity CT, 512x512, uncompressed, with its full vendor header and private
tags) is written ``n_slices`` times as a new series: new SOPInstanceUIDs, one new
SeriesInstanceUID, ImagePositionPatient stepping 1.0 mm along z, and the pixels
rolled by a few pixels per slice so that no two slices are identical. File names
follow the source's ``I10, I20, ...`` pattern, so their lexical order is not their
position order and readers have to sort. The series is generated once and cached.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.uid import PYDICOM_ROOT_UID, ExplicitVRLittleEndian, generate_uid

from harness import CT_HEAD_SERIES as SOURCE_SERIES  # the real series (read only)
from harness import DATA_DIR

SLICE_STEP_MM = 1.0
UID_ENTROPY = "napari-domainseg benchmark ct_series v1"
"""Fixed entropy source: the generated UIDs are the same on every machine and run."""


def default_folder(n_slices: int = 300, rows: int = 512, cols: int = 512) -> Path:
    """Cache folder of the series of that size: ``DATA_DIR / "ct_{rows}x{cols}x{n_slices}"``."""
    return DATA_DIR / f"ct_{rows}x{cols}x{n_slices}"


def slice_name(index: int) -> str:
    """File name of 0-based slice ``index``, in the source's ``I10, I20, ...`` pattern."""
    return f"I{10 * (index + 1)}"


def pick_source_slice(source: Path = SOURCE_SERIES, rows: int = 512, cols: int = 512) -> Path:
    """The source file to re-stack: the middle slice by position, preferring the wanted size.

    Only uncompressed (native) slices are considered; among them, those with exactly
    ``rows`` x ``cols`` pixels are preferred, and the one nearest the middle of the
    series along z is returned (mid-head anatomy rather than the skull vertex).

    Parameters
    ----------
    source
        Folder of the real series.
    rows, cols
        Wanted matrix size.

    Returns
    -------
    Path
        The chosen file.

    Raises
    ------
    FileNotFoundError
        If the folder holds no uncompressed DICOM image.
    """
    found: list[tuple[bool, float, Path]] = []
    for path in sorted(p for p in source.iterdir() if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, EOFError, ValueError):
            continue
        syntax = getattr(ds, "file_meta", pydicom.Dataset()).get("TransferSyntaxUID")
        if "Rows" not in ds or "ImagePositionPatient" not in ds or syntax is None:
            continue
        if syntax.is_compressed:
            continue
        exact = int(ds.Rows) == rows and int(ds.Columns) == cols
        found.append((exact, float(ds.ImagePositionPatient[2]), path))
    if not found:
        raise FileNotFoundError(f"{source}: no uncompressed DICOM image slice")
    preferred = [item for item in found if item[0]] or found
    preferred.sort(key=lambda item: item[1])
    return preferred[len(preferred) // 2][2]


def fit_pixels(pixels: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Tile (and crop) a 2D pixel array to ``rows`` x ``cols`` (itself if already that shape)."""
    if pixels.shape == (rows, cols):
        return pixels
    reps = (-(-rows // pixels.shape[0]), -(-cols // pixels.shape[1]))
    return np.ascontiguousarray(np.tile(pixels, reps)[:rows, :cols])


def _count_slices(folder: Path, n_slices: int) -> int:
    return sum((folder / slice_name(k)).is_file() for k in range(n_slices))


def make_ct_series(
    folder: str | os.PathLike[str] | None = None,
    n_slices: int = 300,
    rows: int = 512,
    cols: int = 512,
    source: str | os.PathLike[str] = SOURCE_SERIES,
) -> list[Path]:
    """Write (once) an ``n_slices`` x ``rows`` x ``cols`` CT series re-stacked from a real slice.

    Every slice is a copy of one real CT slice (header, private tags, RescaleSlope and
    RescaleIntercept kept; 16-bit, Explicit VR Little Endian) with a new SOPInstanceUID,
    a shared new SeriesInstanceUID, InstanceNumber ``k + 1``, ImagePositionPatient and
    SliceLocation stepping :data:`SLICE_STEP_MM` along z, and its pixels rolled by
    ``k % 37`` columns and ``k % 11`` rows. UIDs are derived from a fixed entropy
    source, so the series is identical on every run.

    Parameters
    ----------
    folder
        Where to write the files; defaults to :func:`default_folder` under
        ``benchmarks/.data``. Nothing is generated if it already holds the
        ``n_slices`` files.
    n_slices, rows, cols
        Size of the series.
    source
        Folder of the real series to take the slice from (only read).

    Returns
    -------
    list of Path
        The slice files, in InstanceNumber order.
    """
    folder = Path(folder) if folder is not None else default_folder(n_slices, rows, cols)
    files = [folder / slice_name(k) for k in range(n_slices)]
    if folder.is_dir() and _count_slices(folder, n_slices) == n_slices:
        return files
    if folder.exists():
        shutil.rmtree(folder)  # a partial or different series: start again
    partial = folder.with_name(folder.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)

    source_file = pick_source_slice(Path(source), rows, cols)
    ds = pydicom.dcmread(source_file)
    pixels = fit_pixels(ds.pixel_array, rows, cols)
    if pixels.dtype.itemsize != 2:
        raise ValueError(f"{source_file}: expected 16-bit pixels, got {pixels.dtype}")
    little = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False)

    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = 16
    ds.SliceThickness = SLICE_STEP_MM
    ds.SpacingBetweenSlices = SLICE_STEP_MM
    ds.SeriesInstanceUID = generate_uid(PYDICOM_ROOT_UID, [UID_ENTROPY, "series"])
    ds.SeriesDescription = f"BENCH {rows}x{cols}x{n_slices} from {ds.get('SeriesDescription', '')}"
    x, y, z0 = (float(v) for v in ds.ImagePositionPatient)
    for k, path in enumerate(partial / slice_name(i) for i in range(n_slices)):
        sop_uid = generate_uid(PYDICOM_ROOT_UID, [UID_ENTROPY, "instance", str(k)])
        ds.SOPInstanceUID = sop_uid
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.InstanceNumber = k + 1
        z = round(z0 + k * SLICE_STEP_MM, 4)
        ds.ImagePositionPatient = [x, y, z]
        ds.SliceLocation = z
        ds.PixelData = np.roll(little, (k % 11, k % 37), axis=(0, 1)).tobytes()
        ds.save_as(path, enforce_file_format=True)
    partial.rename(folder)
    return files


if __name__ == "__main__":
    written = make_ct_series()
    print(f"{len(written)} files in {written[0].parent}")
