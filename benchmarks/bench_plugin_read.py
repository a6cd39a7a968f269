"""Benchmark: opening DICOM series through napari's plugin machinery, beside SimpleITK.

What a napari user waits for when dropping a folder, for

* the 512x512x300 CT series of ``ct_series.py`` (uncompressed), and
* the real 20-slice 512x512 head CT re-encoded losslessly in JPEG 2000, JPEG-LS and
  RLE (``compressed_series.py``),

timing per round, in one process with a warm file cache:

* ``plugin``: ``npe2.read([folder], plugin_name="napari-domainseg")`` (napari's reader
  lookup, our ``get_dicom_reader``, discovery, reading, layer data and notifications);
* ``in_process``: ``read_series(folder).volume.array``;
* ``before`` (compressed only, for information): the same with slices decoded as
  before parallel decoding, one after another with pydicom's default decoders;
* ``simpleitk``: ``ImageSeriesReader`` (GDCM) on the folder, as a numpy array.

The order of the methods rotates from round to round, so background load falls on all
of them alike; one untimed warm-up call each comes first (it also starts the decoding
pool), and each method's volume is checked voxel for voxel against SimpleITK's. The
speed-up over SimpleITK is computed per round (SimpleITK's time over ours in the same
round) and reported as median and worst round, as the targets are about every run.

Also measured, in a fresh interpreter that has imported napari: the first
``npe2.read`` of the 300-slice series, and the import of our reader module in it.

Run ``.venv/bin/python benchmarks/bench_plugin_read.py`` (``--rounds N``, default 7;
``--quick``: two rounds, one fresh process); results go to
``benchmarks/results/plugin_read.json``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # harness and the data makers sit next to this script
    sys.path.insert(0, str(HERE))

import harness  # noqa: E402

PLUGIN = "napari-domainseg"
TARGET_CT = 3.0
"""SimpleITK's time over ours through the plugin, 300-slice CT, in every round."""
TARGET_COMPRESSED = 1.5
"""The same for the compressed 20-slice series."""


def read_plugin(folder: Path) -> np.ndarray:
    """The image layer's data from ``npe2.read`` of the folder with our plugin."""
    import npe2

    data, _, kind = npe2.read([str(folder)], stack=False, plugin_name=PLUGIN)[0]
    assert kind == "image"
    return data


def read_in_process(folder: Path) -> np.ndarray:
    """``read_series(folder).volume.array``."""
    from napari_domainseg.medical.series import read_series

    return read_series(folder).volume.array


@contextlib.contextmanager
def decoding_as_before() -> Iterator[None]:
    """Within the block, slices decode as before parallel decoding: one after another,
    with pydicom's default decoders (one decoding worker, no imagecodecs plugin)."""
    from napari_domainseg.medical import parallel_decode

    before = os.environ.get(parallel_decode.WORKERS_VARIABLE)
    preferred = parallel_decode.preferred_plugin
    os.environ[parallel_decode.WORKERS_VARIABLE] = "1"
    parallel_decode.preferred_plugin = lambda transfer_syntax: ""
    try:
        yield
    finally:
        parallel_decode.preferred_plugin = preferred
        if before is None:
            del os.environ[parallel_decode.WORKERS_VARIABLE]
        else:
            os.environ[parallel_decode.WORKERS_VARIABLE] = before


def read_before(folder: Path) -> np.ndarray:
    """:func:`read_in_process` with slices decoded as before (:func:`decoding_as_before`)."""
    with decoding_as_before():
        return read_in_process(folder)


METHODS: dict[str, Callable[[Path], np.ndarray]] = {
    "plugin": read_plugin,
    "in_process": read_in_process,
    "before": read_before,
    "simpleitk": harness.read_simpleitk_series,
}


