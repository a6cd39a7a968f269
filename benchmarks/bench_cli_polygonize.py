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

Run ``.venv/bin/python benchmarks/bench_cli_polygonize.py`` (``--rounds N``, default 5);
results go to ``benchmarks/results/cli_polygonize.json``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # harness and geo_data sit next to this script
    sys.path.insert(0, str(HERE))

import harness  # noqa: E402

RESULTS_FILE = HERE / "results" / "cli_polygonize.json"
TARGET_RATIO = 0.5
"""Our whole process should take at most this fraction of gdal_polygonize.py's."""
HEAVY_MODULES = ("geopandas", "pandas", "dask", "distributed", "SimpleITK", "pydicom", "highdicom")
"""Modules the polygonize command must not need to import."""


def ours_command(raster: Path, out: Path) -> list[str]:
    """``domainseg polygonize RASTER -o OUT``, the console script beside this interpreter.

    Parameters
    ----------
    raster
        Label GeoTIFF.
    out
        GeoPackage to write.

    Returns
    -------
    list of str
        The command.
    """
    script = harness.installed_command("domainseg") or "domainseg"
    return [script, "polygonize", str(raster), "-o", str(out)]


def run_process(command: list[str], out: Path) -> dict[str, float]:
    """Run ``command`` into a fresh ``out``; its wall, user, system time and peak RSS.

    Parameters
    ----------
    command
        The command line.
    out
        Its output file, removed first (GDAL would append to it).

    Returns
    -------
    dict
        ``wall_s``, ``user_s``, ``sys_s``, ``peak_rss_bytes``.

    Raises
    ------
    subprocess.CalledProcessError
        If the command fails.
    """
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read() if process.stderr else b""
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command, stderr=stderr)
    return {
        "wall_s": wall,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "peak_rss_bytes": usage.ru_maxrss * 1024,
    }


