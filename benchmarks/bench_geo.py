"""Benchmark: polygon export of a 10000x10000 land-cover raster, and first view of a Sentinel-2 COG.

In one run, with a warm file cache, best and median of N wall times (methods interleaved
per round, one untimed warm-up/check run each first) of

* polygon export of the uint8 land-cover raster (6 classes, 0 unlabeled) to GeoPackage
  and to GeoJSON: napari-domainseg ``export_polygons(path, labels, Grid(...))`` in
  process, on labels read once beforehand with rasterio (the read is not timed), versus
  ``gdal_polygonize.py -q -mask SRC SRC -f GPKG|GeoJSON`` as a whole subprocess. Both
  are 4-connected. GDAL's GeoJSON stays in the source CRS (EPSG:32633, metres); ours is
  RFC 7946 (reprojected to EPSG:4326, counter-clockwise exteriors, 7 decimals), so it
  does more work. Feature counts of both outputs are recorded, and for GeoPackage the
  area per class. Peak memory of our export is measured in a fresh process
  (``VmHWM`` reset after the labels are read), and GDAL's for information;
* time to first view of the 10980x10980x4 uint16 COG: ours is ``open_scene(path)``, then
  for each of the three composite bands ``scene.stretch(band)`` and the coarsest pyramid
  level whose longest side is at least 1024 pixels, materialised with ``np.asarray``;
  versus reading the whole scene with rasterio (``src.read()``), and the same plus a
  2-98 % stretch of the three composite bands (what a naive plugin does).

Run ``.venv/bin/python benchmarks/bench_geo.py`` (``--help`` for options); results go to
``benchmarks/results/geo.json``. Test data are generated once by ``geo_data.py``.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # harness and geo_data sit next to this script
    sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from harness import GIB, MIB  # noqa: E402

RESULTS_DIR = HERE / "results"
RESULTS_FILE = RESULTS_DIR / "geo.json"

TARGET_POLYGON_RATIO = 0.5
"""Our polygon export's wall time should be at most this fraction of gdal_polygonize's."""
TARGET_PEAK_MEMORY = 4 * GIB
"""Peak RSS of the process exporting the 10000x10000 raster's polygons."""
FIRST_VIEW_MIN_SIDE = 1024
"""The first view materialises the coarsest level whose longest side is at least this."""
FORMATS = {"gpkg": "GPKG", "geojson": "GeoJSON"}


# --------------------------------------------------------------------------- polygon export


def read_labels(path: Path) -> tuple[np.ndarray, Any]:
    """The label band and its grid, read whole with rasterio (untimed).

    Parameters
    ----------
    path
        Land-cover GeoTIFF.

    Returns
    -------
    tuple
        ``(labels, grid)``: the uint8 array and a ``napari_domainseg.geo.label_raster.Grid``.
    """
    import rasterio

    from napari_domainseg.geo.label_raster import Grid

    with rasterio.open(path) as src:
        labels = src.read(1)
        grid = Grid(src.height, src.width, src.transform, src.crs.to_wkt())
    return labels, grid


def export_ours(path: Path, labels: np.ndarray, grid: Any) -> None:
    """napari-domainseg ``export_polygons`` (overwriting, defaults otherwise).

    Parameters
    ----------
    path
        ``.gpkg`` or ``.geojson`` output.
    labels
        Label array.
    grid
        Its ``Grid``.
    """
    from napari_domainseg.geo.vectors import export_polygons

    export_polygons(path, labels, grid, overwrite=True)


def run_gdal_polygonize(raster: Path, out: Path, driver: str) -> None:
    """Run ``gdal_polygonize.py`` as a subprocess into a fresh ``out``.

    Parameters
    ----------
    raster
        Label GeoTIFF.
    out
        Output vector file (must not exist: GDAL would add to it).
    driver
        OGR driver name.
    """
    command = harness.gdal_polygonize_command(raster, out, driver)
    subprocess.run(command, check=True, capture_output=True)


