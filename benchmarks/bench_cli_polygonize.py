"""Benchmark: ``domainseg polygonize`` versus ``gdal_polygonize.py``, both as whole processes.

What a user waits for at a shell: the 10000x10000 uint8 land-cover raster of
``geo_data.py`` (6 classes, 0 unlabeled) to a GeoPackage, start-up, imports, reading
and writing included, for

* ``domainseg polygonize RASTER -o OUT.gpkg`` (the installed console script), and
* ``gdal_polygonize.py -q -mask RASTER RASTER -f GPKG OUT.gpkg`` (the source as its own
  mask, so 0 is unlabeled in both; 4-connected in both).

Rounds alternate ours and GDAL (which goes first alternates too), with a warm file
cache and one untimed warm-up run each whose outputs are checked (same feature count).
Each run's wall, user and system time and peak RSS come from ``os.wait4``; the
ratio of each round (ours / GDAL) is reported with its median and maximum, beside the
median of each side. Also measured once, for the breakdown: the CLI's import time for
polygonize (``python -X importtime``) and the modules it loads.

Run ``.venv/bin/python benchmarks/bench_cli_polygonize.py`` (``--rounds N``, default 5;
``--quick``: a 1000x1000 raster, two rounds); results go to
``benchmarks/results/cli_polygonize.json``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # harness and geo_data sit next to this script
    sys.path.insert(0, str(HERE))

import harness  # noqa: E402

TARGET_RATIO = 0.5
"""Our whole process should take at most this fraction of gdal_polygonize.py's."""
HEAVY_MODULES = ("geopandas", "pandas", "dask", "distributed", "SimpleITK", "pydicom", "highdicom")
"""Modules the polygonize command must not need to import."""


def import_profile(raster: Path, out: Path) -> dict[str, Any]:
    """Import time of the polygonize command (``python -X importtime``), heavy modules loaded.

    Returns ``cli_import_s`` (``import napari_domainseg.cli``), ``total_import_s`` (every
    import of the run), ``top`` (the ten slowest top-level imports, cumulative seconds)
    and ``heavy_loaded`` (which of :data:`HEAVY_MODULES` were imported).
    """
    out.unlink(missing_ok=True)
    code = (
        "import sys\n"
        "from napari_domainseg.cli import main\n"
        "status = main(sys.argv[1:])\n"
        f"print('LOADED', *[m for m in {HEAVY_MODULES!r} if m in sys.modules])\n"
        "raise SystemExit(status)\n"
    )
    command = [sys.executable, "-X", "importtime", "-c", code, "polygonize", str(raster)]
    done = subprocess.run([*command, "-o", str(out)], capture_output=True, text=True, check=True)
    top_level: dict[str, float] = {}
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match and len(match.group(3)) == 1:  # top level: one space of indentation
            top_level[match.group(4)] = int(match.group(2)) / 1e6
    loaded = next(
        (ln.split()[1:] for ln in done.stdout.splitlines() if ln.startswith("LOADED")), []
    )
    top = sorted(top_level.items(), key=lambda item: -item[1])[:10]
    return {
        "cli_import_s": top_level.get("napari_domainseg.cli", float("nan")),
        "total_import_s": sum(top_level.values()),
        "top": [[name, round(seconds, 4)] for name, seconds in top],
        "heavy_loaded": loaded,
    }


