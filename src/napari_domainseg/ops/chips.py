"""Training chips: tiles over a label map, the informative ones kept, rare classes balanced."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Chip:
    """One tile: its window ``(row, col, height, width)`` (and slice for volumes) and content."""

    row: int
    col: int
    size: int
    slice_index: int | None = None
    labelled: float = 0.0
    class_counts: dict[int, int] = field(default_factory=dict)
    repeats: int = 1


def windows(height: int, width: int, size: int, overlap: int = 0) -> list[tuple[int, int]]:
    """Top-left corners of ``size`` tiles covering the plane, ``overlap`` pixels apart.

    The last row and column of tiles are shifted back to end at the border,
    so every tile is whole and every pixel is covered.
    """
    if size <= overlap:
        raise ValueError("the chip size must exceed the overlap")
    if size > height or size > width:
        raise ValueError(f"chips of {size} px do not fit a {height}x{width} plane")
    step = size - overlap

    def starts(length: int) -> list[int]:
        values = list(range(0, length - size + 1, step))
        if values[-1] != length - size:
            values.append(length - size)
        return values

    return [(r, c) for r in starts(height) for c in starts(width)]


def plan_chips(
    labels: np.ndarray,
    size: int,
    overlap: int = 0,
    min_labelled: float = 0.0,
    balance: bool = False,
    valid: np.ndarray | None = None,
) -> list[Chip]:
    """The chips of a 2D label map, or of every slice (axis 0) of a volume.

    Parameters
    ----------
    valid
        Where the image has data (same shape as ``labels``; ``None``:
        everywhere). A chip with no valid pixel (all nodata) is never kept.
        (Nodata of the label map itself is read as 0, unlabeled, by the readers.)
    min_labelled
        Keep chips with at least this fraction of labelled (non-zero) pixels.
    balance
        Repeat chips holding rare classes: each chip is repeated
        ``round(max_count / count)`` times for its rarest class (capped at 10),
        where counts are chips per class, so rare classes are seen as often
        as common ones when training.
    """
    if valid is not None and np.shape(valid) != np.shape(labels):
        raise ValueError(f"validity mask {np.shape(valid)} and labels {np.shape(labels)} differ")
    planes = [labels] if labels.ndim == 2 else list(labels)
    masks = [None] * len(planes) if valid is None else [valid] if labels.ndim == 2 else list(valid)
    chips = []
    for index, (plane, mask) in enumerate(zip(planes, masks, strict=True)):
        for row, col in windows(plane.shape[0], plane.shape[1], size, overlap):
            tile = plane[row : row + size, col : col + size]
            if mask is not None:
                inside = mask[row : row + size, col : col + size]
                if not inside.any():
                    continue  # all nodata: nothing to learn from
            counts = np.bincount(tile.ravel().astype(np.int64))
            labelled = 1.0 - counts[0] / tile.size if len(counts) else 0.0
            if labelled < min_labelled or (min_labelled > 0 and labelled == 0):
                continue
            present = {int(v): int(counts[v]) for v in np.flatnonzero(counts) if v != 0}
            chips.append(
                Chip(row, col, size, None if labels.ndim == 2 else index, float(labelled), present)
            )
    if balance:
        _balance(chips)
    return chips


def _balance(chips: list[Chip]) -> None:
    """Set each chip's repeats from its rarest class (see :func:`plan_chips`)."""
    chips_per_class: dict[int, int] = {}
    for chip in chips:
        for value in chip.class_counts:
            chips_per_class[value] = chips_per_class.get(value, 0) + 1
    most = max(chips_per_class.values(), default=1)
    for chip in chips:
        if chip.class_counts:
            rarest = min(chips_per_class[v] for v in chip.class_counts)
            chip.repeats = int(min(10, max(1, round(most / rarest))))
