"""``domainseg assist`` on hostile inputs: one clear line naming the file, a non-zero exit code.

Each case writes a small image and its scribbles (or a model, or an existing output) under
``tmp_path`` and runs the command as a user would; nothing is written when it refuses.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from ..helpers.cli import cli
from .corpus import BadInput, check, ids


def _volume(folder: Path) -> Path:
    """A bright blob in a dark 20x20x8 volume (3 mm voxels)."""
    rng = np.random.default_rng(0)
    x, y, z = np.indices((20, 20, 8))
    blob = ((x - 7) ** 2 + (y - 7) ** 2 + (z - 4) ** 2) < 16
    array = (100 + 20 * rng.standard_normal(x.shape) + 300 * blob).astype(np.float32)
    path = folder / "image.nii.gz"
    nib.save(nib.Nifti1Image(array, np.diag([3.0, 3.0, 3.0, 1.0])), path)
    return path


def _strokes(folder: Path, values: tuple[int, ...], shape=(20, 20, 8), origin=0.0) -> Path:
    scribbles = np.zeros(shape, np.uint8)
    if 1 in values:
        scribbles[6:9, 6:9, 4] = 1
    if 2 in values:
        scribbles[15:18, 15:18, 4] = 2
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = origin
    path = folder / "strokes.nii.gz"
    nib.save(nib.Nifti1Image(scribbles, affine), path)
    return path


def _assist(*extra: object):
    """Run ``domainseg assist`` on the case's image with ``extra`` arguments."""

    def run(path: Path) -> tuple[int, str, str]:
        folder = path.parent
        return cli("assist", folder / "image.nii.gz", *extra_for(folder, extra))

    return run


def extra_for(folder: Path, extra: tuple[object, ...]) -> list[str]:
    """``extra`` with ``{folder}`` replaced by the case's folder."""
    return [str(a).format(folder=folder) for a in extra]


def _other_grid(folder: Path) -> Path:
    _volume(folder)
    return _strokes(folder, (1, 2), origin=1.5)  # shifted half a voxel


def _other_shape(folder: Path) -> Path:
    _volume(folder)
    return _strokes(folder, (1, 2), shape=(20, 20, 7))


def _no_strokes(folder: Path) -> Path:
    _volume(folder)
    return _strokes(folder, ())


def _single_class(folder: Path) -> Path:
    _volume(folder)
    return _strokes(folder, (1,))


def _missing_model(folder: Path) -> Path:
    _volume(folder)
    return folder / "missing.assist"


def _existing_output(folder: Path) -> Path:
    _volume(folder)
    _strokes(folder, (1, 2))
    out = folder / "out.nii.gz"
    out.write_bytes(b"keep me")
    return out


def _raster_output(folder: Path) -> Path:
    _volume(folder)
    _strokes(folder, (1, 2))
    return folder / "labels.tif"


def _no_scribbles_nor_model(folder: Path) -> Path:
    return _volume(folder)


def _scene(folder: Path, origin_x: float) -> Path:
    """A 2-band 32x32 raster and 1-band scribbles; ``origin_x`` shifts the scribbles' grid."""
    crs = CRS.from_epsg(32633)
    bands = np.random.default_rng(1).integers(1, 200, (2, 32, 32)).astype(np.uint8)
    profile = {"driver": "GTiff", "height": 32, "width": 32, "crs": crs, "nodata": 0,
               "transform": from_origin(500000, 4600000, 10, 10)}  # fmt: skip
    with rasterio.open(folder / "image.tif", "w", count=2, dtype="uint8", **profile) as dst:
        dst.write(bands)
    strokes = np.zeros((32, 32), np.uint8)
    strokes[2:5, 2:5], strokes[20:23, 20:23] = 1, 2
    profile["transform"] = from_origin(origin_x, 4600000, 10, 10)
    path = folder / "strokes.tif"
    with rasterio.open(path, "w", count=1, dtype="uint8", **profile) as dst:
        dst.write(strokes, 1)
    return path


def _scene_run(path: Path) -> tuple[int, str, str]:
    folder = path.parent
    return cli("assist", folder / "image.tif", "--scribbles", path, "-o", folder / "out.tif")


STROKES = ("--scribbles", "{folder}/strokes.nii.gz", "-o", "{folder}/out.nii.gz")
CASES = [
    BadInput("assist-scribbles-other-origin", _other_grid, _assist(*STROKES),
             "not on the grid of image.nii.gz", outcome="exit"),
    BadInput("assist-scribbles-other-shape", _other_shape, _assist(*STROKES),
             "not on the grid", outcome="exit"),
    BadInput("assist-scene-scribbles-other-transform", lambda f: _scene(f, 500005),
             _scene_run, "not on the grid of image.tif", outcome="exit"),
    BadInput("assist-no-strokes", _no_strokes, _assist(*STROKES), "no strokes",
             outcome="exit"),
    BadInput("assist-single-class", _single_class, _assist(*STROKES),
             "only class 1 is painted", outcome="exit"),
    BadInput("assist-missing-model", _missing_model,
             _assist("--model", "{folder}/missing.assist", "-o", "{folder}/out.nii.gz"),
             "no such model file", outcome="exit"),
    BadInput("assist-existing-output", _existing_output, _assist(*STROKES),
             "already exists.*--overwrite", outcome="exit"),
    BadInput("assist-no-scribbles-nor-model", _no_scribbles_nor_model,
             _assist("-o", "{folder}/out.nii.gz"), "--scribbles.*--model", outcome="exit"),
    BadInput("assist-raster-output-for-volume", _raster_output,
             _assist("--scribbles", "{folder}/strokes.nii.gz", "-o", "{folder}/labels.tif"),
             r"\.nii\.gz", outcome="exit"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_input(case, tmp_path):
    check(case, tmp_path)


def test_refusals_write_nothing(tmp_path):
    _existing_output(tmp_path)
    code, _, _ = cli("assist", tmp_path / "image.nii.gz", "--scribbles",
                     tmp_path / "strokes.nii.gz", "-o", tmp_path / "out.nii.gz")  # fmt: skip
    assert code == 1
    assert (tmp_path / "out.nii.gz").read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "image.nii.gz", "out.nii.gz", "strokes.nii.gz",
    ]  # fmt: skip
