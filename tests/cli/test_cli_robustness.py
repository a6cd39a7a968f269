"""The command line under stress: exit codes, strict JSON, atomic chips, progress on a terminal."""

from __future__ import annotations

import errno
import io
import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_domainseg.cli import commands, json_safe, progress
from napari_domainseg.cli.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, report

from ..helpers.cli import cli

TOOL = shutil.which("domainseg") or str(Path(sys.executable).with_name("domainseg"))


def strict_json(text: str):
    """Parse ``text`` refusing NaN and Infinity (what other JSON parsers do)."""

    def refuse(constant: str):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def volume(tmp_path: Path) -> tuple[Path, Path]:
    """A 32x64x64 image (NIfTI) and labels on its grid (.npy)."""
    image = np.random.default_rng(0).normal(100, 20, (64, 64, 32)).astype(np.float32)
    image_path = tmp_path / "image.nii.gz"
    nib.save(nib.Nifti1Image(image, np.diag([0.7, 0.7, 2.5, 1.0])), image_path)
    labels = np.zeros((32, 64, 64), np.uint8)
    labels[:, 8:40, 8:40] = 1
    labels[5:9, 50:60, 50:60] = 2
    labels_path = tmp_path / "labels.npy"
    np.save(labels_path, labels)
    return image_path, labels_path


def test_ctrl_c_exits_130_with_one_line(monkeypatch, tmp_path):
    def interrupted(_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "info", interrupted)
    code, _, err = cli("info", tmp_path)
    assert code == EXIT_INTERRUPTED == 130
    assert err.count("\n") == 1 and "interrupted" in err and "Traceback" not in err


def test_a_real_sigint_ends_the_process_with_130():
    script = (
        "import sys, time\n"
        "from napari_domainseg.cli import commands, main\n"
        "commands.info = lambda args: time.sleep(60)\n"
        "print('READY', flush=True)\n"
        "sys.exit(main(['info', '.']))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "READY"
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert err.strip().splitlines() == [
        "domainseg: interrupted; outputs not finished were not written"
    ]


def test_a_bug_is_one_line_with_exit_3_and_a_traceback_on_request(monkeypatch, tmp_path):
    def broken(_args):
        return {}["missing"]  # a KeyError inside domainseg itself

    monkeypatch.setattr(commands, "stats", lambda _args: [].pop())
    code, _, err = cli("stats", tmp_path / "x.nii.gz")
    assert code == EXIT_INTERNAL and "internal error (IndexError" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    monkeypatch.setattr(commands, "stats", broken)
    monkeypatch.setenv("DOMAINSEG_TRACEBACK", "1")
    code, _, err = cli("stats", tmp_path / "x.nii.gz")
    assert (
        code == EXIT_INTERNAL
        and "Traceback" in err
        and err.strip().endswith("shows where it happened)")
    )


def _library_errors() -> list[tuple[BaseException, str]]:
    import nibabel.filebasedimages
    import pydicom.errors
    import rasterio.errors
    import yaml

    return [
        (EOFError("Compressed file ended before the end-of-stream marker"), "truncated"),
        (MemoryError(), "not enough memory"),
        (OverflowError("Python int too large to convert to C long"), "too large"),
        (RecursionError("maximum recursion depth exceeded"), "nested too deeply"),
        (yaml.constructor.ConstructorError(None, None, "no constructor"), "YAML"),
        (OSError(errno.ENOSPC, "No space left on device", "out.nii.gz"), "no space left"),
        (OSError(errno.EROFS, "Read-only file system", "out.nii.gz"), "read-only"),
        (PermissionError(errno.EACCES, "Permission denied", "out.nii.gz"), "permission denied"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "out.nii.gz"), "is a folder"),
        (nibabel.filebasedimages.ImageFileError("Cannot work out file type"), "NIfTI"),
        (rasterio.errors.RasterioIOError("not recognized"), "GDAL"),
        (pydicom.errors.InvalidDicomError("File is missing DICOM File Meta"), "DICOM"),
    ]


