"""Benchmark: ``domainseg batch convert`` over 20 DICOM series with 1 and with 2 workers.

The 20 series are links to the real head CT series in ``../shared/data`` (28 slices of
512x512 each, read and written as NIfTI every time). Each run starts its own
dask.distributed LocalCluster of worker processes, as the command line does, so the times
include the cluster's start; the task phase alone is also reported. Results go to
``benchmarks/results/batch.json`` (``--quick``: 2 series, one round).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # harness sits next to this script
    sys.path.insert(0, str(HERE))

import harness  # noqa: E402

SERIES = harness.CT_HEAD_SERIES


def run(workers: int, inputs: list[str], out: Path) -> tuple[float, float]:
    """Wall time of one batch (cluster start included) and of its task phase."""
    from dask.distributed import Client, LocalCluster

    from napari_domainseg.cli.batch import run_one

    start = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True) as cluster:
        with Client(cluster) as client:
            client.submit(lambda: None).result()  # workers up
            tasks_start = time.perf_counter()
            arguments = ["-o", str(out / "{name}.nii"), "--overwrite"]
            futures = client.map(
                run_one, ["convert"] * len(inputs), inputs, [arguments] * len(inputs), pure=False
            )
            results = client.gather(futures)
            tasks = time.perf_counter() - tasks_start
    assert all(r["exit_code"] == 0 for r in results), [r["error"] for r in results]
    return time.perf_counter() - start, tasks


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    parser = harness.arguments(__doc__, "batch", "2 series, one round")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--series", type=int, default=20)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.series = 1, 2
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        inputs = []
        for index in range(args.series):
            link = root / f"series_{index:02d}"
            link.symlink_to(SERIES, target_is_directory=True)
            inputs.append(str(link))
        out = root / "out"
        out.mkdir()
        times: dict[str, list[float]] = {"1 worker": [], "2 workers": []}
        phases: dict[str, list[float]] = {"1 worker": [], "2 workers": []}
        for _ in range(args.repeat):  # interleaved rounds
            for name, workers in (("1 worker", 1), ("2 workers", 2)):
                total, tasks = run(workers, inputs, out)
                times[name].append(total)
                phases[name].append(tasks)
    totals, task_phases = harness.summaries(times), harness.summaries(phases)
    speedup = task_phases["1 worker"]["median_s"] / task_phases["2 workers"]["median_s"]
    rows = [
        [name, f"{totals[name]['median_s']:.2f}", f"{phase:.2f}", f"{args.series / phase:.1f}"]
        for name, phase in ((name, task_phases[name]["median_s"]) for name in times)
    ]
    header = ["workers", "total s (cluster start included)", "task phase s", "series/s"]
    lines = [
        f"{args.series} series (28x512x512 CT each) converted to NIfTI; median of {args.repeat}",
        "",
        *harness.table(header, rows),
        "",
        f"speed-up of the task phase, 2 workers vs 1: {speedup:.2f}x (2 cores)",
    ]
    results = {
        "benchmark": "batch",
        "date": harness.timestamp(),
        "machine": {**harness.platform_info(), **harness.git_state()},
        "series": args.series,
        "totals": totals,
        "task_phase": task_phases,
        "speedup": speedup,
    }
    harness.save_results(results, lines, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
