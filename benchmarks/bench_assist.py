"""Benchmark: assisted labeling with a robot annotator (issue 11, section 7).

The robot (:mod:`napari_domainseg.ops.assist.robot`) paints one brush stroke per class (a
line of discs, ``--length`` pixels long and ``--radius`` pixels in radius, in one slice,
along the class's region, clipped to it, at the point deepest inside the class), then each
round one stroke at the deepest point of the largest wrong region of what it is shown, for
15 rounds ("15 strokes" = 15 correction rounds after the first stroke per class). Each round
trains the random forest on every stroke so far and predicts the whole image; Dice is
measured against the reference labels on every pixel, on the annotation the annotator ends
with (the strokes, and the proposal accepted into the unlabeled pixels).

Cases:

* the real abdominal MR of ``../shared/data/medical/totalseg_mr/`` (117x91x20, 3 mm): its 23
  structures plus an "other" class for every unlabeled voxel (mean organ Dice leaves
  "other" out); the robot is shown the regularised proposal;
* the synthetic 512x512 4-band sample scene (:mod:`napari_domainseg.geo.synthetic`) with its
  reference land cover (nodata border excluded), NDVI and NDWI added from the band roles; the
  robot is shown the raw proposal.

The raw prediction is scored beside two regularisations
(:mod:`napari_domainseg.ops.assist.regularise`): the probabilities smoothed by a Gaussian of
two voxels/pixels, and that smoothing followed by the stroke-connected clean-up
(``regularise``). Without ``--quick`` the cases also run with position features, and the MR
with the first version's robot (single discs, the bare proposal scored). Then the latency
from a stroke to the proposal of the view (a 512x512 CT slice, a 1024x1024 scene tile;
medians, with the load average), the 512x512x60 volume and 4096x4096 scene memory runs
(``--skip-volume`` skips them) and, with ``--whole-scene``, ``domainseg assist`` on a whole
10980x10980x4 scene under ``/usr/bin/time -v``.

    .venv/bin/python benchmarks/bench_assist.py --quick            # the tables, ~3 min
    .venv/bin/python benchmarks/bench_assist.py --whole-scene      # everything, ~20 min

Results go to ``benchmarks/results/assist.json`` and markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from napari_domainseg.ops.assist import (  # noqa: E402
    AssistImage,
    ForestSettings,
    PixelClassifier,
    default_recipe,
)
from napari_domainseg.ops.assist.regularise import (  # noqa: E402
    regularise,
    smooth_probabilities,
)
from napari_domainseg.ops.assist.robot import Round, run_robot  # noqa: E402

SHARED = HERE.parent.parent / "shared" / "data"
RESULTS_FILE = HERE / "results" / "assist.json"
OTHER = 100
"""Class id given to the MR voxels outside every structure ("other")."""
TARGET_DICE = 0.9
STROKE_LENGTH = 15
"""Robot brush strokes: a line of radius-3 discs this many pixels long (0: one disc)."""


def mr_case() -> tuple[AssistImage, np.ndarray, list[int]]:
    """The real MR, its labels with an "other" class, and the organ classes."""
    from napari_domainseg.files import load

    folder = SHARED / "medical" / "totalseg_mr"
    image = AssistImage.from_loaded(load(folder / "mr.nii.gz"))
    truth = load(folder / "labels.nii.gz", labels=True).array.copy()
    organs = [int(c) for c in np.unique(truth) if c != 0]
    truth[truth == 0] = OTHER
    return image, truth, organs


def scene_case() -> tuple[AssistImage, np.ndarray, list[int]]:
    """The synthetic sample scene, its land cover (0 = nodata) and its classes."""
    from napari_domainseg.geo import synthetic

    geometry = synthetic.SceneGeometry()
    bands = synthetic.synthetic_scene_bands(geometry)
    truth = synthetic.synthetic_scene_labels(geometry)
    image = AssistImage(
        bands,
        (geometry.pixel_size, geometry.pixel_size),
        unit="m",
        name="synthetic scene",
        channel_names=synthetic.BAND_NAMES,
        nodata=synthetic.NODATA,
    )
    return image, truth, [int(c) for c in np.unique(truth) if c != 0]


def recipe_for(image: AssistImage, position: bool):
    """The default recipe of the image's kind, with or without position features."""
    recipe = default_recipe(
        image.spacing,
        image.unit,
        intensity="percentile" if image.unit == "mm" else "raw",
        channel_names=image.channel_names if image.unit == "m" else (),
    )
    return dataclasses.replace(recipe, position=position)