@pytest.mark.parametrize(
    ("error", "expected"), _library_errors(), ids=lambda v: type(v).__name__ if isinstance(
        v, BaseException) else v
)  # fmt: skip
def test_each_library_failure_is_one_clear_line(error, expected):
    lines, code = report(error, Path("scan.nii.gz"))
    assert code == 1 and len(lines) == 1 and expected.lower() in lines[0].lower(), lines
    assert lines[0].startswith("domainseg: ") and (
        "scan.nii.gz" in lines[0] or "out.nii.gz" in lines[0]
    )
    wrapped = commands.InputError("scan.nii.gz: whatever", Path("scan.nii.gz"))
    wrapped.__cause__ = error
    assert expected.lower() in report(wrapped)[0][0].lower()


def test_messages_are_bounded_whatever_the_exception_says():
    lines, code = report(ValueError("x" * 100_000), Path("big.tif"))
    assert code == 1 and len(lines) == 1 and len(lines[0]) < 500 and "big.tif" in lines[0]
    many = "\n".join(f"problem {i}" for i in range(1000))
    lines, _ = report(commands.InputError(f"big.yaml: {many}"))
    assert len(lines) <= 25 and "more lines" in lines[-1]


def test_a_simulated_full_disk_names_the_output_and_leaves_nothing(monkeypatch, volume, tmp_path):
    """Without a real small file system: the NIfTI writer fails with ENOSPC half-way."""
    image, labels = volume
    real_save = nib.save

    def full(image_object, filename):
        Path(filename).write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(nib, "save", full)
    code, _, err = cli("export", labels, "--like", image, "-o", tmp_path / "out.nii.gz")
    monkeypatch.setattr(nib, "save", real_save)
    assert code == 1 and "out.nii.gz: no space left on the device" in err, err
    assert not list(tmp_path.glob("*out*")), "no partial file is left behind"


def test_json_output_is_strict_json_even_with_nan(tmp_path, volume):
    image, labels = volume
    data = nib.load(image).get_fdata(dtype=np.float32)
    data[:] = np.nan  # every intensity statistic is NaN
    nan_image = tmp_path / "nan.nii.gz"
    nib.save(nib.Nifti1Image(data, nib.load(image).affine), nan_image)
    code, out, _ = cli("stats", labels, "--like", nan_image, "--json")
    assert code == 0
    rows = strict_json(out)["classes"]
    assert rows and all(row["mean"] is None for row in rows if "mean" in row)
    assert json_safe({"a": [np.float32("inf"), np.int64(3), (1.5, float("nan"))]}) == {
        "a": [None, 3, [1.5, None]]
    }


def test_chips_refuse_to_overwrite_and_replace_with_overwrite(tmp_path, volume):
    image, labels = volume
    out = tmp_path / "chips"
    assert cli("chips", image, labels, "-o", out, "--size", "16")[0] == 0
    first = sorted(p.name for p in out.iterdir())
    stamp = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    code, _, err = cli("chips", image, labels, "-o", out, "--size", "16")
    assert code == 1 and "already holds chips" in err and "--overwrite" in err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamp, "nothing touched"
    code, _, _ = cli("chips", image, labels, "-o", out, "--size", "32", "--overwrite")
    assert code == 0
    second = sorted(p.name for p in out.iterdir())
    assert len(second) < len(first), "chips of the first run that are not listed are removed"
    listed = {line.split(",")[1] for line in (out / "manifest.csv").read_text().splitlines()[1:]}
    assert listed | {"manifest.csv"} == set(second)


