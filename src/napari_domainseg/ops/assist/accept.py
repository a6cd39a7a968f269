"""Accepting a proposal: the edits to apply under the painting policy, and their provenance.

A proposal is never written into an annotation by the classifier. Accepting it turns it into
edits (index arrays per class, as :func:`napari_domainseg.ops.threshold.label_edit` gives for a
threshold) that the caller applies as one undo step, plus a provenance record for the layer
metadata and export sidecars. Pixels without data (label 0 in the proposal) are never written.

An acceptance's record (:func:`acceptance_record`) keeps which pixels came from the assistant
(runs of flat indices), a *probe* (up to :data:`PROBE_PIXELS` of them with the value written)
and the digests of the slices or tiles it touched (:mod:`.status`). The probe tells whether the
acceptance is still in the annotation: after an undo none of its probe pixels holds its value,
after a redo they all do again, so :func:`reconcile` moves records between ``"accepted"`` and
``"undone"`` from the pixels alone, whatever undid them. :func:`export_record` is the compact
form written into export sidecars (key :data:`EXPORT_KEY`).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_domainseg.ops.assist.classifier import PixelClassifier, Proposal
from napari_domainseg.ops.assist.status import UNITS_KEY, status_record
from napari_domainseg.ops.threshold import label_edit

Edits = list[tuple[tuple[np.ndarray, ...], int]]
MAX_RUNS = 200_000
"""Provenance keeps the accepted pixels as runs of flat indices up to this many runs."""
PROBE_PIXELS = 1024
"""Accepted pixels (evenly spread) whose values tell whether an acceptance is still applied."""
MAX_UNDONE = 20
"""Undone acceptances kept for a redo (the most recent)."""
EXPORT_KEY = "assist"
"""Key of the compact provenance in export sidecars (NIfTI ``.labels.json``, ...)."""
RUNS_ENCODING = "C-order flat index runs [start, length] over the layer shape"


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


def pixel_runs(
    indices: tuple[np.ndarray, ...], shape: tuple[int, ...], max_runs: int = MAX_RUNS
) -> list[list[int]] | None:
    """``[start, length]`` runs of the C-order flat indices of ``indices`` (None: too many)."""
    flat = np.sort(np.ravel_multi_index(indices, shape))
    if flat.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(flat) != 1) + 1
    if breaks.size + 1 > max_runs:
        return None
    starts = flat[np.r_[0, breaks]]
    lengths = np.diff(np.r_[0, breaks, flat.size])
    return [[int(s), int(n)] for s, n in zip(starts, lengths, strict=True)]


def runs_to_flat(runs: list[list[int]]) -> np.ndarray:
    """The flat indices of :func:`pixel_runs`' runs (sorted)."""
    if not runs:
        return np.zeros(0, np.int64)
    starts, lengths = np.asarray(runs, dtype=np.int64).T
    offsets = np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths)
    return offsets + np.arange(int(lengths.sum()), dtype=np.int64)