def reached(history: list[Round], key: str) -> dict[str, int] | None:
    """Strokes and painted pixels of the first round whose ``key`` Dice reaches the target.

    ``key``: ``"mean_dice"``, ``"weighted_dice"`` or an ``extra`` key of the rounds.
    """
    for record in history:
        value = getattr(record, key, None)
        value = record.extra[key] if value is None else value
        if value >= TARGET_DICE:
            return {"strokes": record.strokes, "painted": record.painted}
    return None


def run_case(
    name: str,
    case,
    rounds: int,
    radius: int,
    position: bool,
    follow: str | None = None,
    length: int = STROKE_LENGTH,
    strokes_stand: bool = True,
    other_everywhere: bool = True,
) -> dict:
    image, truth, scored = case()
    recipe = recipe_for(image, position)
    classifier = PixelClassifier(recipe, ForestSettings())
    sigma = 2 * min(image.spacing)
    # The MR's "other" class is everywhere: exempt from the stroke-connected clean-up (not in
    # the first version).
    background = (OTHER,) if name == "mr" and other_everywhere else ()
    steps = {
        "smoothed": lambda p, _: smooth_probabilities(p, sigma, image.spacing),
        "regularised": lambda p, s: regularise(p, s, image.spacing, sigma, everywhere=background),
    }
    print(
        f"\n{name} (position={position}, robot follows {follow or 'raw'}, strokes {length} px "
        f"long, radius {radius}, strokes stand: {strokes_stand}): {image.shape}, "
        f"{len(scored)} scored classes, load {_load_average()}",
        flush=True,
    )
    started = time.perf_counter()
    history = run_robot(
        image,
        truth,
        classifier,
        rounds=rounds,
        radius=radius,
        length=length,
        strokes_stand=strokes_stand,
        scored_classes=scored,
        postprocess=steps,
        follow=follow,
        on_round=lambda r: print(
            f"  strokes {r.strokes:3d} painted {r.painted:6d} mean Dice {r.mean_dice:.3f} "
            f"weighted {r.weighted_dice:.3f} smoothed {r.extra['smoothed mean_dice']:.3f} "
            f"/ {r.extra['smoothed weighted_dice']:.3f} regularised "
            f"{r.extra['regularised mean_dice']:.3f} / {r.extra['regularised weighted_dice']:.3f}"
            f"  {r.seconds:.2f} s",
            flush=True,
        ),
    )
    return {
        "case": name,
        "position": position,
        "follows": follow or "raw",
        "stroke": {"radius_px": radius, "length_px": length, "strokes_stand": strokes_stand},
        "regularise_everywhere": list(background),
        "shape": list(image.shape),
        "features": len(recipe.feature_names(image.channel_names, len(image.shape))),
        "recipe": recipe.to_dict(),
        "rounds": [dataclasses.asdict(r) for r in history],
        "reach_0.9": {
            key: reached(history, key)
            for key in (
                "mean_dice",
                "weighted_dice",
                "smoothed mean_dice",
                "smoothed weighted_dice",
                "regularised mean_dice",
                "regularised weighted_dice",
            )
        },
        "seconds_total": time.perf_counter() - started,
    }


