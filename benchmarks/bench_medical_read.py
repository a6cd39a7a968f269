"""Benchmark: a 512x512x300 CT DICOM series to a napari-ready HU volume, and NIfTI mask export.

In one run, with a warm file cache, best-of-N wall time (methods interleaved per round) of

* napari-domainseg ``read_series(folder).volume.array`` (in process, after imports),
* SimpleITK ``ImageSeriesReader`` (GetGDCMSeriesFileNames + Execute + GetArrayFromImage),
* a plain pydicom loop (dcmread each file, sort by ImagePositionPatient z, rescale, stack),
* ``dcm2niix`` as a whole subprocess writing ``.nii`` (``-z n``) and, for information, ``.nii.gz``,

then the peak memory of each in-process reader (fresh subprocess: peak RSS growth and
tracemalloc peak, relative to the volume's size), and the export of a 512x512x300 uint8
mask with ``napari_domainseg.medical.nifti.write_nifti`` versus SimpleITK ``WriteImage``.

Run ``.venv/bin/python benchmarks/bench_medical_read.py`` (``--help`` for options); results
go to ``benchmarks/results/medical_read.json``. ``--profile`` also prints a cProfile of
``read_series`` (top 25 cumulative) and writes it to ``results/medical_read_profile.txt``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import pstats
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # harness and ct_series sit next to this script
    sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from harness import MIB  # noqa: E402

RESULTS_DIR = HERE / "results"
RESULTS_FILE = RESULTS_DIR / "medical_read.json"
PROFILE_FILE = RESULTS_DIR / "medical_read_profile.txt"

TARGET_SPEEDUP_VS_SITK = 3.0
"""Our reader should be at least this many times faster than SimpleITK."""
TARGET_RATIO_VS_DCM2NIIX = 2.0
"""Our reader's wall time should be within this factor of dcm2niix's."""
TARGET_PEAK_MEMORY = 1.5
"""Peak memory growth of our reader, in volumes (int16 volume size)."""

READERS = ("ours", "simpleitk", "pydicom")


# --------------------------------------------------------------------------- readers


def read_ours(folder: Path) -> np.ndarray:
    """napari-domainseg: the best series in ``folder`` as a (z, y, x) HU array.

    Parameters
    ----------
    folder
        Folder of the DICOM series.

    Returns
    -------
    numpy.ndarray
        The volume, sorted along the slice normal, in HU.
    """
    from napari_domainseg.medical.series import read_series

    return read_series(folder).volume.array


def read_simpleitk(folder: Path) -> np.ndarray:
    """SimpleITK/GDCM: ``ImageSeriesReader`` on the folder's series, as a numpy array.

    Parameters
    ----------
    folder
        Folder of the DICOM series.

    Returns
    -------
    numpy.ndarray
        The volume (z, y, x) in HU (GDCM applies RescaleSlope/Intercept).
    """
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    return sitk.GetArrayFromImage(reader.Execute())


def read_pydicom(folder: Path) -> np.ndarray:
    """A plain pydicom loop: read every file, sort by ImagePositionPatient z, rescale, stack.

    Integral rescaling (slope 1, whole intercept, as in CT) stays in int16; anything
    else is computed in float32.

    Parameters
    ----------
    folder
        Folder holding only the slices of one series.

    Returns
    -------
    numpy.ndarray
        The volume (z, y, x) in HU.
    """
    import pydicom

    datasets = [pydicom.dcmread(path) for path in sorted(folder.iterdir()) if path.is_file()]
    datasets.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    slices = []
    for ds in datasets:
        slope = float(ds.get("RescaleSlope", 1))
        intercept = float(ds.get("RescaleIntercept", 0))
        if slope == 1 and intercept == int(intercept):
            slices.append(ds.pixel_array.astype(np.int16) + np.int16(intercept))
        else:
            slices.append(ds.pixel_array.astype(np.float32) * slope + intercept)
    return np.stack(slices)


READER_FUNCTIONS: dict[str, Callable[[Path], np.ndarray]] = {
    "ours": read_ours,
    "simpleitk": read_simpleitk,
    "pydicom": read_pydicom,
}
READER_IMPORTS = {
    "ours": "napari_domainseg.medical.series",
    "simpleitk": "SimpleITK",
    "pydicom": "pydicom",
}


def dcm2niix_binary() -> str:
    """Path of the ``dcm2niix`` executable: next to this Python first, else on PATH.

    Raises
    ------
    FileNotFoundError
        If dcm2niix is not installed.
    """
    found = harness.installed_command("dcm2niix")
    if found is None:
        raise FileNotFoundError("dcm2niix not found (pip install dcm2niix)")
    return found


def run_dcm2niix(folder: Path, out_dir: Path, compress: str) -> Path:
    """Convert ``folder`` with dcm2niix into a fresh ``out_dir``; return the NIfTI written.

    Parameters
    ----------
    folder
        Folder of the DICOM series.
    out_dir
        Output folder (emptied first).
    compress
        dcm2niix ``-z`` value: ``"n"`` for ``.nii``, ``"y"`` for ``.nii.gz``.

    Returns
    -------
    Path
        The written ``.nii`` or ``.nii.gz`` file.
    """
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    command = [dcm2niix_binary(), "-z", compress, "-f", "vol", "-o", str(out_dir), str(folder)]
    subprocess.run(command, check=True, capture_output=True)
    written = sorted(out_dir.glob("vol.nii*"))
    if len(written) != 1:
        raise RuntimeError(f"dcm2niix wrote {written} in {out_dir}")
    return written[0]


def run_ours_process(folder: Path) -> None:
    """Our reader in a fresh Python process (interpreter start + imports + read).

    Parameters
    ----------
    folder
        Folder of the DICOM series.
    """
    code = (
        "import sys\n"
        "from napari_domainseg.medical.series import read_series\n"
        "read_series(sys.argv[1]).volume.array\n"
    )
    subprocess.run([sys.executable, "-c", code, str(folder)], check=True, capture_output=True)


# --------------------------------------------------------------------------- memory


def memory_child(method: str, folder: Path, mode: str) -> dict[str, Any]:
    """In a fresh process: memory growth of one reader over the state after its imports.

    Parameters
    ----------
    method
        One of :data:`READERS`.
    folder
        Folder of the DICOM series.
    mode
        ``"rss"``: peak RSS during the read (``VmHWM``, reset after the imports) minus
        RSS after the imports; ``"tracemalloc"``: tracemalloc peak during the read
        (numpy buffers included; C++ allocations such as ITK's image buffer are not
        traced).

    Returns
    -------
    dict
        ``{"growth_bytes", "volume_bytes", "shape", "dtype"}`` and, for ``"rss"``,
        ``"rss_before_bytes"``, ``"peak_reset"``.
    """
    import importlib
    import tracemalloc

    importlib.import_module(READER_IMPORTS[method])
    reader = READER_FUNCTIONS[method]
    if method != "simpleitk":  # pydicom imports its pixel backends lazily, on first decode
        import pydicom

        first = next(p for p in sorted(folder.iterdir()) if p.is_file())
        _ = pydicom.dcmread(first).pixel_array
    gc.collect()
    extra: dict[str, Any] = {}
    if mode == "rss":
        array, rss = harness.peak_rss_during(lambda: reader(folder))
        growth = rss.growth_bytes
        extra = {"peak_reset": rss.peak_reset, "rss_before_bytes": rss.rss_before_bytes}
    elif mode == "tracemalloc":
        tracemalloc.start()
        array = reader(folder)
        growth = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    else:
        raise ValueError(f"unknown memory mode {mode!r}")
    return {
        "growth_bytes": int(growth),
        "volume_bytes": int(array.nbytes),
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        **extra,
    }


def measure_memory(method: str, folder: Path, mode: str) -> dict[str, Any]:
    """Run :func:`memory_child` in a fresh interpreter and return its result.

    Parameters
    ----------
    method
        One of :data:`READERS`.
    folder
        Folder of the DICOM series.
    mode
        ``"rss"`` or ``"tracemalloc"``.

    Returns
    -------
    dict
        The child's result plus ``ratio`` (growth / volume bytes).
    """
    result = harness.run_child(__file__, "--memory-child", method, mode, "--folder", str(folder))
    result["ratio"] = result["growth_bytes"] / result["volume_bytes"]
    return result


# --------------------------------------------------------------------------- NIfTI export


def make_mask(shape: tuple[int, int, int]) -> np.ndarray:
    """A uint8 label mask with a few ellipsoidal blobs (labels 1 to 4).

    Parameters
    ----------
    shape
        Array shape (k, j, i).

    Returns
    -------
    numpy.ndarray
        The mask; about 3 % of its voxels are labelled at 300x512x512.
    """
    mask = np.zeros(shape, dtype=np.uint8)
    blobs = [  # centre and radii as fractions of the shape, label
        ((0.50, 0.50, 0.50), (0.20, 0.15, 0.12), 1),
        ((0.30, 0.40, 0.30), (0.08, 0.06, 0.06), 2),
        ((0.70, 0.60, 0.70), (0.10, 0.08, 0.05), 3),
        ((0.55, 0.25, 0.65), (0.05, 0.04, 0.04), 4),
    ]
    for centre, radii, label in blobs:
        c = np.array(centre) * shape
        r = np.maximum(np.array(radii) * shape, 1.0)
        low = np.maximum(np.floor(c - r).astype(int), 0)
        high = np.minimum(np.ceil(c + r).astype(int) + 1, shape)
        k, j, i = np.ogrid[low[0] : high[0], low[1] : high[1], low[2] : high[2]]
        inside = ((k - c[0]) / r[0]) ** 2 + ((j - c[1]) / r[1]) ** 2 + ((i - c[2]) / r[2]) ** 2
        box = mask[low[0] : high[0], low[1] : high[1], low[2] : high[2]]
        box[inside <= 1.0] = label
    return mask


def write_ours(path: Path, mask: np.ndarray, affine: np.ndarray) -> None:
    """napari-domainseg ``write_nifti`` (overwriting).

    Parameters
    ----------
    path
        ``.nii`` or ``.nii.gz`` file.
    mask
        Array (k, j, i).
    affine
        4x4 voxel (k, j, i) to LPS (z, y, x) affine.
    """
    from napari_domainseg.medical.nifti import write_nifti

    write_nifti(path, mask, affine, overwrite=True)


def write_simpleitk(path: Path, mask: np.ndarray, affine: np.ndarray) -> None:
    """SimpleITK: ``GetImageFromArray`` with the same geometry, then ``WriteImage``.

    Compression is requested for ``.nii.gz`` (ITK's default level).

    Parameters
    ----------
    path
        ``.nii`` or ``.nii.gz`` file.
    mask
        Array (k, j, i), i.e. ITK (x, y, z) reversed.
    affine
        4x4 voxel (k, j, i) to LPS (z, y, x) affine.
    """
    import SimpleITK as sitk

    linear_xyz = affine[:3, :3][::-1, ::-1]  # voxel (i, j, k) -> LPS (x, y, z)
    spacing = np.linalg.norm(linear_xyz, axis=0)
    image = sitk.GetImageFromArray(mask)
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(v) for v in affine[:3, 3][::-1]])
    image.SetDirection([float(v) for v in (linear_xyz / spacing).ravel()])
    sitk.WriteImage(image, str(path), useCompression=path.name.endswith(".gz"))


def check_exports(ours: Path, theirs: Path, mask: np.ndarray) -> dict[str, Any]:
    """Read both exports back with nibabel: same voxels, same RAS affine?

    Parameters
    ----------
    ours, theirs
        The two files written from ``mask``.
    mask
        The written array (k, j, i).

    Returns
    -------
    dict
        Voxel and affine agreement, and both file sizes.
    """
    import nibabel as nib

    images = [nib.load(str(p)) for p in (ours, theirs)]
    expected = mask.transpose(2, 1, 0)
    return {
        "voxels_equal": all(np.array_equal(np.asanyarray(im.dataobj), expected) for im in images),
        "affines_close": bool(np.allclose(images[0].affine, images[1].affine, atol=1e-4)),
        "ours_bytes": ours.stat().st_size,
        "simpleitk_bytes": theirs.stat().st_size,
    }


def bench_export(
    shape: tuple[int, int, int], affine: np.ndarray, repeat: int, tmp: Path
) -> dict[str, Any]:
    """Time NIfTI export of a label mask: ours versus SimpleITK, ``.nii.gz`` and ``.nii``.

    Parameters
    ----------
    shape
        Mask shape (k, j, i).
    affine
        4x4 voxel (k, j, i) to LPS (z, y, x) affine.
    repeat
        Timed rounds.
    tmp
        Scratch folder.

    Returns
    -------
    dict
        Per suffix: timings of both writers, their ratio and the read-back check.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    mask = make_mask(shape)
    results: dict[str, Any] = {
        "mask": {
            "shape": list(shape),
            "dtype": str(mask.dtype),
            "labelled_fraction": round(float(np.count_nonzero(mask)) / mask.size, 4),
        }
    }
    for suffix in (".nii.gz", ".nii"):
        ours, theirs = tmp / f"ours{suffix}", tmp / f"sitk{suffix}"
        tasks: dict[str, Callable[[], object]] = {
            "ours": lambda ours=ours: write_ours(ours, mask, affine),
            "simpleitk": lambda theirs=theirs: write_simpleitk(theirs, mask, affine),
        }
        entry: dict[str, Any] = harness.summaries(
            harness.time_interleaved(tasks, repeat, warmup=True)
        )
        entry["ratio_ours_over_simpleitk"] = entry["ours"]["best_s"] / entry["simpleitk"]["best_s"]
        entry["check"] = check_exports(ours, theirs, mask)
        results[suffix] = entry
    return results


# --------------------------------------------------------------------------- breakdown


BREAKDOWN_LABELS = {
    "discover": "`discover()`: the header pass over all files (grouping, sorting keys)",
    "read_given_discovery": "`read_series(discovery=...)`: geometry, pixels into the volume",
    "stack": "`np.stack` of the 300 int16 slices alone",
    "headers_deferred": "pydicom header pass with `defer_size='1 KB'` (lean discovery)",
    "raw_lower_bound": "raw bytes + `np.frombuffer` into a preallocated int16 volume",
}


def bench_breakdown(folder: Path, repeat: int) -> dict[str, Any]:
    """Time the parts of our reader, and two what-ifs, to show where the time goes.

    Parameters
    ----------
    folder
        Folder of the DICOM series.
    repeat
        Timed rounds.

    Returns
    -------
    dict
        Name (see :data:`BREAKDOWN_LABELS`) to timing summary.
    """
    import pydicom

    from napari_domainseg.medical.discovery import discover
    from napari_domainseg.medical.series import read_series

    files = sorted(p for p in folder.iterdir() if p.is_file())
    discovery = discover(folder)
    first = discovery.candidates[0].headers[0]
    rows, cols = int(first.Rows), int(first.Columns)
    intercept = np.int16(int(float(first.get("RescaleIntercept", 0))))
    slices = [plane.copy() for plane in read_pydicom(folder)]  # separate buffers, as in ours
    frame_bytes = rows * cols * 2

    def raw_lower_bound() -> np.ndarray:
        volume = np.empty((len(files), rows, cols), dtype=np.int16)
        for k, path in enumerate(files):  # uncompressed, PixelData last: a lower bound only
            data = path.read_bytes()
            pixels = np.frombuffer(data, "<i2", rows * cols, len(data) - frame_bytes)
            np.add(pixels.reshape(rows, cols), intercept, out=volume[k])
        return volume

    tasks: dict[str, Callable[[], object]] = {
        "discover": lambda: discover(folder),
        "read_given_discovery": lambda: read_series(folder, discovery=discovery).volume.array,
        "stack": lambda: np.stack(slices),
        "headers_deferred": lambda: [pydicom.dcmread(p, defer_size="1 KB") for p in files],
        "raw_lower_bound": raw_lower_bound,
    }
    return harness.summaries(harness.time_interleaved(tasks, repeat, warmup=True))


# --------------------------------------------------------------------------- checks, info


def check_readers(folder: Path, dcm2niix_nii: Path) -> dict[str, Any]:
    """Do the readers agree voxel for voxel (dcm2niix's NIfTI reoriented to z, y, x)?

    Parameters
    ----------
    folder
        Folder of the DICOM series.
    dcm2niix_nii
        A NIfTI written by dcm2niix from ``folder``.

    Returns
    -------
    dict
        Our volume's shape, dtype and bytes, and per peer whether it equals ours.
    """
    from napari_domainseg.medical.nifti import volume_from_nifti

    ours = read_ours(folder)
    others = {
        "simpleitk": read_simpleitk(folder),
        "pydicom": read_pydicom(folder),
        "dcm2niix": volume_from_nifti(dcm2niix_nii).array,
    }
    return {
        "shape": list(ours.shape),
        "dtype": str(ours.dtype),
        "volume_bytes": int(ours.nbytes),
        "hu_range": [int(ours.min()), int(ours.max())],
        "equal_to_ours": {
            name: bool(a.shape == ours.shape and np.array_equal(a, ours))
            for name, a in others.items()
        },
        "dtypes": {name: str(a.dtype) for name, a in others.items()},
    }


def machine_info() -> dict[str, Any]:
    """CPU, OS, Python and library versions, and the git commit of the checkout.

    Returns
    -------
    dict
        Machine and software description for the JSON results.
    """
    import SimpleITK as sitk

    dcm2niix = subprocess.run(
        [dcm2niix_binary(), "-v"], capture_output=True, text=True, check=False
    ).stdout
    return {
        **harness.platform_info(),
        "versions": harness.package_versions(
            ("napari-domainseg", "numpy", "pydicom", "SimpleITK", "nibabel", "psutil")
        ),
        "simpleitk_threads": sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(),
        "dcm2niix": dcm2niix.strip().splitlines()[0] if dcm2niix.strip() else "unknown",
        **harness.git_state(),
    }


# --------------------------------------------------------------------------- report


_row = harness.markdown_row


def markdown_tables(results: dict[str, Any]) -> str:
    """The results as markdown tables: read times, memory, export times, targets.

    Parameters
    ----------
    results
        The full results dictionary.

    Returns
    -------
    str
        Markdown text.
    """
    read = results["read"]
    ours_best = read["ours"]["best_s"]
    labels = {
        "ours": "napari-domainseg `read_series` (in process)",
        "simpleitk": "SimpleITK `ImageSeriesReader`",
        "pydicom": "plain pydicom loop",
        "dcm2niix_nii": "dcm2niix `-z n` (subprocess, .nii)",
        "dcm2niix_niigz": "dcm2niix `-z y` (subprocess, .nii.gz; info)",
        "ours_process": "napari-domainseg, fresh process incl. imports (info)",
    }
    lines = [
        f"DICOM series {results['dataset']['shape']} ({results['dataset']['files']} files, "
        f"{results['dataset']['bytes'] / MIB:.0f} MiB), warm cache, best of {results['repeat']}",
        "",
        _row(["reader", "best s", "median s", "ours / this"]),
        _row(["---", "---:", "---:", "---:"]),
    ]
    for key, label in labels.items():
        entry = read[key]
        ratio = ours_best / entry["best_s"]
        lines.append(
            _row([label, f"{entry['best_s']:.3f}", f"{entry['median_s']:.3f}", f"{ratio:.2f}"])
        )
    breakdown = results.get("breakdown")
    if breakdown:
        lines += ["", _row(["where the time goes (info)", "best s", "median s"])]
        lines.append(_row(["---", "---:", "---:"]))
        for key, label in BREAKDOWN_LABELS.items():
            entry = breakdown[key]
            lines.append(_row([label, f"{entry['best_s']:.3f}", f"{entry['median_s']:.3f}"]))
    lines += [
        "",
        _row(["reader", "peak RSS growth / volume", "tracemalloc peak / volume"]),
        _row(["---", "---:", "---:"]),
    ]
    for name in READERS:
        memory = results["memory"][name]
        traced = memory.get("tracemalloc")
        traced_text = f"{traced['ratio']:.2f}" if traced else "n/a (C++ buffers untraced)"
        lines.append(_row([name, f"{memory['rss']['ratio']:.2f}", traced_text]))
    export = results.get("export")
    if export:
        lines += [
            "",
            _row(["NIfTI export of the uint8 mask", "ours s", "SimpleITK s", "ours / SimpleITK"]),
            _row(["---", "---:", "---:", "---:"]),
        ]
        for suffix in (".nii.gz", ".nii"):
            entry = export[suffix]
            sizes = entry["check"]
            lines.append(
                _row(
                    [
                        f"`{suffix}` ({sizes['ours_bytes'] / MIB:.1f} / "
                        f"{sizes['simpleitk_bytes'] / MIB:.1f} MiB)",
                        f"{entry['ours']['best_s']:.3f}",
                        f"{entry['simpleitk']['best_s']:.3f}",
                        f"{entry['ratio_ours_over_simpleitk']:.2f}",
                    ]
                )
            )
    lines += ["", *harness.targets_table(results["targets"].values())]
    return "\n".join(lines)


def targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Evaluate the performance targets.

    Parameters
    ----------
    results
        Results with ``read`` and ``memory`` entries.

    Returns
    -------
    dict
        Per target: name, measured value, goal text and whether it is met.
    """
    read = results["read"]
    # Per round (methods interleaved, so both saw the same load): the worst round counts,
    # since the goal is every run, not the best one.
    rounds = zip(read["simpleitk"]["times_s"], read["ours"]["times_s"], strict=True)
    per_round = [theirs / ours for theirs, ours in rounds]
    speedup = min(per_round)
    vs_dcm2niix = read["ours"]["best_s"] / read["dcm2niix_nii"]["best_s"]
    memory = results["memory"]["ours"]["rss"]["ratio"]
    return {
        "speedup_vs_simpleitk": {
            "name": "SimpleITK time / our time, worst round",
            "measured": speedup,
            "measured_text": f"{speedup:.2f} (median {float(np.median(per_round)):.2f})",
            "goal": f">= {TARGET_SPEEDUP_VS_SITK:g}",
            "met": speedup >= TARGET_SPEEDUP_VS_SITK,
        },
        "ratio_vs_dcm2niix": {
            "name": "our time / dcm2niix -z n time",
            "measured": vs_dcm2niix,
            "goal": f"<= {TARGET_RATIO_VS_DCM2NIIX:g}",
            "met": vs_dcm2niix <= TARGET_RATIO_VS_DCM2NIIX,
        },
        "peak_memory": {
            "name": "our peak RSS growth / volume bytes",
            "measured": memory,
            "goal": f"<= {TARGET_PEAK_MEMORY:g}",
            "met": memory <= TARGET_PEAK_MEMORY,
        },
    }


def profile_reader(folder: Path, top: int = 25) -> str:
    """cProfile of ``read_series(folder)`` (after one warm-up read), top entries by cumulative time.

    Parameters
    ----------
    folder
        Folder of the DICOM series.
    top
        Number of entries to list.

    Returns
    -------
    str
        The pstats listing, sorted by cumulative time, then by internal time.
    """
    from napari_domainseg.medical.series import read_series

    read_series(folder)
    profiler = cProfile.Profile()
    profiler.enable()
    read_series(folder).volume.array  # noqa: B018 - the access is what is profiled
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(15)
    return out.getvalue()


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options.

    Parameters
    ----------
    argv
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    argparse.Namespace
        The parsed options.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (best of N)")
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--cols", type=int, default=512)
    parser.add_argument("--folder", type=Path, help="series folder (default: generated cache)")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help="JSON results file")
    parser.add_argument("--skip-export", action="store_true", help="skip the NIfTI export part")
    parser.add_argument("--profile", action="store_true", help="also profile read_series")
    parser.add_argument(
        "--memory-child", nargs=2, metavar=("METHOD", "MODE"), help=argparse.SUPPRESS
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Generate (once) the series, run every measurement, print and save the results.

    Parameters
    ----------
    argv
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Process exit status (0; unmet targets are reported, not failures).
    """
    args = parse_args(argv)
    if args.memory_child:
        method, mode = args.memory_child
        print(json.dumps(memory_child(method, args.folder, mode)))
        return 0

    from ct_series import DATA_DIR, make_ct_series  # here: not imported by memory children

    files = make_ct_series(args.folder, args.slices, args.rows, args.cols)
    folder = files[0].parent
    total_bytes = harness.warm_cache(folder)
    # Imports happen here, outside the timings.
    import pydicom  # noqa: F401
    import SimpleITK  # noqa: F401

    import napari_domainseg.medical.series  # noqa: F401

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench_medical_", dir=DATA_DIR) as scratch:
        tmp = Path(scratch)
        print(f"series: {len(files)} files, {total_bytes / MIB:.0f} MiB in {folder}")
        check = check_readers(folder, run_dcm2niix(folder, tmp / "check", "n"))
        print(f"readers agree with ours: {check['equal_to_ours']}")
        tasks: dict[str, Callable[[], object]] = {
            "ours": lambda: read_ours(folder),
            "simpleitk": lambda: read_simpleitk(folder),
            "pydicom": lambda: read_pydicom(folder),
            "dcm2niix_nii": lambda: run_dcm2niix(folder, tmp / "nii", "n"),
            "dcm2niix_niigz": lambda: run_dcm2niix(folder, tmp / "niigz", "y"),
            "ours_process": lambda: run_ours_process(folder),
        }
        read = harness.summaries(harness.time_interleaved(tasks, args.repeat, warmup=True))
        print("read timings done")
        breakdown = bench_breakdown(folder, args.repeat)
        memory: dict[str, dict[str, Any]] = {}
        for name in READERS:
            memory[name] = {"rss": measure_memory(name, folder, "rss")}
            if name != "simpleitk":  # ITK's C++ image buffer is invisible to tracemalloc
                memory[name]["tracemalloc"] = measure_memory(name, folder, "tracemalloc")
        print("memory done")
        export = None
        if not args.skip_export:
            affine = np.diag([1.0, 0.451171875, 0.451171875, 1.0])
            affine[:3, 3] = (766.21, -1.85, -115.5)
            shape = (args.slices, args.rows, args.cols)
            export = bench_export(shape, affine, args.repeat, tmp / "export")
            print("export done")

    results: dict[str, Any] = {
        "benchmark": "medical_read",
        "date": harness.timestamp(),
        "machine": machine_info(),
        "repeat": args.repeat,
        "dataset": {
            "folder": str(folder),
            "files": len(files),
            "bytes": total_bytes,
            "shape": check["shape"],
            "dtype": check["dtype"],
            "volume_bytes": check["volume_bytes"],
            "hu_range": check["hu_range"],
        },
        "agreement": {"equal_to_ours": check["equal_to_ours"], "dtypes": check["dtypes"]},
        "read": read,
        "breakdown": breakdown,
        "memory": memory,
    }
    if export is not None:
        results["export"] = export
    results["targets"] = targets(results)
    harness.save_results(results, markdown_tables(results), args.output)
    print(f"\nresults: {args.output}")
    if args.profile:
        listing = profile_reader(folder)
        PROFILE_FILE.parent.mkdir(parents=True, exist_ok=True)
        PROFILE_FILE.write_text(listing, encoding="utf-8")
        print(listing)
    return 0


if __name__ == "__main__":
    status = main()
    if status:  # no SystemExit(0): run_all.py runs the next benchmark after this one
        raise SystemExit(status)
