"""Volumes whose geometry is unknown are never exported silently.

Every medical export (core, command line) refuses them with a message naming the file and
saying the geometry is unknown, unless explicitly allowed; an allowed export records "geometry
unknown" in its sidecar or header, and reading the file back marks it unknown again.
"""

from __future__ import annotations

import json
from pathlib import Path

import nrrd
import numpy as np
import pytest

from napari_domainseg.cli import main
from napari_domainseg.medical.export import export_image, export_labels
from napari_domainseg.medical.geometry_checks import GeometryWarning, geometry_unknown
from napari_domainseg.medical.nifti import volume_from_nifti
from napari_domainseg.medical.nrrd_files import read_nrrd
from napari_domainseg.medical.provenance import SOURCE_FIELD, UnknownGeometryError
from napari_domainseg.medical.series import read_series

from ..helpers.dicom_copies import without_pixel_spacing


@pytest.fixture
def unknown(shared_data: Path, tmp_path: Path) -> Path:
    return without_pixel_spacing(shared_data / "medical" / "mr_sagittal", tmp_path / "series")


@pytest.fixture
def volume(unknown: Path):
    loaded = read_series(unknown)
    assert any("geometry unknown: no PixelSpacing" in w for w in loaded.warnings)
    assert geometry_unknown(loaded.volume.metadata)
    return loaded.volume


def _labels(shape: tuple[int, ...]) -> np.ndarray:
    labels = np.zeros(shape, np.uint8)
    labels[1, 5:25, 5:25] = 3
    return labels


@pytest.mark.parametrize("name", ["m.nii.gz", "m.nii", "m.nrrd", "m.seg.nrrd", "m.dcm"])
def test_label_export_is_refused_naming_the_file(volume, tmp_path, name):
    path = tmp_path / name
    with pytest.raises(UnknownGeometryError, match=f"{name}: not written: the geometry.*unknown"):
        export_labels(path, _labels(volume.shape), volume.geometry, None, volume.metadata)
    assert list(tmp_path.iterdir()) == [tmp_path / "series"]  # nothing written


@pytest.mark.parametrize("name", ["v.nii.gz", "v.nrrd"])
def test_image_export_is_refused_naming_the_file(volume, tmp_path, name):
    with pytest.raises(UnknownGeometryError, match=f"{name}: .*geometry.*unknown.*PixelSpacing"):
        export_image(tmp_path / name, volume.array, volume.geometry, False, volume.metadata)
    assert not (tmp_path / name).exists()


def test_allowed_nifti_export_records_and_rereads_geometry_unknown(volume, tmp_path):
    labels = export_labels(
        tmp_path / "m.nii.gz", _labels(volume.shape), volume.geometry, None, volume.metadata,
        allow_unknown_geometry=True,
    )  # fmt: skip
    record = json.loads(labels[1].read_text())["source"]
    assert any("PixelSpacing" in reason for reason in record["geometry_unknown"])
    image = export_image(
        tmp_path / "v.nii.gz", volume.array, volume.geometry, False, volume.metadata, True
    )
    assert "geometry_unknown" in json.loads(image[1].read_text())["source"]
    for path in (labels[0], image[0]):  # valid sform on a unit grid: only the record tells
        with pytest.warns(GeometryWarning, match=f"{path.name}: geometry unknown"):
            back = volume_from_nifti(path)
        assert geometry_unknown(back.metadata)


def test_allowed_nrrd_export_records_and_rereads_geometry_unknown(volume, tmp_path):
    (path,) = export_labels(
        tmp_path / "m.seg.nrrd", _labels(volume.shape), volume.geometry, None, volume.metadata,
        allow_unknown_geometry=True,
    )  # fmt: skip
    assert json.loads(nrrd.read_header(str(path))[SOURCE_FIELD])["geometry_unknown"]
    with pytest.warns(GeometryWarning, match="m.seg.nrrd: geometry unknown"):
        assert geometry_unknown(read_nrrd(path).volume.metadata)


def test_a_known_geometry_exports_as_before(shared_data, tmp_path):
    volume = read_series(shared_data / "medical" / "mr_sagittal").volume
    (path, sidecar) = export_labels(
        tmp_path / "m.nii.gz", _labels(volume.shape), volume.geometry, None, volume.metadata
    )
    assert "geometry_unknown" not in json.loads(sidecar.read_text())["source"]
    assert not geometry_unknown(volume_from_nifti(path).metadata)


def test_convert_refuses_then_allows_on_request(unknown, tmp_path, capsys):
    output = tmp_path / "v.nii.gz"
    assert main(["convert", str(unknown), "-o", str(output)]) == 1
    err = capsys.readouterr().err
    assert "v.nii.gz: not written: the geometry of this volume is unknown" in err
    assert "--allow-unknown-geometry" in err and not output.exists()
    assert main(["convert", str(unknown), "-o", str(output), "--allow-unknown-geometry"]) == 0
    record = json.loads((tmp_path / "v.json").read_text())["source"]
    assert record["geometry_unknown"] and record["scaling"]["mode"] == "display"


def test_export_onto_an_unknown_geometry_refuses_then_allows(unknown, volume, tmp_path, capsys):
    mask = tmp_path / "mask.npy"
    np.save(mask, _labels(volume.shape))
    output = tmp_path / "m.nrrd"
    arguments = ["export", str(mask), "--like", str(unknown), "-o", str(output)]
    assert main(arguments) == 1
    err = capsys.readouterr().err
    assert err.count("m.nrrd") == 1 and "geometry of this volume is unknown" in err
    assert main([*arguments, "--allow-unknown-geometry"]) == 0
    assert json.loads(nrrd.read_header(str(output))[SOURCE_FIELD])["geometry_unknown"]