def volume_memory(slices: int = 60) -> dict:
    """Predict a 512x512x``slices`` CT-like volume: seconds and peak memory vs all features.

    A body ellipse (soft tissue), an organ and a bone in HU with noise, three small strokes;
    the prediction walks blocks under the memory budget, so the peak stays far below the
    size of every feature at once.
    """
    shape = (slices, 512, 512)
    rng = np.random.default_rng(0)
    z, y, x = np.ogrid[: shape[0], :512, :512]
    body = ((y - 256) / 200.0) ** 2 + ((x - 256) / 230.0) ** 2 < 1
    organ = ((y - 220) / 60.0) ** 2 + ((x - 300) / 80.0) ** 2 + ((z - slices / 2) / 25.0) ** 2 < 1
    bone = (((y - 380) / 25.0) ** 2 + ((x - 256) / 25.0) ** 2 < 1) & body
    ct = np.where(body, 40, -1000) + np.where(organ, 60, 0) + np.where(bone, 700, 0)
    ct = (ct + rng.normal(0, 15, shape)).astype(np.int16)
    truth = np.where(bone, 3, np.where(organ & body, 2, 1)).astype(np.uint8)
    strokes = np.zeros(shape, np.uint8)
    middle = slices // 2
    for value, (row, col) in {1: (256, 100), 2: (220, 300), 3: (380, 256)}.items():
        strokes[middle, row - 3 : row + 4, col - 3 : col + 4] = value
    image = AssistImage.from_volume(ct, (1.0, 0.7, 0.7), name="ct")
    model = PixelClassifier(default_recipe(image.spacing, "mm", intensity="hu"))
    started = time.perf_counter()
    model.fit(image, strokes)
    trained = time.perf_counter()
    proposal, peak = harness.peak_rss_during(lambda: model.predict(image, probabilities=False))
    n_features = len(model.recipe.feature_names(image.channel_names, 3))
    result = {
        "shape": list(shape),
        "chunk": list(model.chunk(image)),
        "features": n_features,
        "all_features_gib": float(np.prod(shape)) * n_features * 4 / harness.GIB,
        "train_s": trained - started,
        "predict_s": time.perf_counter() - trained,
        "rss_before_mib": peak.rss_before_bytes / harness.MIB,
        "peak_rss_mib": peak.peak_rss_bytes / harness.MIB,
        "accuracy": float((proposal.labels == truth).mean()),
    }
    print(f"\nvolume {shape}: {result}", flush=True)
    return result


def scene_streaming(size: int = 4096) -> dict:
    """Predict a ``size`` x ``size`` 4-band GeoTIFF read lazily, block by block, labels only.

    Stands in for a whole 10980x10980 Sentinel-2 tile: the scene is opened with
    :func:`napari_domainseg.ops.assist.io.open_image` (a dask stack of window reads), trained
    on one stroke per class and predicted with :meth:`PixelClassifier.predict_blocks`, each
    block's labels written into a preallocated array, so memory holds one block's features.
    """
    import tempfile

    from napari_domainseg.geo import synthetic
    from napari_domainseg.ops.assist.io import open_image
    from napari_domainseg.ops.assist.robot import _deepest, paint_stroke

    geometry = synthetic.SceneGeometry(height=size, width=size)
    with tempfile.TemporaryDirectory() as folder:
        path = synthetic.write_synthetic_scene(Path(folder) / "scene.tif", geometry)
        truth = synthetic.synthetic_scene_labels(geometry)
        image, _ = open_image(path)
        scribbles = np.zeros_like(truth)
        for c in np.unique(truth[truth != 0]):
            paint_stroke(scribbles, truth, _deepest(truth == c, image.spacing), 3)
        classifier = PixelClassifier(recipe_for(image, False), ForestSettings())
        started = time.perf_counter()
        classifier.fit(image, scribbles)
        trained = time.perf_counter()
        labels = np.zeros(image.shape, np.uint8)

        def stream() -> None:
            for part in classifier.predict_blocks(image, probabilities=False):
                labels[part.region] = part.labels

        _, peak = harness.peak_rss_during(stream)
        valid = truth != 0
        result = {
            "size": size,
            "chunk": list(classifier.chunk(image)),
            "train_s": trained - started,
            "predict_s": time.perf_counter() - trained,
            "rss_before_mib": peak.rss_before_bytes / harness.MIB,
            "peak_rss_mib": peak.peak_rss_bytes / harness.MIB,
            "accuracy": float((labels[valid] == truth[valid]).mean()),
            "nodata_unlabeled": bool((labels[~valid] == 0).all()),
        }
    print(f"\nscene {size}x{size} streamed: {result}", flush=True)
    return result


def _stroke_points(truth: np.ndarray, count: int, seed: int) -> list[tuple[int, ...]]:
    """``count`` random points, each inside the reference (new strokes for timing rounds)."""
    rng = np.random.default_rng(seed)
    inside = np.argwhere(truth != 0)
    return [tuple(int(v) for v in inside[i]) for i in rng.choice(len(inside), count)]


