"""The CT phantom is a real DICOM series: independent readers agree on it."""

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from napari_domainseg.medical.phantom import (
    PhantomGeometry,
    phantom_hu,
    phantom_labels,
    write_phantom_series,
)
from napari_domainseg.medical.series import read_dicom_series


@pytest.fixture(scope="module")
def phantom_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantom")
    write_phantom_series(folder)
    return folder


def test_headers_are_those_of_a_ct_series(phantom_folder):
    files = sorted(phantom_folder.iterdir())
    assert len(files) == PhantomGeometry().shape[0]
    ds = pydicom.dcmread(files[0])
    assert ds.Modality == "CT" and ds.SOPClassUID == pydicom.uid.CTImageStorage
    assert ds.RescaleIntercept == -1024 and ds.RescaleSlope == 1
    assert list(ds.WindowCenter) == [40, -600] and list(ds.WindowWidth) == [400, 1500]
    assert len({pydicom.dcmread(f).SOPInstanceUID for f in files}) == len(files)
    # InstanceNumber 1 is the most superior slice: stacking by it would flip the volume.
    assert float(ds.ImagePositionPatient[2]) > float(
        pydicom.dcmread(files[-1]).ImagePositionPatient[2]
    )


def test_uids_are_reproducible(phantom_folder, tmp_path):
    write_phantom_series(tmp_path)
    first = pydicom.dcmread(sorted(phantom_folder.iterdir())[0])
    again = pydicom.dcmread(sorted(tmp_path.iterdir())[0])
    assert first.SeriesInstanceUID == again.SeriesInstanceUID


def test_simpleitk_and_our_reader_agree(phantom_folder):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(phantom_folder)))
    image = reader.Execute()
    volume = read_dicom_series(phantom_folder)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), volume.array)
    np.testing.assert_allclose(volume.origin[::-1], image.GetOrigin(), atol=1e-6)
    np.testing.assert_allclose(volume.spacing[::-1], image.GetSpacing(), atol=1e-6)
    np.testing.assert_array_equal(volume.array, phantom_hu())
    assert volume.metadata["window"] == (40.0, 400.0)


def test_anatomy_sits_where_a_radiologist_expects():
    geometry = PhantomGeometry()
    labels = phantom_labels(geometry)
    hu = phantom_hu(geometry)
    middle = geometry.shape[2] // 2
    liver_columns = np.nonzero(labels == 1)[2]
    spleen_columns = np.nonzero(labels == 2)[2]
    # LPS: x grows toward patient left, so the liver (patient right) has smaller column indices.
    assert liver_columns.mean() < middle < spleen_columns.mean()
    assert hu[labels == 5].mean() > 200, "bone is bright in HU"
    assert -1000 <= hu.min() and hu[0, 0, 0] == -1000, "air outside the body"
