"""What every benchmark script shares: options, timing, memory, peers, description, report.

* options: :func:`arguments` (``--output`` and ``--quick`` for every script);
* timing: :func:`time_interleaved` (methods interleaved or rotated per round, optional
  warm-up and per-task preparation), :func:`summary` / :func:`summaries` (best, median,
  all) and :func:`per_round_ratios`; page cache: :func:`warm_cache`;
* memory: :func:`peak_rss_during` (``VmHWM`` reset through ``/proc/self/clear_refs``),
  :func:`run_child` / :func:`run_python` (a fresh interpreter, JSON back);
* whole processes: :func:`run_process` (``os.wait4``), :func:`children_peak_rss`,
  :func:`time_v` (``/usr/bin/time -v``);
* peers: :func:`installed_command`, :func:`gdal_polygonize_command`,
  :func:`read_simpleitk_series`, :func:`feature_count`;
* description: :func:`machine`, :func:`platform_info`, :func:`package_versions`,
  :func:`git_state`, :func:`load_average`;
* report: :func:`table`, :func:`markdown_row`, :func:`target`, :func:`targets_table`,
  :func:`timestamp` and :func:`save_results`.

The ``bench_*.py`` scripts import it as ``import harness``, with their own folder on
``sys.path``. It imports nothing beyond the standard library and numpy (peers are imported
inside the functions that run them), so a memory child's baseline does not grow by
importing it.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
"""The checkout the benchmarks belong to (for its git state)."""
RESULTS_DIR = BENCH_DIR / "results"
DATA_DIR = BENCH_DIR / ".data"
"""Cache folder of the generated benchmark data (git-ignored, never committed)."""
SHARED_DATA = REPO_DIR.parent / "shared" / "data"
"""The shared real test data (read only)."""
CT_HEAD_SERIES = SHARED_DATA / "medical" / "ct_head_study" / "S2010"
"""The real 28-slice 512x512 head CT (a Philips Ingenuity CT, uncompressed)."""
TOTALSEG_MR = SHARED_DATA / "medical" / "totalseg_mr"
"""The real abdominal MR (117x91x20, 3 mm) with its 23-structure reference."""
MIB = 2**20
GIB = 2**30

T = TypeVar("T")
Task = Callable[[], object]
"""A zero-argument callable: one timed call of a method."""


# --------------------------------------------------------------------------- options


def arguments(doc: str, name: str, quick: str | None = None) -> argparse.ArgumentParser:
    """A parser with the options every benchmark has; the script adds its own.

    Parameters
    ----------
    doc
        The script's docstring (its first line describes the parser).
    name
        Results name: ``--output`` defaults to ``results/NAME.json``.
    quick
        Help of ``--quick`` (a small, fast run that proves the script works); None: no
        ``--quick`` option.

    Returns
    -------
    argparse.ArgumentParser
        The parser.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=RESULTS_DIR / f"{name}.json", help="JSON results file"
    )
    if quick:
        parser.add_argument("--quick", action="store_true", help=quick)
    return parser


# --------------------------------------------------------------------------- timing


def warm_up(tasks: Mapping[str, Task], prepare: Mapping[str, Task] | None = None) -> None:
    """Run each task once, untimed (after its ``prepare``), collecting garbage after each."""
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
    rotate: bool = False,
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
    rotate
        Rotate the order of the tasks by one each round (else the same order each round).

    Returns
    -------
    dict
        Name to its list of wall times in seconds, round by round.
    """
    rounds = dict(repeat) if isinstance(repeat, Mapping) else dict.fromkeys(tasks, repeat)
    prepare = prepare or {}
    if warmup:
        warm_up(tasks, prepare)
    names = list(tasks)
    times: dict[str, list[float]] = {name: [] for name in names}
    for index in range(max(rounds.values(), default=0)):
        shift = index % len(names) if rotate else 0
        for name in names[shift:] + names[:shift]:
            if index >= rounds[name]:
                continue
            if name in prepare:
                prepare[name]()
            gc.collect()
            start = time.perf_counter()
            result = tasks[name]()
            times[name].append(time.perf_counter() - start)
            del result
            gc.collect()
    return times


def summary(times: list[float]) -> dict[str, Any]:
    """``{"best_s", "median_s", "times_s"}`` of one task's wall times (``times_s`` to 0.1 ms)."""
    return {
        "best_s": min(times),
        "median_s": float(np.median(times)),
        "times_s": [round(t, 4) for t in times],
    }


def summaries(times: Mapping[str, list[float]]) -> dict[str, dict[str, Any]]:
    """:func:`summary` of every task, e.g. of the result of :func:`time_interleaved`."""
    return {name: summary(t) for name, t in times.items()}