def _latency_rounds(image, truth, recipe, region, repeats: int) -> dict:
    """Train + predict ``region``: the first round (features computed) and later ones (cached).

    Each first round uses a new classifier (an empty feature cache); each later round adds a
    stroke of ``STROKE_LENGTH`` pixels and trains and predicts the same view again, as the
    tab does with *Train on every stroke* and *Predict the view after training*.
    """
    from napari_domainseg.ops.assist.robot import _deepest, paint_stroke

    base = np.zeros(truth.shape, dtype=truth.dtype)
    for c in np.unique(truth[truth != 0]):
        paint_stroke(base, truth, _deepest(truth == c, image.spacing), 3, STROKE_LENGTH)
    first, cached = [], []
    for attempt in range(repeats):
        classifier = PixelClassifier(recipe, ForestSettings())
        scribbles = base.copy()
        started = time.perf_counter()
        classifier.fit(image, scribbles)
        classifier.predict(image, region)
        first.append(time.perf_counter() - started)
        for point in _stroke_points(truth, 2, attempt):
            paint_stroke(scribbles, truth, point, 3, STROKE_LENGTH)
            started = time.perf_counter()
            classifier.fit(image, scribbles)
            classifier.predict(image, region)
            cached.append(time.perf_counter() - started)
    return {
        "first_s": float(np.median(first)),
        "cached_s": float(np.median(cached)),
        "first_all": first,
        "cached_all": cached,
        "features": len(recipe.feature_names(image.channel_names, len(image.shape))),
    }


def latency(repeats: int = 5) -> list[dict]:
    """Seconds from a stroke to the proposal of the view: a CT slice and a scene tile.

    * a 512x512 slice of the real head CT (``ct_head_study/S2010``, 28 slices, 0.45 x 0.45 x
      5 mm; 3-D features, HU), with strokes of air, soft tissue and bone (HU thresholds);
    * a 1024x1024 4-band tile (the synthetic scene at that size, 91 features).
    """
    from napari_domainseg.files import load
    from napari_domainseg.geo import synthetic

    ct = load(SHARED / "medical" / "ct_head_study" / "S2010")
    image = AssistImage.from_loaded(ct)
    hu = np.asarray(ct.array)
    truth = np.where(hu < -300, 1, np.where(hu > 300, 3, 2)).astype(np.uint8)
    recipe = default_recipe(image.spacing, image.unit, intensity="hu")
    middle = image.shape[0] // 2
    view = (slice(middle, middle + 1), slice(None), slice(None))
    rows = [
        {
            "case": f"CT slice 512x512 (of {'x'.join(map(str, image.shape))}, 3-D features)",
            **_latency_rounds(image, truth, recipe, view, repeats),
        }
    ]
    geometry = synthetic.SceneGeometry(height=1024, width=1024)
    tile = AssistImage(
        synthetic.synthetic_scene_bands(geometry),
        (10.0, 10.0),
        unit="m",
        name="tile",
        channel_names=synthetic.BAND_NAMES,
        nodata=synthetic.NODATA,
    )
    truth = synthetic.synthetic_scene_labels(geometry)
    rows.append(
        {
            "case": "scene tile 1024x1024, 4 bands",
            **_latency_rounds(tile, truth, recipe_for(tile, False), None, repeats),
        }
    )
    for row in rows:
        row["load_average"] = _load_average()
        print(
            f"\n{row['case']}: first {row['first_s']:.2f} s, after a stroke (cached features) "
            f"{row['cached_s']:.2f} s (medians; load {row['load_average']})",
            flush=True,
        )
    return rows


WHOLE_SIDE = 10980
"""Side of a Sentinel-2 tile at 10 m (pixels)."""
WHOLE_TILE = 1830
"""Side of each synthetic piece the whole scene is tiled from (10980 = 6 x 1830)."""


