"""Where to look next: slices, tiles and classes ranked by the model's uncertainty.

The napari "Assist" tab's "next uncertain slice / tile" (optionally for one class) and its
per-class summary read these; pixels without data (uncertainty 0, ``valid`` False) never count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_domainseg.ops.assist.classifier import Proposal
from napari_domainseg.ops.assist.status import Layout

RARE_PIXELS = 500
"""A predicted class with fewer pixels than this is flagged rare."""
RARE_FRACTION = 0.01
"""... and so is one with less than this fraction of the proposal's pixels."""


@dataclass(frozen=True)
class Ranked:
    """A slice (``index``) or tile (``origin``) with its mean uncertainty over valid pixels."""

    index: int | tuple[int, int]
    uncertainty: float
    pixels: int


@dataclass(frozen=True)
class ClassSummary:
    """One predicted class: pixels, share of the proposal, mean uncertainty, rare or not."""

    value: int
    pixels: int
    fraction: float
    mean_uncertainty: float
    rare: bool


def _counted(proposal: Proposal, class_id: int | None) -> np.ndarray:
    """The pixels that count: valid, and predicted as ``class_id`` when one is given."""
    if class_id is None:
        return proposal.valid
    return proposal.valid & (proposal.labels == class_id)


def uncertain_slices(
    proposal: Proposal, axis: int = 0, class_id: int | None = None
) -> list[Ranked]:
    """Slices along ``axis`` of the proposal's region, most uncertain first (image indices).

    With ``class_id``, only the pixels predicted as that class count: the slices where that
    class is least sure come first, and slices without it are left out.
    """
    counted = _counted(proposal, class_id)
    others = tuple(a for a in range(proposal.uncertainty.ndim) if a != axis)
    total = np.where(counted, proposal.uncertainty, 0).sum(axis=others)
    counts = counted.sum(axis=others)
    start = proposal.region[axis].start
    ranked = [
        Ranked(int(start + i), float(total[i] / counts[i]), int(counts[i]))
        for i in range(len(counts))
        if counts[i]
    ]
    return sorted(ranked, key=lambda r: -r.uncertainty)


def uncertain_tiles(
    proposal: Proposal, tile: int = 256, class_id: int | None = None
) -> list[Ranked]:
    """Tiles of ``tile`` x ``tile`` pixels of a 2-D proposal, most uncertain first.

    ``index`` is the tile's upper-left (row, column) in image pixels; tiles are cut from the
    proposal region's corner. With ``class_id``, only pixels predicted as that class count.
    """
    if proposal.uncertainty.ndim != 2:
        raise ValueError("uncertain_tiles needs a 2-D proposal; use uncertain_slices for volumes")
    counted = _counted(proposal, class_id)
    row0, col0 = (s.start for s in proposal.region)
    rows, cols = proposal.uncertainty.shape
    column_tile = np.arange(cols) // tile
    ranked = []
    for r in range(0, rows, tile):  # one band of tiles at a time: memory of one band
        band = counted[r : r + tile]
        code = np.broadcast_to(column_tile, band.shape)[band]
        counts = np.bincount(code, minlength=column_tile[-1] + 1)
        weights = proposal.uncertainty[r : r + tile][band]
        sums = np.bincount(code, weights=weights, minlength=counts.size)
        for c in np.flatnonzero(counts):
            mean = float(sums[c] / counts[c])
            ranked.append(Ranked((row0 + r, col0 + int(c) * tile), mean, int(counts[c])))
    return sorted(ranked, key=lambda t: -t.uncertainty)


def class_summary(
    proposal: Proposal, rare_pixels: int = RARE_PIXELS, rare_fraction: float = RARE_FRACTION
) -> list[ClassSummary]:
    """Every predicted class (and every class of the model), in class order, in one pass.

    A class is *rare* when it has fewer than ``rare_pixels`` pixels or less than
    ``rare_fraction`` of the proposal's valid pixels (absent classes are rare too): the ones a
    forest gets wrong first and an annotator overlooks.
    """
    values = np.asarray(proposal.labels)[proposal.valid].astype(np.int64, copy=False)
    weights = np.asarray(proposal.uncertainty)[proposal.valid]
    counts = np.bincount(values) if values.size else np.zeros(1, np.int64)
    sums = np.bincount(values, weights=weights) if values.size else np.zeros(1)
    total = int(counts[1:].sum())
    classes = sorted({int(c) for c in proposal.classes} | {int(v) for v in np.flatnonzero(counts)})
    summary = []
    for value in classes:
        if value == 0:
            continue
        pixels = int(counts[value]) if value < counts.size else 0
        fraction = pixels / total if total else 0.0
        mean = float(sums[value] / pixels) if pixels else 0.0
        rare = pixels < rare_pixels or fraction < rare_fraction
        summary.append(ClassSummary(value, pixels, fraction, mean, rare))
    return summary


def class_uncertainty(proposal: Proposal) -> dict[int, dict[str, float]]:
    """Per predicted class: pixel count and mean uncertainty, so rare classes get reviewed."""
    known = {s.value: s for s in class_summary(proposal)}
    summary = {}
    for value in proposal.classes:
        entry = known.get(int(value))
        summary[int(value)] = {
            "pixels": entry.pixels if entry else 0,
            "mean_uncertainty": entry.mean_uncertainty if entry else 0.0,
        }
    return summary