def gdal_peak_rss(raster: Path, out: Path, driver: str) -> int:
    """Peak RSS of one ``gdal_polygonize.py`` run, in bytes.

    The command runs under a small fresh Python that reports its children's
    ``ru_maxrss``: Linux carries a parent's peak over into a child at ``exec``, so
    this reads at most the wrapper's few MiB high, not this process's RSS.

    Parameters
    ----------
    raster
        Label GeoTIFF.
    out
        Output vector file (removed first).
    driver
        OGR driver name.

    Returns
    -------
    int
        Peak resident set size of the GDAL process.
    """
    out.unlink(missing_ok=True)
    code = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    gdal_command = harness.gdal_polygonize_command(raster, out, driver)
    command = [sys.executable, "-S", "-c", code, *gdal_command]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return int(done.stdout.split()[-1]) * 1024


def memory_child(raster: Path, out: Path) -> dict[str, Any]:
    """In a fresh process: read the labels, then the peak RSS of one ``export_polygons``.

    Parameters
    ----------
    raster
        Label GeoTIFF.
    out
        Output vector file.

    Returns
    -------
    dict
        ``peak_rss_bytes`` (``VmHWM`` during the export: the whole process, labels
        and imports included), ``rss_before_bytes``, ``growth_bytes``,
        ``labels_bytes``, ``peak_reset``.
    """
    import napari_domainseg.geo.vectors  # noqa: F401

    labels, grid = read_labels(raster)
    gc.collect()
    _, rss = harness.peak_rss_during(lambda: export_ours(out, labels, grid))
    return {
        "peak_rss_bytes": rss.peak_rss_bytes,
        "rss_before_bytes": rss.rss_before_bytes,
        "growth_bytes": rss.growth_bytes,
        "labels_bytes": int(labels.nbytes),
        "peak_reset": rss.peak_reset,
    }


def measure_memory(raster: Path, out: Path) -> dict[str, Any]:
    """Run :func:`memory_child` in a fresh interpreter and return its result.

    Parameters
    ----------
    raster
        Label GeoTIFF.
    out
        Output vector file.

    Returns
    -------
    dict
        The child's result.
    """
    return harness.run_child(__file__, "--memory-child", str(out), "--landcover", str(raster))


def class_areas(path: Path, column: str) -> dict[int, float]:
    """Total polygon area per class value, in the file's CRS units squared.

    Parameters
    ----------
    path
        A vector file in a projected CRS.
    column
        Attribute holding the class value.

    Returns
    -------
    dict
        Class value to summed area.
    """
    import pyogrio

    frame = pyogrio.read_dataframe(path, columns=[column])
    areas = frame.geometry.area.groupby(frame[column].to_numpy()).sum()
    return {int(k): float(v) for k, v in areas.items()}


