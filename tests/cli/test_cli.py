"""The ``domainseg`` command line on real data, bad input included."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import rasterio
import SimpleITK as sitk

from napari_domainseg.geo.grid import RasterGrid
from napari_domainseg.geo.label_raster import write_label_geotiff
from napari_domainseg.labels import load_preset
from napari_domainseg.medical.export import export_labels
from napari_domainseg.medical.series import read_series
from napari_domainseg.medical.volume_geometry import VolumeGeometry
from napari_domainseg.ops.metrics import class_metrics, cohen_kappa, fleiss_kappa

from .cli_helpers import run

CT = "medical/seg_dcmqi/ct-3slice"
LANDSAT = "geo/landsat_rgb/RGB.byte.tif"


@pytest.fixture
def ct_masks(shared_data, tmp_path):
    volume = read_series(shared_data / CT).volume
    a = np.zeros(volume.shape, np.uint8)
    a[volume.array > 300] = 5
    a[1, 200:260, 200:260] = 1
    b = a.copy()
    b[1, 200:260, 200:250] = 1
    b[1, 200:260, 250:260] = 0
    b[0] = 0
    paths = []
    for name, labels in (("a", a), ("b", b)):
        (path, _) = export_labels(
            tmp_path / f"{name}.nii.gz", labels, volume.geometry, load_preset("ct_abdomen_head")
        )
        paths.append(path)
    return volume, a, b, paths


def test_console_script_is_installed_and_helps():
    tool = shutil.which("domainseg") or str(Path(sys.executable).with_name("domainseg"))
    result = subprocess.run([tool, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "compare" in result.stdout
    for command in (
        "info",
        "convert",
        "export",
        "polygonize",
        "rasterize",
        "compare",
        "agreement",
        "stats",
    ):
        assert (
            subprocess.run([tool, command, "--help"], capture_output=True, check=False).returncode
            == 0
        )
    assert subprocess.run([tool, "compare"], capture_output=True, check=False).returncode == 2


def test_info_on_a_series_and_a_raster(capsys, shared_data):
    code, out, _ = run(capsys, "info", shared_data / "medical/bad_input/gantry_tilt", "--json")
    summary = json.loads(out)
    assert (
        code == 0
        and summary["shape"] == [4, 512, 512]
        and summary["tilt_deg"] == pytest.approx(14.0, abs=0.01)
    )
    assert any("gantry tilt" in w for w in summary["warnings"])
    code, out, _ = run(capsys, "info", shared_data / LANDSAT, "--json")
    summary = json.loads(out)
    assert summary["crs"] == "EPSG:32618" and summary["size"] == [718, 791]
    code, out, _ = run(capsys, "info", shared_data / "geo/edge_cases/float.tif", "--json")
    assert json.loads(out)["crs"] is None and "no coordinate reference system" in out


def test_convert_matches_the_reader_and_dcm2niix(capsys, shared_data, tmp_path):
    code, out, _ = run(capsys, "convert", shared_data / CT, "-o", tmp_path / "ct.nii.gz")
    assert code == 0 and "wrote" in out
    ours = nib.as_closest_canonical(nib.load(tmp_path / "ct.nii.gz"))
    theirs = nib.as_closest_canonical(
        nib.load(shared_data / "medical/reference_dcm2niix/seg_dcmqi/ct-3slice/2_.nii.gz")
    )
    np.testing.assert_allclose(ours.affine, theirs.affine, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(ours.dataobj), np.asarray(theirs.dataobj))
    assert run(capsys, "convert", shared_data / CT, "-o", tmp_path / "ct.nii.gz")[0] == 1, (
        "no overwrite"
    )
    code, _, err = run(
        capsys, "convert", shared_data / "medical/bad_input/slice_gap", "-o", tmp_path / "g.nrrd"
    )
    assert code == 1 and "not regular" in err and err.count("\n") == 1


def test_export_npy_onto_a_series_as_dicom_seg_and_onto_a_raster(capsys, shared_data, tmp_path):
    volume = read_series(shared_data / CT).volume
    labels = np.zeros(volume.shape, np.uint8)
    labels[1, 100:120, 100:140] = 2
    np.save(tmp_path / "l.npy", labels)
    code, _, _ = run(
        capsys,
        "export",
        tmp_path / "l.npy",
        "--like",
        shared_data / CT,
        "-o",
        tmp_path / "l.dcm",
        "--schema",
        "ct_abdomen_head",
    )
    assert code == 0
    code, _, _ = run(
        capsys,
        "export",
        tmp_path / "l.dcm",
        "--like",
        shared_data / CT,
        "-o",
        tmp_path / "l.seg.nrrd",
    )
    assert code == 0
    code, out, _ = run(capsys, "compare", tmp_path / "l.seg.nrrd", tmp_path / "l.npy", "--json")
    assert code == 0 and json.loads(out)["classes"]["2"]["dice"] == 1.0
    raster = np.zeros((718, 791), np.uint8)
    raster[10:20, 30:50] = 3
    np.save(tmp_path / "r.npy", raster)
    assert (
        run(
            capsys,
            "export",
            tmp_path / "r.npy",
            "--like",
            shared_data / LANDSAT,
            "-o",
            tmp_path / "r.gpkg",
        )[0]
        == 0
    )
    code, _, err = run(
        capsys,
        "export",
        tmp_path / "l.npy",
        "--like",
        shared_data / LANDSAT,
        "-o",
        tmp_path / "x.tif",
    )
    assert code == 1 and "does not match" in err


def test_polygonize_and_rasterize_round_trip(capsys, shared_data, tmp_path):
    with rasterio.open(shared_data / LANDSAT) as src:
        grid = RasterGrid.of_dataset(src)
    labels = np.zeros((718, 791), np.uint8)
    labels[100:300, 200:400] = 1
    labels[150:170, 250:270] = 0
    labels[500:510, 20:25] = 2
    write_label_geotiff(tmp_path / "l.tif", labels, grid, load_preset("land_cover"))
    code, out, _ = run(
        capsys, "polygonize", tmp_path / "l.tif", "-o", tmp_path / "l.geojson", "--json"
    )
    assert code == 0 and json.loads(out)["features"] == 2
    code, _, _ = run(
        capsys,
        "rasterize",
        tmp_path / "l.geojson",
        "--like",
        shared_data / LANDSAT,
        "-o",
        tmp_path / "back.tif",
        "--attribute",
        "label",
    )
    assert code == 0
    with rasterio.open(tmp_path / "back.tif") as src:
        np.testing.assert_array_equal(src.read(1), labels)
    code, out, _ = run(
        capsys,
        "polygonize",
        tmp_path / "l.tif",
        "-o",
        tmp_path / "big.gpkg",
        "--min-area",
        "1e7",
        "--json",
    )
    assert json.loads(out)["features"] == 1
    code, _, err = run(
        capsys,
        "rasterize",
        shared_data / "geo/vectors_naturalearth/naturalearth_lowres.shp",
        "--like",
        shared_data / "geo/edge_cases/float.tif",
        "-o",
        tmp_path / "x.tif",
    )
    assert code == 1 and "CRS" in err
    (tmp_path / "corrupt.tif").write_bytes(b"II*\x00garbage")
    code, _, err = run(capsys, "polygonize", tmp_path / "corrupt.tif", "-o", tmp_path / "c.gpkg")
    assert code == 1 and "corrupt.tif" in err


def test_compare_against_hand_values_and_simpleitk(capsys, ct_masks):
    volume, a, b, (path_a, path_b) = ct_masks
    code, out, _ = run(capsys, "compare", path_a, path_b, "--json")
    result = json.loads(out)
    assert code == 0 and set(result["classes"]) == {"1", "5"}
    one = result["classes"]["1"]
    assert one["dice"] == pytest.approx(2 * 60 * 50 / (3600 + 3000))
    assert one["iou"] == pytest.approx(3000 / 3600)
    voxel = float(np.prod(volume.spacing))
    assert one["size_a"] == pytest.approx(3600 * voxel) and one["size_b"] == pytest.approx(
        3000 * voxel
    )
    assert one["hd"] == pytest.approx(10 * volume.spacing[2], rel=1e-6), "10 columns of 0.81 mm"
    assert 0 < one["hd95"] <= one["hd"] and 0 < one["msd"] < one["hd95"]
    images = [sitk.GetImageFromArray((m == 5).astype(np.uint8)) for m in (a, b)]
    for image in images:
        image.SetSpacing(tuple(float(s) for s in volume.spacing[::-1]))
    overlap = sitk.LabelOverlapMeasuresImageFilter()
    overlap.Execute(*images)
    hausdorff = sitk.HausdorffDistanceImageFilter()
    hausdorff.Execute(*images)
    five = result["classes"]["5"]
    assert five["dice"] == pytest.approx(overlap.GetDiceCoefficient())
    assert five["iou"] == pytest.approx(overlap.GetJaccardCoefficient())
    assert five["hd"] == pytest.approx(hausdorff.GetHausdorffDistance())
    assert result["kappa"] == pytest.approx(cohen_kappa(a, b))


def test_compare_refuses_other_grids_unless_resampled(capsys, ct_masks, shared_data, tmp_path):
    volume, a, _, (path_a, _) = ct_masks
    shifted = volume.affine.copy()
    shifted[:3, 3] += [0, 0, volume.spacing[2]]  # one column to the patient's left
    moved = np.roll(a, -1, axis=2)
    (path_moved, _) = export_labels(
        tmp_path / "moved.nii.gz", moved, VolumeGeometry(shifted, moved.shape)
    )
    code, _, err = run(capsys, "compare", path_a, path_moved)
    assert code == 1 and "--resample" in err
    code, out, _ = run(capsys, "compare", path_a, path_moved, "--resample", "--json")
    result = json.loads(out)
    assert code == 0 and result["warnings"] and result["classes"]["1"]["dice"] == 1.0


def test_agreement_and_stats(capsys, ct_masks):
    volume, a, b, (path_a, path_b) = ct_masks
    code, out, _ = run(capsys, "agreement", path_a, path_b, path_a, "--json")
    result = json.loads(out)
    assert code == 0 and len(result["pairs"]) == 3
    assert result["fleiss_kappa"] == pytest.approx(fleiss_kappa([a, b, a]))
    assert result["pairs"][1]["dice"]["1"] == 1.0  # a vs a
    code, out, _ = run(capsys, "stats", path_a, "--json")
    rows = {r["label"]: r for r in json.loads(out)["classes"]}
    assert rows[1]["name"] == "liver" and rows[1]["size"] == pytest.approx(
        3600 * np.prod(volume.spacing) / 1000
    )
    code, out, _ = run(capsys, "stats", path_a, "--like", "/nonexistent")
    assert code == 1


def test_metrics_on_hand_computed_arrays():
    a = np.zeros((1, 10, 10), bool)
    b = np.zeros((1, 10, 10), bool)
    a[0, 2:6, 2:6] = True  # 16
    b[0, 4:8, 2:6] = True  # 16, overlap 8
    m = class_metrics(a, b, (1.0, 2.0, 0.5))
    assert m["dice"] == 0.5 and m["iou"] == pytest.approx(8 / 24)
    assert m["hd"] == pytest.approx(4.0), "2 rows of 2 mm"
    assert m["size_a"] == 16 * 1.0 and m["size_difference"] == 0
    assert class_metrics(a & False, b & False, (1, 1, 1))["dice"] == 1.0
    assert cohen_kappa(np.array([0, 1, 1, 0]), np.array([0, 1, 1, 0])) == 1.0
    assert cohen_kappa(np.array([0, 1, 0, 1]), np.array([1, 0, 1, 0])) == pytest.approx(-1.0)


def test_chips_of_a_raster_keep_georeferencing(capsys, shared_data, tmp_path):
    with rasterio.open(shared_data / LANDSAT) as src:
        grid = RasterGrid.of_dataset(src)
    labels = np.zeros((718, 791), np.uint8)
    labels[0:300, 0:300] = 1
    labels[600:640, 700:760] = 2  # rare
    write_label_geotiff(tmp_path / "l.tif", labels, grid)
    code, out, _ = run(
        capsys, "chips", shared_data / LANDSAT, tmp_path / "l.tif", "-o", tmp_path / "chips",
        "--size", "256", "--overlap", "32", "--min-labelled", "0.01", "--balance", "--json",
    )  # fmt: skip
    summary = json.loads(out)
    assert code == 0 and summary["chips"] > 0 and summary["samples"] > summary["chips"]
    import csv

    rows = list(csv.DictReader(open(tmp_path / "chips" / "manifest.csv")))
    rare = [r for r in rows if "2" in json.loads(r["class_counts"])]
    assert rare and all(int(r["repeats"]) > 1 for r in rare)
    first = rows[0]
    with rasterio.open(tmp_path / "chips" / first["image"]) as chip:
        assert chip.count == 3 and chip.shape == (256, 256) and chip.crs == src.crs
        x, y = rasterio.transform.xy(chip.transform, 0, 0)
        assert (x, y) == rasterio.transform.xy(grid.transform, int(first["row"]), int(first["col"]))
    with rasterio.open(tmp_path / "chips" / first["mask"]) as mask:
        row, col = int(first["row"]), int(first["col"])
        np.testing.assert_array_equal(mask.read(1), labels[row : row + 256, col : col + 256])


def test_chips_of_a_volume_are_npz_slices(capsys, shared_data, tmp_path):
    volume = read_series(shared_data / CT).volume
    labels = np.zeros(volume.shape, np.uint8)
    labels[1, 100:300, 100:300] = 4
    np.save(tmp_path / "l.npy", labels)
    code, out, _ = run(
        capsys,
        "chips",
        shared_data / CT,
        tmp_path / "l.npy",
        "-o",
        tmp_path / "c",
        "--min-labelled",
        "0.3",
        "--json",
    )
    assert code == 0 and json.loads(out)["chips"] == 1
    chip = np.load(tmp_path / "c" / "chip_00000.npz")
    assert chip["image"].shape == chip["mask"].shape == (256, 256) and int(chip["slice_index"]) == 1
    np.testing.assert_allclose(chip["spacing"], volume.spacing)


@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as local:
        yield local


def test_batch_on_a_running_cluster_reports_failures_and_carries_on(
    capsys, shared_data, tmp_path, cluster
):
    inputs = tmp_path / "inputs.csv"
    good = [str(shared_data / "medical/mr_compressed" / n) for n in ("j2k", "jpegls", "rle")]
    inputs.write_text(
        "input\n" + "\n".join([*good, str(shared_data / "medical/bad_input/slice_gap")]) + "\n"
    )
    output = str(tmp_path / "{stem}.nii.gz")
    code, out, err = run(
        capsys, "batch", "convert", "--inputs", inputs, "--scheduler", cluster.scheduler_address,
        "--results", tmp_path / "results.csv", "--json", "--", "-o", output,
    )  # fmt: skip
    summary = json.loads(out)
    assert code == 1 and summary["succeeded"] == 3 and len(summary["failed"]) == 1
    assert "not regular" in summary["failed"][0]["error"] and "slice_gap" in err
    for name in ("j2k", "jpegls", "rle"):
        assert (tmp_path / f"{name}.nii.gz").is_file()
    assert (tmp_path / "results.csv").read_text().count("\n") == 5


def test_batch_on_its_own_local_cluster(capsys, shared_data, tmp_path):
    pattern = str(shared_data / "geo/edge_cases/*.tif")
    code, out, _ = run(capsys, "batch", "info", "--inputs", pattern, "--workers", "2", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["inputs"] == 7
    crs = {Path(r["input"]).name: r["result"]["crs"] for r in summary["results"]}
    assert crs["byte.tif"] == "EPSG:26711" and crs["float.tif"] is None


def test_tiled_polygonize_and_rasterize_from_the_command_line(capsys, shared_data, tmp_path):
    reference = shared_data / LANDSAT
    code, out, _ = run(
        capsys,
        "rasterize",
        shared_data / "geo/landsat_rgb/box.shp",
        "--like",
        reference,
        "-o",
        tmp_path / "box.tif",
        "--tiled",
        "100",
    )
    assert code == 0
    code, out, _ = run(
        capsys,
        "polygonize",
        tmp_path / "box.tif",
        "-o",
        tmp_path / "box.gpkg",
        "--tiled",
        "100",
        "--json",
    )
    assert code == 0 and json.loads(out)["features"] == 1
    code, _, err = run(
        capsys,
        "polygonize",
        tmp_path / "box.tif",
        "-o",
        tmp_path / "b2.gpkg",
        "--tiled",
        "100",
        "--simplify",
        "5",
    )
    assert code == 1 and "--tiled supports" in err
