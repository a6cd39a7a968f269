"""Compressed series with a slice that cannot be decoded, met through the parallel decoder.

Generated under tmp_path from the real 4-slice MR in JPEG 2000, JPEG-LS and RLE
(``mr_compressed``): one slice's codestream is replaced by garbage. Whether the slices
are decoded in threads, forked processes or serially, the user is told which file
cannot be decoded, by the reader and by the command line.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from pydicom.encaps import encapsulate

from napari_domainseg.cli import main
from napari_domainseg.medical import parallel_decode
from napari_domainseg.medical.series import read_series

from .corpus import BadInput, check, ids

COMPRESSED = Path(__file__).resolve().parents[2].parent / "shared/data/medical/mr_compressed"
GARBAGE = {
    "j2k": b"\xff\x4f\xff\x51" + b"\x00" * 200,  # a J2K start and a truncated SIZ
    "jpegls": b"\xff\xd8\xff\xf7" + b"\x00" * 200,  # a JPEG-LS start and nothing valid
    "rle": b"\x02\x00\x00\x00" + b"\x00" * 60 + b"\x7f",  # a header promising missing segments
}


def broken_series(syntax: str, broken: int = 2) -> Callable[[Path], Path]:
    """A copy of the compressed MR whose slice ``broken`` has a garbage codestream."""

    def make(tmp: Path) -> Path:
        folder = tmp / f"{syntax}_series"
        folder.mkdir()
        for k, file in enumerate(sorted((COMPRESSED / syntax).glob("*.dcm"))):
            ds = pydicom.dcmread(file)
            if k == broken:
                ds.PixelData = encapsulate([GARBAGE[syntax]])
            ds.save_as(folder / file.name)
        return folder

    return make


def read_in_parallel(path: Path) -> object:
    """``read_series`` with two decoding workers, whatever the machine."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(parallel_decode.WORKERS_VARIABLE, "2")
        return read_series(path)


def convert(path: Path) -> tuple[int, str, str]:
    """``domainseg convert FOLDER -o OUT.nii.gz`` in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["convert", str(path), "-o", str(path.parent / "out.nii.gz")])
    return code, out.getvalue(), err.getvalue()


CASES = [
    *[
        BadInput(
            f"dicom-{syntax}-slice-undecodable-parallel",
            broken_series(syntax),
            read_in_parallel,
            r"IM-0001-0003-0001\.dcm: pixel data cannot be decoded",
        )
        for syntax in ("j2k", "jpegls", "rle")
    ],
    BadInput(
        "dicom-j2k-slice-undecodable-cli",
        broken_series("j2k", broken=0),
        convert,
        r"IM-0001-0001-0001\.dcm: pixel data cannot be decoded",
        outcome="exit",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_input(case, tmp_path):
    check(case, tmp_path)
