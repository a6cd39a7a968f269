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

Results go to ``benchmarks/results/assist.json`` and markdown tables on stdout. The whole
scene is written by :func:`geo_data.write_whole_scene`.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
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
from napari_domainseg.ops.assist.robot import (  # noqa: E402
    Round,
    _deepest,
    paint_stroke,
    run_robot,
)

OTHER = 100
"""Class id given to the MR voxels outside every structure ("other")."""
TARGET_DICE = 0.9
STROKE_LENGTH = 15
"""Robot brush strokes: a line of radius-3 discs this many pixels long (0: one disc)."""
SCORES = ("mean_dice", "weighted_dice", "smoothed mean_dice", "smoothed weighted_dice",
          "regularised mean_dice", "regularised weighted_dice")  # fmt: skip


# --------------------------------------------------------------------------- cases


def mr_case() -> tuple[AssistImage, np.ndarray, list[int]]:
    """The real MR, its labels with an "other" class, and the organ classes."""
    from napari_domainseg.files import load

    image = AssistImage.from_loaded(load(harness.TOTALSEG_MR / "mr.nii.gz"))
    truth = load(harness.TOTALSEG_MR / "labels.nii.gz", labels=True).array.copy()
    organs = [int(c) for c in np.unique(truth) if c != 0]
    truth[truth == 0] = OTHER
    return image, truth, organs


def synthetic_image(size: int | None = None, name: str = "synthetic scene"):
    """The synthetic sample scene (``size`` pixels a side, default its own) and its land cover."""
    from napari_domainseg.geo import synthetic

    geometry = synthetic.SceneGeometry(**({"height": size, "width": size} if size else {}))
    image = AssistImage(
        synthetic.synthetic_scene_bands(geometry),
        (geometry.pixel_size, geometry.pixel_size),
        unit="m",
        name=name,
        channel_names=synthetic.BAND_NAMES,
        nodata=synthetic.NODATA,
    )
    return image, synthetic.synthetic_scene_labels(geometry)


def scene_case() -> tuple[AssistImage, np.ndarray, list[int]]:
    """The synthetic sample scene, its land cover (0 = nodata) and its classes."""
    image, truth = synthetic_image()
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


def first_strokes(truth: np.ndarray, spacing, length: int = STROKE_LENGTH) -> np.ndarray:
    """One robot stroke (radius 3) per class of ``truth``, at the point deepest inside it."""
    scribbles = np.zeros(truth.shape, truth.dtype)
    for c in np.unique(truth[truth != 0]):
        paint_stroke(scribbles, truth, _deepest(truth == c, spacing), 3, length)
    return scribbles


def n_features(recipe, image: AssistImage) -> int:
    """Number of features ``recipe`` computes on ``image``."""
    return len(recipe.feature_names(image.channel_names, len(image.shape)))


# --------------------------------------------------------------------------- robot


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


def print_round(r: Round) -> None:
    """One line per robot round: raw, smoothed and regularised Dice."""
    e = r.extra
    print(
        f"  strokes {r.strokes:3d} painted {r.painted:6d} mean Dice {r.mean_dice:.3f} "
        f"weighted {r.weighted_dice:.3f} smoothed {e['smoothed mean_dice']:.3f} "
        f"/ {e['smoothed weighted_dice']:.3f} regularised "
        f"{e['regularised mean_dice']:.3f} / {e['regularised weighted_dice']:.3f}"
        f"  {r.seconds:.2f} s",
        flush=True,
    )


