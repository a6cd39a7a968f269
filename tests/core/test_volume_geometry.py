"""VolumeGeometry on real series: exact, serialisable, immutable, validated, what a SEG needs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from napari_domainseg.errors import DomainSegError
from napari_domainseg.medical.dicom_seg import SegReference
from napari_domainseg.medical.series import read_series
from napari_domainseg.medical.volume_geometry import (
    SourceReferences,
    VolumeGeometry,
    VolumeGeometryError,
)

# (series relative to medical/, shown straightened, voxel axes sheared)
SERIES = [
    ("bad_input/gantry_tilt", True, True),  # ~14 degrees gantry tilt: a sheared stack
    ("transfer_syntaxes/2.dcm", True, False),  # oblique MR, 6.2 degrees, rotated not sheared
    ("seg_dcmqi/ct-3slice", False, False),  # axial CT
    ("mr_sagittal", False, False),  # sagittal MR, reoriented losslessly to (z, y, x)
]
SERIES_IDS = [s[0] for s in SERIES]
DICOM_FOLDERS = ["seg_dcmqi/ct-3slice", "bad_input/gantry_tilt", "mr_sagittal"]


def _volume(shared_data: Path, source: str, **options):
    return read_series(shared_data / "medical" / source, **options).volume


@pytest.fixture(scope="module")
def volumes(shared_data) -> dict:
    """Each series read once for the module (the reads dominate the run time)."""
    return {source: _volume(shared_data, source) for source, _, _ in SERIES}


def _moved_by_one_voxel(affine: np.ndarray) -> np.ndarray:
    moved = np.array(affine)
    moved[:3, 3] += moved[:3, 0]
    return moved


# --------------------------------------------------------------------------- real series


@pytest.mark.parametrize("source, straightened, sheared", SERIES, ids=SERIES_IDS)
def test_geometry_keeps_the_exact_affine_and_says_how_it_is_shown(
    volumes, source, straightened, sheared
):
    volume = volumes[source]
    geometry = volume.geometry
    assert np.array_equal(geometry.affine, volume.affine)  # bit for bit, no tolerance
    assert geometry.shape == volume.shape
    assert geometry.straightened is straightened
    assert geometry.sheared is sheared
    if straightened:
        shown = geometry.display_affine
        assert np.array_equal(shown[:3, :3], np.diag(np.diag(shown[:3, :3])))
        np.testing.assert_allclose(np.diag(shown)[:3], geometry.spacing, rtol=1e-12)
        centre = np.append((np.array(volume.shape) - 1) / 2, 1.0)
        np.testing.assert_allclose(shown @ centre, geometry.affine @ centre, atol=1e-9)
        assert not np.allclose(shown, geometry.affine)
    else:
        assert np.array_equal(geometry.display_affine, geometry.affine)


def test_geometry_is_a_copy_the_volume_cannot_change(volumes):
    volume = volumes["seg_dcmqi/ct-3slice"]
    affine = np.array(volume.affine)
    geometry = volume.geometry
    volume.affine[0, 3] += 100.0  # the reader's volume stays mutable ...
    try:
        assert np.array_equal(geometry.affine, affine)  # ... and the value does not follow
        assert volume.affine.flags.writeable
    finally:
        volume.affine[0, 3] = affine[0, 3]


def test_geometry_takes_the_reorientation_and_sources_from_the_reader(volumes):
    sagittal = volumes["mr_sagittal"].geometry
    assert sagittal.permutation == (1, 2, 0)
    assert sagittal.flips == (True, False, True)
    assert len(sagittal.source.sop_instance_uids) == 4
    assert len(sagittal.source.source_files) == 4
    assert sagittal.source.series_instance_uid


@pytest.mark.parametrize(
    "source", [*SERIES_IDS, "enhanced_ct/eCT_Supplemental.dcm"], ids=[*SERIES_IDS, "enhanced"]
)
def test_dict_round_trip_through_json_is_exact(shared_data, volumes, source):
    volume = volumes.get(source) or _volume(shared_data, source)
    geometry = volume.geometry
    restored = VolumeGeometry.from_dict(json.loads(json.dumps(geometry.to_dict())))
    assert restored == geometry
    assert np.array_equal(restored.affine, geometry.affine)
    assert np.array_equal(restored.display_affine, geometry.display_affine)
    assert restored.straightened is geometry.straightened
    assert restored.source == geometry.source
    assert restored.permutation == geometry.permutation
    assert restored.flips == geometry.flips


def test_enhanced_frame_order_survives_the_round_trip(shared_data):
    geometry = _volume(shared_data, "enhanced_ct/eCT_Supplemental.dcm").geometry
    assert geometry.source.frame_order == (1, 0)
    restored = VolumeGeometry.from_dict(json.loads(json.dumps(geometry.to_dict())))
    assert restored.source.frame_order == (1, 0)


def test_equality_is_float_exact(volumes):
    geometry = volumes["bad_input/gantry_tilt"].geometry
    nudged = np.array(geometry.affine)
    nudged[1, 3] = np.nextafter(nudged[1, 3], np.inf)  # one ulp
    assert VolumeGeometry.from_parts(geometry.affine, geometry.shape, {}) != geometry  # sources
    other = dataclasses.replace(geometry, affine=nudged, display_affine=geometry.display_affine)
    assert other != geometry
    assert dataclasses.replace(geometry) == geometry


# --------------------------------------------------------------------------- immutability


def test_attributes_cannot_be_assigned(volumes):
    geometry = volumes["bad_input/gantry_tilt"].geometry
    with pytest.raises(dataclasses.FrozenInstanceError):
        geometry.affine = np.eye(4)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        geometry.shape = (1, 1, 1)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        geometry.source.sop_instance_uids = ()  # type: ignore[misc]


@pytest.mark.parametrize("name", ["affine", "display_affine"])
def test_affine_arrays_are_read_only(volumes, name):
    geometry = volumes["bad_input/gantry_tilt"].geometry
    matrix = getattr(geometry, name)
    before = np.array(matrix)
    with pytest.raises(ValueError, match="read-only"):
        matrix[0, 3] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        matrix[:3, :3] *= 2
    assert np.array_equal(getattr(geometry, name), before)


def test_a_geometry_is_not_hashable_since_it_holds_arrays(volumes):
    with pytest.raises(TypeError):
        hash(volumes["seg_dcmqi/ct-3slice"].geometry)


# --------------------------------------------------------------------------- validation


def _with(matrix_edit) -> np.ndarray:
    affine = np.diag([2.5, 0.7, 0.7, 1.0])
    matrix_edit(affine)
    return affine


def _nan(a: np.ndarray) -> None:
    a[1, 3] = np.nan


def _singular(a: np.ndarray) -> None:
    a[:3, 2] = 0.0


def _bad_last_row(a: np.ndarray) -> None:
    a[3] = (0.0, 0.0, 1.0, 1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"affine": np.eye(3)}, r"affine must be 4x4, got shape \(3, 3\)"),
        ({"affine": np.eye(4)[:3]}, r"4x4"),
        ({"affine": _with(_nan)}, r"not finite"),
        ({"affine": _with(_singular)}, r"singular"),
        ({"affine": _with(_bad_last_row)}, r"last row must be \(0, 0, 0, 1\)"),
        ({"display_affine": _with(_nan)}, r"display affine is not finite"),
        ({"display_affine": _with(_singular)}, r"display affine is singular"),
        ({"permutation": (0, 0, 1)}, r"not a permutation of the axes"),
        ({"permutation": (0, 1, 3)}, r"not a permutation of the axes"),
        ({"flips": (True, False)}, r"one flip per axis"),
        ({"shape": (0, 38, 24)}, r"three positive sizes, got \(0, 38, 24\)"),
        ({"shape": (38, 24)}, r"three positive sizes"),
    ],
    ids=[
        "3x3",
        "3x4",
        "nan",
        "singular",
        "last-row",
        "display-nan",
        "display-singular",
        "permutation-repeat",
        "permutation-range",
        "two-flips",
        "zero-size",
        "two-sizes",
    ],
)
def test_impossible_geometries_are_refused_with_what_is_wrong(kwargs, message):
    parts = {"affine": np.diag([2.5, 0.7, 0.7, 1.0]), "shape": (3, 38, 24), **kwargs}
    with pytest.raises(VolumeGeometryError, match=message):
        VolumeGeometry(**parts)


def test_a_description_missing_a_field_is_refused(volumes):
    document = volumes["seg_dcmqi/ct-3slice"].geometry.to_dict()
    del document["affine"]
    with pytest.raises(VolumeGeometryError, match="not a volume geometry description"):
        VolumeGeometry.from_dict(document)


def test_geometry_error_is_a_domainseg_error_and_a_value_error():
    assert issubclass(VolumeGeometryError, DomainSegError)
    assert issubclass(VolumeGeometryError, ValueError)
    with pytest.raises(DomainSegError):
        VolumeGeometry(np.eye(3), (1, 1, 1))
    with pytest.raises(ValueError):
        VolumeGeometry(np.eye(4), (0, 1, 1))


# --------------------------------------------------------------------------- placement


@pytest.mark.parametrize("source", SERIES_IDS)
def test_placed_only_where_the_geometry_shows_the_volume(volumes, source):
    geometry = volumes[source].geometry
    shown = np.array(geometry.display_affine)
    assert geometry.placed(shown)
    assert geometry.placed(shown + 1e-9)  # napari's matrix composition rounds
    assert not geometry.placed(_moved_by_one_voxel(shown))
    assert not geometry.placed(shown[:3, :3])
    if geometry.straightened:
        assert not geometry.placed(np.array(geometry.affine))


@pytest.mark.parametrize("source", SERIES_IDS)
def test_with_affine_places_the_volume_elsewhere_and_keeps_its_sources(volumes, source):
    geometry = volumes[source].geometry
    moved = _moved_by_one_voxel(geometry.display_affine)
    placed = geometry.with_affine(moved)
    assert np.array_equal(placed.affine, moved)
    assert np.array_equal(placed.display_affine, moved)
    assert not placed.straightened
    assert placed.placed(moved)
    assert placed.source == geometry.source
    assert placed.source.sop_instance_uids == geometry.source.sop_instance_uids
    assert placed.permutation == geometry.permutation
    assert placed.flips == geometry.flips
    assert placed.frame_of_reference_uid == geometry.frame_of_reference_uid
    assert placed.shape == geometry.shape
    assert np.array_equal(geometry.display_affine, volumes[source].geometry.display_affine)


# --------------------------------------------------------------------------- DICOM SEG


def _acquired_to_world(index, permutation, flips, shape) -> np.ndarray:
    """World voxel index of acquired voxel ``index`` (the reader's lossless reorientation)."""
    world = []
    for axis in range(3):
        i = index[permutation[axis]]
        world.append(shape[axis] - 1 - i if flips[axis] else i)
    return np.array(world, dtype=float)


@pytest.mark.parametrize("source", DICOM_FOLDERS)
def test_seg_reference_names_each_acquired_slice_of_the_series(shared_data, volumes, source):
    folder = shared_data / "medical" / source
    geometry = volumes[source].geometry
    reference = SegReference.from_geometry(geometry)
    assert reference is not None
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in geometry.source.source_files]
    assert reference.sop_instance_uids == [str(h.SOPInstanceUID) for h in headers]
    on_disk = {
        str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)
        for f in folder.iterdir()
        if f.is_file()
    }
    assert set(reference.sop_instance_uids) == on_disk
    assert reference.frame_numbers is None
    assert reference.permutation == geometry.permutation
    assert reference.flips == geometry.flips
    assert reference.shape == geometry.shape
    assert np.array_equal(reference.affine, geometry.affine)  # exact, not the straightened one
    # The k-th UID is the slice whose first pixel lies where the geometry puts acquired slice k.
    for k, header in enumerate(headers):
        world = _acquired_to_world((k, 0, 0), geometry.permutation, geometry.flips, geometry.shape)
        position = (geometry.affine[:3, :3] @ world + geometry.affine[:3, 3])[::-1]  # to (x, y, z)
        np.testing.assert_allclose(
            position, [float(v) for v in header.ImagePositionPatient], atol=1e-3
        )


def test_seg_reference_of_an_enhanced_object_names_its_frames(shared_data):
    path = shared_data / "medical/enhanced_ct/eCT_Supplemental.dcm"
    geometry = read_series(path).volume.geometry
    reference = SegReference.from_geometry(geometry)
    assert reference is not None
    assert reference.sop_instance_uids == [str(pydicom.dcmread(path).SOPInstanceUID)]
    assert reference.frame_numbers == [2, 1]


def test_no_seg_reference_for_a_resampled_or_non_dicom_geometry(shared_data, volumes):
    geometry = volumes["seg_dcmqi/ct-3slice"].geometry
    assert SegReference.from_geometry(geometry, resampled=True) is None
    assert SegReference.from_geometry(geometry.with_affine(geometry.affine)) is not None
    no_source = dataclasses.replace(geometry, source=SourceReferences())
    assert SegReference.from_geometry(no_source) is None
    resampled = _volume(shared_data, "bad_input/gantry_tilt", resample=True)
    assert resampled.metadata.get("resampled")
    assert SegReference.of_volume(resampled) is None
