"""Benchmark: a 512x512x300 CT DICOM series to a napari-ready HU volume.

In one run, with a warm file cache, best-of-N wall time (methods interleaved per round) of

* napari-domainseg ``read_series(folder).volume.array`` (in process, after imports),
* SimpleITK ``ImageSeriesReader`` (GetGDCMSeriesFileNames + Execute + GetArrayFromImage),
* a plain pydicom loop (dcmread each file, sort by ImagePositionPatient z, rescale, stack),
* ``dcm2niix`` as a whole subprocess writing ``.nii`` (``-z n``) and, for information, ``.nii.gz``,

then where our reader's time goes, and the peak memory of each in-process reader (fresh
subprocess: peak RSS growth and tracemalloc peak, relative to the volume's size). The NIfTI
export of a mask is ``bench_nifti_export.py``.

Run ``.venv/bin/python benchmarks/bench_medical_read.py`` (``--help`` for options; ``--quick``:
a 256x256x30 series, two rounds); results go to ``benchmarks/results/medical_read.json``.
``--profile`` also prints a cProfile of ``read_series`` (top 25 cumulative) and writes it to
``results/medical_read_profile.txt``.
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
from harness import MIB, read_simpleitk_series  # noqa: E402

PROFILE_FILE = harness.RESULTS_DIR / "medical_read_profile.txt"
TARGET_SPEEDUP_VS_SITK = 3.0
"""Our reader should be at least this many times faster than SimpleITK."""
TARGET_RATIO_VS_DCM2NIIX = 2.0
"""Our reader's wall time should be within this factor of dcm2niix's."""
TARGET_PEAK_MEMORY = 1.5
"""Peak memory growth of our reader, in volumes (int16 volume size)."""


# --------------------------------------------------------------------------- readers


def read_ours(folder: Path) -> np.ndarray:
    """napari-domainseg: the best series in ``folder`` as a (z, y, x) HU array."""
    from napari_domainseg.medical.series import read_series

    return read_series(folder).volume.array


def read_pydicom(folder: Path) -> np.ndarray:
    """A plain pydicom loop: read every file, sort by ImagePositionPatient z, rescale, stack.

    Integral rescaling (slope 1, whole intercept, as in CT) stays in int16; anything
    else is computed in float32.
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


READERS: dict[str, tuple[str, Callable[[Path], np.ndarray]]] = {
    "ours": ("napari_domainseg.medical.series", read_ours),
    "simpleitk": ("SimpleITK", read_simpleitk_series),
    "pydicom": ("pydicom", read_pydicom),
}
"""Name to (module to import first, reader)."""


