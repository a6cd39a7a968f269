"""DICOM through the npe2 reader path, checked voxel for voxel against dcm2niix's conversions."""

from pathlib import Path

import nibabel as nib
import npe2
import numpy as np
import pydicom
import pytest
from napari.layers import Image

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._medical_reader import get_dicom_reader, get_nifti_reader
from napari_domainseg.medical.nifti import to_nifti, write_nifti

# (input relative to medical/, dcm2niix reference relative to reference_dcm2niix/)
CASES = [
    ("ct_head_study", "ct_head_study/201_STD_BRAIN_5MM.nii.gz"),
    ("mr_sagittal", "mr_sagittal/4_.nii.gz"),
    ("mr_compressed/jpegls", "mr_compressed/jpegls/4_.nii.gz"),
    ("mr_compressed/j2k", "mr_compressed/j2k/4_.nii.gz"),
    ("mr_compressed/rle", "mr_compressed/rle/4_.nii.gz"),
    ("enhanced_ct/eCT_Supplemental.dcm", "enhanced_ct/3_.nii.gz"),
    ("seg_dcmqi/ct-3slice", "seg_dcmqi/ct-3slice/2_.nii.gz"),
    ("bad_input/too_few_slices", "bad_input/too_few_slices/4_.nii.gz"),
    ("mr_12bit/12bitUnsigned.dcm", "mr_12bit/2_FMRI_AX_ASC.nii.gz"),
    ("mr_12bit/12bitUnsigned_0x0F0F.dcm", "mr_12bit/3_FMRI_AX_ASC.nii.gz"),
    ("mr_12bit/12bitSigned_0x0F0F.dcm", "mr_12bit/4_FMRI_AX_ASC.nii.gz"),
] + [
    (f"transfer_syntaxes/{n}.dcm", f"transfer_syntaxes/{n}_ax_asc_35sl.nii.gz")
    for n in range(1, 10)
]


@pytest.fixture(autouse=True, scope="module")
def _discover_plugins():
    npe2.PluginManager.instance().discover()


def read_layer(path: Path) -> Image:
    layers = npe2.read([str(path)], stack=False, plugin_name="napari-domainseg")
    assert len(layers) == 1
    data, kwargs, kind = layers[0]
    assert kind == "image"
    return Image(data, **kwargs)


def exact_affine(layer: Image) -> np.ndarray:
    return np.array(state.volume_geometry_of(layer).affine)


def canonical_layer(layer: Image) -> nib.Nifti1Image:
    return nib.as_closest_canonical(to_nifti(layer.data, exact_affine(layer)))


def canonical_reference(shared_data: Path, reference: str) -> nib.Nifti1Image:
    return nib.as_closest_canonical(
        nib.load(shared_data / "medical/reference_dcm2niix" / reference)
    )


@pytest.mark.parametrize("source, reference", CASES, ids=[c[0] for c in CASES])
def test_voxels_and_intensities_equal_dcm2niix(shared_data, source, reference):
    layer = read_layer(shared_data / "medical" / source)
    ours = canonical_layer(layer)
    theirs = canonical_reference(shared_data, reference)
    assert ours.shape == theirs.shape[:3]
    np.testing.assert_allclose(ours.affine, theirs.affine, atol=1e-3)
    np.testing.assert_array_equal(
        np.asarray(ours.dataobj), np.asarray(theirs.dataobj).reshape(ours.shape)
    )
    if not state.volume_geometry_of(layer).straightened:
        # Axis-aligned series: napari's own world is the exact LPS geometry.
        index = np.array([[0, 0, 0], np.array(layer.data.shape) - 1, [0, 1, 2]])
        expected = index @ exact_affine(layer)[:3, :3].T + exact_affine(layer)[:3, 3]
        for i, position in zip(index, expected, strict=True):
            np.testing.assert_allclose(layer.data_to_world(i), position, atol=1e-3)


@pytest.mark.parametrize("source, reference", CASES[:3], ids=[c[0] for c in CASES[:3]])
def test_labels_exported_to_nifti_land_on_dcm2niix_voxels(shared_data, tmp_path, source, reference):
    layer = read_layer(shared_data / "medical" / source)
    labels = np.zeros(layer.data.shape, dtype=np.uint8)
    labels[0, 1, 2] = 1
    labels[-1, -2, -3] = 2
    (path,) = write_nifti(tmp_path / "labels.nii.gz", labels, exact_affine(layer))
    exported = nib.as_closest_canonical(nib.load(path))
    theirs = canonical_reference(shared_data, reference)
    np.testing.assert_allclose(exported.affine, theirs.affine, atol=1e-3)
    ours_image = canonical_layer(layer)
    data = np.asarray(theirs.dataobj).reshape(exported.shape)
    for value in (1, 2):
        voxel = np.argwhere(np.asarray(exported.dataobj) == value)
        assert len(voxel) == 1
        assert data[tuple(voxel[0])] == np.asarray(ours_image.dataobj)[tuple(voxel[0])]
    on_disk = nib.load(path)
    assert on_disk.header["sform_code"] == 1 and on_disk.header["qform_code"] == 1
    assert on_disk.get_data_dtype() == np.uint8
    assert on_disk.header.get_slope_inter() in ((1.0, 0.0), (None, None))


