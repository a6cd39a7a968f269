"""Benchmark: fill between slices on real anatomy, shape only vs following the image vs ITK.

The real abdominal MR of ``../shared/data/medical/totalseg_mr/`` (117x91x20, 3 mm) with its
23-structure reference segmentation. The annotator is simulated: every structure is drawn
completely on the axial slices ``z % step == 0`` that hold it, plus its own first and last
slice (``--steps``, default 1 in 5 and 1 in 3). The same sparse labels go to three methods:

* **shape only**: :func:`napari_domainseg.ops.interpolate.fill_between` (blended signed
  distances), class after class, each filling only voxels still unlabeled;
* **follow the image**: :func:`napari_domainseg.ops.interpolate_image.fill_between_image`
  (the blend as a prior, refined near its boundary by a forest trained on the drawn slices,
  the image weight chosen per class on the drawn slices);
* **ITK MorphologicalContourInterpolator** (PyPI ``itk-morphologicalcontourinterpolation``,
  the algorithm of 3D Slicer's *Fill between slices*), every label at once along the slice
  axis (``axis=2`` in ITK's x, y, z order), on the same grid and spacing.

Dice is measured on every voxel against the reference: "weighted" pools the structures
(volume-weighted), "mean" is their unweighted mean. Times are best and median of
``--repeat`` interleaved rounds after an untimed warm-up, with the ratio to the shape-only
time. ITK runs in a child interpreter each round (see :func:`itk_child`), timed inside it
after its own warm-up call (ITK loads its modules lazily). Results go to
``benchmarks/results/fill_between.json`` (``--quick``: 1 slice in 5, one round).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from napari_domainseg.ops.assist.robot import dice_scores, sparse_annotation  # noqa: E402
from napari_domainseg.ops.interpolate import fill_between_classes  # noqa: E402
from napari_domainseg.ops.interpolate_image import (  # noqa: E402
    ImageFillSettings,
    fill_between_image,
)

FOLDER = harness.TOTALSEG_MR
METHODS = ("shape only", "follow the image", "ITK MCI")


def load_case() -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """The MR volume (z, y, x), its reference labels and the voxel spacing in mm."""
    from napari_domainseg.files import load

    image = load(FOLDER / "mr.nii.gz")
    truth = load(FOLDER / "labels.nii.gz", labels=True).array
    return np.asarray(image.array), np.asarray(truth), tuple(image.spacing)


def follow_image(
    sparse: np.ndarray, image: np.ndarray, spacing: tuple[float, ...], n_jobs: int
) -> tuple[np.ndarray, dict]:
    """The image-aware fill of every class; the labels and the per-class reports."""
    result = fill_between_image(
        sparse, image, 0, spacing, settings=ImageFillSettings(n_jobs=n_jobs)
    )
    out = sparse.copy()
    written = result.values != 0
    out[written] = result.values[written]
    return out, result.reports


def itk_mci(sparse: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """ITK's MorphologicalContourInterpolator, every label along the slice axis."""
    import itk

    volume = itk.image_from_array(np.ascontiguousarray(sparse.astype(np.uint8)))
    volume.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    filled = itk.array_from_image(itk.morphological_contour_interpolator(volume, axis=2))
    out = sparse.copy()
    new = (sparse == 0) & (filled != 0)
    out[new] = filled[new]
    return out


def itk_child(step: int, out: Path) -> None:
    """In a fresh interpreter: one untimed ITK call (modules load lazily), one timed; exit.

    The ITK wrapping, loaded beside scipy and scikit-learn, corrupts the heap while the
    interpreter shuts down (``malloc_consolidate(): unaligned fastbin chunk``, after every
    result is out), so ITK runs in a child that leaves with ``os._exit`` once its result is
    written.
    """
    _, truth, spacing = load_case()
    sparse = sparse_annotation(truth, step)
    itk_mci(sparse, spacing)
    started = time.perf_counter()
    filled = itk_mci(sparse, spacing)
    seconds = time.perf_counter() - started
    np.save(out, filled)
    print(json.dumps({"seconds": seconds}), flush=True)
    os._exit(0)


def score(labels: np.ndarray, truth: np.ndarray, classes: list[int]) -> dict:
    """Per-class, mean and volume-weighted Dice over every voxel."""
    per_class, weighted = dice_scores(labels, truth, classes, np.ones(truth.shape, bool))
    return {
        "weighted_dice": weighted,
        "mean_dice": float(np.mean(list(per_class.values()))),
        "per_class": {str(c): round(v, 4) for c, v in per_class.items()},
    }