def write_whole_scene(path: Path, side: int = WHOLE_SIDE, piece: int = WHOLE_TILE) -> Path:
    """A ``side`` x ``side`` 4-band uint16 GeoTIFF, COG-like, tiled up from synthetic pieces.

    Each ``piece`` x ``piece`` window is a synthetic scene (:mod:`napari_domainseg.geo.synthetic`,
    four seeds in turn, each with its own nodata corner); the file has 512-pixel internal tiles,
    DEFLATE, band interleave and overviews 2..32, written window by window (never the whole
    scene in memory).
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.transform import from_origin

    from napari_domainseg.geo import synthetic

    geometry = synthetic.SceneGeometry(height=piece, width=piece)
    pieces = [synthetic.synthetic_scene_bands(geometry, seed=11 + k) for k in range(4)]
    profile = {
        "driver": "GTiff",
        "width": side,
        "height": side,
        "count": 4,
        "dtype": "uint16",
        "crs": f"EPSG:{synthetic.EPSG}",
        "transform": from_origin(geometry.west, geometry.north, 10.0, 10.0),
        "nodata": synthetic.NODATA,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
        "interleave": "band",
        "BIGTIFF": "IF_SAFER",
    }
    with rasterio.open(path, "w", **profile) as dst:
        for index, name in enumerate(synthetic.BAND_NAMES, start=1):
            dst.set_band_description(index, name)
        for row in range(0, side, piece):
            for col in range(0, side, piece):
                bands = pieces[(row // piece + 2 * (col // piece)) % 4]
                h, w = min(piece, side - row), min(piece, side - col)
                window = rasterio.windows.Window(col, row, w, h)
                dst.write(bands[:, :h, :w], window=window)
        dst.build_overviews([2, 4, 8, 16, 32], Resampling.average)
        dst.update_tags(ns="rio_overview", resampling="average")
    return path


def whole_scene_model(path: Path, piece: int = WHOLE_TILE) -> tuple[Path, dict]:
    """A model trained on one stroke per class in the scene's first piece, saved beside it."""
    from napari_domainseg.geo import synthetic
    from napari_domainseg.ops.assist.io import open_image
    from napari_domainseg.ops.assist.robot import _deepest, paint_stroke

    image, _ = open_image(path)
    truth = synthetic.synthetic_scene_labels(synthetic.SceneGeometry(height=piece, width=piece))
    strokes = np.zeros(truth.shape, np.uint8)
    for c in np.unique(truth[truth != 0]):
        paint_stroke(strokes, truth, _deepest(truth == c, image.spacing), 3, STROKE_LENGTH)
    scribbles = np.zeros(image.shape, np.uint8)
    scribbles[: truth.shape[0], : truth.shape[1]] = strokes
    model = PixelClassifier(recipe_for(image, False), ForestSettings())
    summary = model.fit(image, scribbles)
    target = path.with_suffix(".assist")
    model.save(target, overwrite=True)
    return target, {"train_s": summary.seconds, "features": summary.features}


