"""Benchmark: polygon export of a 10000x10000 land-cover raster, ours versus gdal_polygonize.

In one run, with a warm file cache, best and median of N wall times (methods interleaved
per round, one untimed warm-up/check run each first) of polygon export of the uint8
land-cover raster (6 classes, 0 unlabeled) to GeoPackage and to GeoJSON: napari-domainseg
``export_polygons(path, labels, RasterGrid(...))`` in process, on labels read once
beforehand with rasterio (the read is not timed), versus ``gdal_polygonize.py -q -mask SRC
SRC -f GPKG|GeoJSON`` as a whole subprocess. Both are 4-connected. GDAL's GeoJSON stays in
the source CRS (EPSG:32633, metres); ours is RFC 7946 (reprojected to EPSG:4326,
counter-clockwise exteriors, 7 decimals), so it does more work. Feature counts of both
outputs are recorded, and for GeoPackage the area per class. Peak memory of our export is
measured in a fresh process (``VmHWM`` reset after the labels are read), and GDAL's for
information. The first view of a big scene is ``bench_first_view.py``.

Run ``.venv/bin/python benchmarks/bench_geo.py`` (``--help`` for options; ``--quick``: a
1000x1000 raster, one round); results go to ``benchmarks/results/geo.json``. Test data are
generated once by ``geo_data.py``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import inspect
import json
import math
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
from harness import GIB, MIB  # noqa: E402

TARGET_POLYGON_RATIO = 0.5
"""Our polygon export's wall time should be at most this fraction of gdal_polygonize's."""
TARGET_PEAK_MEMORY = 4 * GIB
"""Peak RSS of the process exporting the 10000x10000 raster's polygons."""
FORMATS = {"gpkg": "GPKG", "geojson": "GeoJSON"}
LABELS = {"gpkg": "GeoPackage", "geojson": "GeoJSON"}


# --------------------------------------------------------------------------- polygon export


def read_labels(path: Path) -> tuple[np.ndarray, Any]:
    """The label band and its ``geo.grid.RasterGrid``, read whole with rasterio (untimed)."""
    import rasterio

    from napari_domainseg.geo.grid import RasterGrid

    with rasterio.open(path) as src:
        return src.read(1), RasterGrid.of_dataset(src)


def export_ours(path: Path, labels: np.ndarray, grid: Any) -> None:
    """napari-domainseg ``export_polygons`` (overwriting, defaults otherwise)."""
    from napari_domainseg.geo.vectors import export_polygons

    export_polygons(path, labels, grid, overwrite=True)


def memory_child(raster: Path, out: Path) -> dict[str, Any]:
    """In a fresh process: read the labels, then the peak RSS of one ``export_polygons``.

    ``peak_rss_bytes`` is ``VmHWM`` during the export: the whole process, labels and
    imports included.
    """
    import napari_domainseg.geo.vectors  # noqa: F401

    labels, grid = read_labels(raster)
    gc.collect()
    _, rss = harness.peak_rss_during(lambda: export_ours(out, labels, grid))
    return {**rss.as_dict(), "labels_bytes": int(labels.nbytes)}


def class_areas(path: Path, column: str) -> dict[int, float]:
    """Total polygon area per class value, in the file's (projected) CRS units squared."""
    import pyogrio

    frame = pyogrio.read_dataframe(path, columns=[column])
    areas = frame.geometry.area.groupby(frame[column].to_numpy()).sum()
    return {int(k): float(v) for k, v in areas.items()}


def check_polygons(labels: np.ndarray, grid: Any, outputs: dict[str, dict[str, Path]]) -> dict:
    """Per format: sizes and feature counts of both outputs; for GeoPackage, whether both
    files' class areas equal the labelled pixel areas."""
    t = grid.transform
    pixel_area = abs(t.a * t.e - t.b * t.d)
    counts = np.bincount(labels.ravel(), minlength=256)
    expected = {int(v): float(counts[v]) * pixel_area for v in np.flatnonzero(counts) if v != 0}
    result: dict[str, Any] = {}
    for key, paths in outputs.items():
        features = {name: harness.feature_count(p) for name, p in paths.items()}
        entry: dict[str, Any] = {
            "features": features,
            "bytes": {name: p.stat().st_size for name, p in paths.items()},
            "features_equal": len(set(features.values())) == 1,
        }
        if key == "gpkg":
            areas = {"ours": class_areas(paths["ours"], "label")}
            areas["gdal"] = class_areas(paths["gdal"], "DN")
            entry["class_areas_equal_pixels"] = {
                name: set(a) == set(expected)
                and all(math.isclose(a[k], expected[k], rel_tol=1e-6) for k in expected)
                for name, a in areas.items()
            }
        result[key] = entry
    return result


