"""Where to look next: slices, tiles and classes ranked by the model's uncertainty.

The napari "Assist" tab's "next uncertain slice / tile" and its per-class summary read these;
pixels without data (uncertainty 0, ``valid`` False) never count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_domainseg.ops.assist.classifier import Proposal


@dataclass(frozen=True)
class Ranked:
    """A slice (``index``) or tile (``origin``) with its mean uncertainty over valid pixels."""

    index: int | tuple[int, int]
    uncertainty: float
    pixels: int


def uncertain_slices(proposal: Proposal, axis: int = 0) -> list[Ranked]:
    """Slices along ``axis`` of the proposal's region, most uncertain first (image indices)."""
    others = tuple(a for a in range(proposal.uncertainty.ndim) if a != axis)
    total = np.where(proposal.valid, proposal.uncertainty, 0).sum(axis=others)
    counts = proposal.valid.sum(axis=others)
    start = proposal.region[axis].start
    ranked = [
        Ranked(int(start + i), float(total[i] / counts[i]), int(counts[i]))
        for i in range(len(counts))
        if counts[i]
    ]
    return sorted(ranked, key=lambda r: -r.uncertainty)


def uncertain_tiles(proposal: Proposal, tile: int = 256) -> list[Ranked]:
    """Tiles of ``tile`` x ``tile`` pixels of a 2-D proposal, most uncertain first.

    ``index`` is the tile's upper-left (row, column) in image pixels.
    """
    if proposal.uncertainty.ndim != 2:
        raise ValueError("uncertain_tiles needs a 2-D proposal; use uncertain_slices for volumes")
    row0, col0 = (s.start for s in proposal.region)
    ranked = []
    rows, cols = proposal.uncertainty.shape
    for r in range(0, rows, tile):
        for c in range(0, cols, tile):
            valid = proposal.valid[r : r + tile, c : c + tile]
            count = int(valid.sum())
            if count:
                value = float(proposal.uncertainty[r : r + tile, c : c + tile][valid].mean())
                ranked.append(Ranked((row0 + r, col0 + c), value, count))
    return sorted(ranked, key=lambda t: -t.uncertainty)


def class_uncertainty(proposal: Proposal) -> dict[int, dict[str, float]]:
    """Per predicted class: pixel count and mean uncertainty, so rare classes get reviewed."""
    summary = {}
    for value in proposal.classes:
        mask = (proposal.labels == value) & proposal.valid
        count = int(mask.sum())
        summary[int(value)] = {
            "pixels": count,
            "mean_uncertainty": float(proposal.uncertainty[mask].mean()) if count else 0.0,
        }
    return summary