def per_round_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> dict:
    """Ratios of two methods' times round by round (both saw the same load), summarised.

    Returns
    -------
    dict
        ``per_round`` (rounded to 1e-3), ``median``, ``min``, ``max``.
    """
    values = [a / b for a, b in zip(numerators, denominators, strict=True)]
    return {
        "per_round": [round(v, 3) for v in values],
        "median": float(np.median(values)),
        "min": min(values),
        "max": max(values),
    }


def warm_cache(path: Path) -> int:
    """Read a file, or every file below a folder, once; return the bytes read.

    Later reads then hit the page cache.
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

    def as_dict(self) -> dict[str, Any]:
        """The fields and ``growth_bytes``, for JSON results."""
        return {**self._asdict(), "growth_bytes": self.growth_bytes}


def proc_status_bytes(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes.

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


def _last_json_line(command: list[str]) -> dict[str, Any]:
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_child(script: str | os.PathLike[str], *args: str) -> dict[str, Any]:
    """Run a Python script in a fresh interpreter; return the JSON of its last output line.

    ``script`` is usually the calling benchmark (``__file__``) with a hidden child option.

    Raises
    ------
    subprocess.CalledProcessError
        If the script fails.
    """
    return _last_json_line([sys.executable, str(Path(script).resolve()), *args])


def run_python(code: str, *args: str) -> dict[str, Any]:
    """Run ``python -c code *args`` in a fresh interpreter; the JSON of its last output line."""
    return _last_json_line([sys.executable, "-c", code, *args])


# --------------------------------------------------------------------------- whole processes


def run_process(command: list[str], out: Path | None = None) -> dict[str, float]:
    """Run ``command`` (into a fresh ``out``); its wall, user, system time and peak RSS.

    Parameters
    ----------
    command
        The command line.
    out
        Its output file, removed first (GDAL would append to it).

    Returns
    -------
    dict
        ``wall_s``, ``user_s``, ``sys_s``, ``peak_rss_bytes`` (from ``os.wait4``).

    Raises
    ------
    subprocess.CalledProcessError
        If the command fails.
    """
    if out is not None:
        out.unlink(missing_ok=True)
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read() if process.stderr else b""
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command, stderr=stderr)
    return {
        "wall_s": wall,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "peak_rss_bytes": usage.ru_maxrss * 1024,
    }


def children_peak_rss(command: list[str]) -> int:
    """Peak RSS of one run of ``command``, in bytes.

    The command runs under a small fresh Python that reports its children's
    ``ru_maxrss``: Linux carries a parent's peak over into a child at ``exec``, so
    this reads at most the wrapper's few MiB high, not this process's RSS.
    """
    code = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    command = [sys.executable, "-S", "-c", code, *command]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return int(done.stdout.split()[-1]) * 1024


def time_v(command: list[str]) -> dict[str, Any]:
    """Run ``command`` under ``/usr/bin/time -v``: wall and CPU seconds, peak RSS (MiB).

    Returns
    -------
    dict
        ``wall_s``, ``cpu_s`` (user + system), ``peak_rss_mib``, ``cpu_percent``.

    Raises
    ------
    RuntimeError
        If the command fails.
    """
    done = subprocess.run(
        ["/usr/bin/time", "-v", *command], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr[-2000:]}")

    def field(pattern: str) -> re.Match[str] | None:
        return re.search(pattern, done.stderr)

    wall = field(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    rss = field(r"Maximum resident set size \(kbytes\): (\d+)")
    cpu = field(r"Percent of CPU this job got: (\d+)%")
    user = field(r"User time \(seconds\): ([\d.]+)")
    system = field(r"System time \(seconds\): ([\d.]+)")
    return {
        "wall_s": hours * 3600 + minutes * 60 + seconds,
        "cpu_s": float(user.group(1)) + float(system.group(1)),
        "peak_rss_mib": int(rss.group(1)) / 1024,
        "cpu_percent": int(cpu.group(1)) if cpu else None,
    }


# --------------------------------------------------------------------------- peers


def installed_command(name: str) -> str | None:
    """An executable beside this interpreter (a virtual environment's scripts), else on ``PATH``.

    Returns
    -------
    str or None
        Its path; None when neither place has it.
    """
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.is_file() else shutil.which(name)


def gdal_polygonize_script() -> str:
    """Path of ``gdal_polygonize.py``: on ``PATH``, else Debian's ``/usr/bin`` copy."""
    return shutil.which("gdal_polygonize.py") or "/usr/bin/gdal_polygonize.py"


def gdal_polygonize_command(raster: Path, out: Path, driver: str) -> list[str]:
    """``gdal_polygonize.py -q -mask RASTER RASTER -f DRIVER OUT``: the source as its own mask.

    With the mask, 0 is unlabeled, as in ours; both are 4-connected. ``driver`` is an
    OGR driver name (``GPKG``, ``GeoJSON``).
    """
    return [gdal_polygonize_script(), "-q", "-mask", str(raster), str(raster), "-f", driver,
            str(out)]  # fmt: skip


def read_simpleitk_series(folder: Path) -> np.ndarray:
    """SimpleITK/GDCM ``ImageSeriesReader`` on the folder's series, as a numpy array.

    GetGDCMSeriesFileNames + Execute + GetArrayFromImage: the volume (z, y, x) in HU
    (GDCM applies RescaleSlope/Intercept).
    """
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    return sitk.GetArrayFromImage(reader.Execute())


def feature_count(path: Path) -> int:
    """Number of features in a vector file (``pyogrio.read_info``; pyogrio imported here)."""
    import pyogrio

    return int(pyogrio.read_info(path)["features"])


# --------------------------------------------------------------------------- description


def package_version(distribution: str) -> str:
    """Installed version of a distribution (as on PyPI), or ``"not installed"``."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def package_versions(distributions: Iterable[str]) -> dict[str, str]:
    """:func:`package_version` of each distribution, by name."""
    return {name: package_version(name) for name in distributions}


def platform_info() -> dict[str, Any]:
    """``cpu_count``, ``cpu_affinity`` (CPUs this process may use, or None), ``processor``,
    ``platform`` and ``python``."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, to 0.01."""
    return [round(v, 2) for v in os.getloadavg()]


def git(*args: str) -> str:
    """Run ``git`` in the checkout (:data:`REPO_DIR`); its stripped output, empty on failure."""
    done = subprocess.run(
        ["git", "-C", str(REPO_DIR), *args], capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


def git_state() -> dict[str, Any]:
    """``git_commit`` (short hash, or ``"unknown"``) and ``src_uncommitted_changes``
    (``git status --porcelain`` lines under ``src``)."""
    changed = git("status", "--porcelain", "--", "src").splitlines()
    return {
        "git_commit": git("rev-parse", "--short", "HEAD") or "unknown",
        "src_uncommitted_changes": [line.strip() for line in changed if line.strip()],
    }


def machine(distributions: Iterable[str], **extra: Any) -> dict[str, Any]:
    """:func:`platform_info`, ``versions`` of ``distributions``, ``extra`` and :func:`git_state`."""
    return {
        **platform_info(),
        "versions": package_versions(distributions),
        **extra,
        **git_state(),
    }


# --------------------------------------------------------------------------- report


def markdown_row(cells: Iterable[object]) -> str:
    """One markdown table row, ``| a | b | ... |``."""
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def table(header: Sequence[str], rows: Iterable[Sequence[object]], align: str = "") -> list[str]:
    """A markdown table: header, alignment row, one row per entry of ``rows``.

    Parameters
    ----------
    header
        Column titles.
    rows
        Cells of each row (converted with ``str``).
    align
        One letter per column, ``l`` (``---``) or ``r`` (``---:``); default: the first
        column left, the others right.

    Returns
    -------
    list of str
        The lines.
    """
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    return [markdown_row(header), markdown_row(rule), *(markdown_row(r) for r in rows)]


def target(name: str, measured: float, goal: str, met: bool, text: str = "") -> dict[str, Any]:
    """One performance target: ``name``, ``measured`` (and ``measured_text``), ``goal``, ``met``."""
    found: dict[str, Any] = {"name": name, "measured": measured}
    if text:
        found["measured_text"] = text
    return {**found, "goal": goal, "met": bool(met)}


def targets_table(targets: Iterable[Mapping[str, Any]]) -> list[str]:
    """The markdown table of :func:`target` entries: name, measured, goal, met.

    ``measured`` is shown with two decimals unless a ``measured_text`` is given.
    """
    rows = [
        [
            t["name"],
            t.get("measured_text") or f"{t['measured']:.2f}",
            t["goal"],
            "yes" if t["met"] else "**no**",
        ]
        for t in targets
    ]
    return table(["target", "measured", "goal", "met"], rows, "lrrl")


def timestamp() -> str:
    """The local time now, ISO 8601 with UTC offset (``2025-01-31T14:05:09+0100``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def save_results(results: dict[str, Any], table: str | list[str], path: Path) -> None:
    """Add the markdown ``table`` to ``results``, print it, write ``results`` as JSON.

    Parameters
    ----------
    results
        The benchmark's results; ``table_markdown`` is set to ``table``.
    table
        Markdown text of the results (or its lines).
    path
        JSON file to write (its folder is created).
    """
    text = table if isinstance(table, str) else "\n".join(table)
    results["table_markdown"] = text
    print()
    print(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults: {path}")
