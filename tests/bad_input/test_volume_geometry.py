"""NIfTI and NRRD files whose geometry is unusable: warned, marked "geometry unknown", never NaN."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest

from napari_domainseg.files import load
from napari_domainseg.medical.geometry_checks import GEOMETRY_UNKNOWN_KEY, layer_name
from napari_domainseg.medical.nifti import volume_from_nifti
from napari_domainseg.medical.nrrd_files import read_nrrd

from .corpus import BadInput, check, ids

DATA = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) * 7  # an image, not a mask


def _nifti(name: str, sform: np.ndarray | None, qform: np.ndarray | None = None, pixdim=None):
    def make(tmp: Path) -> Path:
        image = nib.Nifti1Image(DATA, None)
        header = image.header
        if sform is not None:
            header.set_sform(np.eye(4), code=1)
            header["srow_x"], header["srow_y"], header["srow_z"] = sform[0], sform[1], sform[2]
        else:
            header.set_sform(None, code=0)
        if qform is not None:
            header.set_qform(qform, code=1)
        else:
            header.set_qform(None, code=0)
        path = tmp / name
        nib.save(image, path)
        if pixdim is not None:  # nibabel rewrites pixdim on save: patch the bytes (offset 80)
            raw = bytearray(path.read_bytes())
            raw[80:92] = np.asarray(pixdim, dtype="<f4").tobytes()
            path.write_bytes(bytes(raw))
        return path

    return make


def _nrrd(name: str, directions, origin=(0.0, 0.0, 0.0), spacings=None):
    def make(tmp: Path) -> Path:
        header = {
            "space": "left-posterior-superior",
            "space directions": np.asarray(directions, dtype=float),
            "space origin": np.asarray(origin, dtype=float),
        }
        path = tmp / name
        nrrd.write(str(path), DATA, header, index_order="C")
        if spacings is not None:  # pynrrd refuses both fields; add the line by hand
            text = path.read_bytes()
            marker = b"space origin"
            text = text.replace(marker, b"spacings: " + spacings.encode() + b"\n" + marker, 1)
            path.write_bytes(text)
        return path

    return make


def _opened(reader):
    """Open with the reader and check the promise: a finite affine and the unknown mark."""

    def open_(path: Path):
        volume = reader(path)
        volume = getattr(volume, "volume", volume)
        assert np.all(np.isfinite(volume.affine))
        assert volume.metadata.get(GEOMETRY_UNKNOWN_KEY), "marked geometry unknown"
        assert layer_name("x", volume.metadata) == "x (geometry unknown)"
        return volume

    return open_


NAN = np.full((3, 4), np.nan)
ZERO = np.zeros((3, 4))
SINGULAR = np.array([[1.0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0]])  # two parallel axes
GOOD_QFORM = np.diag([2.0, 3.0, 4.0, 1.0])


def _unknown(name: str, make: Callable[[Path], Path], reader: Callable, message: str) -> BadInput:
    """A case that opens with a warning matching ``message``, marked geometry unknown, never NaN."""
    return BadInput(name, make=make, open=_opened(reader), message=message, outcome="warning")


CASES = [
    _unknown(
        "nifti-nan-sform", _nifti("nan.nii.gz", NAN), volume_from_nifti,
        r"geometry unknown: its sform is not finite",
    ),
    _unknown(
        "nifti-zero-sform", _nifti("zero.nii", ZERO), volume_from_nifti,
        r"geometry unknown: its sform has a zero axis",
    ),
    _unknown(
        "nifti-singular-sform", _nifti("singular.nii", SINGULAR), volume_from_nifti,
        r"sform is singular",
    ),
    _unknown(
        "nifti-no-sform-no-qform", _nifti("codes0.nii", None), volume_from_nifti,
        r"no sform or qform \(both codes are 0\).*voxel size \(pixdim\)",
    ),
    _unknown(
        "nifti-nan-sform-zero-pixdim", _nifti("nanpix.nii", NAN, pixdim=[0, 0, 0]),
        volume_from_nifti, r"sform is not finite.*grid of",
    ),
    BadInput(
        "nifti-nan-sform-through-the-cli-loader",
        make=_nifti("cli.nii", NAN),
        open=lambda p: _warned(load(p).warnings),
        message=r"cli\.nii: geometry unknown",
        outcome="warning",
    ),
    _unknown(
        "nrrd-nan-space-directions", _nrrd("nan.nrrd", [[np.nan, 0, 0], [0, 1, 0], [0, 0, 1]]),
        read_nrrd, r"geometry unknown: space directions/origin is not finite",
    ),
    _unknown(
        "nrrd-zero-space-direction", _nrrd("zero.nrrd", [[0, 0, 0], [0, 1, 0], [0, 0, 1]]),
        read_nrrd, r"has a zero axis",
    ),
    _unknown(
        "nrrd-singular-space-directions", _nrrd("singular.nrrd", [[1, 0, 0], [1, 0, 0], [0, 0, 1]]),
        read_nrrd, r"is singular",
    ),
    _unknown(
        "nrrd-nan-origin", _nrrd("origin.nrrd", np.eye(3), origin=(np.nan, 0, 0)),
        read_nrrd, r"is not finite",
    ),
]  # fmt: skip


def _warned(notes: list[str]) -> list[str]:
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    return notes


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_input(case, tmp_path):
    check(case, tmp_path)


def test_an_unusable_sform_falls_back_to_a_usable_qform(tmp_path):
    path = _nifti("qform.nii", NAN, qform=GOOD_QFORM)(tmp_path)
    with pytest.warns(
        UserWarning, match=r"qform\.nii: its sform is not finite.*placed by its qform"
    ):
        volume = volume_from_nifti(path)
    assert GEOMETRY_UNKNOWN_KEY not in volume.metadata
    np.testing.assert_allclose(sorted(volume.spacing), [2.0, 3.0, 4.0])


def test_a_good_file_says_nothing(tmp_path):
    path = _nifti("good.nii", np.diag([2.0, 3.0, 4.0, 1.0])[:3])(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        volume = volume_from_nifti(path)
    assert GEOMETRY_UNKNOWN_KEY not in volume.metadata