def bench_polygons(raster: Path, repeat: int, repeat_geojson: int, tmp: Path) -> dict[str, Any]:
    """Time polygon export, ours versus gdal_polygonize, GeoPackage and GeoJSON; memory."""
    tmp.mkdir(parents=True, exist_ok=True)
    labels, grid = read_labels(raster)
    fractions = np.bincount(labels.ravel()) / labels.size
    dataset = {
        "path": str(raster),
        "file_bytes": raster.stat().st_size,
        "shape": list(labels.shape),
        "dtype": str(labels.dtype),
        "class_fractions": {str(v): round(float(f), 4) for v, f in enumerate(fractions) if f},
    }
    outputs = {key: {"ours": tmp / f"ours.{key}", "gdal": tmp / f"gdal.{key}"} for key in FORMATS}
    tasks, prepare, rounds = {}, {}, {}
    for key, driver in FORMATS.items():
        ours, gdal = outputs[key]["ours"], outputs[key]["gdal"]
        command = harness.gdal_polygonize_command(raster, gdal, driver)
        tasks[f"ours_{key}"] = lambda ours=ours: export_ours(ours, labels, grid)
        tasks[f"gdal_{key}"] = lambda c=command: subprocess.run(c, check=True, capture_output=True)
        for name, out in ((f"ours_{key}", ours), (f"gdal_{key}", gdal)):
            prepare[name] = lambda out=out: out.unlink(missing_ok=True)  # GDAL would add to it
            rounds[name] = repeat_geojson if key == "geojson" else repeat

    harness.warm_up(tasks, prepare)  # and check its outputs
    check = check_polygons(labels, grid, outputs)
    print(f"polygon outputs: {json.dumps({k: v['features'] for k, v in check.items()})}")
    timing = harness.summaries(harness.time_interleaved(tasks, rounds, prepare))
    print("polygon timings done")
    memory = {}
    for key, driver in FORMATS.items():
        ours = harness.run_child(
            __file__, "--memory-child", str(tmp / f"memory.{key}"), "--landcover", str(raster)
        )
        gdal_out = tmp / f"memory_gdal.{key}"
        gdal_out.unlink(missing_ok=True)
        gdal = harness.children_peak_rss(harness.gdal_polygonize_command(raster, gdal_out, driver))
        memory[key] = {"ours": ours, "gdal_peak_rss_bytes": gdal}
    print("polygon memory done")

    def ratios(stat: str) -> dict[str, float]:
        return {k: timing[f"ours_{k}"][stat] / timing[f"gdal_{k}"][stat] for k in FORMATS}

    return {
        "dataset": dataset,
        "rounds": rounds,
        "timing": timing,
        "ratio_ours_over_gdal": ratios("best_s"),
        "ratio_ours_over_gdal_median": ratios("median_s"),
        "check": check,
        "memory": memory,
    }


# --------------------------------------------------------------------------- info and report


