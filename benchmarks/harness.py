"""What every benchmark script shares: timing, peak memory, machine description, results.

* timing: :func:`time_interleaved` (methods interleaved per round, optional warm-up and
  per-task preparation) and :func:`summary` / :func:`summaries` (best, median, all);
* page cache: :func:`warm_cache`;
* memory: :func:`peak_rss_during` (``VmHWM`` reset through ``/proc/self/clear_refs``)
  and :func:`run_child`, to measure in a fresh interpreter;
* description: :func:`platform_info`, :func:`package_versions`, :func:`git_state`;
* tools and outputs: :func:`installed_command`, :func:`gdal_polygonize_command`
  (and :func:`gdal_polygonize_script`), :func:`feature_count`;
* report: :func:`markdown_row`, :func:`targets_table`, :func:`timestamp` and
  :func:`save_results`.

The ``bench_*.py`` scripts import it as ``import harness``, with their own folder on
``sys.path``. It imports nothing beyond the standard library and numpy, so a memory
child's baseline does not grow by importing it.
"""

from __future__ import annotations

import gc
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np

REPO_DIR = Path(__file__).resolve().parent.parent
"""The checkout the benchmarks belong to (for its git state)."""
MIB = 2**20
GIB = 2**30

T = TypeVar("T")
Task = Callable[[], object]
"""A zero-argument callable: one timed call of a method."""


# --------------------------------------------------------------------------- timing


def warm_up(tasks: Mapping[str, Task], prepare: Mapping[str, Task] | None = None) -> None:
    """Run each task once, untimed, collecting garbage after each.

    Parameters
    ----------
    tasks
        Name to zero-argument callable.
    prepare
        Name to a zero-argument callable run before that task (e.g. removing its output).
    """
    prepare = prepare or {}
    for name, task in tasks.items():
        if name in prepare:
            prepare[name]()
        task()
        gc.collect()


def time_interleaved(
    tasks: Mapping[str, Task],
    repeat: int | Mapping[str, int],
    prepare: Mapping[str, Task] | None = None,
    warmup: bool = False,
) -> dict[str, list[float]]:
    """Wall time of each task over rounds, the tasks interleaved within each round.

    Interleaving spreads background load on a noisy machine over all tasks alike.
    Garbage is collected before each call and results are dropped and collected after
    it, outside the timed region.

    Parameters
    ----------
    tasks
        Name to zero-argument callable.
    repeat
        Number of timed rounds, for all tasks or per task (a task with fewer rounds
        sits out the last ones).
    prepare
        Name to a zero-argument callable run, untimed, before each call of that task
        (e.g. removing its output file).
    warmup
        Run each task once, untimed (see :func:`warm_up`), before the first round.

    Returns
    -------
    dict
        Name to its list of wall times in seconds.
    """
    rounds = dict(repeat) if isinstance(repeat, Mapping) else dict.fromkeys(tasks, repeat)
    prepare = prepare or {}
    if warmup:
        warm_up(tasks, prepare)
    times: dict[str, list[float]] = {name: [] for name in tasks}
    for index in range(max(rounds.values(), default=0)):
        for name, task in tasks.items():
            if index >= rounds[name]:
                continue
            if name in prepare:
                prepare[name]()
            gc.collect()
            start = time.perf_counter()
            result = task()
            times[name].append(time.perf_counter() - start)
            del result
            gc.collect()
    return times


def summary(times: list[float]) -> dict[str, Any]:
    """Best, median and all wall times of one task.

    Parameters
    ----------
    times
        Wall times in seconds.

    Returns
    -------
    dict
        ``{"best_s", "median_s", "times_s"}`` (``times_s`` rounded to 0.1 ms).
    """
    return {
        "best_s": min(times),
        "median_s": float(np.median(times)),
        "times_s": [round(t, 4) for t in times],
    }


