"""The hand-written hot path (header scan, native pixel reads) gives exactly what pydicom gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from napari_domainseg.medical.discovery import discover
from napari_domainseg.medical.fast_header import read_fast_header
from napari_domainseg.medical.native_pixels import read_native_stack
from napari_domainseg.medical.series import read_series


def dicom_files(root: Path) -> list[Path]:
    files = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix not in (
            ".gz",
            ".json",
            ".log",
            ".txt",
            ".nrrd",
            ".png",
            ".jpg",
        ):
            files.append(path)
    return files


def test_fast_headers_equal_pydicom_for_every_file_they_accept(shared_data):
    accepted = 0
    for path in dicom_files(shared_data / "medical"):
        fast = read_fast_header(path)
        if fast is None:
            continue
        accepted += 1
        dataset, location = fast
        reference = pydicom.dcmread(path, stop_before_pixels=True)
        for element in reference:
            if element.VR == "SQ" or element.tag.is_private:
                continue
            assert dataset[element.tag].value == element.value, (path, element.keyword)
        if location is not None:
            pixels = path.read_bytes()[location.offset : location.offset + location.length]
            assert pixels == pydicom.dcmread(path).PixelData, path
    assert accepted > 50, "the fast path must cover the classic series"


def test_big_endian_multiframe_and_seg_files_go_to_pydicom(shared_data):
    medical = shared_data / "medical"
    assert read_fast_header(medical / "enhanced_ct/eCT_Supplemental.dcm") is None
    assert read_fast_header(medical / "seg_dcmqi/liver.dcm") is None
    big_endian = [
        p
        for p in dicom_files(medical / "transfer_syntaxes")
        if pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID
        == "1.2.840.10008.1.2.2"
    ]
    assert big_endian and all(read_fast_header(p) is None for p in big_endian)


@pytest.mark.parametrize(
    "source", ["ct_head_study", "mr_sagittal", "bad_input/gantry_tilt", "seg_dcmqi/24x38x3/image"]
)
def test_native_volume_equals_pydicom_decoding(shared_data, source):
    folder = shared_data / "medical" / source
    fast = read_series(folder).volume
    discovery = discover(folder)
    for candidate in discovery.candidates:
        candidate.pixel_locations = []  # force pydicom's decoder
    slow = read_series(folder, discovery=discovery).volume
    assert fast.array.dtype == slow.array.dtype
    np.testing.assert_array_equal(fast.array, slow.array)
    assert fast.array.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("name", ["12bitUnsigned_0x0F0F.dcm", "12bitSigned_0x0F0F.dcm"])
def test_unused_high_bits_are_masked_or_sign_extended_like_pydicom(shared_data, name):
    path = shared_data / "medical/mr_12bit" / name  # high bits hold garbage (0x0F0F)
    header, location = read_fast_header(path)
    volume = read_native_stack([path], [location], header, np.eye(4))
    np.testing.assert_array_equal(volume[0], pydicom.dcmread(path).pixel_array)