def run_dcm2niix(folder: Path, out_dir: Path, compress: str) -> Path:
    """Convert ``folder`` with dcm2niix (``-z compress``) into a fresh ``out_dir``; the file."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    command = [dcm2niix(), "-z", compress, "-f", "vol", "-o", str(out_dir), str(folder)]
    subprocess.run(command, check=True, capture_output=True)
    written = sorted(out_dir.glob("vol.nii*"))
    if len(written) != 1:
        raise RuntimeError(f"dcm2niix wrote {written} in {out_dir}")
    return written[0]


def dcm2niix() -> str:
    """Path of the ``dcm2niix`` executable: next to this Python first, else on PATH."""
    found = harness.installed_command("dcm2niix")
    if found is None:
        raise FileNotFoundError("dcm2niix not found (pip install dcm2niix)")
    return found


OURS_PROCESS = """import sys
from napari_domainseg.medical.series import read_series
read_series(sys.argv[1]).volume.array
"""
"""Our reader in a fresh Python process (interpreter start + imports + read)."""


# --------------------------------------------------------------------------- memory


def memory_child(method: str, folder: Path, mode: str) -> dict[str, Any]:
    """In a fresh process: memory growth of one reader over the state after its imports.

    ``mode`` ``"rss"``: peak RSS during the read (``VmHWM``, reset after the imports)
    minus RSS after the imports; ``"tracemalloc"``: tracemalloc peak during the read
    (numpy buffers included; C++ allocations such as ITK's image buffer are not traced).
    """
    import importlib
    import tracemalloc

    module, reader = READERS[method]
    importlib.import_module(module)
    if method != "simpleitk":  # pydicom imports its pixel backends lazily, on first decode
        import pydicom

        _ = pydicom.dcmread(next(p for p in sorted(folder.iterdir()) if p.is_file())).pixel_array
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
    shape, dtype = list(array.shape), str(array.dtype)
    return {"growth_bytes": int(growth), "volume_bytes": int(array.nbytes), "shape": shape,
            "dtype": dtype, **extra}  # fmt: skip


def measure_memory(method: str, folder: Path, mode: str) -> dict[str, Any]:
    """:func:`memory_child` in a fresh interpreter, plus ``ratio`` (growth / volume bytes)."""
    result = harness.run_child(__file__, "--memory-child", method, mode, "--folder", str(folder))
    return {**result, "ratio": result["growth_bytes"] / result["volume_bytes"]}


# --------------------------------------------------------------------------- breakdown


BREAKDOWN_LABELS = {
    "discover": "`discover()`: the header pass over all files (grouping, sorting keys)",
    "read_given_discovery": "`read_series(discovery=...)`: geometry, pixels into the volume",
    "stack": "`np.stack` of the 300 int16 slices alone",
    "headers_deferred": "pydicom header pass with `defer_size='1 KB'` (lean discovery)",
    "raw_lower_bound": "raw bytes + `np.frombuffer` into a preallocated int16 volume",
}


def bench_breakdown(folder: Path, repeat: int) -> dict[str, Any]:
    """Time the parts of our reader, and two what-ifs (see :data:`BREAKDOWN_LABELS`)."""
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

    tasks = {
        "discover": lambda: discover(folder),
        "read_given_discovery": lambda: read_series(folder, discovery=discovery).volume.array,
        "stack": lambda: np.stack(slices),
        "headers_deferred": lambda: [pydicom.dcmread(p, defer_size="1 KB") for p in files],
        "raw_lower_bound": raw_lower_bound,
    }
    return harness.summaries(harness.time_interleaved(tasks, repeat, warmup=True))


# --------------------------------------------------------------------------- checks, info


def check_readers(folder: Path, dcm2niix_nii: Path) -> dict[str, Any]:
    """Do the readers agree voxel for voxel (dcm2niix's NIfTI reoriented to z, y, x)?"""
    from napari_domainseg.medical.nifti import volume_from_nifti

    ours = read_ours(folder)
    others = {
        "simpleitk": read_simpleitk_series(folder),
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
    """CPU, OS, Python and library versions, dcm2niix's, and the git commit of the checkout."""
    import SimpleITK as sitk

    version = subprocess.run([dcm2niix(), "-v"], capture_output=True, text=True, check=False)
    return harness.machine(
        ("napari-domainseg", "numpy", "pydicom", "SimpleITK", "nibabel", "psutil"),
        simpleitk_threads=sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(),
        dcm2niix=(version.stdout.strip() or "unknown").splitlines()[0],
    )


def profile_reader(folder: Path, top: int = 25) -> str:
    """cProfile of ``read_series(folder)`` after a warm-up read, by cumulative and own time."""
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


# --------------------------------------------------------------------------- report


READ_LABELS = {
    "ours": "napari-domainseg `read_series` (in process)",
    "simpleitk": "SimpleITK `ImageSeriesReader`",
    "pydicom": "plain pydicom loop",
    "dcm2niix_nii": "dcm2niix `-z n` (subprocess, .nii)",
    "dcm2niix_niigz": "dcm2niix `-z y` (subprocess, .nii.gz; info)",
    "ours_process": "napari-domainseg, fresh process incl. imports (info)",
}


def markdown_tables(results: dict[str, Any]) -> list[str]:
    """The results as markdown tables: read times, breakdown, memory, targets."""
    read, data, memory = results["read"], results["dataset"], results["memory"]
    best = read["ours"]["best_s"]
    read_rows = [
        [label, f"{read[k]['best_s']:.3f}", f"{read[k]['median_s']:.3f}",
         f"{best / read[k]['best_s']:.2f}"]
        for k, label in READ_LABELS.items()
    ]  # fmt: skip
    parts = [(label, results["breakdown"][k]) for k, label in BREAKDOWN_LABELS.items()]
    part_rows = [[label, f"{t['best_s']:.3f}", f"{t['median_s']:.3f}"] for label, t in parts]
    memory_rows = [
        [name, f"{m['rss']['ratio']:.2f}",
         f"{m['tracemalloc']['ratio']:.2f}" if "tracemalloc" in m else "n/a (C++ buffers untraced)"]
        for name, m in ((name, memory[name]) for name in READERS)
    ]  # fmt: skip
    lines = [
        f"DICOM series {data['shape']} ({data['files']} files, "
        f"{data['bytes'] / MIB:.0f} MiB), warm cache, best of {results['repeat']}",
        "",
        *harness.table(["reader", "best s", "median s", "ours / this"], read_rows),
        "",
        *harness.table(["where the time goes (info)", "best s", "median s"], part_rows),
        "",
        *harness.table(
            ["reader", "peak RSS growth / volume", "tracemalloc peak / volume"], memory_rows
        ),
    ]
    return [*lines, "", *harness.targets_table(results["targets"].values())]


def targets(read: dict[str, Any], memory: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The performance targets: speed-up over SimpleITK, ratio to dcm2niix, peak memory."""
    # Per round (methods interleaved, so both saw the same load): the worst round counts,
    # since the goal is every run, not the best one.
    speedup = harness.per_round_ratios(read["simpleitk"]["times_s"], read["ours"]["times_s"])
    vs_dcm2niix = read["ours"]["best_s"] / read["dcm2niix_nii"]["best_s"]
    peak = memory["ours"]["rss"]["ratio"]
    speedup_text = f"{speedup['min']:.2f} (median {speedup['median']:.2f})"
    return {
        "speedup_vs_simpleitk": harness.target(
            "SimpleITK time / our time, worst round", speedup["min"],
            f">= {TARGET_SPEEDUP_VS_SITK:g}", speedup["min"] >= TARGET_SPEEDUP_VS_SITK,
            speedup_text,
        ),
        "ratio_vs_dcm2niix": harness.target(
            "our time / dcm2niix -z n time", vs_dcm2niix,
            f"<= {TARGET_RATIO_VS_DCM2NIIX:g}", vs_dcm2niix <= TARGET_RATIO_VS_DCM2NIIX,
        ),
        "peak_memory": harness.target(
            "our peak RSS growth / volume bytes", peak, f"<= {TARGET_PEAK_MEMORY:g}",
            peak <= TARGET_PEAK_MEMORY,
        ),
    }  # fmt: skip


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Generate (once) the series, run every measurement, print and save the results."""
    parser = harness.arguments(__doc__, "medical_read", "a 256x256x30 series, two rounds")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (best of N)")
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--cols", type=int, default=512)
    parser.add_argument("--folder", type=Path, help="series folder (default: generated cache)")
    parser.add_argument("--profile", action="store_true", help="also profile read_series")
    parser.add_argument("--memory-child", nargs=2, metavar=("METHOD", "MODE"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child[0], args.folder, args.memory_child[1])))
        return 0
    if args.quick:
        args.repeat, args.slices, args.rows, args.cols = 2, 30, 256, 256

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
        tasks = {name: (lambda read=read: read(folder)) for name, (_, read) in READERS.items()}
        tasks["dcm2niix_nii"] = lambda: run_dcm2niix(folder, tmp / "nii", "n")
        tasks["dcm2niix_niigz"] = lambda: run_dcm2niix(folder, tmp / "niigz", "y")
        ours_process = [sys.executable, "-c", OURS_PROCESS, str(folder)]
        tasks["ours_process"] = lambda: subprocess.run(ours_process, check=True,
                                                       capture_output=True)  # fmt: skip
        read = harness.summaries(harness.time_interleaved(tasks, args.repeat, warmup=True))
        print("read timings done")
        breakdown = bench_breakdown(folder, args.repeat)
        memory: dict[str, dict[str, Any]] = {}
        for name in READERS:
            memory[name] = {"rss": measure_memory(name, folder, "rss")}
            if name != "simpleitk":  # ITK's C++ image buffer is invisible to tracemalloc
                memory[name]["tracemalloc"] = measure_memory(name, folder, "tracemalloc")
        print("memory done")

    dataset = {"folder": str(folder), "files": len(files), "bytes": total_bytes}
    checked = ("shape", "dtype", "volume_bytes", "hu_range")
    results: dict[str, Any] = {
        "benchmark": "medical_read",
        "date": harness.timestamp(),
        "machine": machine_info(),
        "repeat": args.repeat,
        "dataset": {**dataset, **{k: check[k] for k in checked}},
        "agreement": {"equal_to_ours": check["equal_to_ours"], "dtypes": check["dtypes"]},
        "read": read,
        "breakdown": breakdown,
        "memory": memory,
        "targets": targets(read, memory),
    }
    harness.save_results(results, markdown_tables(results), args.output)
    if args.profile:
        listing = profile_reader(folder)
        PROFILE_FILE.parent.mkdir(parents=True, exist_ok=True)
        PROFILE_FILE.write_text(listing, encoding="utf-8")
        print(listing)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
