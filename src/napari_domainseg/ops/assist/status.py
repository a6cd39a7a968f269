"""Review status of an annotation made with the assistant, per slice (volumes) or tile (scenes).

An annotation is cut into *units*: the slices along one axis of a volume, or tiles of
:data:`TILE` x :data:`TILE` pixels of a 2-D raster (:class:`Layout`). Each unit has one status:

``"not started"``
    No labelled pixel, and no acceptance ever wrote there.
``"painted"``
    Labelled by hand only: no acceptance wrote a pixel there.
``"pre-labeled"``
    An acceptance wrote pixels there and the unit's labels are exactly as they were right after
    the last acceptance that touched it: the assistant's work, not yet edited.
``"corrected"``
    An acceptance wrote pixels there and the labels changed since (an accepted pixel edited or
    erased, or a pixel painted beside them), or they had changed before a later acceptance
    touched the unit again (corrected stays corrected).

"Exactly as they were" is a CRC-32 of the unit's label bytes, recorded for every unit an
acceptance touches (:class:`AcceptedUnits`) in its provenance record. No per-pixel ownership
map is kept, a unit's status costs one read of its pixels, and an undo that restores the
pixels restores the status. Pure core: numpy only.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

TILE = 256
"""Side (pixels) of the review tiles of a 2-D raster."""
NOT_STARTED, PAINTED, PRE_LABELED, CORRECTED = "not started", "painted", "pre-labeled", "corrected"
STATUSES = (NOT_STARTED, PAINTED, PRE_LABELED, CORRECTED)
UNITS_KEY = "units"
"""Key of the per-unit digests in an acceptance's provenance record."""

Key = int | tuple[int, int]
"""A slice index, or a tile's upper-left (row, column)."""