def summaries(times: Mapping[str, list[float]]) -> dict[str, dict[str, Any]]:
    """:func:`summary` of every task, e.g. of the result of :func:`time_interleaved`.

    Parameters
    ----------
    times
        Name to wall times in seconds.

    Returns
    -------
    dict
        Name to its summary.
    """
    return {name: summary(t) for name, t in times.items()}


def warm_cache(path: Path) -> int:
    """Read a file, or every file below a folder, once so later reads hit the page cache.

    Parameters
    ----------
    path
        File or folder to read.

    Returns
    -------
    int
        Total bytes read.
    """
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    total = 0
    for file in files:
        with open(file, "rb") as handle:
            while chunk := handle.read(64 * MIB):
                total += len(chunk)
    return total


# --------------------------------------------------------------------------- memory


class PeakRss(NamedTuple):
    """Resident set size around one call (see :func:`peak_rss_during`)."""

    rss_before_bytes: int
    """RSS just before the call."""
    peak_rss_bytes: int
    """Peak RSS of the whole process during the call (``VmHWM``)."""
    peak_reset: bool
    """Whether ``VmHWM`` was reset before the call (see :func:`reset_peak_rss`)."""

    @property
    def growth_bytes(self) -> int:
        """Peak RSS during the call minus RSS before it."""
        return self.peak_rss_bytes - self.rss_before_bytes