def time_v(command: list[str]) -> dict:
    """Run ``command`` under ``/usr/bin/time -v``: wall seconds and peak RSS (MiB)."""
    import re
    import subprocess

    done = subprocess.run(
        ["/usr/bin/time", "-v", *command], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    cpu = re.search(r"Percent of CPU this job got: (\d+)%", done.stderr)
    user = re.search(r"User time \(seconds\): ([\d.]+)", done.stderr)
    system = re.search(r"System time \(seconds\): ([\d.]+)", done.stderr)
    return {
        "wall_s": hours * 3600 + minutes * 60 + seconds,
        "cpu_s": float(user.group(1)) + float(system.group(1)),
        "peak_rss_mib": int(rss.group(1)) / 1024,
        "cpu_percent": int(cpu.group(1)) if cpu else None,
    }


def whole_scene(folder: Path | None = None, side: int = WHOLE_SIDE) -> dict:
    """``domainseg assist SCENE --model M -o OUT`` on a whole ``side``-pixel 4-band scene.

    The scene (about 1 GB of pixels) and its outputs go to a temporary directory (or
    ``folder``, kept, so a rerun skips the writing). Measured with ``/usr/bin/time -v``:
    the user's whole process, imports, model loading, reading, features, forest and the
    label GeoTIFF written.
    """
    import tempfile

    with tempfile.TemporaryDirectory() as temporary:
        where = Path(folder or temporary)
        where.mkdir(parents=True, exist_ok=True)
        path = where / f"scene_{side}.tif"
        started = time.perf_counter()
        if not path.exists():
            write_whole_scene(path, side)
        written_s = time.perf_counter() - started
        model, trained = whole_scene_model(path)
        output = where / f"labels_{side}.tif"
        cli = Path(sys.executable).with_name("domainseg")
        load = _load_average()
        run = time_v([str(cli), "assist", str(path), "--model", str(model), "-o", str(output),
                      "--overwrite"])  # fmt: skip
        result = {
            "side": side,
            "scene_write_s": written_s,
            "scene_bytes": path.stat().st_size,
            **trained,
            **run,
            "load_average": load,
            "output_bytes": output.stat().st_size,
        }
    print(f"\nwhole scene {side}x{side}x4: {result}", flush=True)
    return result


def _load_average() -> list[float]:
    import os

    return [round(v, 2) for v in os.getloadavg()]


def table(results: list[dict]) -> str:
    lines = [
        "| case | features | strokes | painted px | mean Dice: raw | smoothed | regularised "
        "| weighted Dice: raw | smoothed | regularised | s/round |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        label = result["case"] + (" + position" if result["position"] else "")
        if result["follows"] != "raw":
            label += f", robot sees {result['follows']}"
        stroke = result["stroke"]
        label += f", strokes {stroke['length_px']}x{2 * stroke['radius_px'] + 1} px" + (
            "" if stroke["strokes_stand"] else ", bare proposal scored"
        )
        if result.get("regularise_everywhere"):
            label += ", 'other' exempt from the clean-up"
        for r in result["rounds"]:
            lines.append(
                harness.markdown_row(
                    [
                        label,
                        str(result["features"]),
                        str(r["strokes"]),
                        str(r["painted"]),
                        f"{r['mean_dice']:.3f}",
                        f"{r['extra']['smoothed mean_dice']:.3f}",
                        f"{r['extra']['regularised mean_dice']:.3f}",
                        f"{r['weighted_dice']:.3f}",
                        f"{r['extra']['smoothed weighted_dice']:.3f}",
                        f"{r['extra']['regularised weighted_dice']:.3f}",
                        f"{r['seconds']:.2f}",
                    ]
                )
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--radius", type=int, default=3, help="stroke radius in pixels")
    parser.add_argument(
        "--length", type=int, default=STROKE_LENGTH, help="stroke length in pixels (0: a disc)"
    )
    parser.add_argument("--case", choices=("mr", "scene", "all"), default="all")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the MR and scene robots with the adopted settings and the latency table only",
    )
    parser.add_argument(
        "--skip-volume",
        action="store_true",
        help="skip the 512x512x60 volume and 4096x4096 scene memory measurements",
    )
    parser.add_argument(
        "--whole-scene",
        action="store_true",
        help="also run 'domainseg assist' on a 10980x10980x4 scene generated into a temporary "
        "directory (about 1 GB of disk, 10 minutes)",
    )
    parser.add_argument("--scene-dir", type=Path, help="keep the whole scene here (reused)")
    args = parser.parse_args(argv)
    cases = {"mr": mr_case, "scene": scene_case}
    chosen = list(cases) if args.case == "all" else [args.case]
    follow = {"mr": "regularised", "scene": None}  # what each domain's annotator is shown
    results = [
        run_case(name, cases[name], args.rounds, args.radius, False, follow[name], args.length)
        for name in chosen
    ]
    if not args.quick:
        results += [  # position features; the robot of the first version (discs, bare proposal)
            run_case(name, cases[name], args.rounds, args.radius, True, follow[name], args.length)
            for name in chosen
        ]
        if "mr" in chosen:
            results.append(
                run_case("mr", mr_case, args.rounds, 3, False, "regularised", 0, False, False)
            )
    report = {
        "benchmark": "assist",
        "timestamp": harness.timestamp(),
        "platform": harness.platform_info(),
        "versions": harness.package_versions(["scikit-learn", "scipy", "numpy"]),
        "git": harness.git_state(),
        "results": results,
        "latency": latency(),
    }
    if not (args.skip_volume or args.quick):
        report["volume"] = volume_memory()
        report["scene_streaming"] = scene_streaming()
    if args.whole_scene:
        report["whole_scene"] = whole_scene(args.scene_dir)
    text = table(results) + "\n\n" + latency_table(report["latency"])
    if "whole_scene" in report:
        w = report["whole_scene"]
        text += (
            f"\n\nwhole scene {w['side']}x{w['side']}x4 (domainseg assist --model, labels "
            f"GeoTIFF written): {w['wall_s']:.0f} s wall, {w['cpu_s']:.0f} s CPU, peak RSS "
            f"{w['peak_rss_mib']:.0f} MiB, load {w['load_average']}"
        )
    harness.save_results(report, text, RESULTS_FILE)
    return 0


def latency_table(rows: list[dict]) -> str:
    lines = [
        "| view | features | first round s (median) | after a stroke s (median) | load average |",
        "|---|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            harness.markdown_row(
                [
                    row["case"],
                    str(row["features"]),
                    f"{row['first_s']:.2f}",
                    f"{row['cached_s']:.2f}",
                    " ".join(f"{v:.2f}" for v in row["load_average"]),
                ]
            )
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
