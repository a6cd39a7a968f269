"""The ``domainseg`` command line on hostile inputs: one clear line per failure, never a traceback.

Each case generates its input under ``tmp_path`` (truncated, empty or garbage files of every
suffix the CLI reads, folders where files are expected, unreadable files, read-only and full file
systems, hostile schemas) and runs the command as a user would. :func:`corpus.check` with
``outcome="exit"`` asserts a non-zero exit code, no traceback, and stderr naming the file.
"""

from __future__ import annotations

import gzip
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ..helpers.cli import cli
from ..helpers.dicom_copies import copied_series, without_pixel_spacing
from .corpus import BadInput, check, ids

CT = Path(__file__).resolve().parents[2].parent / "shared/data/medical/seg_dcmqi/ct-3slice"
NOBODY = 65534


def as_nobody(run: Callable[[Path], tuple[int, str, str]]) -> Callable[[Path], tuple]:
    """Run ``run`` without root's right to read and write everything (permission cases)."""

    def wrapped(path: Path) -> tuple[int, str, str]:
        if os.geteuid() != 0:
            return run(path)
        os.setegid(NOBODY)
        os.seteuid(NOBODY)
        try:
            return run(path)
        finally:
            os.seteuid(0)
            os.setegid(0)

    return wrapped


def _reachable(folder: Path) -> Path:
    """Let another user walk into ``folder`` (pytest's temporary folders are private to root)."""
    if os.geteuid() == 0:
        for part in [folder, *folder.parents]:
            if part == Path("/tmp") or part == part.parent:
                break
            part.chmod(part.stat().st_mode | 0o011)
    return folder


def _mount_tmpfs(folder: Path, options: str) -> Path:
    """A real small (or read-only) file system at ``folder``; skips when mounting is not allowed."""
    folder.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.decode().strip()})")
    return folder