def run_step(image: np.ndarray, truth: np.ndarray, spacing: tuple[float, ...], step: int,
             repeat: int, n_jobs: int) -> dict:  # fmt: skip
    """The three methods on the sparse labels of 1 slice in ``step``: timed and scored."""
    classes = [int(c) for c in np.unique(truth) if c != 0]
    sparse = sparse_annotation(truth, step)
    drawn = int(np.count_nonzero(sparse.any(axis=(1, 2))))
    outputs: dict[str, np.ndarray] = {}
    reports: dict = {}

    def run_image() -> None:
        outputs["follow the image"], found = follow_image(sparse, image, spacing, n_jobs)
        reports.update(found)

    tasks = {
        "shape only": lambda: outputs.__setitem__(
            "shape only", fill_between_classes(sparse, 0, spacing[1:])
        ),
        "follow the image": run_image,
    }
    harness.warm_up(tasks)
    rounds: dict[str, list[float]] = {name: [] for name in METHODS}
    with tempfile.TemporaryDirectory() as folder:
        filled = Path(folder) / "itk.npy"
        for _ in range(repeat):  # interleaved: ours in this process, ITK in a child
            for name, seconds in harness.time_interleaved(tasks, 1).items():
                rounds[name] += seconds
            child = harness.run_child(__file__, "--itk-child", str(step), str(filled))
            rounds["ITK MCI"].append(child["seconds"])
        outputs["ITK MCI"] = np.load(filled)
    times = harness.summaries(rounds)
    scores = {name: score(outputs[name], truth, classes) for name in METHODS}
    for name in METHODS:
        scores[name].update(times[name])
        scores[name]["time_ratio_to_shape_only"] = (
            times[name]["median_s"] / times["shape only"]["median_s"]
        )
    plain, aware = scores["shape only"]["per_class"], scores["follow the image"]["per_class"]
    worse = {c: round(aware[c] - plain[c], 4) for c in plain if aware[c] < plain[c]}
    print(f"\n1 slice in {step}: {drawn} of {truth.shape[0]} slices hold a drawing", flush=True)
    for name in METHODS:
        print(
            f"  {name:17s} weighted {scores[name]['weighted_dice']:.4f} mean "
            f"{scores[name]['mean_dice']:.4f}  median {scores[name]['median_s']:.3f} s",
            flush=True,
        )
    return {
        "step": step,
        "drawn_slices": drawn,
        "drawn_voxels": int(np.count_nonzero(sparse)),
        "methods": scores,
        "image_weights": {str(c): r.weight for c, r in reports.items()},
        "classes_worse_than_shape_only": worse,
    }


def table(runs: list[dict]) -> list[str]:
    """One row per annotation density and method: Dice, time and time against shape only."""
    rows = [
        [f"1 in {run['step']}", name, f"{e['weighted_dice']:.3f}", f"{e['mean_dice']:.3f}",
         f"{e['median_s']:.2f}", f"{e['time_ratio_to_shape_only']:.2f}x"]
        for run in runs
        for name, e in ((name, run["methods"][name]) for name in METHODS)
    ]  # fmt: skip
    header = ["annotated", "method", "weighted Dice", "mean Dice", "median s",
              "time vs shape only"]  # fmt: skip
    return harness.table(header, rows, "llrrrr")


def main(argv: list[str] | None = None) -> int:
    """Run every annotation density, print and save the results."""
    parser = harness.arguments(__doc__, "fill_between", "1 slice in 5, one round")
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 3])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=-1, help="threads of the forests")
    parser.add_argument("--itk-child", nargs=2, metavar=("STEP", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.itk_child:
        itk_child(int(args.itk_child[0]), Path(args.itk_child[1]))
    if not FOLDER.is_dir():
        print(f"skipped: {FOLDER} not found")
        return 0
    if args.quick:
        args.steps, args.repeat = [5], 1
    image, truth, spacing = load_case()
    runs = [run_step(image, truth, spacing, s, args.repeat, args.jobs) for s in args.steps]
    results = {
        "benchmark": "fill between slices on the real abdominal MR",
        "date": harness.timestamp(),
        "data": str(FOLDER.relative_to(harness.SHARED_DATA)),
        "shape": list(truth.shape),
        "spacing_mm": list(spacing),
        "repeat": args.repeat,
        "runs": runs,
        "platform": harness.platform_info(),
        "versions": harness.package_versions(
            ["numpy", "scipy", "scikit-learn", "itk", "itk-morphologicalcontourinterpolation"]
        ),
        **harness.git_state(),
    }
    harness.save_results(results, table(runs), args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
