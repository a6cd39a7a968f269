"""DICOM reading with nothing silent: per-slice scaling, labels that tell series apart, FIFOs,
huge non-DICOM files, the napari reader's folder scan, and Philips precise values vs dcm2niix."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from napari_domainseg.medical.discovery import discover
from napari_domainseg.medical.nifti import to_nifti
from napari_domainseg.medical.series import DicomSeriesError, read_series
from napari_domainseg.medical.sniff import folder_has_dicom

from ..helpers.dicom_copies import copied_series, philips_like

DCM2NIIX = Path(sys.executable).with_name("dcm2niix")


@pytest.fixture
def mr(shared_data: Path) -> Path:
    return shared_data / "medical" / "mr_sagittal"  # 4 sagittal 256x256 slices


def test_per_slice_rescale_is_one_stack_scaled_slice_by_slice(mr, tmp_path):
    def change(k: int, ds: pydicom.Dataset) -> None:
        ds.RescaleSlope, ds.RescaleIntercept = ("2.5", "-7") if k == 2 else ("1", "0")

    folder = copied_series(mr, tmp_path / "series", change)
    discovery = discover(folder)
    assert len(discovery.candidates) == 1, [c.summary() for c in discovery.candidates]
    loaded = read_series(folder, discovery=discovery)
    volume = loaded.volume
    assert volume.array.dtype == np.float32
    assert any("differ between slices" in w and "float32" in w for w in loaded.warnings)
    assert volume.metadata["rescale"]["per_slice"] is True
    # Each acquired slice is pydicom's pixels scaled by that slice's own values.
    expected = []
    for file in sorted(folder.iterdir()):
        ds = pydicom.dcmread(file)
        scaled = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        expected.append(float(scaled.sum()))
    slice_axis = volume.metadata["reorientation"]["permutation"].index(0)
    other = tuple(a for a in range(3) if a != slice_axis)
    sums = volume.array.astype(np.float64).sum(axis=other)
    np.testing.assert_allclose(sorted(sums), sorted(expected), rtol=1e-6)
    # The pydicom decoder path gives the same volume as the native one.
    for candidate in discovery.candidates:
        candidate.pixel_locations = []
    slow = read_series(folder, discovery=discovery).volume
    assert slow.array.dtype == np.float32
    np.testing.assert_array_equal(slow.array, volume.array)


def _magnitude_and_phase(mr: Path, tmp_path: Path, same_series: bool) -> Path:
    uids = [pydicom.uid.generate_uid() for _ in range(2)]
    for index, part in enumerate(("M", "P")):

        def change(k: int, ds: pydicom.Dataset, part=part, index=index) -> None:
            ds.ImageType = ["ORIGINAL", "PRIMARY", part, "ND"]
            ds.SeriesNumber = 501
            ds.SeriesInstanceUID = uids[0] if same_series else uids[index]
            ds.SOPInstanceUID = pydicom.uid.generate_uid()
            if "SeriesDescription" in ds:
                del ds.SeriesDescription

        copied_series(mr, tmp_path / "study" / part, change)
    return tmp_path / "study"


@pytest.mark.parametrize("same_series", [False, True])
def test_magnitude_and_phase_series_are_told_apart(mr, tmp_path, same_series):
    study = _magnitude_and_phase(mr, tmp_path, same_series)
    summaries = sorted(c.summary() for c in discover(study).candidates)
    assert summaries == [
        "#501 (no description) | ImageType M [MR volume, 4 images]",
        "#501 (no description) | ImageType P [MR volume, 4 images]",
    ]
    if same_series:  # one SeriesInstanceUID: two stacks, never one with duplicate positions
        volume = read_series(study).volume
        assert volume.shape[0] == 4 or 4 in volume.shape


def test_labels_show_only_what_differs_echo(mr, tmp_path):
    uid = pydicom.uid.generate_uid()
    for echo, time_ms in ((1, "4.6"), (2, "9.2")):

        def change(k: int, ds: pydicom.Dataset, echo=echo, time_ms=time_ms) -> None:
            ds.SeriesInstanceUID, ds.SeriesNumber = uid, 7
            ds.EchoNumbers, ds.EchoTime = echo, time_ms
            ds.SOPInstanceUID = pydicom.uid.generate_uid()

        copied_series(mr, tmp_path / "study" / f"e{echo}", change)
    labels = sorted(c.label() for c in discover(tmp_path / "study").candidates)
    assert [label.split(" | ")[1] for label in labels] == ["echo 1", "echo 2"]


def _run_child(code: str, timeout: float = 60) -> str:
    """Run ``code`` in a fresh interpreter with a timeout (a hang fails, never blocks the suite)."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_fifo_and_huge_non_dicom_files_are_never_read_whole(mr, tmp_path):
    folder = copied_series(mr, tmp_path / "series")
    os.mkfifo(folder / "pipe")
    for name, head in (("big.bin", b""), ("big_dicm.bin", b"\0" * 128 + b"DICM")):
        with open(folder / name, "wb") as handle:  # sparse: 3 GB on paper, nothing on disk
            handle.write(head)
            handle.truncate(3 * 1024**3)
    code = f"""
import resource, time
from napari_domainseg.medical.series import read_series
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
loaded = read_series({str(folder)!r})
print(time.perf_counter() - start)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
print(loaded.skipped)
"""
    seconds, grown_mb, skipped = _run_child(code).strip().splitlines()
    assert float(seconds) < 10, "a 3 GB file was read"
    assert float(grown_mb) < 200, f"memory grew by {grown_mb} MB: a 3 GB file was read"
    assert "not a regular file (a named pipe): pipe" in skipped
    assert "2 not DICOM: big.bin, big_dicm.bin" in skipped


