"""``domainseg assist`` on real data: a crop of the TotalSegmentator MR and of the Landsat scene.

MR: scribbles are sparse points (40 per class on every third slice) drawn from the reference
labels (right kidney, liver, "other" = everything else); Dice is measured against the full
reference. Scene: a crop of ``RGB.byte.tif`` with its nodata corner; the reference is a
brightness/colour rule map (cloud, shallow water, the rest), the scribbles sparse points of it.
Thresholds are below what was measured (docs/assist.md, "Command line").
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import rasterio
from rasterio.windows import Window
from scipy import ndimage

from napari_domainseg.ops.assist.robot import dice_scores

from .cli_helpers import run

MR_CLASSES = (2, 5, 100)
SCENE_CLASSES = (1, 2, 3)


def _points(truth: np.ndarray, classes, per_slice: int, axis_step: int, seed: int = 0):
    """Sparse strokes: ``per_slice`` eroded pixels of each class on every ``axis_step``-th plane."""
    strokes = np.zeros_like(truth)
    rng = np.random.default_rng(seed)
    for c in classes:
        inside = ndimage.binary_erosion(truth == c, iterations=1)
        planes = range(0, truth.shape[-1], axis_step) if truth.ndim == 3 else [None]
        for z in planes:
            plane = inside[..., z] if z is not None else inside
            pts = np.argwhere(plane)
            if len(pts) == 0:
                continue
            for p in pts[rng.choice(len(pts), min(per_slice, len(pts)), replace=False)]:
                strokes[(*p, z) if z is not None else tuple(p)] = c
    return strokes


@pytest.fixture(scope="module")
def mr_case(shared_data, tmp_path_factory) -> dict[str, Path]:
    """A 70x65x12 crop of the MR (nibabel axes), its reference and sparse scribbles."""
    folder = tmp_path_factory.mktemp("assist_mr")
    source = shared_data / "medical/totalseg_mr"
    crop = (slice(20, 90), slice(15, 80), slice(4, 16))
    image = nib.load(source / "mr.nii.gz").slicer[crop]
    labels = nib.load(source / "labels.nii.gz").slicer[crop]
    nib.save(image, folder / "mr.nii.gz")
    raw = np.asarray(labels.dataobj)
    truth = np.where(np.isin(raw, (2, 5)), raw, 100).astype(np.uint8)
    nib.save(nib.Nifti1Image(truth, labels.affine), folder / "truth.nii.gz")
    strokes = _points(truth, MR_CLASSES, per_slice=40, axis_step=3)
    nib.save(nib.Nifti1Image(strokes, labels.affine), folder / "strokes.nii.gz")
    return {"image": folder / "mr.nii.gz", "truth": folder / "truth.nii.gz",
            "strokes": folder / "strokes.nii.gz", "folder": folder}  # fmt: skip


@pytest.fixture(scope="module")
def scene_case(shared_data, tmp_path_factory) -> dict[str, Path]:
    """A 256x384 crop of RGB.byte.tif (nodata corner included), a rule reference, scribbles."""
    folder = tmp_path_factory.mktemp("assist_scene")
    with rasterio.open(shared_data / "geo/landsat_rgb/RGB.byte.tif") as src:
        window = Window(0, 0, 384, 256)
        pixels = src.read(window=window)
        profile = {**src.profile, "width": 384, "height": 256,
                   "transform": src.window_transform(window)}  # fmt: skip
    with rasterio.open(folder / "scene.tif", "w", **profile) as dst:
        dst.write(pixels)
    r, _, b = pixels.astype(int)
    truth = np.where(pixels.mean(axis=0) > 170, 3, np.where(b > r + 30, 1, 2)).astype(np.uint8)
    truth[(pixels == 0).all(axis=0)] = 0
    strokes = _points(truth, SCENE_CLASSES, per_slice=60, axis_step=1)
    labels_profile = {**profile, "count": 1, "dtype": "uint8", "nodata": 0}
    with rasterio.open(folder / "strokes.tif", "w", **labels_profile) as dst:
        dst.write(strokes, 1)
    return {"image": folder / "scene.tif", "strokes": folder / "strokes.tif", "truth": truth,
            "folder": folder, "profile": profile}  # fmt: skip


def _mean_dice(predicted: np.ndarray, truth: np.ndarray, classes) -> float:
    per_class, _ = dice_scores(predicted, truth, classes, np.ones(truth.shape, dtype=bool))
    return float(np.mean(list(per_class.values())))


def test_mr_labels_on_the_image_affine_with_dice(mr_case, tmp_path, capsys):
    out = tmp_path / "pred.nii.gz"
    code, stdout, err = run(capsys, "assist", mr_case["image"], "--scribbles",
                            mr_case["strokes"], "-o", out, "--json")  # fmt: skip
    assert code == 0, err
    result = json.loads(stdout)
    assert str(out) in result["written"]
    predicted, image = nib.load(out), nib.load(mr_case["image"])
    np.testing.assert_allclose(predicted.affine, image.affine, atol=1e-5)
    assert predicted.shape == image.shape
    labels = np.asarray(predicted.dataobj)
    assert set(np.unique(labels)) == set(MR_CLASSES)  # every voxel has a class
    truth = np.asarray(nib.load(mr_case["truth"]).dataobj)
    assert _mean_dice(labels, truth, MR_CLASSES) > 0.75  # measured 0.80
    sidecar = json.loads((tmp_path / "pred.labels.json").read_text())
    assisted = sidecar["source"]["assisted"]
    assert assisted["assisted"] is True and assisted["model"]["classes"] == list(MR_CLASSES)
    assert assisted["model"]["versions"]["sklearn"]


def test_mr_regularise_raises_dice(mr_case, tmp_path, capsys):
    out = tmp_path / "pred.nii.gz"
    code, _, err = run(capsys, "assist", mr_case["image"], "--scribbles", mr_case["strokes"],
                       "-o", out, "--regularise")  # fmt: skip
    assert code == 0, err
    truth = np.asarray(nib.load(mr_case["truth"]).dataobj)
    assert _mean_dice(np.asarray(nib.load(out).dataobj), truth, MR_CLASSES) > 0.83  # 0.875


def test_mr_probabilities_uncertainty_and_model_round_trip(mr_case, tmp_path, capsys):
    first, model = tmp_path / "first.nii.gz", tmp_path / "mr.assist"
    probabilities, uncertainty = tmp_path / "p.nii.gz", tmp_path / "u.nrrd"
    code, _, err = run(capsys, "assist", mr_case["image"], "--scribbles", mr_case["strokes"],
                       "-o", first, "--probabilities", probabilities, "--uncertainty",
                       uncertainty, "--save-model", model)  # fmt: skip
    assert code == 0, err
    p = nib.load(probabilities)
    assert p.shape == (*nib.load(mr_case["image"]).shape, len(MR_CLASSES))
    np.testing.assert_allclose(np.asarray(p.dataobj).sum(axis=-1), 1.0, atol=1e-4)
    assert json.loads((tmp_path / "p.json").read_text())["source"]["classes"] == list(MR_CLASSES)
    import nrrd

    values, header = nrrd.read(str(uncertainty))
    assert sorted(values.shape) == sorted(nib.load(mr_case["image"]).shape)
    assert 0.0 <= values.min() and values.max() <= 1.0
    assert "assisted" in header["DomainSeg_Source"]
    second = tmp_path / "second.nii.gz"
    code, _, err = run(capsys, "assist", mr_case["image"], "--model", model, "-o", second)
    assert code == 0, err
    a, b = (np.asarray(nib.load(f).dataobj) for f in (first, second))
    strokes = np.asarray(nib.load(mr_case["strokes"]).dataobj)
    # without --scribbles the strokes are not pasted back; elsewhere the same forest agrees
    np.testing.assert_array_equal(a[strokes == 0], b[strokes == 0])
    sidecar = json.loads((tmp_path / "second.labels.json").read_text())
    assert sidecar["source"]["assisted"]["model_file"] == "mr.assist"


@pytest.mark.skipif(shutil.which("gdalinfo") is None, reason="gdalinfo (gdal-bin) not installed")
def test_scene_geotiff_on_the_source_grid(scene_case, tmp_path, capsys):
    out, unc = tmp_path / "pred.tif", tmp_path / "unc.tif"
    probabilities = tmp_path / "p.tif"
    code, _, err = run(capsys, "assist", scene_case["image"], "--scribbles",
                       scene_case["strokes"], "-o", out, "--uncertainty", unc,
                       "--probabilities", probabilities, "--schema", "land_cover")  # fmt: skip
    assert code == 0, err
    info, source = _gdalinfo(out), _gdalinfo(scene_case["image"])
    assert info["geoTransform"] == source["geoTransform"]
    assert info["coordinateSystem"]["wkt"] == source["coordinateSystem"]["wkt"]
    assert info["size"] == source["size"]
    assert json.loads(info["metadata"][""]["DOMAINSEG_ASSIST"])["assisted"] is True
    assert json.loads(info["metadata"][""]["LABEL_SCHEMA"])["name"]  # the schema travels
    with rasterio.open(out) as dst:
        labels = dst.read(1)
    truth = scene_case["truth"]
    assert (labels[truth == 0] == 0).all()  # nodata stays unlabeled
    assert (labels[truth > 0] > 0).all()  # every valid pixel has a class
    assert _mean_dice(labels, truth, SCENE_CLASSES) > 0.9  # measured 0.93
    with rasterio.open(probabilities) as dst:
        assert dst.count == 3 and dst.crs is not None and dst.transform == source_transform(info)
        p = dst.read()
    valid = truth > 0
    np.testing.assert_allclose(p[:, valid].sum(axis=0), 1.0, atol=1e-4)
    assert np.isnan(p[:, ~valid]).all()
    with rasterio.open(unc) as dst:
        assert dst.count == 1 and np.isnan(dst.read(1)[~valid]).all()


def _gdalinfo(path: Path) -> dict:
    """GDAL's own description of a raster (``gdalinfo -json``)."""
    done = subprocess.run(["gdalinfo", "-json", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def source_transform(info: dict):
    """The affine of a ``gdalinfo -json`` geotransform."""
    from affine import Affine

    return Affine.from_gdal(*info["geoTransform"])


def test_batch_applies_a_saved_model_to_two_images(mr_case, tmp_path, capsys):
    model = tmp_path / "mr.assist"
    code, _, err = run(capsys, "assist", mr_case["image"], "--scribbles", mr_case["strokes"],
                       "-o", tmp_path / "trained.nii.gz", "--save-model", model)  # fmt: skip
    assert code == 0, err
    inputs = tmp_path / "in"
    inputs.mkdir()
    image = nib.load(mr_case["image"])
    nib.save(image, inputs / "a.nii.gz")
    nib.save(image.slicer[:, :, 2:10], inputs / "b.nii.gz")  # another field of view
    out = tmp_path / "out"
    out.mkdir()
    code, stdout, err = run(capsys, "batch", "assist", "--inputs", str(inputs / "*.nii.gz"),
                            "--workers", "1", "--json", "--", "--model", str(model), "-o",
                            str(out / "{stem}.labels.nii.gz"))  # fmt: skip
    assert code == 0, err
    assert json.loads(stdout)["succeeded"] == 2
    for name, source in (("a", inputs / "a.nii.gz"), ("b", inputs / "b.nii.gz")):
        written = nib.load(out / f"{name}.labels.nii.gz")
        np.testing.assert_allclose(written.affine, nib.load(source).affine, atol=1e-5)
        assert set(np.unique(np.asarray(written.dataobj))) <= set(MR_CLASSES)


def test_model_for_another_kind_of_image_leaves_nothing(scene_case, tmp_path, capsys):
    model = tmp_path / "scene.assist"
    code, _, err = run(capsys, "assist", scene_case["image"], "--scribbles",
                       scene_case["strokes"], "-o", tmp_path / "first.tif", "--save-model",
                       model)  # fmt: skip
    assert code == 0, err
    single = tmp_path / "one_band.tif"
    with rasterio.open(scene_case["image"]) as src:
        profile = {**src.profile, "count": 1}
        band = src.read(1)
    with rasterio.open(single, "w", **profile) as dst:
        dst.write(band, 1)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run(capsys, "assist", single, "--model", model, "-o", tmp_path / "out.tif",
                       "--uncertainty", tmp_path / "unc.tif", "--probabilities",
                       tmp_path / "p.tif")  # fmt: skip
    assert code == 1
    assert "one_band.tif" in err and "model" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no partial map left behind


def test_parsing_assist_loads_no_classifier_or_heavy_module():
    from .test_cli_imports import _loaded_after

    code = (
        "from napari_domainseg.cli import build_parser\n"
        "build_parser().parse_args(['assist', 'a.nii.gz', '--scribbles', 's.nii.gz', '-o', "
        "'o.nii.gz'])\n"
        "import sys\n"
        "assert 'sklearn' not in sys.modules and 'napari_domainseg.ops.assist' not in sys.modules\n"
    )
    assert _loaded_after(code) == []