def test_folder_with_scout_and_summaries_opens_the_axial_volume(shared_data):
    layer = read_layer(shared_data / "medical" / "ct_head_study")
    assert layer.data.shape == (28, 512, 512)
    assert state.get(layer, "series_description") == "STD BRAIN 5MM"
    assert tuple(layer.contrast_limits) == (0.0, 80.0), "header window 40/80 (first of several)"


def test_single_file_opens_its_whole_series(shared_data):
    file = sorted((shared_data / "medical" / "ct_head_study" / "S2010").glob("I1*"))[0]
    assert read_layer(file).data.shape == (28, 512, 512)


def test_gantry_tilt_is_measured_and_kept_exactly(shared_data):
    folder = shared_data / "medical" / "bad_input" / "gantry_tilt"
    layer = read_layer(folder)
    assert state.get(layer, "tilt_deg") == pytest.approx(14.0, abs=0.05)
    assert state.volume_geometry_of(layer).straightened
    assert any("gantry tilt" in w for w in state.get(layer, "warnings"))
    # Every voxel of the exact affine sits where the scanner put it (IPP + row/col offsets).
    affine = exact_affine(layer)
    slices = sorted(
        (pydicom.dcmread(f) for f in folder.iterdir()),
        key=lambda ds: float(ds.ImagePositionPatient[2]),
    )
    for k, ds in enumerate(slices):
        row, col = 100, 200
        iop = np.array(ds.ImageOrientationPatient, dtype=float)
        spacing = [float(v) for v in ds.PixelSpacing]
        expected = (
            np.array(ds.ImagePositionPatient, dtype=float)
            + col * spacing[1] * iop[:3]
            + row * spacing[0] * iop[3:]
        )
        mapped = affine @ np.array([k, row, col, 1.0])
        np.testing.assert_allclose(mapped[:3][::-1], expected, atol=1e-3)


def test_unequal_spacing_is_refused_with_the_numbers(shared_data):
    with pytest.raises(ValueError, match=r"not regular: steps from .* mm"):
        npe2.read(
            [str(shared_data / "medical/bad_input/slice_gap")],
            stack=False,
            plugin_name="napari-domainseg",
        )


def test_images_at_one_position_are_not_a_volume(shared_data):
    with pytest.raises(ValueError, match="one position"):
        npe2.read(
            [str(shared_data / "medical/bad_input/not_a_volume")],
            stack=False,
            plugin_name="napari-domainseg",
        )


def test_get_reader_never_raises_and_declines_what_it_cannot_read(shared_data, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    assert get_dicom_reader(str(tmp_path)) is None
    assert get_dicom_reader(str(tmp_path / "missing")) is None
    assert get_dicom_reader(str(shared_data / "geo/edge_cases/byte.tif")) is None
    assert get_dicom_reader([str(tmp_path / "a"), str(tmp_path / "b")]) is None
    assert get_dicom_reader(str(shared_data / "medical/mr_sagittal")) is not None
    assert get_nifti_reader(str(tmp_path / "x.tif")) is None


def test_nifti_round_trip_through_the_reader(shared_data, tmp_path):
    layer = read_layer(shared_data / "medical" / "mr_sagittal")
    (path,) = write_nifti(tmp_path / "mr.nii.gz", layer.data, exact_affine(layer))
    again = read_layer(path)
    np.testing.assert_array_equal(again.data, layer.data)
    np.testing.assert_allclose(exact_affine(again), exact_affine(layer), atol=1e-4)


def test_a_one_item_list_opens_the_folder(shared_data):
    folder = str(shared_data / "medical" / "mr_sagittal")
    reader = get_dicom_reader([folder])
    ((data, kwargs, _),) = reader([folder])
    assert data.shape[0] > 1 and state.get(kwargs, "acquisition_plane") == "sagittal"


def test_acquisition_plane_follows_the_slice_axis(shared_data):
    assert (
        state.get(read_layer(shared_data / "medical/ct_head_study"), "acquisition_plane") == "axial"
    )