def test_napari_reader_finds_dicom_beyond_the_first_files(mr, tmp_path):
    from napari_domainseg._napari._medical_reader import get_dicom_reader

    folder = tmp_path / "export"
    folder.mkdir()
    for k in range(80):
        (folder / f"a{k:03d}.txt").write_text("not DICOM")
    os.mkfifo(folder / "a_pipe")
    copied_series(mr, folder / "zz_series")
    assert get_dicom_reader(str(folder)) is not None
    assert read_series(folder).volume.shape is not None  # the command line agrees


def test_napari_reader_stays_fast_on_thousands_of_non_dicom_files(tmp_path):
    from napari_domainseg._napari._medical_reader import get_dicom_reader

    for k in range(3000):
        (tmp_path / f"{k:05d}.png").write_bytes(b"\x89PNG" + bytes(200))
    start = time.perf_counter()
    assert get_dicom_reader(str(tmp_path)) is None
    assert time.perf_counter() - start < 3
    assert folder_has_dicom(tmp_path, max_files=10) is False


def test_unreadable_slices_name_the_file_and_discovery_says_so(mr, tmp_path):
    folder = copied_series(mr, tmp_path / "series")
    victim = sorted(folder.iterdir())[1]
    victim.write_bytes(victim.read_bytes()[:-100_000])
    (candidate,) = discover(folder).candidates
    assert [f.name for f, _ in candidate.unreadable] == [victim.name]
    assert "1 unreadable" in candidate.summary()
    with pytest.raises(DicomSeriesError, match=f"{victim.name}: pixel data truncated"):
        read_series(folder)


def _dcm2niix(folder: Path, out: Path) -> nib.Nifti1Image:
    out.mkdir()
    subprocess.run(
        [str(DCM2NIIX), "-z", "n", "-f", "vol", "-o", str(out), str(folder)],
        check=True,
        capture_output=True,
    )
    return nib.load(out / "vol.nii")


def _world_equal(volume, reference: nib.Nifti1Image) -> None:
    ours = nib.as_closest_canonical(to_nifti(volume.array, volume.affine))
    theirs = nib.as_closest_canonical(reference)
    np.testing.assert_allclose(ours.affine, theirs.affine, atol=1e-3)
    np.testing.assert_allclose(ours.get_fdata(), theirs.get_fdata(), rtol=1e-5, atol=1e-3)


def test_philips_precise_values_equal_dcm2niix(mr, tmp_path):
    folder = philips_like(mr, tmp_path / "philips")
    reference = _dcm2niix(folder, tmp_path / "dcm2niix")
    precise = read_series(folder, philips_scaling="precise").volume
    _world_equal(precise, reference)  # dcm2niix's default: Philips precise values
    assert precise.metadata["rescale"]["mode"] == "philips_precise"
    display = read_series(folder).volume  # our default: the DICOM standard's display values
    assert display.metadata["rescale"]["mode"] == "display"
    raw = pydicom.dcmread(sorted(folder.iterdir())[0]).pixel_array
    assert display.array.max() == pytest.approx(raw.max() * 2.5 - 10)
    assert precise.array.max() == pytest.approx((raw.max() * 2.5 - 10) / (2.5 * 0.0731), rel=1e-5)


def test_philips_precise_on_a_non_philips_series_says_so(mr):
    loaded = read_series(mr, philips_scaling="precise")
    assert any("not a Philips series" in w for w in loaded.warnings)
    assert loaded.volume.metadata["rescale"]["mode"] == "display"


def test_philips_precise_on_the_command_line(mr, tmp_path):
    from napari_domainseg.cli import main

    folder = philips_like(mr, tmp_path / "philips")
    output = tmp_path / "precise.nii"
    assert main(["convert", str(folder), "-o", str(output), "--philips-precise"]) == 0
    _world_equal(_volume_of(output), _dcm2niix(folder, tmp_path / "dcm2niix"))


def _volume_of(path: Path):
    from napari_domainseg.medical.nifti import volume_from_nifti

    return volume_from_nifti(path)


def test_real_series_still_open_as_before(shared_data):
    """The new checks refuse nothing real: every volume series of the shared data opens."""
    medical = shared_data / "medical"
    for folder in ("ct_head_study", "mr_sagittal", "mr_compressed/j2k", "enhanced_ct"):
        discovery = discover(medical / folder)
        assert not any(c.unreadable for c in discovery.candidates), folder
        loaded = read_series(medical / folder, discovery=discovery)
        assert "geometry_unknown" not in loaded.volume.metadata, folder


def test_philips_precise_on_a_real_philips_ct_keeps_display_values(shared_data):
    """The real Philips CT has no MR scale slope: display values, and the user is told."""
    folder = shared_data / "medical" / "ct_head_study"
    precise = read_series(folder, philips_scaling="precise")
    assert any("no scale slope (2005,100E)" in w for w in precise.warnings)
    np.testing.assert_array_equal(precise.volume.array, read_series(folder).volume.array)


def test_philips_precise_on_an_enhanced_object_says_it_is_not_applied(shared_data):
    read = read_series(shared_data / "medical/enhanced_ct", philips_scaling="precise")
    assert any("applied to classic series only" in w for w in read.volume.metadata["warnings"])
    quiet = read_series(shared_data / "medical/enhanced_ct")
    assert not any("Philips" in w for w in quiet.volume.metadata["warnings"])
