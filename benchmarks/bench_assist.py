"""Benchmark: assisted labeling with a robot annotator (issue 11, section 7).

The robot (:mod:`napari_domainseg.ops.assist.robot`) paints one small stroke per class (a
disc of ``--radius`` pixels in one slice, at the point deepest inside the class), then each
round one stroke at the deepest point of the largest wrong region of the prediction, for
15 rounds. Each round trains the random forest on every stroke so far and predicts the
whole image; Dice is measured against the reference labels on every pixel.

Cases:

* the real abdominal MR of ``../shared/data/medical/totalseg_mr/`` (117x91x20, 3 mm): its 23
  structures plus an "other" class for every unlabeled voxel (mean organ Dice leaves
  "other" out);
* the synthetic 512x512 4-band sample scene (:mod:`napari_domainseg.geo.synthetic`) with its
  reference land cover (nodata border excluded), NDVI and NDWI added from the band roles.

Each case runs with the default recipe, and with position features, and scores the raw
prediction beside two regularisations (:mod:`napari_domainseg.ops.assist.regularise`):
the probabilities smoothed by a Gaussian of two voxels/pixels, and that smoothing followed by
the stroke-connected clean-up (``regularise``). The robot follows the raw prediction.
Results go to ``benchmarks/results/assist.json`` and a markdown table on stdout.
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
    name: str, case, rounds: int, radius: int, position: bool, follow: str | None = None
) -> dict:
    image, truth, scored = case()
    recipe = recipe_for(image, position)
    classifier = PixelClassifier(recipe, ForestSettings())
    sigma = 2 * min(image.spacing)
    steps = {
        "smoothed": lambda p, _: smooth_probabilities(p, sigma, image.spacing),
        "regularised": lambda p, s: regularise(p, s, image.spacing, sigma),
    }
    print(
        f"\n{name} (position={position}, robot follows {follow or 'raw'}): {image.shape}, "
        f"{len(scored)} scored classes",
        flush=True,
    )
    started = time.perf_counter()
    history = run_robot(
        image,
        truth,
        classifier,
        rounds=rounds,
        radius=radius,
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


def tile_timing(size: int = 1024, repeats: int = 3) -> dict:
    """Seconds to train and predict a ``size`` x ``size`` 4-band tile: first and later rounds.

    The first round computes the features; later rounds (a new stroke, the same view) reuse
    them from the cache, as the napari tab will when it trains on every stroke.
    """
    from napari_domainseg.geo import synthetic
    from napari_domainseg.ops.assist.robot import _deepest, paint_stroke

    geometry = synthetic.SceneGeometry(height=size, width=size)
    truth = synthetic.synthetic_scene_labels(geometry)
    image = AssistImage(
        synthetic.synthetic_scene_bands(geometry),
        (10.0, 10.0),
        unit="m",
        name="tile",
        channel_names=synthetic.BAND_NAMES,
        nodata=synthetic.NODATA,
    )
    scribbles = np.zeros_like(truth)
    for c in np.unique(truth[truth != 0]):
        paint_stroke(scribbles, truth, _deepest(truth == c, image.spacing), 3)
    classifier = PixelClassifier(recipe_for(image, False), ForestSettings())
    rounds = []
    for _ in range(repeats):
        started = time.perf_counter()
        classifier.fit(image, scribbles)
        trained = time.perf_counter()
        classifier.predict(image)
        rounds.append({"train": trained - started, "predict": time.perf_counter() - trained})
    print(f"\n{size}x{size} tile: {rounds}", flush=True)
    return {"size": size, "chunk": list(classifier.chunk(image)), "rounds": rounds}


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
    parser.add_argument("--case", choices=("mr", "scene", "all"), default="all")
    parser.add_argument(
        "--skip-volume",
        action="store_true",
        help="skip the 512x512x60 volume and 4096x4096 scene memory measurements",
    )
    args = parser.parse_args(argv)
    cases = {"mr": mr_case, "scene": scene_case}
    chosen = list(cases) if args.case == "all" else [args.case]
    results = [
        run_case(name, cases[name], args.rounds, args.radius, position)
        for name in chosen
        for position in (False, True)
    ]
    if "mr" in chosen:  # the regularised proposal is what an MR annotator would be shown
        results += [
            run_case("mr", mr_case, args.rounds, args.radius, position, follow="regularised")
            for position in (False, True)
        ]
    report = {
        "benchmark": "assist",
        "timestamp": harness.timestamp(),
        "platform": harness.platform_info(),
        "versions": harness.package_versions(["scikit-learn", "scipy", "numpy"]),
        "git": harness.git_state(),
        "radius_px": args.radius,
        "results": results,
    }
    report["tile"] = tile_timing()
    if not args.skip_volume:
        report["volume"] = volume_memory()
        report["scene_streaming"] = scene_streaming()
    tile = "\n".join(
        f"{report['tile']['size']}x{report['tile']['size']} tile, round {i + 1}: train "
        f"{r['train']:.2f} s, predict {r['predict']:.2f} s"
        for i, r in enumerate(report["tile"]["rounds"])
    )
    harness.save_results(report, table(results) + "\n\n" + tile, RESULTS_FILE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