@dataclass(frozen=True)
class Layout:
    """How an annotation of ``shape`` is cut into review units.

    Volumes (3-D): the slices along ``axis``. 2-D rasters: tiles of ``tile`` pixels, keyed by
    their upper-left (row, column) as :func:`.review.uncertain_tiles` gives them.
    """

    shape: tuple[int, ...]
    axis: int = 0
    tile: int = TILE

    @property
    def name(self) -> str:
        """The layout's key in provenance records, for example ``"axis 0"`` or ``"tile 256"``."""
        return f"axis {self.axis}" if len(self.shape) == 3 else f"tile {self.tile}"

    @property
    def grid(self) -> tuple[int, int]:
        """Tiles per column and per row (2-D only)."""
        return (-(-self.shape[0] // self.tile), -(-self.shape[1] // self.tile))

    def keys(self) -> list[Key]:
        """Every unit, in reading order."""
        if len(self.shape) == 3:
            return list(range(self.shape[self.axis]))
        rows, cols = self.grid
        return [(r * self.tile, c * self.tile) for r in range(rows) for c in range(cols)]

    def region(self, key: Key) -> tuple[slice, ...]:
        """The unit's pixels as slices into the annotation."""
        if len(self.shape) == 3:
            region = [slice(0, n) for n in self.shape]
            region[self.axis] = slice(int(key), int(key) + 1)
            return tuple(region)
        row, col = key  # type: ignore[misc]
        return (slice(row, min(row + self.tile, self.shape[0])),
                slice(col, min(col + self.tile, self.shape[1])))  # fmt: skip

    def key_of(self, point: Sequence[float]) -> Key:
        """The unit holding a data position (clipped into the annotation)."""
        pairs = zip(point, self.shape, strict=True)
        index = [int(np.clip(np.floor(p), 0, n - 1)) for p, n in pairs]
        if len(self.shape) == 3:
            return index[self.axis]
        return (index[0] // self.tile * self.tile, index[1] // self.tile * self.tile)

    def keys_in(self, region: Sequence[slice]) -> list[Key]:
        """The units a box of the annotation (slices with start and stop) intersects."""
        if len(self.shape) == 3:
            part = region[self.axis]
            return list(range(max(0, part.start or 0), min(self.shape[self.axis], part.stop)))
        (r0, r1), (c0, c1) = ((s.start or 0, s.stop) for s in region[:2])
        if r1 <= r0 or c1 <= c0:
            return []
        t = self.tile
        return [
            (r, c)
            for r in range(r0 // t * t, min(r1, self.shape[0]), t)
            for c in range(c0 // t * t, min(c1, self.shape[1]), t)
        ]

    def keys_of(self, indices: Sequence[np.ndarray]) -> list[Key]:
        """The units holding any of the pixels ``indices`` (index arrays), in reading order."""
        if not len(indices) or not np.size(indices[0]):
            return []
        if len(self.shape) == 3:
            present = np.bincount(np.asarray(indices[self.axis]), minlength=self.shape[self.axis])
            return [int(i) for i in np.flatnonzero(present)]
        rows, cols = self.grid
        code = np.asarray(indices[0]) // self.tile * cols + np.asarray(indices[1]) // self.tile
        present = np.flatnonzero(np.bincount(code, minlength=rows * cols))
        return [(int(i // cols) * self.tile, int(i % cols) * self.tile) for i in present]


def sort_keys(keys: Iterable[Key]) -> list[Key]:
    """Unit keys in reading order."""
    return sorted(keys, key=lambda k: (k,) if isinstance(k, int) else tuple(k))


def layouts_for(shape: Sequence[int], tile: int = TILE) -> list[Layout]:
    """The layouts an acceptance records: every axis of a volume, the tiles of a raster."""
    shape = tuple(int(n) for n in shape)
    if len(shape) == 3:
        return [Layout(shape, axis=a) for a in range(3)]
    if len(shape) == 2:
        return [Layout(shape, tile=tile)]
    raise ValueError(f"review status needs a 2-D raster or a 3-D volume, got {len(shape)}-D")


def key_text(key: Key) -> str:
    """A unit key as text: ``"12"`` (slice) or ``"256,512"`` (tile); the provenance JSON keys."""
    return str(key) if isinstance(key, int) else f"{key[0]},{key[1]}"


def parse_key(text: str) -> Key:
    """The inverse of :func:`key_text`."""
    parts = [int(p) for p in str(text).split(",")]
    return parts[0] if len(parts) == 1 else (parts[0], parts[1])


def digest(labels: Any, region: Sequence[slice]) -> int:
    """CRC-32 of the label bytes of ``region`` (C order)."""
    return zlib.crc32(np.ascontiguousarray(np.asarray(labels[tuple(region)])))


@dataclass(frozen=True)
class UnitEntry:
    """What the last acceptance that touched a unit recorded there."""

    digest: int
    corrected: bool


def last_entries(records: Iterable[dict], layout: Layout) -> dict[Key, UnitEntry]:
    """Per unit, the entry of the last of ``records`` (oldest first) that touched it."""
    entries: dict[Key, UnitEntry] = {}
    for record in records:
        units = (record.get(UNITS_KEY) or {}).get(layout.name)
        if not isinstance(units, dict):
            continue
        corrected = {str(k) for k in units.get("corrected", ())}
        for text, value in (units.get("digests") or {}).items():
            entries[parse_key(text)] = UnitEntry(int(value), text in corrected)
    return entries


def unit_status(labels: Any, layout: Layout, key: Key, entry: UnitEntry | None) -> str:
    """The status of one unit (see the module docstring for the rule)."""
    region = layout.region(key)
    if entry is None:
        return PAINTED if np.any(np.asarray(labels[region])) else NOT_STARTED
    if entry.corrected or digest(labels, region) != entry.digest:
        return CORRECTED
    return PRE_LABELED


class AcceptedUnits:
    """The per-unit part of an acceptance's provenance: call before and after applying it.

    Every layout of the annotation is recorded (:func:`layouts_for`: the three axes of a
    volume). Hashing the slices along the last axis of a C-order volume is a strided read of
    the whole volume (0.6 s for 300x512x512), so the layouts named in ``eager`` (the one the
    review board shows) are recorded by :meth:`after`, right after the edits, and the others by
    :meth:`complete` from a copy of the annotation, off the GUI thread.

    Parameters
    ----------
    labels
        The annotation, before the edits are applied.
    edits
        ``(indices, value)`` pairs the acceptance writes.
    records
        The acceptances before this one (oldest first).
    tile
        Side of the tiles of a 2-D annotation.
    eager
        Names of the layouts (:attr:`Layout.name`) :meth:`after` records; None: every layout.

    Examples
    --------
    >>> units = AcceptedUnits(labels, edits, records)   # before the edits are applied
    >>> apply(edits)
    >>> record["units"] = units.after(labels)
    >>> units = AcceptedUnits(labels, edits, records, eager=["axis 0"])
    >>> apply(edits)
    >>> record["units"] = units.after(labels)            # "axis 0" only
    >>> record["units"].update(units.complete(labels.copy()))  # in a worker: "axis 1", "axis 2"
    """

    def __init__(self, labels: Any, edits: Sequence[tuple[tuple[np.ndarray, ...], int]],
                 records: Sequence[dict], tile: int = TILE,
                 eager: Iterable[str] | None = None) -> None:  # fmt: skip
        self.layouts = layouts_for(np.shape(labels), tile)
        names = None if eager is None else set(eager)
        self.eager = [lay for lay in self.layouts if names is None or lay.name in names]
        self.deferred = [lay for lay in self.layouts if lay not in self.eager]
        self.keys: dict[str, list[Key]] = {}
        self.sticky: dict[str, list[Key]] = {}
        self._previous: dict[str, dict[Key, UnitEntry]] = {}
        self._edits = [e for e in edits if len(e[0]) and np.size(e[0][0])]
        for layout in self.layouts:
            touched: set[Key] = set()
            for indices, _ in self._edits:
                touched.update(layout.keys_of(indices))
            keys = sort_keys(touched)
            previous = last_entries(records, layout)
            self.keys[layout.name] = keys
            self._previous[layout.name] = {k: previous[k] for k in keys if k in previous}
            if layout in self.eager:
                self.sticky[layout.name] = self._sticky(labels, layout)
        # the edited pixels' values before the edits: complete() restores them in its copy
        self._before = (
            [np.array(labels[tuple(i)], copy=True) for i, _ in self._edits] if self.deferred else []
        )

    def _sticky(self, labels: Any, layout: Layout) -> list[Key]:
        """The touched units already corrected before the edits (corrected stays corrected)."""
        previous = self._previous[layout.name]
        return [
            k
            for k in self.keys[layout.name]
            if k in previous and unit_status(labels, layout, k, previous[k]) == CORRECTED
        ]

    def _digests(self, labels: Any, layout: Layout) -> dict[str, int]:
        return {key_text(k): digest(labels, layout.region(k)) for k in self.keys[layout.name]}

    def after(self, labels: Any) -> dict[str, dict[str, Any]]:
        """Digests of the touched units of the eager layouts once the edits are applied.

        JSON-serialisable: ``{layout name: {"digests": {key: crc}, "corrected": [keys]}}``.
        """
        return {
            layout.name: {
                "digests": self._digests(labels, layout),
                "corrected": [key_text(k) for k in self.sticky[layout.name]],
            }
            for layout in self.eager
        }

    def complete(self, snapshot: np.ndarray) -> dict[str, dict[str, Any]]:
        """The entries of the deferred layouts (pure and thread-safe: run it in a worker).

        ``snapshot`` is a copy of the annotation right after the edits; it is modified (the
        edits are undone in it, to find the units that were corrected before them).
        """
        if not self.deferred:
            return {}
        digests = {layout.name: self._digests(snapshot, layout) for layout in self.deferred}
        for (indices, _), values in zip(self._edits, self._before, strict=True):
            snapshot[tuple(indices)] = values  # as it was before the edits
        return {
            layout.name: {
                "digests": digests[layout.name],
                "corrected": [key_text(k) for k in self._sticky(snapshot, layout)],
            }
            for layout in self.deferred
        }


@dataclass
class StatusBoard:
    """Cached statuses of every unit of one layout; refresh only the units that changed."""

    layout: Layout
    status: dict[Key, str] = field(default_factory=dict)
    entries: dict[Key, UnitEntry] = field(default_factory=dict)

    def set_records(self, records: Iterable[dict]) -> None:
        """Take the acceptances' per-unit entries (call when records are added or removed)."""
        self.entries = last_entries(records, self.layout)

    def refresh(self, labels: Any, keys: Iterable[Key] | None = None) -> None:
        """Recompute the status of ``keys`` (default: every unit)."""
        for key in self.layout.keys() if keys is None else keys:
            self.status[key] = unit_status(labels, self.layout, key, self.entries.get(key))

    def counts(self) -> dict[str, int]:
        """How many units have each status (every status listed, in :data:`STATUSES` order)."""
        counts = dict.fromkeys(STATUSES, 0)
        for value in self.status.values():
            counts[value] += 1
        return counts

    def summary(self) -> str:
        """Counts as text: ``"12 not started · 5 pre-labeled · 3 corrected"``.

        "painted" (hand labels only) is shown when some unit has it.
        """
        counts = self.counts()
        shown = [s for s in STATUSES if counts[s] or s != PAINTED]
        return " · ".join(f"{counts[s]} {s}" for s in shown)


def status_record(labels: Any, records: Sequence[dict], axis: int = 0, tile: int = TILE) -> dict:
    """The review status of a whole annotation, for export sidecars.

    Returns
    -------
    dict
        ``{"units": "axis 0" | "tile 256", "counts": {status: n}, "pre-labeled": [keys],
        "corrected": [keys]}`` (keys as :func:`key_text` gives them).
    """
    shape = tuple(np.shape(labels))
    layout = Layout(shape, axis=axis) if len(shape) == 3 else Layout(shape, tile=tile)
    board = StatusBoard(layout)
    board.set_records(records)
    board.refresh(labels)
    out: dict[str, Any] = {"units": layout.name, "counts": board.counts()}
    for name in (PRE_LABELED, CORRECTED):
        out[name] = [key_text(k) for k, s in board.status.items() if s == name]
    return out