def test_chips_on_a_full_disk_leave_no_partial_file(tmp_path, volume):
    """A real 256 KiB file system: the chips do not fit; nothing of the run stays."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    image, labels = volume
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", disk], check=True)
    try:
        code, _, err = cli("chips", image, labels, "-o", disk / "chips", "--size", "8")
        assert code == 1 and "no space left on the device" in err and "chip_" in err, err
        assert not any((disk / "chips").iterdir()), sorted(os.listdir(disk / "chips"))
    finally:
        subprocess.run(["umount", disk], check=False)


def test_geotiff_chips_are_label_geotiffs(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    from napari_domainseg.geo.grid import RasterGrid
    from napari_domainseg.geo.label_raster import SCHEMA_TAG, write_label_geotiff
    from napari_domainseg.labels import load_preset

    profile = {"driver": "GTiff", "height": 64, "width": 64, "count": 2, "dtype": "uint16",
               "crs": "EPSG:32633", "transform": from_origin(500000, 6000000, 10, 10)}  # fmt: skip
    with rasterio.open(tmp_path / "scene.tif", "w", **profile) as dst:
        dst.write(np.full((2, 64, 64), 7, np.uint16))
    labels = np.zeros((64, 64), np.uint8)
    labels[:40, :40] = 1
    grid = RasterGrid(64, 64, profile["transform"], rasterio.crs.CRS.from_epsg(32633))
    write_label_geotiff(tmp_path / "labels.tif", labels, grid, load_preset("land_cover"))
    code, _, err = cli("chips", tmp_path / "scene.tif", tmp_path / "labels.tif", "-o",
                       tmp_path / "chips", "--size", "32")  # fmt: skip
    assert code == 0, err
    with rasterio.open(tmp_path / "chips" / "chip_00000_mask.tif") as mask:
        assert SCHEMA_TAG in mask.tags() and mask.colormap(1)[1][:3] != (0, 0, 0)
    assert not list((tmp_path / "chips").glob(".*partial*"))


def _read_pty(master: int, process: subprocess.Popen) -> str:
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    return b"".join(chunks).decode(errors="replace")


def _chips_on_a_terminal(tmp_path: Path, volume, *extra: str) -> tuple[int, str, str]:
    image, labels = volume
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [TOOL, "chips", image, labels, "-o", tmp_path / f"chips{len(extra)}", "--size", "8",
         *extra],
        stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(slave)
    try:
        terminal = _read_pty(master, process)
        out = process.stdout.read().decode()
        process.wait(timeout=120)
    finally:
        os.close(master)
    return process.returncode, out, terminal


def test_progress_is_shown_on_a_terminal_and_not_with_json(tmp_path, volume):
    code, out, terminal = _chips_on_a_terminal(tmp_path, volume)
    assert code == 0 and "chips" in terminal and "chip/s" in terminal, terminal
    assert "chip/s" not in out, "progress never goes to stdout"
    code, out, terminal = _chips_on_a_terminal(tmp_path, volume, "--json")
    assert code == 0 and terminal.strip() == "", terminal
    assert strict_json(out)["chips"] > 0


def test_no_progress_when_stderr_is_not_a_terminal(tmp_path, volume):
    image, labels = volume
    result = subprocess.run(
        [TOOL, "chips", image, labels, "-o", tmp_path / "c", "--size", "8"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0 and result.stderr == "", result.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_work_without_a_count_shows_its_stage_and_time(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(progress, "SPINNER_DELAY_S", 0.05)
    progress.configure(json_output=False)
    with progress.working("domainseg convert"):
        progress.stage("reading the series")
        time.sleep(0.8)
    assert "domainseg convert: reading the series" in terminal.getvalue()
    quiet = _Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    progress.configure(json_output=True)
    with progress.working("domainseg convert"):
        time.sleep(0.3)
    progress.configure(json_output=False)
    assert quiet.getvalue() == ""


def test_a_full_disk_under_the_console_script_is_one_line(tmp_path):
    """libtiff prints its own line per strip on a full disk; the user reads only ours."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    import rasterio
    from rasterio.transform import from_origin

    from napari_domainseg.geo.grid import RasterGrid
    from napari_domainseg.geo.label_raster import write_label_geotiff

    labels = np.random.default_rng(0).integers(0, 5, (1000, 1000)).astype(np.uint8)
    crs = rasterio.crs.CRS.from_epsg(32633).to_wkt()
    grid = RasterGrid(1000, 1000, from_origin(500000, 6000000, 10, 10), crs)
    write_label_geotiff(tmp_path / "labels.tif", labels, grid)
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", disk], check=True)
    try:
        result = subprocess.run(
            [TOOL, "export", tmp_path / "labels.tif", "--like", tmp_path / "labels.tif", "-o",
             disk / "copy.tif"], capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == [
            f"domainseg: {disk / 'copy.tif'}: no space left on the device (disk full or quota "
            "reached); free some space or write elsewhere: nothing was written"
        ], result.stderr
        assert os.listdir(disk) == []
    finally:
        subprocess.run(["umount", disk], check=False)
