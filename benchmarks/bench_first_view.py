"""Benchmark: time to first view of a 10980x10980x4 Sentinel-2-sized COG, ours versus rasterio.

In one run, with a warm file cache, best and median of N wall times (methods interleaved
per round, one untimed warm-up/check run first): ours is ``open_scene(path)``, then for
each of the three composite bands ``scene.stretch(band)`` and the coarsest pyramid level
whose longest side is at least 1024 pixels, materialised with ``np.asarray``; versus
reading the whole scene with rasterio (``src.read()``), and the same plus a 2-98 % stretch
of the three composite bands (what a naive plugin does).

Run ``.venv/bin/python benchmarks/bench_first_view.py`` (``--quick``: a 2048x2048 COG, one
round); results go to ``benchmarks/results/first_view.json``. The COG is generated once by
``geo_data.py``.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # harness and geo_data sit next to this script
    sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from harness import MIB  # noqa: E402

FIRST_VIEW_MIN_SIDE = 1024
"""The first view materialises the coarsest level whose longest side is at least this."""


def first_view_ours(path: Path) -> dict[str, Any]:
    """napari-domainseg: open the scene, stretch and materialise the composite at screen size.

    The level is the coarsest whose longest side is at least :data:`FIRST_VIEW_MIN_SIDE`.
    """
    from napari_domainseg.geo.scene import open_scene

    scene = open_scene(path)
    bands = scene.composite() or (0,)
    levels = range(len(scene.factors))
    level = max([k for k in levels if max(scene.level_shape(k)) >= FIRST_VIEW_MIN_SIDE] or [0])
    stretches = [scene.stretch(band) for band in bands]
    arrays = [np.asarray(scene.band_pyramid(band)[level]) for band in bands]
    return {"level": level, "shape": list(arrays[0].shape), "stretch": stretches, "arrays": arrays}


def read_whole(path: Path) -> np.ndarray:
    """rasterio: read every band of the scene at full resolution."""
    import rasterio

    with rasterio.open(path) as src:
        return src.read()


def read_whole_and_stretch(path: Path, bands: tuple[int, ...]) -> list[tuple[float, float]]:
    """What a naive plugin does: read the whole scene, then 2-98 % of each shown band."""
    data = read_whole(path)
    return [tuple(float(v) for v in np.percentile(data[b], (2.0, 98.0))) for b in bands]


def bench_first_view(path: Path, repeat: int) -> dict[str, Any]:
    """Time to first view of the COG: ours versus whole reads with rasterio."""
    import rasterio

    from napari_domainseg.geo.scene import open_scene

    scene = open_scene(path)
    bands = tuple(scene.composite() or (0,))
    with rasterio.open(path) as src:
        structure = src.tags(ns="IMAGE_STRUCTURE")
        dataset = {
            "path": str(path),
            "file_bytes": path.stat().st_size,
            "shape": [src.count, src.height, src.width],
            "dtype": src.dtypes[0],
            "band_names": list(scene.band_names),
            "overviews": src.overviews(1),
            "layout": structure.get("LAYOUT"),
            "compression": structure.get("COMPRESSION"),
            "blocks": list(src.block_shapes[0]),
            "pyramid_shapes": [list(scene.level_shape(k)) for k in range(len(scene.factors))],
        }
    ours = first_view_ours(path)  # warm-up and check run
    check = {
        "composite_bands": [scene.band_names[b] for b in bands],
        "level": ours["level"],
        "level_shape": ours["shape"],
        "stretch_ours": [list(s) for s in ours["stretch"]],
        "stretch_full_resolution": [list(s) for s in read_whole_and_stretch(path, bands)],
        "level_dtype": str(ours["arrays"][0].dtype),
    }
    del ours
    gc.collect()
    tasks = {
        "ours": lambda: first_view_ours(path),
        "rasterio_read": lambda: read_whole(path),
        "rasterio_read_stretch": lambda: read_whole_and_stretch(path, bands),
    }
    timing = harness.summaries(harness.time_interleaved(tasks, repeat))
    print("first view timings done")
    best = timing["ours"]["best_s"]
    peers = ("rasterio_read", "rasterio_read_stretch")
    return {
        "dataset": dataset,
        "check": check,
        "timing": timing,
        "ratio_ours_over": {name: best / timing[name]["best_s"] for name in peers},
    }


def first_view_table(view: dict[str, Any], repeat: int) -> list[str]:
    """The first view's timing table."""
    data, timing, check = view["dataset"], view["timing"], view["check"]
    shape, level = data["shape"], check["level_shape"]
    labels = {
        "ours": f"ours: `open_scene`, 3x `stretch` + level {check['level']} "
        f"({level[0]}x{level[1]})",
        "rasterio_read": "rasterio `src.read()` of the whole scene",
        "rasterio_read_stretch": "whole read + 2-98 % stretch of 3 bands (naive plugin)",
    }
    best = timing["ours"]["best_s"]
    rows = [
        [label, f"{t['best_s']:.3f}", f"{t['median_s']:.3f}", f"{best / t['best_s']:.3f}"]
        for label, t in ((label, timing[name]) for name, label in labels.items())
    ]
    return [
        f"First view of a {shape[1]}x{shape[2]}x{shape[0]} {data['dtype']} COG "
        f"({data['file_bytes'] / MIB:.0f} MiB, overviews {data['overviews']}), "
        f"composite {'/'.join(check['composite_bands'])}, warm cache, best of {repeat}",
        "",
        *harness.table(["method", "best s", "median s", "ours / this (best)"], rows),
    ]


def main(argv: list[str] | None = None) -> int:
    """Generate (once) the COG, time the first views, print and save the results."""
    parser = harness.arguments(__doc__, "first_view", "a 2048x2048 COG, one round")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds")
    parser.add_argument("--scene", type=Path, help="COG (default: generated)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat = 1

    import rasterio

    from geo_data import make_sentinel_cog

    scene = make_sentinel_cog(args.scene, **({"size": 2048} if args.quick else {}))
    harness.warm_cache(scene)
    view = bench_first_view(scene, args.repeat)
    packages = ("napari-domainseg", "numpy", "rasterio", "dask")
    results = {
        "benchmark": "first_view",
        "date": harness.timestamp(),
        "machine": harness.machine(packages, gdal_rasterio=rasterio.__gdal_version__),
        "repeat": args.repeat,
        "first_view": view,
    }
    harness.save_results(results, first_view_table(view, args.repeat), args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