def run_case(name: str, rounds: int, radius: int, position: bool, follow: str | None,
             length: int = STROKE_LENGTH, strokes_stand: bool = True,
             other_everywhere: bool = True) -> dict:  # fmt: skip
    """The robot on one case (``"mr"`` or ``"scene"``), raw and regularised proposals scored."""
    image, truth, scored = {"mr": mr_case, "scene": scene_case}[name]()
    recipe = recipe_for(image, position)
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
        f"{len(scored)} scored classes, load {harness.load_average()}",
        flush=True,
    )
    started = time.perf_counter()
    history = run_robot(
        image, truth, PixelClassifier(recipe, ForestSettings()), rounds=rounds, radius=radius,
        length=length, strokes_stand=strokes_stand, scored_classes=scored, postprocess=steps,
        follow=follow, on_round=print_round,
    )  # fmt: skip
    return {
        "case": name,
        "position": position,
        "follows": follow or "raw",
        "stroke": {"radius_px": radius, "length_px": length, "strokes_stand": strokes_stand},
        "regularise_everywhere": list(background),
        "shape": list(image.shape),
        "features": n_features(recipe, image),
        "recipe": recipe.to_dict(),
        "rounds": [dataclasses.asdict(r) for r in history],
        "reach_0.9": {key: reached(history, key) for key in SCORES},
        "seconds_total": time.perf_counter() - started,
    }


