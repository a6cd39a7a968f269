"""Progress of long ``domainseg`` work: a bar on a terminal, nothing otherwise.

A bar is drawn on stderr only when stderr is a terminal and ``--json`` was not asked for, so
pipes, logs and machine-readable output stay clean. Bars are `tqdm <https://tqdm.github.io>`_
bars; dask computations get a callback that drives one. Work without a count (reading a
series, polygonizing a raster) shows what it is doing and the time spent (:func:`working`,
:func:`stage`); a counted bar replaces it while it runs.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_enabled = True
_spinner: _Spinner | None = None
SPINNER_DELAY_S = 1.0
"""Work finishing sooner shows nothing."""


class _Spinner:
    """A line ``domainseg COMMAND: stage (12s)`` redrawn on stderr by a background thread."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.stage = ""
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._bar: Any = None

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        from tqdm import tqdm

        if self._stop.wait(SPINNER_DELAY_S):
            return
        self._bar = tqdm(
            total=None, desc=self.description, bar_format="{desc} ({elapsed})",
            file=sys.stderr, leave=False, **_size(),
        )  # fmt: skip
        while not self._stop.wait(0.5):
            if not self._paused.is_set():
                self._draw()
        self._bar.close()

    def _draw(self) -> None:
        text = f"{self.description}: {self.stage}" if self.stage else self.description
        self._bar.set_description_str(text, refresh=True)

    def pause(self) -> None:
        self._paused.set()
        if self._bar is not None:
            self._bar.clear()

    def resume(self) -> None:
        self._paused.clear()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


@contextlib.contextmanager
def working(description: str) -> Iterator[None]:
    """Show ``description`` and the time spent while the block runs (after a short delay)."""
    global _spinner
    if not wanted() or _spinner is not None:
        yield
        return
    _spinner = _Spinner(description)
    _spinner.start()
    try:
        yield
    finally:
        _spinner.stop()
        _spinner = None


def stage(text: str) -> None:
    """Say what the work inside :func:`working` is doing now (``"reading labels"``)."""
    if _spinner is not None:
        _spinner.stage = text


@contextlib.contextmanager
def _counted() -> Iterator[None]:
    """Pause the :func:`working` line while a counted bar is drawn."""
    spinner = _spinner
    if spinner is not None:
        spinner.pause()
    try:
        yield
    finally:
        if spinner is not None:
            spinner.resume()


def configure(json_output: bool) -> None:
    """Turn bars off for this run when the output is machine-readable."""
    global _enabled
    _enabled = not json_output


def _size() -> dict[str, int]:
    """The terminal's size for tqdm; 80 x 24 when it reports none (a new pseudo-terminal: 0 x 0)."""
    try:
        columns, rows = os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        columns, rows = 0, 0
    return {"ncols": columns or 80, "nrows": rows or 24}


def wanted(stream: Any = None) -> bool:
    """True when a bar should be drawn: stderr is a terminal and the output is not ``--json``."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return _enabled and callable(isatty) and bool(isatty())


def bar(
    items: Iterable[T], description: str, total: int | None = None, unit: str = "it"
) -> Iterator[T]:
    """Iterate over ``items`` with a progress bar on stderr when :func:`wanted`."""
    if not wanted():
        yield from items
        return
    from tqdm import tqdm

    with (
        _counted(),
        tqdm(
            items,
            desc=description,
            total=total,
            unit=unit,
            file=sys.stderr,
            leave=False,
            **_size(),
        ) as progress,
    ):
        yield from progress


@contextlib.contextmanager
def dask_bar(description: str) -> Iterator[None]:
    """Show the progress of the dask computations run inside the block (local schedulers)."""
    if not wanted():
        yield
        return
    from dask.callbacks import Callback
    from tqdm import tqdm

    class _Bar(Callback):
        def __init__(self) -> None:
            super().__init__()
            self.progress: Any = None

        def _start_state(self, _dsk: Any, state: dict[str, Any]) -> None:
            total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
            self.progress = tqdm(
                total=total,
                desc=description,
                unit="task",
                file=sys.stderr,
                leave=False,
                **_size(),
            )

        def _posttask(self, *_args: Any) -> None:
            if self.progress is not None:
                self.progress.update(1)

        def _finish(self, *_args: Any) -> None:
            if self.progress is not None:
                self.progress.close()

    with _counted(), _Bar():
        yield