def machine_info() -> dict[str, Any]:
    """CPU, OS, Python, library and GDAL versions, the checkout's commit and state."""
    import pyogrio
    import rasterio

    from napari_domainseg.geo import vectors

    script = harness.gdal_polygonize_script()
    interpreter = Path(script).read_text(encoding="utf-8").splitlines()[0].lstrip("#! ")
    gdal = subprocess.run(
        [*interpreter.split(), "-c", "from osgeo import gdal; print(gdal.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    geo_sources = sorted((HERE.parent / "src" / "napari_domainseg" / "geo").glob("*.py"))
    packages = ("napari-domainseg", "numpy", "rasterio", "pyogrio", "geopandas", "shapely",
                "pyproj", "dask", "scipy")  # fmt: skip
    return harness.machine(
        packages,
        gdal_rasterio=rasterio.__gdal_version__,
        gdal_pyogrio=pyogrio.__gdal_version_string__,
        gdal_polygonize={
            "script": script,
            "interpreter": interpreter,
            "gdal": gdal.stdout.strip() or "unknown",
        },
        export_polygons_signature=str(inspect.signature(vectors.export_polygons)),
        geo_sources_sha256={
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in geo_sources
        },
    )


def polygon_tables(polygons: dict[str, Any]) -> list[str]:
    """The polygon export's timing and memory tables."""
    data, timing, check = polygons["dataset"], polygons["timing"], polygons["check"]
    names = {"gpkg": "GeoPackage", "geojson": "GeoJSON (ours RFC 7946 EPSG:4326; GDAL UTM)"}
    rows = []
    for key, label in names.items():
        ours, gdal = timing[f"ours_{key}"], timing[f"gdal_{key}"]
        features, sizes = check[key]["features"], check[key]["bytes"]
        rows.append(
            [label, f"{ours['best_s']:.2f}", f"{ours['median_s']:.2f}",
             f"{gdal['best_s']:.2f}", f"{gdal['median_s']:.2f}",
             f"{polygons['ratio_ours_over_gdal'][key]:.2f}",
             f"{polygons['ratio_ours_over_gdal_median'][key]:.2f}",
             f"{features['ours']} / {features['gdal']}",
             f"{sizes['ours'] / MIB:.0f} / {sizes['gdal'] / MIB:.0f}"]
        )  # fmt: skip
    memory = polygons["memory"]
    memory_rows = [
        [label, f"{memory[key]['ours']['peak_rss_bytes'] / MIB:.0f}",
         f"{memory[key]['ours']['growth_bytes'] / MIB:.0f}",
         f"{memory[key]['gdal_peak_rss_bytes'] / MIB:.0f}"]
        for key, label in LABELS.items()
    ]  # fmt: skip
    header = ["output", "ours best s", "ours median s", "gdal_polygonize best s",
              "gdal_polygonize median s", "ours / gdal (best)", "ours / gdal (median)",
              "features ours / gdal", "MiB ours / gdal"]  # fmt: skip
    memory_header = ["peak memory (fresh process)", "ours peak RSS MiB", "ours growth MiB",
                     "gdal_polygonize peak RSS MiB (info)"]  # fmt: skip
    return [
        f"Polygon export of a {data['shape'][0]}x{data['shape'][1]} {data['dtype']} "
        f"land-cover raster ({len(data['class_fractions']) - 1} classes + unlabeled), "
        f"warm cache, labels already in memory for ours; rounds {polygons['rounds']}",
        "",
        *harness.table(header, rows),
        "",
        *harness.table(memory_header, memory_rows),
    ]


def targets(polygons: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The performance targets of the polygon export: time ratio and peak memory."""
    found: dict[str, dict[str, Any]] = {}
    for key, label in LABELS.items():
        ratio = polygons["ratio_ours_over_gdal"][key]
        found[f"polygon_ratio_{key}"] = harness.target(
            f"polygon export to {label}: our time / gdal_polygonize time (best)",
            ratio, f"<= {TARGET_POLYGON_RATIO:g}", ratio <= TARGET_POLYGON_RATIO, f"{ratio:.2f}",
        )  # fmt: skip
        peak = polygons["memory"][key]["ours"]["peak_rss_bytes"]
        found[f"peak_memory_{key}"] = harness.target(
            f"polygon export to {label}: peak RSS of the whole process", peak,
            f"<= {TARGET_PEAK_MEMORY / GIB:g} GiB", peak <= TARGET_PEAK_MEMORY,
            f"{peak / GIB:.2f} GiB",
        )  # fmt: skip
    return found


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Generate (once) the raster, run every measurement, print and save the results."""
    parser = harness.arguments(__doc__, "geo", "a 1000x1000 raster, one round")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds, polygons to GPKG")
    parser.add_argument("--repeat-geojson", type=int, default=3, help="rounds, to GeoJSON")
    parser.add_argument("--landcover", type=Path, help="label GeoTIFF (default: generated)")
    parser.add_argument("--memory-child", type=Path, metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(args.landcover, args.memory_child)))
        return 0
    if args.quick:
        args.repeat = args.repeat_geojson = 1

    from geo_data import DATA_DIR, make_landcover  # not in memory children

    started = time.perf_counter()
    results: dict[str, Any] = {
        "benchmark": "geo",
        "date": harness.timestamp(),
        "machine": machine_info(),
        "notes": [
            "Polygon export: ours is timed in process from labels already in memory (the "
            "rasterio read of the GeoTIFF is not timed); gdal_polygonize.py is timed as a "
            "whole subprocess (interpreter start, raster read, polygonize, write).",
            "GeoJSON: gdal_polygonize writes the source CRS (EPSG:32633); ours writes RFC 7946 "
            "(reprojected to EPSG:4326, counter-clockwise exteriors, 7 decimals).",
            "Peak memory: VmHWM of a fresh process, reset after imports and the labels read, "
            "so it is the whole process's peak during the export.",
        ],
    }
    raster = make_landcover(args.landcover, **({"size": 1000} if args.quick else {}))
    harness.warm_cache(raster)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench_geo_", dir=DATA_DIR) as scratch:
        polygons = bench_polygons(raster, args.repeat, args.repeat_geojson, Path(scratch))
    results["polygons"] = polygons
    results["targets"] = targets(polygons)
    results["wall_time_s"] = round(time.perf_counter() - started, 1)
    lines = [*polygon_tables(polygons), "", *harness.targets_table(results["targets"].values())]
    harness.save_results(results, lines, args.output)
    print(f"{results['wall_time_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
