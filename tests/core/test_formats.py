"""The reader protocol: one registry of formats, each claiming paths cheaply and reading
them into one result type (``Read``) with typed geometry."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import rasterio

from napari_domainseg import formats
from napari_domainseg.files import InputError
from napari_domainseg.geo.grid import RasterGrid
from napari_domainseg.medical.series import read_series
from napari_domainseg.medical.volume_geometry import VolumeGeometry

CLAIMS = [
    ("medical/ct_head_study", "dicom"),
    ("medical/seg_dcmqi/ct-3slice", "dicom"),
    ("medical/seg_dcmqi/ct-3slice/01.dcm", "dicom"),
    ("medical/seg_dcmqi/liver.dcm", "dicom_seg"),
    ("medical/totalseg_mr/mr.nii.gz", "nifti"),
    ("medical/seg_dcmqi/24x38x3/nrrd/label.nrrd", "nrrd"),
    ("geo/landsat_rgb/RGB.byte.tif", "raster"),
]


@pytest.mark.parametrize("relative, name", CLAIMS, ids=[c[0] for c in CLAIMS])
def test_each_real_file_is_claimed_by_its_format(shared_data, relative, name):
    path = shared_data / relative
    if not path.exists():  # the 3-slice CT's file names are not fixed: take the first
        path = sorted(path.parent.glob("*.dcm"))[0]
    fmt = formats.format_for(path)
    assert fmt is not None and fmt.name == name


def test_claims_never_raise_and_decline_what_they_cannot_read(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty.dcm").write_bytes(b"")
    for path in (tmp_path / "notes.txt", tmp_path / "missing.nii", tmp_path / "empty.dcm"):
        for fmt in formats.FORMATS:
            if fmt.name in ("nifti", "raster", "nrrd", "numpy"):
                continue  # these claim by name: the read says what is wrong with the file
            assert fmt.claims(path) is False, (fmt.name, path.name)
    assert formats.format_for(tmp_path / "notes.txt") is None
    with pytest.raises(InputError, match=r"notes\.txt: not a file format domainseg reads"):
        formats.read(tmp_path / "notes.txt")


def test_a_dicom_series_reads_with_its_exact_geometry(shared_data):
    (read,) = formats.read(shared_data / "medical/bad_input/gantry_tilt")
    volume = read_series(shared_data / "medical/bad_input/gantry_tilt").volume
    assert read.kind == "image" and isinstance(read.geometry, VolumeGeometry)
    assert read.geometry == volume.geometry and read.geometry.straightened
    np.testing.assert_array_equal(read.array, volume.array)
    assert "display_affine" not in read.metadata, "the geometry is not repeated in the metadata"
    assert any("gantry tilt" in w for w in read.warnings)


def test_a_raster_image_stays_lazy_and_its_labels_carry_the_grid(shared_data):
    path = shared_data / "geo/landsat_rgb/RGB.byte.tif"
    (image,) = formats.read(path)
    with rasterio.open(path) as src:
        grid = RasterGrid.of_dataset(src)
        band = src.read(1)
    assert image.kind == "image" and image.array is None, "pixels stay in the scene's pyramid"
    assert image.geometry == grid and image.source.grid == grid
    (labels,) = formats.read(path, as_labels=True, in_memory=True)
    assert labels.kind == "labels" and labels.geometry == grid
    np.testing.assert_array_equal(labels.array, band)  # no nodata in this file
    assert labels.unit == "metre"
    assert labels.spacing == (abs(grid.transform.e), abs(grid.transform.a)), "rows, columns"


def test_a_seg_beside_its_series_opens_the_series_and_lands_on_its_grid(shared_data):
    image, *maps = formats.read(shared_data / "medical/seg_dcmqi/liver.dcm")
    assert image.kind == "image" and image.metadata["opened_for_seg"].endswith("liver.dcm")
    assert maps and all(m.kind == "labels" and m.geometry is image.geometry for m in maps)
    assert all(m.array.shape == image.array.shape for m in maps)
    assert "opened_for_seg" not in maps[0].metadata, "the labels are not the image opened for it"


def test_a_seg_without_its_series_keeps_its_own_geometry_and_says_where_it_looked(
    shared_data, tmp_path
):
    alone = tmp_path / "a" / "b" / "liver.dcm"
    alone.parent.mkdir(parents=True)
    alone.write_bytes((shared_data / "medical/seg_dcmqi/liver.dcm").read_bytes())
    reads = formats.read(alone)
    assert reads and all(r.kind == "labels" for r in reads)
    assert isinstance(reads[0].geometry, VolumeGeometry)
    assert "not beside the file" in reads[0].warnings[0]
    assert reads[0].metadata["seg_file"] == str(alone)


def test_asking_about_a_raster_loads_neither_pydicom_nor_rasterio(shared_data):
    """napari asks the DICOM reader (which claims every file) about every file it opens."""
    probe = (
        "import sys\n"
        "from napari_domainseg import formats\n"
        f"fmt = formats.format_for({str(shared_data / 'geo/landsat_rgb/RGB.byte.tif')!r},"
        " among=('dicom_seg', 'dicom'))\n"
        "import json\n"
        "print(json.dumps([fmt is None, sorted(m for m in ('pydicom', 'rasterio', 'highdicom',"
        " 'nibabel', 'dask') if m in sys.modules)]))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    declined, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert declined and loaded == []
