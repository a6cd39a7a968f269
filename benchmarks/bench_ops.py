"""Benchmark: annotation operations on a 512x512x300 CT volume.

In one run (best and median of interleaved rounds):

* fill between slices: class 1 drawn as a varying disc on every 10th slice, interpolated
  into the 270 slices between (:func:`napari_domainseg.ops.interpolate.fill_between`);
* region growing in 3D from a seed in bone, 300-3000 HU, 0.5 x 0.5 x 1 mm voxels
  (:func:`napari_domainseg.ops.region.grow_region`, SimpleITK ConnectedThreshold), next to
  the plain threshold it grows within;
* statistics of a 512x512x300 labels layer: the full summary (once, when the panel opens)
  and the refresh after a brush stroke touching 3 slices, which must stay under 100 ms so
  it never stalls painting (:class:`napari_domainseg.ops.statistics.ClassStatistics`).

The volume is the generated CT series of ``bench_medical_read.py`` (``ct_series.py``),
read once with the plugin's reader. Results go to ``benchmarks/results/ops.json``
(``--quick``: the first 160 slices, one round).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # harness and ct_series sit next to this script
    sys.path.insert(0, str(HERE))

import harness  # noqa: E402

REFRESH_TARGET_S = 0.100


def painted_slices(shape: tuple[int, int, int], every: int = 10) -> np.ndarray:
    """Class 1 as a disc whose radius varies smoothly, on every ``every``-th slice."""
    labels = np.zeros(shape, np.uint8)
    rows, cols = np.indices(shape[1:])
    for k in range(0, shape[0], every):
        radius = 60 + 40 * np.sin(k / 40)
        labels[k][(rows - 256) ** 2 + (cols - 256 + k // 3) ** 2 <= radius**2] = 1
    return labels


def largest_component_seed(mask: np.ndarray) -> tuple[int, int, int]:
    """A voxel of the largest connected component of ``mask`` in its middle slice."""
    from scipy import ndimage

    middle = mask.shape[0] // 2
    components, _ = ndimage.label(mask[middle])
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    row, col = np.argwhere(components == int(np.argmax(sizes)))[0]
    return (middle, int(row), int(col))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    parser = harness.arguments(__doc__, "ops", "the first 160 slices, one round")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat = 1

    from ct_series import make_ct_series
    from napari_domainseg.medical.series import read_series
    from napari_domainseg.ops.interpolate import fill_between
    from napari_domainseg.ops.region import grow_region
    from napari_domainseg.ops.statistics import ClassStatistics
    from napari_domainseg.ops.threshold import threshold_mask

    volume = read_series(make_ct_series()).volume
    image, spacing = volume.array, tuple(float(s) for s in volume.spacing)
    if args.quick:
        image = image[:160]
    labels = painted_slices(image.shape)
    bone = threshold_mask(image, 300, 3000)
    seed = largest_component_seed(bone)
    stats_labels = np.where(bone, 5, 0).astype(np.uint8)
    stats_labels[100:140, 200:300, 200:300] = 2
    stats = ClassStatistics(stats_labels, image, float(np.prod(spacing)), "mL", 1e-3)
    stroke = (slice(149, 152), slice(250, 270), slice(250, 270))

    def refresh_after_stroke() -> None:
        stats_labels[stroke] = 3
        stats.refresh({stats.block_of(k) for k in range(149, 152)})
        stats.rows()

    tasks = {
        "fill between slices": lambda: fill_between(labels, 1, 0, spacing[1:]),
        "region growing 3D": lambda: grow_region(image, seed, 300, 3000, spacing),
        "threshold (info)": lambda: threshold_mask(image, 300, 3000),
        "statistics, full summary (worker thread)": lambda: ClassStatistics(
            stats_labels, image, float(np.prod(spacing)), "mL", 1e-3
        ).rows(),
        "statistics, refresh after a stroke": refresh_after_stroke,
    }
    times = harness.summaries(harness.time_interleaved(tasks, args.repeat, warmup=True))
    filled = fill_between(labels, 1, 0, spacing[1:])
    grown = grow_region(image, seed, 300, 3000, spacing)
    refresh = times["statistics, refresh after a stroke"]
    targets = [
        harness.target(
            "statistics refresh after a stroke (median)", refresh["median_s"] * 1000,
            "< 100 ms", refresh["median_s"] < REFRESH_TARGET_S,
            f"{refresh['median_s'] * 1000:.1f} ms",
        )
    ]  # fmt: skip
    notes = {
        "fill between slices": f"{int(filled.sum())} voxels filled in 270 slices",
        "region growing 3D": f"{int(grown.sum())} voxels connected to the seed",
        "threshold (info)": f"{int(bone.sum())} voxels in range",
    }
    rows = [
        [name, f"{t['best_s']:.3f}", f"{t['median_s']:.3f}", notes.get(name, "")]
        for name, t in times.items()
    ]
    lines = [
        f"Volume {image.shape} int16, spacing {spacing} mm; best and median of {args.repeat}",
        "",
        *harness.table(["operation", "best s", "median s", "result"], rows, "lrrl"),
        "",
        *harness.targets_table(targets),
    ]
    results = {
        "benchmark": "ops",
        "date": harness.timestamp(),
        "machine": {**harness.platform_info(), **harness.git_state()},
        "shape": list(image.shape),
        "spacing_mm": list(spacing),
        "times": times,
        "targets": targets,
    }
    harness.save_results(results, lines, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
