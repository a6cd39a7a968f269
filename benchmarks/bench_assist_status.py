"""Benchmark: the review status of an assisted annotation (issue 11, section 3).

A 10980x10980 label raster (a Sentinel-2 tile's size), half its pixels accepted from the
assistant, cut into 1849 tiles of 256 pixels. Timed, interleaved:

* ``status.StatusBoard.refresh`` of every tile and of the two tiles a brush stroke touches
  (CRC-32 digests recorded at acceptance, :mod:`napari_domainseg.ops.assist.status`);
* the obvious alternative: a snapshot copy of the labels taken at acceptance and each tile
  compared to it with ``np.array_equal`` (twice the memory of the labels);
* recording the digests of the acceptance (``AcceptedUnits``, before and after).

    .venv/bin/python benchmarks/bench_assist_status.py

Results go to ``benchmarks/results/assist_status.json`` and a markdown table on stdout
(``--quick``: 2000x2000 labels, for a check that the script runs).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from napari_domainseg.ops.assist.status import AcceptedUnits, Layout, StatusBoard

SIDE = 10980


def main(argv: list[str] | None = None) -> int:
    """Time both status methods and the acceptance record; print and save the results."""
    parser = harness.arguments(__doc__, "assist_status", "2000x2000 labels")
    args = parser.parse_args(argv)
    side = 2000 if args.quick else SIDE
    rng = np.random.default_rng(0)
    labels = np.zeros((side, side), np.uint8)
    rows, cols = np.nonzero(rng.random((side, side), dtype=np.float32) < 0.5)
    edits = [((rows, cols), 3)]
    units = AcceptedUnits(labels, edits, [])
    labels[rows, cols] = 3
    record = {"units": units.after(labels)}
    layout = Layout(labels.shape, tile=256)
    board = StatusBoard(layout)
    board.set_records([record])
    snapshot = labels.copy()  # the alternative's copy "as accepted"
    row, col = side * 5000 // SIDE, side * 3000 // SIDE  # a stroke at (5000, 3000) full size
    stroke = layout.keys_in((slice(row, row + 10), slice(col, col + 100)))

    def snapshot_status(keys: list) -> dict:
        return {
            k: np.array_equal(labels[layout.region(k)], snapshot[layout.region(k)]) for k in keys
        }

    every = layout.keys()
    times = harness.time_interleaved(
        {
            "digests, every tile": lambda: board.refresh(labels),
            "snapshot, every tile": lambda: snapshot_status(every),
            "digests, a stroke's tiles": lambda: [
                board.refresh(labels, stroke) for _ in range(100)
            ],
            "snapshot, a stroke's tiles": lambda: [snapshot_status(stroke) for _ in range(100)],
        },
        repeat=5,
        warmup=True,
    )
    record_times = harness.time_interleaved(
        {"record an acceptance": lambda: AcceptedUnits(labels, edits, []).after(labels)}, repeat=2
    )
    stats = harness.summaries({**times, **record_times})
    for name in ("digests, a stroke's tiles", "snapshot, a stroke's tiles"):  # per stroke
        stats[name] = {k: v / 100 if k != "times_s" else v for k, v in stats[name].items()}
    load = os.getloadavg()
    lines = [
        f"{side}x{side} labels, {len(every)} tiles, {rows.size} accepted pixels; "
        f"load average {load[0]:.1f} on {os.cpu_count()} cores",
        "",
        harness.markdown_row(["task", "median (ms)", "vs snapshot", "extra memory"]),
        harness.markdown_row(["---", "---:", "---:", "---:"]),
    ]
    memory = {
        "digests": f"{len(every) * 16 / 1024:.0f} KiB",
        "snapshot": f"{labels.nbytes / 2**20:.0f} MiB",
    }
    for ours, peer in (("digests, every tile", "snapshot, every tile"),
                       ("digests, a stroke's tiles", "snapshot, a stroke's tiles")):  # fmt: skip
        ratio = stats[ours]["median_s"] / stats[peer]["median_s"]
        for name, text in ((ours, f"{ratio:.2f}"), (peer, "1")):
            lines.append(harness.markdown_row([name, f"{stats[name]['median_s'] * 1e3:.2f}", text,
                                               memory[name.split(",")[0]]]))  # fmt: skip
    name = "record an acceptance"
    lines.append(harness.markdown_row([name, f"{stats[name]['median_s'] * 1e3:.0f}", "", ""]))
    results = {
        "date": harness.timestamp(),
        "platform": harness.platform_info(),
        "git": harness.git_state(),
        "load_average": load,
        "results": stats,
    }
    harness.save_results(results, lines, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