# --------------------------------------------------------------------------- memory


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
    for value, (row, col) in {1: (256, 100), 2: (220, 300), 3: (380, 256)}.items():
        strokes[slices // 2, row - 3 : row + 4, col - 3 : col + 4] = value
    image = AssistImage.from_volume(ct, (1.0, 0.7, 0.7), name="ct")
    model = PixelClassifier(default_recipe(image.spacing, "mm", intensity="hu"))
    started = time.perf_counter()
    model.fit(image, strokes)
    trained = time.perf_counter()
    proposal, peak = harness.peak_rss_during(lambda: model.predict(image, probabilities=False))
    features = n_features(model.recipe, image)
    result = {
        "shape": list(shape),
        "chunk": list(model.chunk(image)),
        "features": features,
        "all_features_gib": float(np.prod(shape)) * features * 4 / harness.GIB,
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
    from napari_domainseg.geo import synthetic
    from napari_domainseg.ops.assist.io import open_image

    geometry = synthetic.SceneGeometry(height=size, width=size)
    with tempfile.TemporaryDirectory() as folder:
        path = synthetic.write_synthetic_scene(Path(folder) / "scene.tif", geometry)
        truth = synthetic.synthetic_scene_labels(geometry)
        image, _ = open_image(path)
        classifier = PixelClassifier(recipe_for(image, False), ForestSettings())
        started = time.perf_counter()
        classifier.fit(image, first_strokes(truth, image.spacing, length=0))
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


# --------------------------------------------------------------------------- latency


def latency_rounds(image, truth, recipe, region, repeats: int) -> dict:
    """Train + predict ``region``: the first round (features computed) and later ones (cached).

    Each first round uses a new classifier (an empty feature cache); each later round adds a
    stroke of ``STROKE_LENGTH`` pixels at a random point inside the reference and trains and
    predicts the same view again, as the tab does with *Train on every stroke* and *Predict
    the view after training*.
    """
    base = first_strokes(truth, image.spacing)
    inside = np.argwhere(truth != 0)
    first, cached = [], []
    for attempt in range(repeats):
        classifier = PixelClassifier(recipe, ForestSettings())
        scribbles = base.copy()
        started = time.perf_counter()
        classifier.fit(image, scribbles)
        classifier.predict(image, region)
        first.append(time.perf_counter() - started)
        for i in np.random.default_rng(attempt).choice(len(inside), 2):
            paint_stroke(scribbles, truth, tuple(int(v) for v in inside[i]), 3, STROKE_LENGTH)
            started = time.perf_counter()
            classifier.fit(image, scribbles)
            classifier.predict(image, region)
            cached.append(time.perf_counter() - started)
    return {
        "first_s": float(np.median(first)),
        "cached_s": float(np.median(cached)),
        "first_all": first,
        "cached_all": cached,
        "features": n_features(recipe, image),
    }


def latency(repeats: int = 5) -> list[dict]:
    """Seconds from a stroke to the proposal of the view: a CT slice and a scene tile.

    * a 512x512 slice of the real head CT (``ct_head_study/S2010``, 28 slices, 0.45 x 0.45 x
      5 mm; 3-D features, HU), with strokes of air, soft tissue and bone (HU thresholds);
    * a 1024x1024 4-band tile (the synthetic scene at that size, 91 features).
    """
    from napari_domainseg.files import load

    ct = load(harness.CT_HEAD_SERIES)
    image = AssistImage.from_loaded(ct)
    hu = np.asarray(ct.array)
    truth = np.where(hu < -300, 1, np.where(hu > 300, 3, 2)).astype(np.uint8)
    recipe = default_recipe(image.spacing, image.unit, intensity="hu")
    middle = image.shape[0] // 2
    view = (slice(middle, middle + 1), slice(None), slice(None))
    tile, tile_truth = synthetic_image(1024, "tile")
    rows = [
        {
            "case": f"CT slice 512x512 (of {'x'.join(map(str, image.shape))}, 3-D features)",
            **latency_rounds(image, truth, recipe, view, repeats),
        },
        {
            "case": "scene tile 1024x1024, 4 bands",
            **latency_rounds(tile, tile_truth, recipe_for(tile, False), None, repeats),
        },
    ]
    for row in rows:
        row["load_average"] = harness.load_average()
        print(
            f"\n{row['case']}: first {row['first_s']:.2f} s, after a stroke (cached features) "
            f"{row['cached_s']:.2f} s (medians; load {row['load_average']})",
            flush=True,
        )
    return rows


# --------------------------------------------------------------------------- whole scene


def whole_scene_model(path: Path, piece: int) -> tuple[Path, dict]:
    """A model trained on one stroke per class in the scene's first piece, saved beside it."""
    from napari_domainseg.geo import synthetic
    from napari_domainseg.ops.assist.io import open_image

    image, _ = open_image(path)
    truth = synthetic.synthetic_scene_labels(synthetic.SceneGeometry(height=piece, width=piece))
    scribbles = np.zeros(image.shape, np.uint8)
    scribbles[: truth.shape[0], : truth.shape[1]] = first_strokes(truth, image.spacing)
    model = PixelClassifier(recipe_for(image, False), ForestSettings())
    summary = model.fit(image, scribbles)
    target = path.with_suffix(".assist")
    model.save(target, overwrite=True)
    return target, {"train_s": summary.seconds, "features": summary.features}


def whole_scene(folder: Path | None = None) -> dict:
    """``domainseg assist SCENE --model M -o OUT`` on a whole 10980x10980 4-band scene.

    The scene (about 1 GB of pixels) and its outputs go to a temporary directory (or
    ``folder``, kept, so a rerun skips the writing). Measured with ``/usr/bin/time -v``:
    the user's whole process, imports, model loading, reading, features, forest and the
    label GeoTIFF written.
    """
    from geo_data import WHOLE_SIDE, WHOLE_TILE, write_whole_scene

    side = WHOLE_SIDE
    with tempfile.TemporaryDirectory() as temporary:
        where = Path(folder or temporary)
        where.mkdir(parents=True, exist_ok=True)
        path = where / f"scene_{side}.tif"
        started = time.perf_counter()
        if not path.exists():
            write_whole_scene(path, side)
        written_s = time.perf_counter() - started
        model, trained = whole_scene_model(path, WHOLE_TILE)
        output = where / f"labels_{side}.tif"
        cli = Path(sys.executable).with_name("domainseg")
        load = harness.load_average()
        run = harness.time_v([str(cli), "assist", str(path), "--model", str(model), "-o",
                              str(output), "--overwrite"])  # fmt: skip
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


# --------------------------------------------------------------------------- report


def table(results: list[dict]) -> list[str]:
    """One row per robot round of every case: raw, smoothed and regularised Dice."""
    rows = []
    for result in results:
        label = result["case"] + (" + position" if result["position"] else "")
        if result["follows"] != "raw":
            label += f", robot sees {result['follows']}"
        stroke = result["stroke"]
        label += f", strokes {stroke['length_px']}x{2 * stroke['radius_px'] + 1} px"
        label += "" if stroke["strokes_stand"] else ", bare proposal scored"
        if result.get("regularise_everywhere"):
            label += ", 'other' exempt from the clean-up"
        for r in result["rounds"]:
            e = r["extra"]
            rows.append(
                [label, result["features"], r["strokes"], r["painted"], f"{r['mean_dice']:.3f}",
                 f"{e['smoothed mean_dice']:.3f}", f"{e['regularised mean_dice']:.3f}",
                 f"{r['weighted_dice']:.3f}", f"{e['smoothed weighted_dice']:.3f}",
                 f"{e['regularised weighted_dice']:.3f}", f"{r['seconds']:.2f}"]
            )  # fmt: skip
    header = ["case", "features", "strokes", "painted px", "mean Dice: raw", "smoothed",
              "regularised", "weighted Dice: raw", "smoothed", "regularised",
              "s/round"]  # fmt: skip
    return harness.table(header, rows, "l" * len(header))


def latency_table(rows: list[dict]) -> list[str]:
    """The latency rows: first round and after a stroke, with the load average."""
    header = ["view", "features", "first round s (median)", "after a stroke s (median)",
              "load average"]  # fmt: skip
    cells = [
        [row["case"], row["features"], f"{row['first_s']:.2f}", f"{row['cached_s']:.2f}",
         " ".join(f"{v:.2f}" for v in row["load_average"])]
        for row in rows
    ]  # fmt: skip
    return harness.table(header, cells, "lrrrl")


def main(argv: list[str] | None = None) -> int:
    """Run the robots, the latency and (unless skipped) the memory runs; save the results."""
    parser = harness.arguments(
        __doc__,
        "assist",
        "the MR and scene robots with the adopted settings and the latency table only",
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--radius", type=int, default=3, help="stroke radius in pixels")
    parser.add_argument(
        "--length", type=int, default=STROKE_LENGTH, help="stroke length in pixels (0: a disc)"
    )
    parser.add_argument("--case", choices=("mr", "scene", "all"), default="all")
    parser.add_argument("--repeat-latency", type=int, default=5, help="latency rounds per view")
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
    chosen = ["mr", "scene"] if args.case == "all" else [args.case]
    follow = {"mr": "regularised", "scene": None}  # what each domain's annotator is shown
    results = [
        run_case(name, args.rounds, args.radius, False, follow[name], args.length)
        for name in chosen
    ]
    if not args.quick:
        results += [  # position features; the robot of the first version (discs, bare proposal)
            run_case(name, args.rounds, args.radius, True, follow[name], args.length)
            for name in chosen
        ]
        if "mr" in chosen:
            results.append(run_case("mr", args.rounds, 3, False, "regularised", 0, False, False))
    report = {
        "benchmark": "assist",
        "timestamp": harness.timestamp(),
        "platform": harness.platform_info(),
        "versions": harness.package_versions(["scikit-learn", "scipy", "numpy"]),
        "git": harness.git_state(),
        "results": results,
        "latency": latency(args.repeat_latency),
    }
    if not (args.skip_volume or args.quick):
        report["volume"] = volume_memory()
        report["scene_streaming"] = scene_streaming()
    lines = [*table(results), "", *latency_table(report["latency"])]
    if args.whole_scene:
        w = report["whole_scene"] = whole_scene(args.scene_dir)
        lines += [
            "",
            f"whole scene {w['side']}x{w['side']}x4 (domainseg assist --model, labels "
            f"GeoTIFF written): {w['wall_s']:.0f} s wall, {w['cpu_s']:.0f} s CPU, peak RSS "
            f"{w['peak_rss_mib']:.0f} MiB, load {w['load_average']}",
        ]
    harness.save_results(report, lines, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