def bench_series(label: str, folder: Path, methods: list[str], rounds: int) -> dict[str, Any]:
    """Check, then time (order rotating per round), the ``methods`` on one series.

    Returns per method a timing summary, whether its volume equals SimpleITK's, and the
    per-round speed-ups over SimpleITK with their median and minimum.
    """
    harness.warm_cache(folder)
    volumes = {name: METHODS[name](folder) for name in methods}  # warm-up and check
    reference = volumes["simpleitk"]
    equal = {
        name: bool(v.shape == reference.shape and np.array_equal(v, reference))
        for name, v in volumes.items()
    }
    shape, dtype = list(reference.shape), str(volumes["in_process"].dtype)
    del volumes, reference
    tasks = {name: (lambda name=name: METHODS[name](folder)) for name in methods}
    times = harness.time_interleaved(tasks, rounds, rotate=True)
    result = {
        "folder": str(folder),
        "files": sum(1 for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")),
        "shape": shape,
        "dtype": dtype,
        "equal_to_simpleitk": equal,
        "timing": harness.summaries(times),
        "speedup_vs_simpleitk": {
            name: harness.per_round_ratios(times["simpleitk"], times[name])
            for name in methods
            if name != "simpleitk"
        },
    }
    plugin = result["speedup_vs_simpleitk"]["plugin"]
    print(
        f"{label}: plugin median {result['timing']['plugin']['median_s']:.3f} s, simpleitk "
        f"median {result['timing']['simpleitk']['median_s']:.3f} s, speed-up median "
        f"{plugin['median']:.2f} min {plugin['min']:.2f}; equal {equal}"
    )
    return result


FIRST_OPEN_CODE = """
import json, sys, time
import napari, napari.layers, napari.utils.notifications  # a napari session, before the drop
from napari.viewer import current_viewer
current_viewer()  # (imports the viewer's modules, as a running napari has)
import npe2
npe2.PluginManager.instance().discover()
start = time.perf_counter()
import napari_domainseg._napari._medical_reader
imported = time.perf_counter() - start
layers = npe2.read([sys.argv[1]], stack=False, plugin_name="napari-domainseg")
total = time.perf_counter() - start
heavy = [m for m in ("highdicom", "SimpleITK", "rasterio", "geopandas") if m in sys.modules]
start = time.perf_counter()
layers = npe2.read([sys.argv[1]], stack=False, plugin_name="napari-domainseg")
second = time.perf_counter() - start
print(json.dumps({"reader_import_s": imported, "first_read_s": total, "second_read_s": second,
                  "heavy_loaded": heavy}))
"""
"""The first plugin read in a fresh interpreter where napari is already imported."""


def first_open(folder: Path, repeat: int) -> dict[str, Any]:
    """:data:`FIRST_OPEN_CODE` in ``repeat`` fresh interpreters, summarised.

    ``reader_import_s`` is our reader module and what it imports, ``first_read_s`` that
    import plus the first ``npe2.read``; ``heavy_loaded`` which of highdicom, SimpleITK,
    rasterio, geopandas got imported.
    """
    runs = [harness.run_python(FIRST_OPEN_CODE, str(folder)) for _ in range(repeat)]
    found: dict[str, Any] = {
        key: harness.summary([r[key] for r in runs]) for key in runs[0] if key != "heavy_loaded"
    }
    found["heavy_loaded"] = sorted({m for r in runs for m in r["heavy_loaded"]})
    return found


def markdown(results: dict[str, Any]) -> list[str]:
    """The results as markdown tables, and the first open in a sentence."""
    rows, targets = [], []
    for label, entry in results["series"].items():
        for name, timing in entry["timing"].items():
            speed = entry["speedup_vs_simpleitk"].get(name)
            rows.append(
                [label, name, f"{timing['median_s']:.3f}", f"{timing['best_s']:.3f}",
                 f"{max(timing['times_s']):.3f}", f"{speed['median']:.2f}" if speed else "1.00",
                 f"{speed['min']:.2f}" if speed else "",
                 "yes" if entry["equal_to_simpleitk"][name] else "**no**"]
            )  # fmt: skip
        goal = TARGET_CT if label.startswith("ct_300") else TARGET_COMPRESSED
        plugin = entry["speedup_vs_simpleitk"]["plugin"]
        targets.append(
            harness.target(
                f"{label}: SimpleITK / plugin read, worst of the rounds", plugin["min"],
                f">= {goal}", plugin["min"] >= goal,
                f"{plugin['min']:.2f} (median {plugin['median']:.2f})",
            )
        )  # fmt: skip
    header = ["series", "method", "median s", "best s", "worst s", "SimpleITK / this: median",
              "worst round", "voxels equal"]  # fmt: skip
    lines = harness.table(header, rows, "llrrrrrl")
    first = results.get("first_open")
    if first:
        lines += [
            "",
            f"First plugin read in a fresh napari process (300-slice CT): median "
            f"{first['first_read_s']['median_s']:.3f} s, of which importing our reader "
            f"{first['reader_import_s']['median_s']:.3f} s; the second read in that process "
            f"{first['second_read_s']['median_s']:.3f} s; heavy modules loaded: "
            f"{', '.join(first['heavy_loaded']) or 'none'}.",
        ]
    return [*lines, "", *harness.targets_table(targets)]


def main(argv: list[str] | None = None) -> int:
    """Generate the series once, time every method, print and save the results."""
    parser = harness.arguments(__doc__, "plugin_read", "two rounds, one fresh process")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per series")
    parser.add_argument("--first-open", type=int, default=3, help="fresh processes (0: skip)")
    parser.add_argument("--only", choices=("ct", "compressed"), help="one part only")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.first_open = 2, 1

    import npe2

    from compressed_series import SYNTAXES, make_compressed_series
    from ct_series import make_ct_series

    npe2.PluginManager.instance().discover()
    import napari_domainseg._napari._medical_reader  # noqa: F401  (imports outside timings)

    series: dict[str, Any] = {}
    ct_folder = make_ct_series()[0].parent
    if args.only != "compressed":
        methods = ["plugin", "in_process", "simpleitk"]
        series["ct_300"] = bench_series("ct_300", ct_folder, methods, args.rounds)
    if args.only != "ct":
        methods = ["plugin", "in_process", "before", "simpleitk"]
        for key in SYNTAXES:
            folder = make_compressed_series(key)
            series[f"ct_20_{key}"] = bench_series(f"ct_20_{key}", folder, methods, args.rounds)
    packages = ("napari-domainseg", "napari", "npe2", "numpy", "pydicom", "SimpleITK",
                "pylibjpeg-openjpeg", "pylibjpeg-libjpeg", "pylibjpeg-rle", "pyjpegls")  # fmt: skip
    results: dict[str, Any] = {
        "benchmark": "plugin_read",
        "date": harness.timestamp(),
        "machine": harness.machine(packages, load_average=os.getloadavg()),
        "rounds": args.rounds,
        "series": series,
    }
    if args.first_open and args.only != "compressed":
        results["first_open"] = first_open(ct_folder, args.first_open)
    harness.save_results(results, markdown(results), args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
