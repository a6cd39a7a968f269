"""Hostile inputs to assisted labeling: strokes, grids, NaN images, model files, cancelling.

Each case writes an image and its scribbles (or a model file) under ``tmp_path`` and trains or
predicts the way the command line and the napari tab will (:mod:`napari_domainseg.ops.assist.io`
to open files, :class:`~napari_domainseg.ops.assist.PixelClassifier` to train and predict);
:func:`corpus.check` asserts one clear message that names the file.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from napari_domainseg.ops.assist import ForestSettings, PixelClassifier, default_recipe
from napari_domainseg.ops.assist.io import open_image, open_scribbles

from .corpus import BadInput, check, ids

SMALL = ForestSettings(n_estimators=8, max_depth=6, n_jobs=1)


def _nifti(path: Path, array: np.ndarray, origin: float = 0.0) -> Path:
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = origin
    nib.save(nib.Nifti1Image(array, affine), path)
    return path


def _volume() -> np.ndarray:
    """Two bright blobs in a dark 16x24x24 volume (x, y, z as NIfTI stores them)."""
    rng = np.random.default_rng(0)
    x, y, z = np.indices((24, 24, 16))
    blob = ((x - 8) ** 2 + (y - 8) ** 2 + (z - 8) ** 2) < 25
    volume = 100 + 20 * rng.standard_normal((24, 24, 16)) + 300 * blob
    return volume.astype(np.float32)


def _strokes(*values: int) -> np.ndarray:
    scribbles = np.zeros((24, 24, 16), np.uint8)
    for value in values:
        if value == 1:
            scribbles[7:10, 7:10, 8] = 1
        else:
            scribbles[18:21, 18:21, 8] = value
    return scribbles


def _pair(folder: Path, scribbles: np.ndarray, image: np.ndarray | None = None) -> Path:
    _nifti(folder / "image.nii.gz", _volume() if image is None else image)
    return _nifti(folder / "strokes.nii.gz", scribbles)


def train(scribbles_path: Path) -> PixelClassifier:
    """Train as ``domainseg assist IMAGE --scribbles SCRIBBLES`` will."""
    image_path = next(p for p in scribbles_path.parent.glob("image.*"))
    image, geometry = open_image(image_path)
    scribbles = open_scribbles(scribbles_path, geometry)
    recipe = default_recipe(image.spacing, image.unit, channel_names=image.channel_names)
    model = PixelClassifier(recipe, SMALL)
    model.fit(image, scribbles, scribbles_name=scribbles_path.name)
    return model


def train_on_image(image_path: Path) -> PixelClassifier:
    return train(next(p for p in image_path.parent.glob("strokes.*")))


def _no_strokes(folder: Path) -> Path:
    return _pair(folder, _strokes())


def _one_class(folder: Path) -> Path:
    return _pair(folder, _strokes(1))


def _other_shape(folder: Path) -> Path:
    _nifti(folder / "image.nii.gz", _volume())
    return _nifti(folder / "strokes.nii.gz", np.zeros((24, 24, 15), np.uint8))


def _shifted_origin(folder: Path) -> Path:
    _nifti(folder / "image.nii.gz", _volume())
    return _nifti(folder / "strokes.nii.gz", _strokes(1, 2), origin=6.0)


def _all_nan(folder: Path) -> Path:
    _pair(folder, _strokes(1, 2), np.full((24, 24, 16), np.nan, np.float32))
    return folder / "image.nii.gz"


def _fractional(folder: Path) -> Path:
    _nifti(folder / "image.nii.gz", _volume())
    scribbles = _strokes(1, 2).astype(np.float32).transpose(2, 1, 0)  # world order (z, y, x)
    scribbles[8, 8, 8] = 1.5
    np.save(folder / "strokes.npy", scribbles)
    return folder / "strokes.npy"


def _raster(path: Path, bands: np.ndarray, nodata: float | None = 0) -> Path:
    with rasterio.open(
        path, "w", driver="GTiff", height=bands.shape[1], width=bands.shape[2],
        count=bands.shape[0], dtype=bands.dtype, nodata=nodata, crs=CRS.from_epsg(32633),
        transform=from_origin(500000, 4000000, 10, 10),
    ) as dst:  # fmt: skip
        dst.write(bands)
    return path


def _strokes_on_nodata(folder: Path) -> Path:
    bands = np.full((3, 32, 32), 500, np.uint16)
    bands[:, 16:, :] = 0  # the lower half has no data
    bands[:, :8, :8] = 1500
    _raster(folder / "image.tif", bands)
    scribbles = np.zeros((1, 32, 32), np.uint8)
    scribbles[0, 2:5, 2:5] = 1  # on data
    scribbles[0, 20:24, 20:24] = 2  # only where there is no data
    return _raster(folder / "strokes.tif", scribbles, nodata=None)


def _model_garbage(folder: Path) -> Path:
    path = folder / "model.assist"
    path.write_bytes(b"this is not a model" * 10)
    return path


def _model_other_sklearn(folder: Path) -> Path:
    model = train(_pair(folder, _strokes(1, 2)))
    model.versions = {**model.versions, "sklearn": "0.24.2"}
    return model.save(folder / "old.assist")


def load_and_predict(path: Path) -> object:
    image, _ = open_image(path.parent / "image.nii.gz")
    return PixelClassifier.load(path).predict(image)


def _model_for_other_images(folder: Path) -> Path:
    model = train(_pair(folder, _strokes(1, 2)))
    model.save(folder / "mr.assist")
    return _raster(folder / "scene.tif", np.full((4, 16, 16), 700, np.uint16))


def predict_scene_with_mr_model(path: Path) -> object:
    image, _ = open_image(path)
    return PixelClassifier.load(path.parent / "mr.assist").predict(image)


def predict_cancelled(path: Path) -> object:
    model = train_on_image(path)
    image, _ = open_image(path)
    return model.predict(image, chunk=(8, 24, 24), should_stop=lambda: True)


def _image_to_cancel(folder: Path) -> Path:
    _pair(folder, _strokes(1, 2))
    return folder / "image.nii.gz"


CASES = [
    BadInput("assist-no-strokes", _no_strokes, train, r"no strokes.*paint at least two classes"),
    BadInput("assist-single-class", _one_class, train, r"only class 1 is painted.*other class"),
    BadInput(
        "assist-scribbles-other-shape", _other_shape, train, r"not on the grid of image\.nii\.gz"
    ),
    BadInput(
        "assist-scribbles-shifted-origin", _shifted_origin, train, r"not on the grid.*resample"
    ),
    BadInput("assist-all-nan-image", _all_nan, train_on_image, r"no valid pixels.*NaN or nodata"),
    BadInput("assist-fractional-scribbles", _fractional, train, r"whole class ids.*fractional"),
    BadInput(
        "assist-strokes-only-on-nodata",
        _strokes_on_nodata,
        train,
        r"has no data, only 1 class\(es\) remain.*at least two classes",
    ),
    BadInput(
        "assist-model-not-a-model", _model_garbage, PixelClassifier.load, r"not a .*assist model"
    ),
    BadInput(
        "assist-model-other-scikit-learn",
        _model_other_sklearn,
        load_and_predict,
        r"saved with scikit-learn 0\.24\.2, this is scikit-learn .*retrain",
    ),
    BadInput(
        "assist-model-for-another-kind-of-image",
        _model_for_other_images,
        predict_scene_with_mr_model,
        r"(spatial axes|spacing is in|channel).*model made for this kind of image",
    ),
    BadInput(
        "assist-prediction-cancelled",
        _image_to_cancel,
        predict_cancelled,
        r"cancelled after 0 of 2 blocks; nothing was written",
    ),
    BadInput(
        "assist-model-missing",
        lambda folder: folder / "missing.assist",
        PixelClassifier.load,
        r"no such model file",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_input(case, tmp_path):
    check(case, tmp_path)