def import_profile(raster: Path, out: Path) -> dict[str, Any]:
    """Import time of the polygonize command, and which heavy modules it loads.

    Parameters
    ----------
    raster
        Label GeoTIFF.
    out
        Output file (removed first).

    Returns
    -------
    dict
        ``cli_import_s`` (``import napari_domainseg.cli``), ``total_import_s`` (every
        import of the run), ``top`` (the ten slowest top-level imports, cumulative
        seconds) and ``heavy_loaded`` (which of :data:`HEAVY_MODULES` were imported).
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
    total = 0.0
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match and len(match.group(3)) == 1:  # top level: one space of indentation
            top_level[match.group(4)] = int(match.group(2)) / 1e6
            total += int(match.group(2)) / 1e6
    loaded = next(
        (ln.split()[1:] for ln in done.stdout.splitlines() if ln.startswith("LOADED")), []
    )
    top = sorted(top_level.items(), key=lambda item: -item[1])[:10]
    return {
        "cli_import_s": top_level.get("napari_domainseg.cli", float("nan")),
        "total_import_s": total,
        "top": [[name, round(seconds, 4)] for name, seconds in top],
        "heavy_loaded": loaded,
    }


def bench(raster: Path, rounds: int, tmp: Path) -> dict[str, Any]:
    """Alternate ours and GDAL for ``rounds`` rounds after a checked warm-up run each.

    Parameters
    ----------
    raster
        Label GeoTIFF.
    rounds
        Timed rounds.
    tmp
        Scratch folder.

    Returns
    -------
    dict
        Per-run measurements, per-round ratios and their summary, the output check.
    """
    commands = {
        "ours": ours_command(raster, tmp / "ours.gpkg"),
        "gdal": harness.gdal_polygonize_command(raster, tmp / "gdal.gpkg", "GPKG"),
    }
    outputs = {"ours": tmp / "ours.gpkg", "gdal": tmp / "gdal.gpkg"}
    for name, command in commands.items():  # warm-up, checked
        run_process(command, outputs[name])
    features = {name: harness.feature_count(path) for name, path in outputs.items()}
    print(f"features: {features}")
    runs: dict[str, list[dict[str, float]]] = {"ours": [], "gdal": []}
    for index in range(rounds):
        order = ("ours", "gdal") if index % 2 == 0 else ("gdal", "ours")
        for name in order:
            runs[name].append(run_process(commands[name], outputs[name]))
        ratio = runs["ours"][-1]["wall_s"] / runs["gdal"][-1]["wall_s"]
        print(
            f"round {index + 1}: ours {runs['ours'][-1]['wall_s']:.2f} s, "
            f"gdal {runs['gdal'][-1]['wall_s']:.2f} s, ratio {ratio:.3f}"
        )
    ratios = [o["wall_s"] / g["wall_s"] for o, g in zip(runs["ours"], runs["gdal"], strict=True)]
    return {
        "commands": commands,
        "features": features,
        "features_equal": len(set(features.values())) == 1,
        "runs": runs,
        "wall": {name: harness.summary([r["wall_s"] for r in rs]) for name, rs in runs.items()},
        "ratios": [round(r, 4) for r in ratios],
        "ratio_median": float(np.median(ratios)),
        "ratio_max": max(ratios),
        "ratio_of_medians": float(
            np.median([r["wall_s"] for r in runs["ours"]])
            / np.median([r["wall_s"] for r in runs["gdal"]])
        ),
    }


def markdown(results: dict[str, Any]) -> str:
    """The results as markdown.

    Parameters
    ----------
    results
        The results dictionary.

    Returns
    -------
    str
        Markdown tables.
    """
    row = harness.markdown_row
    timing = results["timing"]
    lines = [
        row(["whole process", "median wall s", "best s", "median user s", "median sys s",
             "peak RSS MiB"]),
        row(["---", "---:", "---:", "---:", "---:", "---:"]),
    ]  # fmt: skip
    for name, label in (("ours", "`domainseg polygonize`"), ("gdal", "`gdal_polygonize.py`")):
        runs = timing["runs"][name]
        lines.append(
            row(
                [
                    label,
                    f"{timing['wall'][name]['median_s']:.2f}",
                    f"{timing['wall'][name]['best_s']:.2f}",
                    f"{np.median([r['user_s'] for r in runs]):.2f}",
                    f"{np.median([r['sys_s'] for r in runs]):.2f}",
                    f"{max(r['peak_rss_bytes'] for r in runs) / harness.MIB:.0f}",
                ]
            )
        )
    lines += [
        "",
        f"Per-round ratios ours / GDAL: {', '.join(f'{r:.3f}' for r in timing['ratios'])}; "
        f"median {timing['ratio_median']:.3f}, max {timing['ratio_max']:.3f}.",
        f"Imports of the polygonize run: {results['imports']['total_import_s']:.2f} s "
        f"(heavy modules loaded: {', '.join(results['imports']['heavy_loaded']) or 'none'}).",
        "",
        *harness.targets_table(
            [
                {
                    "name": "whole process, ours / gdal_polygonize.py (median of rounds)",
                    "measured": timing["ratio_median"],
                    "goal": f"<= {TARGET_RATIO}",
                    "met": timing["ratio_median"] <= TARGET_RATIO,
                },
                {
                    "name": "same, worst round",
                    "measured": timing["ratio_max"],
                    "goal": f"<= {TARGET_RATIO}",
                    "met": timing["ratio_max"] <= TARGET_RATIO,
                },
            ]
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Generate the raster once, time both tools, print and save the results.

    Parameters
    ----------
    argv
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 (unmet targets are reported, not failures).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed alternating rounds")
    parser.add_argument("--size", type=int, default=10000, help="raster side in pixels")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help="JSON results file")
    args = parser.parse_args(argv)

    from geo_data import DATA_DIR, make_landcover

    raster = make_landcover(size=args.size)
    harness.warm_cache(raster)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench_cli_polygonize_", dir=DATA_DIR) as scratch:
        tmp = Path(scratch)
        imports = import_profile(raster, tmp / "imports.gpkg")
        print(f"imports: {imports}")
        timing = bench(raster, args.rounds, tmp)
    results: dict[str, Any] = {
        "benchmark": "cli_polygonize",
        "date": harness.timestamp(),
        "machine": {
            **harness.platform_info(),
            "versions": harness.package_versions(
                ("napari-domainseg", "numpy", "rasterio", "pyogrio", "shapely")
            ),
            "gdal_polygonize": harness.gdal_polygonize_script(),
            "load_average": os.getloadavg(),
            **harness.git_state(),
        },
        "dataset": {"path": str(raster), "bytes": raster.stat().st_size, "size": args.size},
        "rounds": args.rounds,
        "imports": imports,
        "timing": timing,
    }
    harness.save_results(results, markdown(results), args.output)
    return 0


if __name__ == "__main__":
    status = main()
    if status:
        raise SystemExit(status)