def assisted_mask(record: dict | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """Pixels that the acceptances of an :func:`export_record` wrote, as a boolean mask.

    None without a record, or when an acceptance kept no pixel runs (too many to list).
    """
    if not record or list(record.get("shape") or shape) != list(shape):
        return None
    mask = np.zeros(int(np.prod(shape)), dtype=bool)
    for accepted in record.get("accepted", []):
        runs = accepted.get("pixels")
        if runs is None:
            return None
        mask[runs_to_flat(runs)] = True
    return mask.reshape(shape)


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


def probe(labels: Any, edits: Edits, size: int = PROBE_PIXELS) -> dict[str, list[int]]:
    """Up to ``size`` accepted pixels, evenly spread, with their values in ``labels`` (after)."""
    shape = tuple(np.shape(labels))
    edits = [e for e in edits if len(e[0]) and np.size(e[0][0])]
    if not edits:
        return {"index": [], "value": []}
    flat = np.concatenate([np.ravel_multi_index(indices, shape) for indices, _ in edits])
    picked = np.unique(flat[np.linspace(0, flat.size - 1, min(size, flat.size)).astype(np.int64)])
    values = np.asarray(labels[np.unravel_index(picked, shape)])
    return {"index": [int(i) for i in picked], "value": [int(v) for v in values]}


def acceptance_record(
    model: PixelClassifier,
    edits: Edits,
    labels: Any,
    *,
    units: dict | None = None,
    **fields: Any,
) -> dict:
    """The provenance of an acceptance just applied to ``labels``.

    :func:`provenance` plus the accepted pixels as runs (``None`` beyond :data:`MAX_RUNS`),
    a :func:`probe`, the per-unit digests ``units`` (:class:`.status.AcceptedUnits`) and any
    ``fields`` (model id, round, scope, policy, region, ...).
    """
    shape = tuple(np.shape(labels))
    record = provenance(model, edits)
    kept = [e for e in edits if len(e[0]) and np.size(e[0][0])]
    indices = (
        tuple(np.concatenate(parts) for parts in zip(*(e[0] for e in kept), strict=True))
        if kept
        else tuple(np.zeros(0, np.int64) for _ in shape)
    )
    record.update(fields)
    record.update(
        shape=list(shape),
        pixels_encoding=RUNS_ENCODING,
        pixels=pixel_runs(indices, shape),
        probe=probe(labels, kept),
    )
    if units is not None:
        record[UNITS_KEY] = units
    return record


def is_applied(labels: Any, record: dict) -> bool:
    """Whether an acceptance is still in ``labels``: any of its probe pixels holds its value.

    A record without a probe (older files) or made for another shape counts as applied.
    """
    sample = record.get("probe") or {}
    index, value = sample.get("index"), sample.get("value")
    shape = tuple(np.shape(labels))
    other_shape = record.get("shape", list(shape)) != list(shape)
    if not index or len(index) != len(value or ()) or other_shape:
        return True
    where = np.unravel_index(np.asarray(index, dtype=np.int64), shape)
    return bool(np.any(np.asarray(labels[where]) == np.asarray(value)))


def add_record(assist: dict, record: dict) -> None:
    """Append an acceptance to the ``assist`` metadata entry (numbered, in order)."""
    accepted = assist.setdefault("accepted", [])
    every = accepted + assist.get("undone", [])
    record["sequence"] = 1 + max((int(r.get("sequence", 0)) for r in every), default=0)
    accepted.append(record)


def reconcile(labels: Any, assist: dict) -> bool:
    """Move acceptances undone in ``labels`` to ``"undone"`` and redone ones back (in place).

    Returns
    -------
    bool
        Whether anything moved.
    """
    accepted, undone = list(assist.get("accepted", [])), list(assist.get("undone", []))
    applied = [is_applied(labels, r) for r in accepted + undone]
    live = [r for r, ok in zip(accepted + undone, applied, strict=True) if ok]
    dead = [r for r, ok in zip(accepted + undone, applied, strict=True) if not ok]
    order = {id(r): i for i, r in enumerate(accepted + undone)}
    live.sort(key=lambda r: (int(r.get("sequence", 0)), order[id(r)]))
    dead.sort(key=lambda r: (int(r.get("sequence", 0)), order[id(r)]))
    changed = [id(r) for r in live] != [id(r) for r in accepted]
    assist["accepted"] = live
    if dead or "undone" in assist:
        assist["undone"] = dead[-MAX_UNDONE:]
    return changed


def export_record(assist: Any, labels: Any = None, axis: int = 0) -> dict | None:
    """The compact provenance written into export sidecars, or None without acceptances.

    Only acceptances still applied to ``labels`` (when given) are written: per acceptance the
    model id and round, time, scope, policy, pixels per class and the accepted pixels as runs;
    each model's classes, feature recipe, library versions and training summary once; the
    totals; and with ``labels`` the review status of every slice (along ``axis``) or tile
    (:func:`.status.status_record`).
    """
    if not isinstance(assist, dict) or not assist.get("accepted"):
        return None
    records = [r for r in assist["accepted"] if isinstance(r, dict)]
    if labels is not None:
        records = [r for r in records if is_applied(labels, r)]
    if not records:
        return None
    models: dict[str, dict] = {}
    accepted, totals = [], {}
    for record in records:
        model = dict(record.get("model") or {})
        model_id = str(model.pop("id", "")) or f"model-{len(models) + 1}"
        round_ = model.pop("round", None)
        models.setdefault(model_id, model)
        counts = {str(k): int(v) for k, v in (record.get("pixels_per_class") or {}).items()}
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
        accepted.append(
            {
                "model_id": model_id,
                "round": round_,
                "accepted_at": record.get("accepted_at"),
                "scope": record.get("scope"),
                "policy": record.get("policy"),
                "pixels_per_class": counts,
                "pixels": record.get("pixels"),
            }
        )
    out: dict[str, Any] = {
        "source": "napari-domainseg assisted labeling",
        "pixels_encoding": RUNS_ENCODING,
        "shape": records[-1].get("shape"),
        "assisted_pixels": sum(totals.values()),
        "pixels_per_class": totals,
        "models": models,
        "accepted": accepted,
    }
    if labels is not None:
        out["shape"] = list(np.shape(labels))
        out["status"] = status_record(labels, records, axis=axis)
    return out
