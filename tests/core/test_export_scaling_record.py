"""Every medical export records which scaling its values are in: display or Philips precise.

A Philips-like copy of the real sagittal MR (Manufacturer Philips, RescaleSlope 2.5, private
scale slope 2005,100E) is read both ways; the NIfTI sidecars (``.labels.json``, ``.json``), the
NRRD header and ``domainseg convert`` must say which, and dcm2niix's own BIDS sidecar is the
oracle for its ``UsePhilipsFloatNotDisplayScaling`` flag.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nrrd
import numpy as np
import pytest

from napari_domainseg.cli import main
from napari_domainseg.medical.export import export_image, export_labels
from napari_domainseg.medical.nifti import volume_from_nifti
from napari_domainseg.medical.nrrd_files import read_nrrd
from napari_domainseg.medical.provenance import PHILIPS_FLOAT_KEY, SOURCE_FIELD
from napari_domainseg.medical.series import read_series
from napari_domainseg.medical.volume_geometry import VolumeGeometry

from ..helpers.dicom_copies import philips_like

DCM2NIIX = Path(sys.executable).with_name("dcm2niix")


@pytest.fixture
def philips(shared_data: Path, tmp_path: Path) -> Path:
    return philips_like(shared_data / "medical" / "mr_sagittal", tmp_path / "philips")


def _labels(shape: tuple[int, ...]) -> np.ndarray:
    labels = np.zeros(shape, np.uint8)
    labels[1:3, 10:40, 20:60] = 1
    return labels


@pytest.mark.parametrize("mode", ["display", "precise"])
def test_nifti_label_and_image_sidecars_say_which_scaling(philips, tmp_path, mode):
    volume = read_series(philips, philips_scaling=mode).volume
    expected = "philips_precise" if mode == "precise" else "display"
    labels = export_labels(
        tmp_path / "mask.nii.gz", _labels(volume.shape), volume.geometry, None, volume.metadata
    )
    assert [p.name for p in labels] == ["mask.nii.gz", "mask.labels.json"]
    sidecar = json.loads(labels[1].read_text())
    assert sidecar["source"]["scaling"]["mode"] == expected
    assert sidecar["source"]["scaling"]["requested"] == mode
    image = export_image(
        tmp_path / "mr.nii.gz", volume.array, volume.geometry, metadata=volume.metadata
    )
    assert [p.name for p in image] == ["mr.nii.gz", "mr.json"]
    record = json.loads(image[1].read_text())
    assert record["source"]["scaling"]["mode"] == expected
    assert record[PHILIPS_FLOAT_KEY] == int(mode == "precise")
    for path in (labels[0], image[0]):  # a reader of the files learns it back
        assert volume_from_nifti(path).metadata["rescale"]["mode"] == expected


@pytest.mark.parametrize("extension", [".nrrd", ".seg.nrrd"])
def test_nrrd_header_says_which_scaling(philips, tmp_path, extension):
    volume = read_series(philips, philips_scaling="precise").volume
    (path,) = export_labels(
        tmp_path / f"mask{extension}", _labels(volume.shape), volume.geometry, None, volume.metadata
    )
    header = nrrd.read_header(str(path))
    assert json.loads(header[SOURCE_FIELD])["scaling"]["mode"] == "philips_precise"
    (image,) = export_image(
        tmp_path / "mr.nrrd", volume.array, volume.geometry, False, volume.metadata
    )
    assert json.loads(nrrd.read_header(str(image))[SOURCE_FIELD])["scaling"]["mode"] == (
        "philips_precise"
    )
    assert read_nrrd(image).volume.metadata["rescale"]["mode"] == "philips_precise"


def test_an_image_without_source_record_gets_no_sidecar(tmp_path):
    written = export_image(
        tmp_path / "plain.nii.gz",
        np.zeros((2, 3, 4), np.int16),
        VolumeGeometry(np.eye(4), (2, 3, 4)),
    )
    assert [p.name for p in written] == ["plain.nii.gz"]


@pytest.mark.parametrize("precise", [False, True])
def test_convert_records_the_scaling_like_dcm2niix(philips, tmp_path, precise, capsys):
    output = tmp_path / "mr.nii.gz"
    flags = ["--philips-precise"] if precise else []
    assert main(["convert", str(philips), "-o", str(output), "--json", *flags]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["scaling"] == ("philips_precise" if precise else "display")
    assert str(tmp_path / "mr.json") in result["written"]
    ours = json.loads((tmp_path / "mr.json").read_text())
    assert ours["source"]["scaling"]["mode"] == result["scaling"]
    if precise:  # dcm2niix's default is Philips precise values; its flag must agree with ours
        out = tmp_path / "dcm2niix"
        out.mkdir()
        subprocess.run(
            [str(DCM2NIIX), "-z", "n", "-b", "y", "-f", "vol", "-o", str(out), str(philips)],
            check=True,
            capture_output=True,
        )
        theirs = json.loads((out / "vol.json").read_text())
        assert ours[PHILIPS_FLOAT_KEY] == theirs[PHILIPS_FLOAT_KEY] == 1