def check_polygons(
    labels: np.ndarray, grid: Any, outputs: dict[str, dict[str, Path]]
) -> dict[str, Any]:
    """Feature counts of every output; for GeoPackage, area per class against the pixels.

    Parameters
    ----------
    labels
        The label array.
    grid
        Its grid (for the pixel area).
    outputs
        Format key to ``{"ours": path, "gdal": path}``.

    Returns
    -------
    dict
        Per format: sizes in bytes and feature counts, whether they match; for
        GeoPackage, whether both files' class areas equal the labelled pixel areas.
    """
    pixel_area = abs(grid.transform.a * grid.transform.e - grid.transform.b * grid.transform.d)
    counts = np.bincount(labels.ravel(), minlength=256)
    expected = {int(v): float(counts[v]) * pixel_area for v in np.flatnonzero(counts) if v != 0}
    result: dict[str, Any] = {}
    for key, paths in outputs.items():
        entry: dict[str, Any] = {
            "features": {name: harness.feature_count(p) for name, p in paths.items()},
            "bytes": {name: p.stat().st_size for name, p in paths.items()},
        }
        entry["features_equal"] = len(set(entry["features"].values())) == 1
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
    """Time polygon export, ours versus gdal_polygonize, GeoPackage and GeoJSON.

    Parameters
    ----------
    raster
        Label GeoTIFF.
    repeat
        Timed rounds for GeoPackage.
    repeat_geojson
        Timed rounds for GeoJSON.
    tmp
        Scratch folder.

    Returns
    -------
    dict
        Timings, ratios, output checks and memory.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    labels, grid = read_labels(raster)
    dataset = {
        "path": str(raster),
        "file_bytes": raster.stat().st_size,
        "shape": list(labels.shape),
        "dtype": str(labels.dtype),
        "class_fractions": {
            str(v): round(float(c) / labels.size, 4)
            for v, c in enumerate(np.bincount(labels.ravel()))
            if c
        },
    }
    outputs = {key: {"ours": tmp / f"ours.{key}", "gdal": tmp / f"gdal.{key}"} for key in FORMATS}
    tasks: dict[str, Callable[[], object]] = {}
    prepare: dict[str, Callable[[], object]] = {}
    rounds: dict[str, int] = {}
    for key, driver in FORMATS.items():
        ours, gdal = outputs[key]["ours"], outputs[key]["gdal"]
        tasks[f"ours_{key}"] = lambda ours=ours: export_ours(ours, labels, grid)
        tasks[f"gdal_{key}"] = lambda gdal=gdal, driver=driver: run_gdal_polygonize(
            raster, gdal, driver
        )
        prepare[f"ours_{key}"] = lambda ours=ours: ours.unlink(missing_ok=True)
        prepare[f"gdal_{key}"] = lambda gdal=gdal: gdal.unlink(missing_ok=True)
        for name in (f"ours_{key}", f"gdal_{key}"):
            rounds[name] = repeat_geojson if key == "geojson" else repeat

    # Warm-up and check run: each task once, untimed; its output is checked.
    harness.warm_up(tasks, prepare)
    check = check_polygons(labels, grid, outputs)
    print(f"polygon outputs: {json.dumps({k: v['features'] for k, v in check.items()})}")

    timing = harness.summaries(harness.time_interleaved(tasks, rounds, prepare))
    ratios = {
        key: timing[f"ours_{key}"]["best_s"] / timing[f"gdal_{key}"]["best_s"] for key in FORMATS
    }
    ratios_median = {
        key: timing[f"ours_{key}"]["median_s"] / timing[f"gdal_{key}"]["median_s"]
        for key in FORMATS
    }
    print("polygon timings done")
    memory = {
        key: {
            "ours": measure_memory(raster, tmp / f"memory.{key}"),
            "gdal_peak_rss_bytes": gdal_peak_rss(raster, tmp / f"memory_gdal.{key}", driver),
        }
        for key, driver in FORMATS.items()
    }
    print("polygon memory done")
    return {
        "dataset": dataset,
        "rounds": rounds,
        "timing": timing,
        "ratio_ours_over_gdal": ratios,
        "ratio_ours_over_gdal_median": ratios_median,
        "check": check,
        "memory": memory,
    }


# --------------------------------------------------------------------------- first view


def first_view_level(scene: Any) -> int:
    """Index of the coarsest pyramid level whose longest side is at least 1024 pixels.

    Parameters
    ----------
    scene
        A ``napari_domainseg.geo.scene.Scene``.

    Returns
    -------
    int
        Level index (0 = full resolution when no level qualifies but it).
    """
    chosen = 0
    for level in range(len(scene.factors)):
        if max(scene.level_shape(level)) >= FIRST_VIEW_MIN_SIDE:
            chosen = level
    return chosen


def first_view_ours(path: Path) -> dict[str, Any]:
    """napari-domainseg: open the scene, stretch and materialise the composite at screen size.

    Parameters
    ----------
    path
        The COG.

    Returns
    -------
    dict
        ``level``, ``shape``, ``stretch`` per band, ``arrays`` (the materialised levels).
    """
    from napari_domainseg.geo.scene import open_scene

    scene = open_scene(path)
    bands = scene.composite() or (0,)
    level = first_view_level(scene)
    stretches, arrays = [], []
    for band in bands:
        stretches.append(scene.stretch(band))
        arrays.append(np.asarray(scene.band_pyramid(band)[level]))
    return {
        "bands": list(bands),
        "level": level,
        "shape": list(arrays[0].shape),
        "stretch": stretches,
        "arrays": arrays,
    }


def read_whole(path: Path) -> np.ndarray:
    """rasterio: read every band of the scene at full resolution.

    Parameters
    ----------
    path
        The COG.

    Returns
    -------
    numpy.ndarray
        Array (bands, rows, columns).
    """
    import rasterio

    with rasterio.open(path) as src:
        return src.read()


def read_whole_and_stretch(path: Path, bands: tuple[int, ...]) -> list[tuple[float, float]]:
    """What a naive plugin does: read the whole scene, then 2-98 % of each shown band.

    Parameters
    ----------
    path
        The COG.
    bands
        0-based bands to stretch (the composite's red, green, blue).

    Returns
    -------
    list of tuple
        (low, high) per band.
    """
    data = read_whole(path)
    return [tuple(float(v) for v in np.percentile(data[b], (2.0, 98.0))) for b in bands]


def bench_first_view(path: Path, repeat: int) -> dict[str, Any]:
    """Time to first view of the COG: ours versus whole reads with rasterio.

    Parameters
    ----------
    path
        The COG.
    repeat
        Timed rounds.

    Returns
    -------
    dict
        Dataset description, timings, ratios and a check of ours against the whole read.
    """
    import rasterio

    from napari_domainseg.geo.scene import open_scene

    scene = open_scene(path)
    bands = scene.composite() or (0,)
    with rasterio.open(path) as src:
        dataset = {
            "path": str(path),
            "file_bytes": path.stat().st_size,
            "shape": [src.count, src.height, src.width],
            "dtype": src.dtypes[0],
            "band_names": list(scene.band_names),
            "overviews": src.overviews(1),
            "layout": src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT"),
            "compression": src.tags(ns="IMAGE_STRUCTURE").get("COMPRESSION"),
            "blocks": list(src.block_shapes[0]),
            "pyramid_shapes": [list(scene.level_shape(k)) for k in range(len(scene.factors))],
        }
    # Warm-up and check run.
    ours = first_view_ours(path)
    naive_stretch = read_whole_and_stretch(path, tuple(bands))
    check = {
        "composite_bands": [scene.band_names[b] for b in bands],
        "level": ours["level"],
        "level_shape": ours["shape"],
        "stretch_ours": [list(s) for s in ours["stretch"]],
        "stretch_full_resolution": [list(s) for s in naive_stretch],
        "level_dtype": str(ours["arrays"][0].dtype),
    }
    del ours
    gc.collect()
    tasks: dict[str, Callable[[], object]] = {
        "ours": lambda: first_view_ours(path),
        "rasterio_read": lambda: read_whole(path),
        "rasterio_read_stretch": lambda: read_whole_and_stretch(path, tuple(bands)),
    }
    timing = harness.summaries(harness.time_interleaved(tasks, repeat))
    print("first view timings done")
    return {
        "dataset": dataset,
        "check": check,
        "timing": timing,
        "ratio_ours_over": {
            name: timing["ours"]["best_s"] / timing[name]["best_s"]
            for name in ("rasterio_read", "rasterio_read_stretch")
        },
    }


# --------------------------------------------------------------------------- info


def machine_info() -> dict[str, Any]:
    """CPU, OS, Python, library and GDAL versions, the checkout's commit and state.

    Returns
    -------
    dict
        Machine and software description for the JSON results.
    """
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
    return {
        **harness.platform_info(),
        "versions": harness.package_versions(
            (
                "napari-domainseg",
                "numpy",
                "rasterio",
                "pyogrio",
                "geopandas",
                "shapely",
                "pyproj",
                "dask",
                "scipy",
            )
        ),
        "gdal_rasterio": rasterio.__gdal_version__,
        "gdal_pyogrio": pyogrio.__gdal_version_string__,
        "gdal_polygonize": {
            "script": script,
            "interpreter": interpreter,
            "gdal": gdal.stdout.strip() or "unknown",
        },
        "export_polygons_signature": str(inspect.signature(vectors.export_polygons)),
        **harness.git_state(),
        "geo_sources_sha256": {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in geo_sources
        },
    }


# --------------------------------------------------------------------------- report


_row = harness.markdown_row


def markdown_tables(results: dict[str, Any]) -> str:
    """The results as markdown tables: polygon export, its memory, first view, targets.

    Parameters
    ----------
    results
        The full results dictionary.

    Returns
    -------
    str
        Markdown text.
    """
    lines: list[str] = []
    polygons = results.get("polygons")
    if polygons:
        data = polygons["dataset"]
        timing, check = polygons["timing"], polygons["check"]
        lines += [
            f"Polygon export of a {data['shape'][0]}x{data['shape'][1]} {data['dtype']} "
            f"land-cover raster ({len(data['class_fractions']) - 1} classes + unlabeled), "
            "warm cache, labels already in memory for ours; "
            f"rounds {polygons['rounds']}",
            "",
            _row(
                [
                    "output",
                    "ours best s",
                    "ours median s",
                    "gdal_polygonize best s",
                    "gdal_polygonize median s",
                    "ours / gdal (best)",
                    "ours / gdal (median)",
                    "features ours / gdal",
                    "MiB ours / gdal",
                ]
            ),
            _row(["---", *["---:"] * 8]),
        ]
        names = {"gpkg": "GeoPackage", "geojson": "GeoJSON (ours RFC 7946 EPSG:4326; GDAL UTM)"}
        for key, label in names.items():
            ours, gdal = timing[f"ours_{key}"], timing[f"gdal_{key}"]
            features, sizes = check[key]["features"], check[key]["bytes"]
            lines.append(
                _row(
                    [
                        label,
                        f"{ours['best_s']:.2f}",
                        f"{ours['median_s']:.2f}",
                        f"{gdal['best_s']:.2f}",
                        f"{gdal['median_s']:.2f}",
                        f"{polygons['ratio_ours_over_gdal'][key]:.2f}",
                        f"{polygons['ratio_ours_over_gdal_median'][key]:.2f}",
                        f"{features['ours']} / {features['gdal']}",
                        f"{sizes['ours'] / MIB:.0f} / {sizes['gdal'] / MIB:.0f}",
                    ]
                )
            )
        lines += [
            "",
            _row(
                [
                    "peak memory (fresh process)",
                    "ours peak RSS MiB",
                    "ours growth MiB",
                    "gdal_polygonize peak RSS MiB (info)",
                ]
            ),
            _row(["---", "---:", "---:", "---:"]),
        ]
        for key, label in (("gpkg", "GeoPackage"), ("geojson", "GeoJSON")):
            memory = polygons["memory"][key]
            lines.append(
                _row(
                    [
                        label,
                        f"{memory['ours']['peak_rss_bytes'] / MIB:.0f}",
                        f"{memory['ours']['growth_bytes'] / MIB:.0f}",
                        f"{memory['gdal_peak_rss_bytes'] / MIB:.0f}",
                    ]
                )
            )
    view = results.get("first_view")
    if view:
        data, timing = view["dataset"], view["timing"]
        check = view["check"]
        shape = data["shape"]
        if lines:
            lines.append("")
        lines += [
            f"First view of a {shape[1]}x{shape[2]}x{shape[0]} {data['dtype']} COG "
            f"({data['file_bytes'] / MIB:.0f} MiB, overviews {data['overviews']}), "
            f"composite {'/'.join(check['composite_bands'])}, warm cache, "
            f"best of {results['repeat_first_view']}",
            "",
            _row(["method", "best s", "median s", "ours / this (best)"]),
            _row(["---", "---:", "---:", "---:"]),
        ]
        labels = {
            "ours": (
                "ours: `open_scene`, 3x `stretch` + level "
                f"{check['level']} ({check['level_shape'][0]}x{check['level_shape'][1]})"
            ),
            "rasterio_read": "rasterio `src.read()` of the whole scene",
            "rasterio_read_stretch": "whole read + 2-98 % stretch of 3 bands (naive plugin)",
        }
        for name, label in labels.items():
            entry = timing[name]
            ratio = timing["ours"]["best_s"] / entry["best_s"]
            lines.append(
                _row([label, f"{entry['best_s']:.3f}", f"{entry['median_s']:.3f}", f"{ratio:.3f}"])
            )
    lines += ["", *harness.targets_table(results["targets"].values())]
    return "\n".join(lines)


def targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Evaluate the performance targets.

    Parameters
    ----------
    results
        Results with a ``polygons`` entry.

    Returns
    -------
    dict
        Per target: name, measured value and text, goal text and whether it is met.
    """
    found: dict[str, dict[str, Any]] = {}
    polygons = results.get("polygons")
    if not polygons:
        return found
    for key, label in (("gpkg", "GeoPackage"), ("geojson", "GeoJSON")):
        ratio = polygons["ratio_ours_over_gdal"][key]
        found[f"polygon_ratio_{key}"] = {
            "name": f"polygon export to {label}: our time / gdal_polygonize time (best)",
            "measured": ratio,
            "measured_text": f"{ratio:.2f}",
            "goal": f"<= {TARGET_POLYGON_RATIO:g}",
            "met": ratio <= TARGET_POLYGON_RATIO,
        }
        peak = polygons["memory"][key]["ours"]["peak_rss_bytes"]
        found[f"peak_memory_{key}"] = {
            "name": f"polygon export to {label}: peak RSS of the whole process",
            "measured": peak,
            "measured_text": f"{peak / GIB:.2f} GiB",
            "goal": f"<= {TARGET_PEAK_MEMORY / GIB:g} GiB",
            "met": peak <= TARGET_PEAK_MEMORY,
        }
    return found


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
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds, polygons to GPKG")
    parser.add_argument(
        "--repeat-geojson", type=int, default=3, help="timed rounds, polygons to GeoJSON"
    )
    parser.add_argument(
        "--repeat-first-view", type=int, default=5, help="timed rounds, first view of the COG"
    )
    parser.add_argument("--landcover", type=Path, help="label GeoTIFF (default: generated)")
    parser.add_argument("--scene", type=Path, help="COG (default: generated)")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help="JSON results file")
    parser.add_argument("--skip-polygons", action="store_true", help="skip polygon export")
    parser.add_argument("--skip-first-view", action="store_true", help="skip the COG first view")
    parser.add_argument("--memory-child", type=Path, metavar="OUT", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Generate (once) the data, run every measurement, print and save the results.

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
        print(json.dumps(memory_child(args.landcover, args.memory_child)))
        return 0

    from geo_data import DATA_DIR, make_landcover, make_sentinel_cog  # not in memory children

    started = time.perf_counter()
    results: dict[str, Any] = {
        "benchmark": "geo",
        "date": harness.timestamp(),
        "machine": machine_info(),
        "repeat_first_view": args.repeat_first_view,
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
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench_geo_", dir=DATA_DIR) as scratch:
        tmp = Path(scratch)
        if not args.skip_polygons:
            raster = make_landcover(args.landcover)
            harness.warm_cache(raster)
            results["polygons"] = bench_polygons(
                raster, args.repeat, args.repeat_geojson, tmp / "polygons"
            )
        if not args.skip_first_view:
            scene = make_sentinel_cog(args.scene)
            harness.warm_cache(scene)
            results["first_view"] = bench_first_view(scene, args.repeat_first_view)

    results["targets"] = targets(results)
    results["wall_time_s"] = round(time.perf_counter() - started, 1)
    harness.save_results(results, markdown_tables(results), args.output)
    print(f"\nresults: {args.output} ({results['wall_time_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    status = main()
    if status:  # no SystemExit(0): run_all.py runs the next benchmark after this one
        raise SystemExit(status)
