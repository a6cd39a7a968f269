"""Accepting a proposal: the edits to apply under the painting policy, and their provenance.

A proposal is never written into an annotation by the classifier. Accepting it turns it into
edits (index arrays per class, as :func:`napari_domainseg.ops.threshold.label_edit` gives for a
threshold) that the caller applies as one undo step, plus a provenance record for the layer
metadata and export sidecars. Pixels without data (label 0 in the proposal) are never written.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_domainseg.ops.assist.classifier import PixelClassifier, Proposal
from napari_domainseg.ops.threshold import label_edit


def accept_edits(
    labels: np.ndarray,
    proposal: Proposal,
    policy: str = "unlabeled",
    classes: Sequence[int] | None = None,
    max_uncertainty: float | None = None,
) -> list[tuple[tuple[np.ndarray, ...], int]]:
    """``(indices, class_id)`` edits that write ``proposal`` into ``labels``.

    Parameters
    ----------
    labels
        The annotation (full array; the proposal covers ``proposal.region`` of it).
    proposal
        What the classifier predicted.
    policy
        ``"unlabeled"`` (default: only pixels still 0), ``"preserve"`` (same, per class) or
        ``"overwrite"`` (every pixel of the region).
    classes
        Accept only these classes (default: all).
    max_uncertainty
        Accept only pixels whose uncertainty is at most this (default: all).

    Returns
    -------
    list
        One ``(indices into labels, class_id)`` per accepted class, in class order.
    """
    window = labels[proposal.region]
    offset = [s.start for s in proposal.region]
    keep = proposal.valid & (proposal.labels != 0)
    if max_uncertainty is not None:
        keep &= proposal.uncertainty <= max_uncertainty
    edits = []
    for value in classes if classes is not None else proposal.classes:
        mask = keep & (proposal.labels == value)
        if not mask.any():
            continue
        local, class_id = label_edit(mask, window, int(value), policy)
        if local[0].size:
            edits.append((tuple(i + o for i, o in zip(local, offset, strict=True)), class_id))
    return edits


def provenance(model: PixelClassifier, edits: list[tuple[tuple[np.ndarray, ...], int]]) -> dict:
    """A JSON-serialisable record of an acceptance: the model and the pixels per class."""
    counts: dict[str, int] = {}
    for indices, class_id in edits:
        counts[str(class_id)] = counts.get(str(class_id), 0) + int(indices[0].size)
    record: dict[str, Any] = {
        "source": "napari-domainseg assisted labeling",
        "accepted_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "pixels_per_class": counts,
        "model": {
            "classes": list(model.classes),
            "recipe": model.recipe.to_dict(),
            "versions": dict(model.versions),
            "trained_on": dict(model.trained_on),
        },
    }
    return record