@pytest.fixture(autouse=True)
def _unmount(tmp_path: Path) -> Iterator[None]:
    yield
    if not Path("/proc/mounts").is_file():
        return
    with open("/proc/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts if str(tmp_path) in line]
    for point in reversed(points):
        subprocess.run(["umount", point], capture_output=True, check=False)


# --- generators --------------------------------------------------------------------------------


def _nifti(folder: Path, name: str = "image.nii.gz", shape=(32, 32, 32)) -> Path:
    data = np.random.default_rng(0).integers(0, 3000, shape).astype(np.int16)
    path = folder / name
    nib.save(nib.Nifti1Image(data, np.diag([0.8, 0.8, 2.0, 1.0])), path)
    return path


def truncated_nifti_gz(folder: Path) -> Path:
    good = _nifti(folder, "good.nii.gz").read_bytes()
    path = folder / "truncated.nii.gz"
    path.write_bytes(good[: len(good) * 2 // 3])  # header intact, data cut off
    return path


def truncated_nifti_gz_header(folder: Path) -> Path:
    good = _nifti(folder, "good.nii.gz").read_bytes()
    path = folder / "cut_header.nii.gz"
    path.write_bytes(good[:60])
    return path


def empty(name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(b"")
        return path

    return make


def garbage(name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(np.random.default_rng(1).bytes(4000))
        return path

    return make


def gzip_of_garbage(folder: Path) -> Path:
    path = folder / "not_nifti.nii.gz"
    path.write_bytes(gzip.compress(np.random.default_rng(2).bytes(4000)))
    return path


def nifti_huge_dims(folder: Path) -> Path:
    header = nib.Nifti1Header()
    header.set_data_dtype(np.int16)
    header.set_data_shape((30000, 30000, 30000))
    path = folder / "huge_dims.nii"
    path.write_bytes(header.binaryblock + b"\0" * 4 + b"\0" * 1000)
    return path


def npy_overflowing_shape(folder: Path) -> Path:
    header = "{'descr': '<u1', 'fortran_order': False, 'shape': (99999999999999999999999, 2), }"
    header = header.ljust(117) + "\n"
    path = folder / "overflow.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
    return path


def nifti_with_recursive_sidecar(folder: Path) -> Path:
    path = _nifti(folder, "labels.nii.gz", shape=(8, 8, 8))
    (folder / "labels.labels.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    return path


def nrrd_bad_header(folder: Path) -> Path:
    path = folder / "bad_header.nrrd"
    path.write_bytes(
        b"NRRD0004\ntype: int16\ndimension: 3\nsizes: 4 4\nencoding: raw\n\n" + b"\0" * 8
    )
    return path


def nrrd_truncated_data(folder: Path) -> Path:
    path = folder / "short_data.nrrd"
    header = (
        b"NRRD0004\ntype: int16\ndimension: 3\nsizes: 64 64 64\nencoding: raw\nendian: little\n"
    )
    path.write_bytes(header + b"space directions: (1,0,0) (0,1,0) (0,0,1)\n\n" + b"\0" * 1000)
    return path


def nrrd_gzip_truncated(folder: Path) -> Path:
    path = folder / "short_gzip.nrrd"
    header = (
        b"NRRD0004\ntype: int16\ndimension: 3\nsizes: 64 64 64\nencoding: gzip\nendian: little\n"
    )
    body = gzip.compress(np.random.default_rng(3).bytes(64 * 64 * 64 * 2))
    path.write_bytes(header + b"space directions: (1,0,0) (0,1,0) (0,0,1)\n\n" + body[:5000])
    return path


def truncated_tif(folder: Path) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    good = folder / "good.tif"
    profile = {"driver": "GTiff", "height": 256, "width": 256, "count": 1, "dtype": "uint16",
               "crs": "EPSG:32633", "transform": from_origin(500000, 6000000, 10, 10)}  # fmt: skip
    with rasterio.open(good, "w", **profile) as dst:
        dst.write(np.random.default_rng(4).integers(0, 9, (1, 256, 256)).astype(np.uint16))
    path = folder / "truncated.tif"
    path.write_bytes(good.read_bytes()[: 256 * 256])  # header and a part of the strips
    return path


def dicom_preamble_garbage(folder: Path) -> Path:
    path = folder / "broken.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + np.random.default_rng(5).bytes(400))
    return path


def truncated_dicom(folder: Path) -> Path:
    source = sorted(p for p in CT.iterdir() if p.is_file())[0]
    path = folder / "truncated_slice.dcm"
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def empty_folder(folder: Path) -> Path:
    path = folder / "empty_study"
    path.mkdir()
    return path


def pickled_npy(folder: Path) -> Path:
    path = folder / "objects.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return path


def garbage_vectors(folder: Path) -> Path:
    path = folder / "shapes.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [{"type": ', encoding="utf-8")
    return path


def unreadable_file(folder: Path) -> Path:
    path = _nifti(_reachable(folder), "locked.nii.gz")
    path.chmod(0o000)
    return path


def read_only_folder(folder: Path) -> Path:
    _nifti(_reachable(folder), "image.nii.gz")
    out = folder / "read_only_out"
    out.mkdir()
    out.chmod(0o555)
    return out


def read_only_file_system(folder: Path) -> Path:
    _nifti(folder, "image.nii.gz")
    return _mount_tmpfs(folder / "read_only_fs", "ro,size=64k")


def full_disk(folder: Path) -> Path:
    _nifti(folder, "image.nii.gz", shape=(64, 64, 64))  # about 500 kB compressed
    return _mount_tmpfs(folder / "full_disk", "size=64k")


def directory_as_output(folder: Path) -> Path:
    _nifti(folder, "image.nii.gz")
    path = folder / "out.nii.gz"
    path.mkdir()
    return path


def _schema_text(folder: Path, name: str, text: str) -> Path:
    _nifti(folder, "image.nii.gz")
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def billion_laughs(folder: Path) -> Path:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [" + ",".join([f"*{previous}"] * 9) + "]")
    lines += ["name: laughs", "classes:", "  - {id: *i, name: *i, color: red}"]
    return _schema_text(folder, "laughs.yaml", "\n".join(lines) + "\n")


def recursive_yaml(folder: Path) -> Path:
    return _schema_text(folder, "recursive.yaml", "name: &n [*n]\nclasses: []\n")


def python_tag(folder: Path) -> Path:
    text = "name: !!python/object/apply:os.system [echo owned]\nclasses: []\n"
    return _schema_text(folder, "python_tag.yaml", text)


def huge_schema(folder: Path) -> Path:
    rows = "".join(f"  - {{id: {i % 65535 + 1}, name: c{i}, color: red}}\n" for i in range(60000))
    return _schema_text(folder, "huge.yaml", "name: huge\nclasses:\n" + rows)


def deep_json_schema(folder: Path) -> Path:
    return _schema_text(
        folder, "deep.json", '{"name": "x", "classes": ' + "[" * 50000 + "]" * 50000 + "}"
    )


def folder_schema(folder: Path) -> Path:
    _nifti(folder, "image.nii.gz")
    path = folder / "schemas"
    path.mkdir()
    return path


def many_problems_schema(folder: Path) -> Path:
    rows = "".join(f"  - {{id: 0, name: c{i}, color: '#00ff00'}}\n" for i in range(3))
    return _schema_text(folder, "three_problems.yaml", "name: x\nclasses:\n" + rows)


def binary_schema(folder: Path) -> Path:
    _nifti(folder, "image.nii.gz")
    path = folder / "latin1.yaml"
    path.write_bytes("name: caf\xe9\nclasses: []\n".encode("latin-1"))
    return path


def existing_chips(folder: Path) -> Path:
    image = _nifti(folder, "image.nii.gz")
    labels = np.zeros((32, 32, 32), np.uint8)
    labels[:, 4:28, 4:28] = 1
    np.save(folder / "labels.npy", labels)
    out = folder / "chips"
    assert cli("chips", image, folder / "labels.npy", "-o", out, "--size", "16")[0] == 0
    return out


# --- entry points as the user meets them --------------------------------------------------------


def info(path: Path) -> tuple[int, str, str]:
    return cli("info", path)


def info_json(path: Path) -> tuple[int, str, str]:
    return cli("info", path, "--json")


def stats(path: Path) -> tuple[int, str, str]:
    return cli("stats", path)


def export_with_schema(schema: Path) -> tuple[int, str, str]:
    image = schema.parent / "image.nii.gz"
    return cli(
        "export", image, "--like", image, "-o", schema.parent / "o.nii.gz", "--schema", schema
    )


def export_into(folder: Path) -> tuple[int, str, str]:
    image = folder.parent / "image.nii.gz"
    return cli("export", image, "--like", image, "-o", folder / "labels.nii.gz")


def export_over_folder(path: Path) -> tuple[int, str, str]:
    image = path.parent / "image.nii.gz"
    return cli("export", image, "--like", image, "-o", path, "--overwrite")


def convert_into(folder: Path) -> tuple[int, str, str]:
    return cli("convert", CT, "-o", folder / "ct.nii.gz")


def chips_again(folder: Path) -> tuple[int, str, str]:
    return cli("chips", folder.parent / "image.nii.gz", folder.parent / "labels.npy", "-o", folder,
               "--size", "16")  # fmt: skip


def rasterize(path: Path) -> tuple[int, str, str]:
    like = truncated_tif(path.parent).with_name("good.tif")
    return cli("rasterize", path, "--like", like, "-o", path.parent / "burnt.tif")


def polygonize(path: Path) -> tuple[int, str, str]:
    return cli("polygonize", path, "-o", path.parent / "shapes.gpkg")


def ct_without_pixel_spacing(folder: Path) -> Path:
    """A CT series whose geometry is unknown (no PixelSpacing); returns the output to write."""
    without_pixel_spacing(CT, folder / "series")
    return folder / "unknown.nii.gz"


def convert_series_to(path: Path) -> tuple[int, str, str]:
    return cli("convert", path.parent / "series", "-o", path)


def ct_with_truncated_slice(folder: Path) -> Path:
    """A CT series with one truncated slice; returns that slice."""
    victim = sorted(copied_series(CT, folder / "series").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:-20_000])
    return victim


def convert_folder_of(path: Path) -> tuple[int, str, str]:
    return cli("convert", path.parent, "-o", path.parent.parent / "ct.nii.gz")


CASES = [
    BadInput(
        "convert-geometry-unknown",
        ct_without_pixel_spacing,
        convert_series_to,
        "geometry of this volume is unknown.*PixelSpacing.*--allow-unknown-geometry",
        "exit",
    ),
    BadInput(
        "convert-truncated-slice",
        ct_with_truncated_slice,
        convert_folder_of,
        "cannot be read.*truncated.*--skip-unreadable",
        "exit",
    ),
    BadInput("nifti-truncated-gzip", truncated_nifti_gz, stats, "truncated|damaged", "exit"),
    BadInput(
        "nifti-gzip-cut-in-header", truncated_nifti_gz_header, info, "truncated|not a", "exit"
    ),
    BadInput("nifti-empty", empty("empty.nii.gz"), info, "empty|not a readable", "exit"),
    BadInput("nifti-garbage", garbage("garbage.nii"), info, "not a readable NIfTI", "exit"),
    BadInput("nifti-gzip-of-garbage", gzip_of_garbage, info, "not a readable NIfTI", "exit"),
    BadInput("nifti-huge-dims", nifti_huge_dims, stats, "memory|truncated|too large|size", "exit"),
    BadInput("nrrd-bad-header", nrrd_bad_header, info, "sizes|dimension", "exit"),
    BadInput("nrrd-garbage", garbage("garbage.nrrd"), info, "NRRD", "exit"),
    BadInput("nrrd-data-too-short", nrrd_truncated_data, stats, "truncated", "exit"),
    BadInput("nrrd-gzip-truncated", nrrd_gzip_truncated, stats, r"truncated.*524288 bytes", "exit"),
    BadInput("tif-garbage", garbage("garbage.tif"), info, "not a raster GDAL can read", "exit"),
    BadInput("tif-empty", empty("empty.tif"), stats, "GDAL", "exit"),
    BadInput("tif-truncated", truncated_tif, stats, "GDAL|truncated|read", "exit"),
    BadInput("tif-truncated-polygonize", truncated_tif, polygonize, "GDAL|truncated|read", "exit"),
    BadInput("dcm-garbage", garbage("garbage.dcm"), info, "not a file format|not DICOM", "exit"),
    BadInput("dcm-preamble-only", dicom_preamble_garbage, info, "DICOM", "exit"),
    BadInput("dcm-truncated", truncated_dicom, info, "truncated|pixel|DICOM|no volume", "exit"),
    BadInput("npy-garbage", garbage("garbage.npy"), stats, "npy|pickle|format|magic", "exit"),
    BadInput("npy-pickled-objects", pickled_npy, stats, "pickle|object", "exit"),
    BadInput("npy-overflowing-shape", npy_overflowing_shape, stats, "too large", "exit"),
    BadInput("empty-folder", empty_folder, info, "no volume series|no DICOM", "exit"),
    BadInput("geojson-garbage", garbage_vectors, rasterize, "vector|JSON|read", "exit"),
    BadInput("input-without-permission", unreadable_file, as_nobody(info), "permission", "exit"),
    BadInput(
        "output-folder-read-only", read_only_folder, as_nobody(export_into), "permission", "exit"
    ),
    BadInput(
        "output-file-system-read-only", read_only_file_system, export_into, "read-only", "exit"
    ),
    BadInput("output-disk-full-export", full_disk, export_into, "no space left", "exit"),
    BadInput("output-disk-full-convert", full_disk, convert_into, "no space left", "exit"),
    BadInput("output-is-a-folder", directory_as_output, export_over_folder, "folder", "exit"),
    BadInput("schema-billion-laughs", billion_laughs, export_with_schema, "aliases", "exit"),
    BadInput("schema-recursive-yaml", recursive_yaml, export_with_schema, "aliases", "exit"),
    BadInput("schema-python-tag", python_tag, export_with_schema, "tag .*not allowed", "exit"),
    BadInput("schema-huge", huge_schema, export_with_schema, "at most 1 MiB", "exit"),
    BadInput("schema-deeply-nested", deep_json_schema, export_with_schema, "nest|deep", "exit"),
    BadInput("schema-not-utf8", binary_schema, export_with_schema, "UTF-8", "exit"),
    BadInput("schema-is-a-folder", folder_schema, export_with_schema, "folder", "exit"),
    BadInput(
        "chips-exist", existing_chips, chips_again, "already holds chips.*--overwrite", "exit"
    ),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_input(case: BadInput, tmp_path: Path) -> None:
    code, _, err = check(case, tmp_path)
    assert code == 1, f"{case.name}: exit code {code}, expected 1; stderr {err!r}"
    assert all(line.startswith("domainseg: ") for line in err.strip().splitlines()), err


def test_a_hostile_sidecar_does_not_hide_the_labels(tmp_path: Path) -> None:
    """A ``.labels.json`` nested 100,000 deep (RecursionError in json) is ignored, not fatal."""
    code, out, err = cli("stats", nifti_with_recursive_sidecar(tmp_path))
    assert code == 0 and "label" in out, err


def test_every_schema_problem_is_printed(tmp_path: Path) -> None:
    schema = many_problems_schema(tmp_path)
    code, _, err = export_with_schema(schema)
    lines = err.strip().splitlines()
    assert code == 1 and "3 problems" in lines[0] and schema.name in lines[0]
    assert len(lines) == 4, err
    assert all("id 0 is reserved" in line and "line " in line for line in lines[1:]), err


def test_a_billion_laughs_is_refused_at_once(tmp_path: Path) -> None:
    import time

    schema = billion_laughs(tmp_path)
    start = time.perf_counter()
    code, _, err = export_with_schema(schema)
    assert code == 1 and time.perf_counter() - start < 2 and len(err) < 500, err
