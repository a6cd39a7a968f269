"""Bad DICOM series met when opening a folder: generated from a real MR series under tmp_path."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest

from napari_domainseg.medical.series import read_series

from ..helpers.dicom_copies import SliceChange, copied_series
from .corpus import BadInput, check, ids

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "medical"
MR = SHARED / "mr_sagittal"  # 4 sagittal 256x256 MR slices, explicit VR little endian


def copied(folder: Path, change: SliceChange | None = None) -> Path:
    """A copy of the real 4-slice MR under ``folder/series``; ``change(k, ds)`` edits slice k."""
    return copied_series(MR, folder / "series", change)


def nth_file(folder: Path, k: int) -> Path:
    return sorted(folder.iterdir())[k]


def open_series(path: Path, **options) -> object:
    """``read_series`` as the CLI and the readers call it; its warnings re-emitted as warnings."""
    loaded = read_series(path, **options)
    for note in loaded.warnings:
        warnings.warn(note, UserWarning, stacklevel=2)
    return loaded


# --- pixel data that does not match the pixel module -----------------------------------------


def _bits_8_on_16_bit_data(tmp: Path) -> Path:
    def change(k: int, ds: pydicom.Dataset) -> None:
        if k == 2:
            ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7

    return nth_file(copied(tmp, change), 2)


def _all_bits_8(tmp: Path) -> Path:
    def change(k: int, ds: pydicom.Dataset) -> None:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7

    return copied(tmp, change)


def _rows_too_many(tmp: Path) -> Path:
    def change(k: int, ds: pydicom.Dataset) -> None:
        if k == 1:
            ds.Rows = 300

    return nth_file(copied(tmp, change), 1)


def _truncated(k: int) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        file = nth_file(copied(tmp), k)
        data = file.read_bytes()
        file.write_bytes(data[: len(data) - 100_000])  # 129 kB slice cut to about 32 kB
        return file

    return make


# --- malformed values -------------------------------------------------------------------------


def _patched(tmp: Path, k: int, keyword: str, placeholder: str, bad: bytes) -> Path:
    """Slice ``k`` with ``keyword`` set to ``placeholder``, then its bytes replaced by ``bad``."""

    def change(index: int, ds: pydicom.Dataset) -> None:
        if index == k:
            setattr(ds, keyword, placeholder)

    file = nth_file(copied(tmp, change), k)
    data = file.read_bytes()
    assert data.count(placeholder.encode()) == 1
    file.write_bytes(data.replace(placeholder.encode(), bad))
    return file


# --- geometry ---------------------------------------------------------------------------------


def _each(change: Callable[[pydicom.Dataset], None], only: int | None = None):
    def make(tmp: Path) -> Path:
        def edit(k: int, ds: pydicom.Dataset) -> None:
            if only is None or k == only:
                change(ds)

        return nth_file(copied(tmp, edit), only if only is not None else 0)

    return make


def _delete(keyword: str) -> Callable[[pydicom.Dataset], None]:
    def change(ds: pydicom.Dataset) -> None:
        delattr(ds, keyword)

    return change


def _set(keyword: str, value) -> Callable[[pydicom.Dataset], None]:
    def change(ds: pydicom.Dataset) -> None:
        setattr(ds, keyword, value)

    return change


def _unknown(name: str, change: Callable[[pydicom.Dataset], None], message: str) -> BadInput:
    """Every slice edited by ``change``: the series opens with a warning, geometry unknown."""
    return BadInput(name, make=_each(change), open=open_series, message=message, outcome="warning")


CASES = [
    BadInput(
        "dicom-bits-allocated-8-on-16-bit-data",
        make=_bits_8_on_16_bit_data,
        open=read_series,
        message=r"inconsistent pixel module.*131072 bytes.*65536 bytes",
    ),
    BadInput(
        "dicom-every-slice-bits-allocated-8",
        make=_all_bits_8,
        open=read_series,
        message=r"no volume series.*4 inconsistent pixel module.*IM-0001-0001-0001\.dcm",
    ),
    BadInput(
        "dicom-rows-larger-than-pixel-data",
        make=_rows_too_many,
        open=read_series,
        message=r"not regular.*inconsistent pixel module.*= 300 x 256 x 1 x 16/8 x 1 = 153600",
    ),
    BadInput(
        "dicom-truncated-slice",
        make=_truncated(1),
        open=read_series,
        message=r"pixel data truncated.*skip unreadable",
    ),
    BadInput(
        "dicom-truncated-slice-skipped-leaves-a-gap",
        make=_truncated(1),
        open=lambda p: read_series(p, skip_unreadable=True),
        message=r"slice spacing is not regular.*IM-0001-0002-0001\.dcm: pixel data truncated",
        names_file=False,
    ),
    BadInput(
        "dicom-truncated-last-slice-skipped-on-request",
        make=_truncated(3),
        open=lambda p: open_series(p.parent, skip_unreadable=True),
        message=r"1 of 4 files cannot be read.*pixel data truncated.*opened without them",
        outcome="warning",
    ),
    BadInput(
        "dicom-series-number-abc-in-the-series",
        make=lambda tmp: _patched(tmp, 1, "SeriesNumber", "9797", b"abc "),
        open=lambda p: read_series(p.parent),
        message=r"slice spacing is not regular.*malformed header \(SeriesNumber 'abc' is not",
    ),
    _unknown(
        "dicom-missing-pixel-spacing", _delete("PixelSpacing"),
        r"geometry unknown: no PixelSpacing.*1 mm",
    ),
    _unknown(
        "dicom-nan-pixel-spacing", _set("PixelSpacing", ["nan", "nan"]),
        r"geometry unknown: PixelSpacing \[nan, nan\] is not a positive finite",
    ),
    _unknown(
        "dicom-zero-pixel-spacing", _set("PixelSpacing", [0, 0]),
        r"geometry unknown: PixelSpacing \[0, 0\]",
    ),
    _unknown(
        "dicom-huge-pixel-spacing", _set("PixelSpacing", ["1e30", "1e30"]),
        r"geometry unknown: PixelSpacing \[1e\+30, 1e\+30\]",
    ),
    BadInput(
        "dicom-nan-position",
        make=_each(_set("ImagePositionPatient", ["nan", "0", "0"]), only=2),
        open=read_series,
        message=r"1 of 4 files have no usable position.*not a finite position",
    ),
    BadInput(
        "dicom-zero-orientation",
        make=_each(_set("ImageOrientationPatient", [0, 0, 0, 0, 0, 0])),
        open=read_series,
        message=r"zero direction vector.*cannot be ordered",
    ),
    BadInput(
        "dicom-parallel-orientation",
        make=_each(_set("ImageOrientationPatient", [0, 1, 0, 0, 1, 0])),
        open=read_series,
        message=r"0\.00 degrees apart, not perpendicular",
    ),
    BadInput(
        "dicom-nan-orientation",
        make=_each(_set("ImageOrientationPatient", ["nan"] * 6)),
        open=read_series,
        message=r"ImageOrientationPatient \[nan.*not finite",
    ),
    BadInput(
        "dicom-scaled-orientation-vectors",
        make=_each(_set("ImageOrientationPatient", [0, 2, 0, 0, 0, -2])),
        open=read_series,
        message=r"direction vectors of length 2 and 2, not 1",
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_input(case, tmp_path):
    check(case, tmp_path)


def test_the_series_is_still_found_when_an_unrelated_file_is_malformed(tmp_path):
    folder = copied(tmp_path)
    extra = pydicom.dcmread(nth_file(folder, 0))
    extra.SeriesInstanceUID = pydicom.uid.generate_uid()
    extra.SOPInstanceUID = pydicom.uid.generate_uid()
    extra.NumberOfFrames = "7"
    extra.save_as(folder / "other.dcm", enforce_file_format=True)
    data = (folder / "other.dcm").read_bytes()
    (folder / "other.dcm").write_bytes(data.replace(b"IS\x02\x007 ", b"IS\x02\x001A"))
    loaded = read_series(folder)
    assert loaded.volume.shape[0] == 256 or 4 in loaded.volume.shape
    assert "malformed header (NumberOfFrames '1A' is not an integer): other.dcm" in loaded.skipped
