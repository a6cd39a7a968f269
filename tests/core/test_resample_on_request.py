"""Tilted and unequally spaced stacks: refused or kept exact by default, resampled on request."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pydicom
import pytest

from napari_domainseg.medical.dicom_seg import DicomSegError, build_dicom_seg
from napari_domainseg.medical.nifti import to_nifti
from napari_domainseg.medical.series import PATIENT_KEYWORDS, DicomSeriesError, read_series

BAD = "medical/bad_input"
REFERENCE = "medical/reference_dcm2niix/bad_input"


def canonical(array: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    return nib.as_closest_canonical(to_nifti(array, affine))


def test_tilt_removal_matches_dcm2niix_tilt_output(shared_data):
    loaded = read_series(shared_data / BAD / "gantry_tilt", resample=True)
    volume = loaded.volume
    assert volume.metadata["tilt_deg"] == 0.0
    assert volume.metadata["resampled"] == ["gantry tilt of 14.00 degrees removed"]
    assert any("resampled on request" in w for w in loaded.warnings)
    ours = canonical(volume.array, volume.affine)
    theirs = nib.as_closest_canonical(
        nib.load(shared_data / REFERENCE / "gantry_tilt/4__Tilt_1.nii.gz")
    )
    assert ours.shape == theirs.shape == (512, 521, 4)
    np.testing.assert_allclose(ours.affine, theirs.affine, atol=1e-3)
    a = np.asarray(ours.dataobj, dtype=float)
    b = np.asarray(theirs.dataobj, dtype=float)
    assert np.mean(a == b) > 0.99, "same linear interpolation as dcm2niix, up to rounding"
    assert np.abs(a - b).mean() < 1.0  # HU


def test_the_resampled_grid_is_orthogonal(shared_data):
    volume = read_series(shared_data / BAD / "gantry_tilt", resample=True).volume
    linear = volume.affine[:3, :3]
    gram = linear.T @ linear
    np.testing.assert_allclose(gram, np.diag(np.diag(gram)), atol=1e-6)


def test_equal_spacing_keeps_acquired_slices_and_fills_the_gap(shared_data):
    folder = shared_data / BAD / "slice_gap"
    with pytest.raises(DicomSeriesError, match="not regular"):
        read_series(folder)
    volume = read_series(folder, resample=True).volume
    slices = sorted(
        (pydicom.dcmread(f) for f in folder.iterdir()),
        key=lambda ds: float(ds.ImagePositionPatient[2]),
    )
    z = np.array([float(ds.ImagePositionPatient[2]) for ds in slices])  # 0, 5, 10, 20 mm apart
    assert volume.shape[0] == 5 and volume.spacing[0] == pytest.approx(5.0)
    for ds, position in zip(slices, z, strict=True):
        k = round((position - volume.origin[0]) / volume.spacing[0])
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(volume.array[k], hu, err_msg="acquired slices are kept")
    gap = volume.array[3].astype(float)
    mean_of_neighbours = (volume.array[2].astype(float) + volume.array[4].astype(float)) / 2
    assert np.abs(gap - mean_of_neighbours).max() <= 0.5
    # Same first and last slice position and in-plane grid as dcm2niix's _Eq output
    # (which chose 4 mm steps, interpolating every slice; we keep the acquired ones).
    theirs = nib.as_closest_canonical(
        nib.load(shared_data / REFERENCE / "slice_gap/2__Eq_1.nii.gz")
    )
    ours = canonical(volume.array, volume.affine)
    np.testing.assert_allclose(ours.affine[:3, :2], theirs.affine[:3, :2], atol=1e-4)
    np.testing.assert_allclose(ours.affine[:3, 3], theirs.affine[:3, 3], atol=1e-3)
    last_ours = ours.affine @ [0, 0, ours.shape[2] - 1, 1]
    last_theirs = theirs.affine @ [0, 0, theirs.shape[2] - 1, 1]
    np.testing.assert_allclose(last_ours, last_theirs, atol=1e-3)


def test_a_resampled_volume_cannot_become_a_dicom_seg(shared_data):
    volume = read_series(shared_data / BAD / "gantry_tilt", resample=True).volume
    with pytest.raises(DicomSegError, match="resampled"):
        build_dicom_seg(np.ones(volume.shape, np.uint8), volume.geometry, volume.metadata)


def test_no_patient_data_in_metadata_unless_asked(shared_data):
    folder = shared_data / "medical/ct_head_study"
    first = pydicom.dcmread(next(folder.rglob("I1*")), stop_before_pixels=True)
    secrets = [str(first.get(k)) for k in ("PatientName", "PatientID") if first.get(k)]
    assert secrets, "the test data must carry a patient name or ID for this test to mean anything"
    metadata = json.dumps(read_series(folder).volume.metadata, default=str)
    for secret in secrets:
        assert secret not in metadata
    shown = read_series(folder, include_patient=True).volume.metadata["patient"]
    assert set(shown) <= set(PATIENT_KEYWORDS)
    assert str(first.PatientName) == shown.get("PatientName", str(first.PatientName))
    assert any(
        shown.get(k) == v for k, v in zip(("PatientName", "PatientID"), secrets, strict=False)
    )