def bench(raster: Path, rounds: int, tmp: Path) -> dict[str, Any]:
    """Alternate ours and GDAL (who goes first alternates) after a checked warm-up run each."""
    outputs = {"ours": tmp / "ours.gpkg", "gdal": tmp / "gdal.gpkg"}
    domainseg = harness.installed_command("domainseg") or "domainseg"
    commands = {
        "ours": [domainseg, "polygonize", str(raster), "-o", str(outputs["ours"])],
        "gdal": harness.gdal_polygonize_command(raster, outputs["gdal"], "GPKG"),
    }
    for name, command in commands.items():  # warm-up, checked
        harness.run_process(command, outputs[name])
    features = {name: harness.feature_count(path) for name, path in outputs.items()}
    print(f"features: {features}")
    runs: dict[str, list[dict[str, float]]] = {"ours": [], "gdal": []}
    for index in range(rounds):
        for name in ("ours", "gdal") if index % 2 == 0 else ("gdal", "ours"):
            runs[name].append(harness.run_process(commands[name], outputs[name]))
        ours, gdal = runs["ours"][-1]["wall_s"], runs["gdal"][-1]["wall_s"]
        print(f"round {index + 1}: ours {ours:.2f} s, gdal {gdal:.2f} s, ratio {ours / gdal:.3f}")
    walls = {name: [r["wall_s"] for r in rs] for name, rs in runs.items()}
    ratios = harness.per_round_ratios(walls["ours"], walls["gdal"])
    return {
        "commands": commands,
        "features": features,
        "features_equal": len(set(features.values())) == 1,
        "runs": runs,
        "wall": {name: harness.summary(w) for name, w in walls.items()},
        "ratios": [round(a / b, 4) for a, b in zip(walls["ours"], walls["gdal"], strict=True)],
        "ratio_median": ratios["median"],
        "ratio_max": ratios["max"],
        "ratio_of_medians": float(np.median(walls["ours"]) / np.median(walls["gdal"])),
    }


def markdown(results: dict[str, Any]) -> list[str]:
    """The results as markdown: whole-process table, ratios, imports, targets."""
    timing, imports = results["timing"], results["imports"]
    rows = []
    for name, label in (("ours", "`domainseg polygonize`"), ("gdal", "`gdal_polygonize.py`")):
        runs, wall = timing["runs"][name], timing["wall"][name]
        rows.append(
            [label, f"{wall['median_s']:.2f}", f"{wall['best_s']:.2f}",
             f"{np.median([r['user_s'] for r in runs]):.2f}",
             f"{np.median([r['sys_s'] for r in runs]):.2f}",
             f"{max(r['peak_rss_bytes'] for r in runs) / harness.MIB:.0f}"]
        )  # fmt: skip
    median, worst = timing["ratio_median"], timing["ratio_max"]
    header = ["whole process", "median wall s", "best s", "median user s", "median sys s",
              "peak RSS MiB"]  # fmt: skip
    return [
        *harness.table(header, rows),
        "",
        f"Per-round ratios ours / GDAL: {', '.join(f'{r:.3f}' for r in timing['ratios'])}; "
        f"median {median:.3f}, max {worst:.3f}.",
        f"Imports of the polygonize run: {imports['total_import_s']:.2f} s "
        f"(heavy modules loaded: {', '.join(imports['heavy_loaded']) or 'none'}).",
        "",
        *harness.targets_table(
            [
                harness.target(
                    "whole process, ours / gdal_polygonize.py (median of rounds)",
                    median, f"<= {TARGET_RATIO}", median <= TARGET_RATIO,
                ),
                harness.target(
                    "same, worst round", worst, f"<= {TARGET_RATIO}", worst <= TARGET_RATIO
                ),
            ]
        ),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Generate the raster once, time both tools, print and save the results."""
    parser = harness.arguments(__doc__, "cli_polygonize", "a 1000x1000 raster, two rounds")
    parser.add_argument("--rounds", type=int, default=5, help="timed alternating rounds")
    parser.add_argument("--size", type=int, default=10000, help="raster side in pixels")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.size = 2, 1000

    from geo_data import DATA_DIR, make_landcover

    raster = make_landcover(size=args.size)
    harness.warm_cache(raster)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench_cli_polygonize_", dir=DATA_DIR) as scratch:
        imports = import_profile(raster, Path(scratch) / "imports.gpkg")
        print(f"imports: {imports}")
        timing = bench(raster, args.rounds, Path(scratch))
    packages = ("napari-domainseg", "numpy", "rasterio", "pyogrio", "shapely")
    results: dict[str, Any] = {
        "benchmark": "cli_polygonize",
        "date": harness.timestamp(),
        "machine": harness.machine(
            packages,
            gdal_polygonize=harness.gdal_polygonize_script(),
            load_average=os.getloadavg(),
        ),
        "dataset": {"path": str(raster), "bytes": raster.stat().st_size, "size": args.size},
        "rounds": args.rounds,
        "imports": imports,
        "timing": timing,
    }
    harness.save_results(results, markdown(results), args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