@dataclass
class Tally:
    """Additive per-unit, per-class sums of a proposal: pixels with data and their uncertainty.

    ``counts[u, j]`` and ``sums[u, j]`` are over unit ``keys[u]`` (slices or tiles of a
    :class:`.status.Layout`) and class ``classes[j]``. Tallies add and subtract, so a panel
    keeps the whole proposal's summary by adding the tally of a new prediction and subtracting
    that of the pixels it replaces, without reading the rest of the image again.
    """

    keys: list
    classes: list[int]
    counts: np.ndarray
    sums: np.ndarray

    def _aligned(self, other: Tally) -> tuple[np.ndarray, ...]:
        if other.keys != self.keys:
            raise ValueError("tallies of different layouts cannot be combined")
        classes = sorted(set(self.classes) | set(other.classes))
        out = []
        for tally in (self, other):
            columns = [classes.index(c) for c in tally.classes]
            for array in (tally.counts, tally.sums):
                full = np.zeros((len(self.keys), len(classes)), array.dtype)
                full[:, columns] = array
                out.append(full)
        return (np.asarray(classes), *out)

    def __add__(self, other: Tally) -> Tally:
        classes, c1, s1, c2, s2 = self._aligned(other)
        return Tally(self.keys, [int(c) for c in classes], c1 + c2, s1 + s2)

    def __sub__(self, other: Tally) -> Tally:
        classes, c1, s1, c2, s2 = self._aligned(other)
        return Tally(self.keys, [int(c) for c in classes], c1 - c2, s1 - s2)

    def ranked(self, class_id: int | None = None) -> list[Ranked]:
        """Units with predicted pixels (of ``class_id``), most uncertain first."""
        if class_id is None:
            counts, sums = self.counts.sum(axis=1), self.sums.sum(axis=1)
        elif class_id in self.classes:
            j = self.classes.index(class_id)
            counts, sums = self.counts[:, j], self.sums[:, j]
        else:
            return []
        ranked = [
            Ranked(self.keys[u], float(sums[u] / counts[u]), int(counts[u]))
            for u in np.flatnonzero(counts > 0)
        ]
        return sorted(ranked, key=lambda r: -r.uncertainty)

    def unit_uncertainty(self) -> dict:
        """Mean uncertainty per unit with predicted pixels."""
        return {r.index: r.uncertainty for r in self.ranked()}

    def summary(
        self, rare_pixels: int = RARE_PIXELS, rare_fraction: float = RARE_FRACTION
    ) -> list[ClassSummary]:
        """Per class, as :func:`class_summary` gives it for the whole proposal."""
        counts, sums = self.counts.sum(axis=0), self.sums.sum(axis=0)
        total = int(counts[[c != 0 for c in self.classes]].sum()) if self.classes else 0
        out = []
        for j, value in enumerate(self.classes):
            if value == 0:
                continue
            pixels = int(counts[j])
            fraction = pixels / total if total else 0.0
            mean = float(sums[j] / pixels) if pixels else 0.0
            out.append(
                ClassSummary(
                    value, pixels, fraction, mean, pixels < rare_pixels or fraction < rare_fraction
                )
            )
        return out


def tally(proposal: Proposal, layout: Layout) -> Tally:
    """The :class:`Tally` of ``proposal`` (a region of the annotation ``layout`` cuts)."""
    keys = layout.keys()
    classes = sorted({int(c) for c in proposal.classes if c} | _present(proposal))
    column = {c: j for j, c in enumerate(classes)}
    counts = np.zeros((len(keys), len(classes)), np.int64)
    sums = np.zeros((len(keys), len(classes)), np.float64)
    if not classes:
        return Tally(keys, classes, counts, sums)
    lookup = np.full(max(classes) + 1, -1, np.int64)
    lookup[classes] = [column[c] for c in classes]
    region = proposal.region
    if len(layout.shape) == 3:
        axis, start = layout.axis, region[layout.axis].start
        for i in range(proposal.labels.shape[axis]):
            take = [slice(None)] * 3
            take[axis] = i
            _add(counts, sums, start + i, proposal, tuple(take), lookup)
        return Tally(keys, classes, counts, sums)
    tile, (row0, col0) = layout.tile, (s.start for s in region[:2])
    rows, cols = proposal.labels.shape
    grid_cols = layout.grid[1]
    for top in range(row0 // tile * tile, row0 + rows, tile):  # the annotation's tiles
        r0, r1 = max(top - row0, 0), min(top + tile - row0, rows)
        for left in range(col0 // tile * tile, col0 + cols, tile):
            c0, c1 = max(left - col0, 0), min(left + tile - col0, cols)
            unit = top // tile * grid_cols + left // tile
            _add(counts, sums, unit, proposal, (slice(r0, r1), slice(c0, c1)), lookup)
    return Tally(keys, classes, counts, sums)


def _present(proposal: Proposal) -> set[int]:
    values = np.asarray(proposal.labels)[np.asarray(proposal.valid)]
    return {int(v) for v in np.unique(values) if v} if values.size else set()


def _add(
    counts: np.ndarray,
    sums: np.ndarray,
    unit: int,
    proposal: Proposal,
    part: tuple[slice, ...],
    lookup: np.ndarray,
) -> None:
    """Add the pixels ``part`` of ``proposal`` to row ``unit`` of ``counts`` and ``sums``."""
    valid = np.asarray(proposal.valid[part])
    if not valid.any():
        return
    values = np.asarray(proposal.labels[part])[valid].astype(np.int64, copy=False)
    keep = values > 0
    columns = lookup[values[keep]]
    weights = np.asarray(proposal.uncertainty[part])[valid][keep]
    counts[unit] += np.bincount(columns, minlength=counts.shape[1])
    sums[unit] += np.bincount(columns, weights=weights, minlength=counts.shape[1])