def proc_status_bytes(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes.

    Parameters
    ----------
    field
        Field name, without the colon.

    Returns
    -------
    int
        The value in bytes.

    Raises
    ------
    KeyError
        If the field is missing.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS (Linux >= 4.0).

    Returns
    -------
    bool
        Whether the reset worked; if not, ``VmHWM`` still only covers this process
        since its ``exec`` (unlike ``ru_maxrss``, which Linux carries over from the
        parent across ``fork`` + ``exec``).
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


def peak_rss_during(call: Callable[[], T]) -> tuple[T, PeakRss]:
    """Call ``call`` with the peak RSS reset just before it; measure RSS around it.

    Meant for a fresh process (see :func:`run_child`) whose imports and inputs are
    already in place, so the peak is that of the call.

    Parameters
    ----------
    call
        Zero-argument callable.

    Returns
    -------
    tuple
        ``(result, rss)``: what ``call`` returned, and a :class:`PeakRss`.
    """
    before = proc_status_bytes("VmRSS")
    reset = reset_peak_rss()
    result = call()
    peak = proc_status_bytes("VmHWM")
    return result, PeakRss(before, peak, reset)


def run_child(script: str | os.PathLike[str], *args: str) -> dict[str, Any]:
    """Run a Python script in a fresh interpreter; return the JSON of its last output line.

    Parameters
    ----------
    script
        The script (usually the calling benchmark, ``__file__``, with a child option).
    *args
        Its command-line arguments.

    Returns
    -------
    dict
        The parsed last line of its standard output.

    Raises
    ------
    subprocess.CalledProcessError
        If the script fails.
    """
    command = [sys.executable, str(Path(script).resolve()), *args]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- description


def package_version(distribution: str) -> str:
    """Installed version of a distribution.

    Parameters
    ----------
    distribution
        Distribution name (as on PyPI).

    Returns
    -------
    str
        Its version, or ``"not installed"``.
    """
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def package_versions(distributions: Iterable[str]) -> dict[str, str]:
    """:func:`package_version` of each distribution.

    Parameters
    ----------
    distributions
        Distribution names.

    Returns
    -------
    dict
        Name to version.
    """
    return {name: package_version(name) for name in distributions}


def platform_info() -> dict[str, Any]:
    """CPU count and affinity, processor, OS and Python version.

    Returns
    -------
    dict
        ``cpu_count``, ``cpu_affinity`` (CPUs this process may run on, or None),
        ``processor``, ``platform``, ``python``.
    """
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def git(*args: str) -> str:
    """Run ``git`` in the checkout (:data:`REPO_DIR`); its stripped output, empty on failure.

    Parameters
    ----------
    *args
        Git arguments.

    Returns
    -------
    str
        Standard output, stripped.
    """
    done = subprocess.run(
        ["git", "-C", str(REPO_DIR), *args], capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


def git_state() -> dict[str, Any]:
    """The checkout's commit and its uncommitted changes under ``src``.

    Returns
    -------
    dict
        ``git_commit`` (short hash, or ``"unknown"``) and ``src_uncommitted_changes``
        (``git status --porcelain`` lines).
    """
    changed = git("status", "--porcelain", "--", "src").splitlines()
    return {
        "git_commit": git("rev-parse", "--short", "HEAD") or "unknown",
        "src_uncommitted_changes": [line.strip() for line in changed if line.strip()],
    }


# --------------------------------------------------------------------------- tools and outputs


def installed_command(name: str) -> str | None:
    """An executable beside this interpreter (a virtual environment's scripts), else on ``PATH``.

    Parameters
    ----------
    name
        Executable name, e.g. ``"domainseg"`` or ``"dcm2niix"``.

    Returns
    -------
    str or None
        Its path; None when neither place has it.
    """
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.is_file() else shutil.which(name)


def gdal_polygonize_script() -> str:
    """Path of ``gdal_polygonize.py``: on ``PATH``, else Debian's ``/usr/bin`` copy.

    Returns
    -------
    str
        The script.
    """
    return shutil.which("gdal_polygonize.py") or "/usr/bin/gdal_polygonize.py"


def gdal_polygonize_command(raster: Path, out: Path, driver: str) -> list[str]:
    """``gdal_polygonize.py -q -mask RASTER RASTER -f DRIVER OUT``: the source as its own mask.

    With the mask, 0 is unlabeled, as in ours; both are 4-connected.

    Parameters
    ----------
    raster
        Label GeoTIFF.
    out
        Output vector file.
    driver
        OGR driver name (``GPKG``, ``GeoJSON``).

    Returns
    -------
    list of str
        The command.
    """
    return [gdal_polygonize_script(), "-q", "-mask", str(raster), str(raster), "-f", driver,
            str(out)]  # fmt: skip


def feature_count(path: Path) -> int:
    """Number of features in a vector file (``pyogrio.read_info``; pyogrio imported here).

    Parameters
    ----------
    path
        Vector file.

    Returns
    -------
    int
        Feature count.
    """
    import pyogrio

    return int(pyogrio.read_info(path)["features"])


# --------------------------------------------------------------------------- report


def markdown_row(cells: Iterable[str]) -> str:
    """One markdown table row.

    Parameters
    ----------
    cells
        Cell texts.

    Returns
    -------
    str
        ``| a | b | ... |``.
    """
    return "| " + " | ".join(cells) + " |"


def targets_table(targets: Iterable[Mapping[str, Any]]) -> list[str]:
    """The markdown table of performance targets: name, measured, goal, met.

    Parameters
    ----------
    targets
        Entries with ``name``, ``measured`` (shown with two decimals unless a
        ``measured_text`` is given), ``goal`` (text) and ``met``.

    Returns
    -------
    list of str
        Header, alignment and one row per target.
    """
    lines = [
        markdown_row(["target", "measured", "goal", "met"]),
        markdown_row(["---", "---:", "---:", "---"]),
    ]
    for target in targets:
        measured = target.get("measured_text") or f"{target['measured']:.2f}"
        met = "yes" if target["met"] else "**no**"
        lines.append(markdown_row([target["name"], measured, target["goal"], met]))
    return lines


def timestamp() -> str:
    """The local time now, ISO 8601 with UTC offset, for the results' ``date``.

    Returns
    -------
    str
        E.g. ``2025-01-31T14:05:09+0100``.
    """
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def save_results(results: dict[str, Any], table: str, path: Path) -> None:
    """Add the markdown ``table`` to ``results``, print it, write ``results`` as JSON.

    Parameters
    ----------
    results
        The benchmark's results; ``table_markdown`` is set to ``table``.
    table
        Markdown text of the results.
    path
        JSON file to write (its folder is created).
    """
    results["table_markdown"] = table
    print()
    print(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
