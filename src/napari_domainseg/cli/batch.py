"""``domainseg batch``: run a subcommand over many inputs on a dask.distributed cluster.

Each input becomes one task running ``domainseg TASK INPUT ARGS...`` in a
worker process; ``{input}``, ``{stem}`` and ``{name}`` in the arguments are
replaced per input (``-o out/{stem}.nii.gz``). A failing input is reported in
the results table and the others carry on. Without ``--scheduler`` a local
cluster of ``--workers`` processes is started for the run.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import time
from pathlib import Path
from typing import Any


def expand_inputs(spec: str) -> list[str]:
    """Inputs from a glob pattern, or from the first column of a CSV/list file."""
    path = Path(spec)
    if path.is_file() and path.suffix.lower() in (".csv", ".txt", ".list"):
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if row and row[0].strip()]
        if rows and rows[0][0].strip().lower() in ("input", "path", "file"):
            rows = rows[1:]
        return [row[0].strip() for row in rows]
    return sorted(glob.glob(spec))


def _stem(path: str) -> str:
    name = Path(path.rstrip("/")).name
    for suffix in (".nii.gz", ".seg.nrrd"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def run_one(task: str, source: str, arguments: list[str]) -> dict[str, Any]:
    """Run one ``domainseg`` task in this process; capture its output and exit code."""
    from napari_domainseg.cli import main

    values = {"input": source, "stem": _stem(source), "name": Path(source.rstrip("/")).name}
    argv = [task, source, *(a.format(**values) for a in arguments), "--json"]
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # usage errors
            code = int(exc.code or 0)
        except Exception as exc:
            print(f"domainseg: {source}: {type(exc).__name__}: {exc}", file=err)
            code = 1
    result: Any = None
    with contextlib.suppress(ValueError):
        result = json.loads(out.getvalue()) if out.getvalue().strip() else None
    return {
        "input": source,
        "exit_code": code,
        "error": _error_text(err.getvalue()) if code else "",
        "seconds": round(time.perf_counter() - start, 4),
        "result": result,
    }


def _error_text(stderr: str) -> str:
    """The task's failure lines (``domainseg: ...``) as one cell, joined with ``" | "``.

    Other lines on stderr (Python warnings) are left out.
    """
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    failures = [line.removeprefix("domainseg:").strip() for line in lines if line.startswith(
        "domainseg:"
    )]  # fmt: skip
    return " | ".join(failures or lines[-1:])[:2000]


def run_batch(
    task: str,
    inputs: list[str],
    arguments: list[str],
    scheduler: str | None = None,
    workers: int = 2,
) -> list[dict[str, Any]]:
    """Run the task over every input on a cluster; results in input order."""
    from dask.distributed import Client, LocalCluster, as_completed

    from napari_domainseg.cli.progress import bar, wanted

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        futures = client.map(
            run_one, [task] * len(inputs), inputs, [arguments] * len(inputs), pure=False
        )
        if wanted():  # a bar on a terminal only; stdout stays for the results
            for _ in bar(as_completed(futures), f"{task}", total=len(futures), unit="input"):
                pass
        return client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def private_row(row: dict[str, Any]) -> dict[str, Any]:
    """A result row without identifiers.

    The input path is shown relative (or by name), UIDs and paths in the task's result are
    pseudonymised, and the input's folders are dropped from the error.
    """
    from napari_domainseg.privacy import hide_folders, pseudonymise, shown_path

    return {
        **row,
        "input": shown_path(row["input"]),
        "error": hide_folders(row["error"], [row["input"]]) if row["error"] else "",
        "result": pseudonymise(row["result"]),
    }


def write_table(results: list[dict[str, Any]], path: Path, overwrite: bool = False) -> Path:
    """The results table as CSV (one row per input) or JSON, by extension, written atomically."""
    from napari_domainseg.atomic import atomic_write
    from napari_domainseg.cli import json_safe

    with atomic_write(path, overwrite=overwrite) as tmp:
        if path.suffix.lower() == ".json":
            text = json.dumps(json_safe(results), indent=2, allow_nan=False)
            tmp.write_text(text, encoding="utf-8")
            return path
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(
                handle, fieldnames=["input", "exit_code", "error", "seconds", "result"]
            )
            writer.writeheader()
            for row in results:
                result = json.dumps(json_safe(row["result"]), allow_nan=False)
                writer.writerow({**row, "result": result})
    return path
