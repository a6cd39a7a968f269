"""Accepting a proposal: the edits to apply under the painting policy, and their provenance.

A proposal is never written into an annotation by the classifier. Accepting it turns it into
edits (index arrays per class, as :func:`napari_domainseg.ops.threshold.label_edit` gives for a
threshold) that the caller applies as one undo step, plus a provenance record for the layer
metadata and export sidecars. Pixels without data (label 0 in the proposal) are never written.

An acceptance's record (:func:`acceptance_record`) keeps which pixels came from the assistant
and as which class (per class, runs of flat indices in a compact text form,
:data:`RUNS_ENCODING`, :func:`encode_pixels`), a *probe* (up to :data:`PROBE_PIXELS` of them
with the value written) and the digests of the slices or tiles it touched (:mod:`.status`).
The probe tells whether the acceptance is still in the annotation: after an undo none of its
probe pixels holds its value, after a redo they all do again, so :func:`reconcile` moves
records between ``"accepted"`` and ``"undone"`` from the pixels alone, whatever undid them.
napari forgets its redo steps on every new edit, so a new acceptance (:func:`add_record`) and
every new stroke (:func:`clear_redo`) forget the undone ones too: an undone acceptance never
comes back because the same pixels were filled again. :func:`export_record` is the compact
form written into export sidecars (key ``"assist"``).
"""

from __future__ import annotations

import base64
import datetime
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from napari_domainseg.ops.assist.classifier import PixelClassifier, Proposal
from napari_domainseg.ops.assist.status import UNITS_KEY, status_record
from napari_domainseg.ops.threshold import label_edit

Edits = list[tuple[tuple[np.ndarray, ...], int]]
PROBE_PIXELS = 1024
"""Accepted pixels (evenly spread) whose values tell whether an acceptance is still applied."""
MAX_UNDONE = 20
"""Undone acceptances kept for a redo (the most recent)."""
RUNS_ENCODING = (
    "per class id: base64 of zlib-compressed little-endian int64 pairs [gap, length], the runs "
    "of C-order flat indices over the layer shape; gap is a run's start minus the previous "
    "run's end (start + length), the first run's start for the first run"
)
"""How :func:`encode_pixels` writes an acceptance's pixels (``"pixels"``: class id -> text)."""
LEGACY_RUNS_ENCODING = "C-order flat index runs [start, length] over the layer shape"
"""The older form (a JSON list of ``[start, length]`` for all classes), still read."""


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


def _sorted_flat(indices: Sequence[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    flat = np.ravel_multi_index(tuple(np.asarray(i) for i in indices), shape)
    return np.unique(flat)  # sorted, and a pixel listed twice counts once


def _runs(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and lengths of the runs of consecutive values of sorted unique ``flat``."""
    breaks = np.flatnonzero(np.diff(flat) != 1) + 1
    starts = flat[np.r_[0, breaks]]
    lengths = np.diff(np.r_[0, breaks, flat.size])
    return starts.astype(np.int64), lengths.astype(np.int64)


def pixel_runs(indices: tuple[np.ndarray, ...], shape: tuple[int, ...]) -> list[list[int]]:
    """``[start, length]`` runs of the C-order flat indices of ``indices`` (the older form)."""
    flat = _sorted_flat(indices, shape)
    if flat.size == 0:
        return []
    starts, lengths = _runs(flat)
    return [[int(s), int(n)] for s, n in zip(starts, lengths, strict=True)]


def encode_flat(flat: np.ndarray) -> str:
    """Sorted unique flat indices as :data:`RUNS_ENCODING` text (runs, deltas, zlib, base64)."""
    flat = np.asarray(flat, dtype=np.int64)
    if flat.size == 0:
        pairs = np.zeros(0, "<i8")
    else:
        starts, lengths = _runs(flat)
        ends = starts + lengths
        gaps = starts - np.r_[0, ends[:-1]]
        pairs = np.stack([gaps, lengths], axis=1).astype("<i8").ravel()
    return base64.b64encode(zlib.compress(pairs.tobytes(), 6)).decode("ascii")


def decode_flat(text: str) -> np.ndarray:
    """The sorted flat indices of :func:`encode_flat` text."""
    pairs = np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype="<i8").astype(np.int64)
    gaps, lengths = pairs[0::2], pairs[1::2]
    starts = np.cumsum(gaps + np.r_[0, lengths[:-1]])
    return _expand(starts, lengths)


def _expand(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    if starts.size == 0:
        return np.zeros(0, np.int64)
    offsets = np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths)
    return offsets + np.arange(int(lengths.sum()), dtype=np.int64)


def encode_pixels(edits: Edits, shape: tuple[int, ...]) -> dict[str, str]:
    """The pixels of ``edits`` per class id as :data:`RUNS_ENCODING` text (no size limit)."""
    by_class: dict[int, list[np.ndarray]] = {}
    for indices, class_id in edits:
        if len(indices) and np.size(indices[0]):
            by_class.setdefault(int(class_id), []).append(
                np.ravel_multi_index(tuple(np.asarray(i) for i in indices), shape)
            )
    return {
        str(c): encode_flat(np.unique(np.concatenate(parts)))
        for c, parts in sorted(by_class.items())
    }


def pixels_by_class(pixels: Any) -> dict[int | None, np.ndarray] | None:
    """The flat indices of a record's ``"pixels"`` per class id.

    Reads both forms: :data:`RUNS_ENCODING` (class id -> text) and the older list of runs
    (:data:`LEGACY_RUNS_ENCODING`, key ``None``: classes not recorded). None when the record
    kept no pixels (older records beyond their run limit).
    """
    if pixels is None:
        return None
    if isinstance(pixels, Mapping):
        return {int(k): decode_flat(v) for k, v in pixels.items()}
    if isinstance(pixels, str):
        return {None: decode_flat(pixels)}
    return {None: runs_to_flat(pixels)}


def runs_to_flat(pixels: Any) -> np.ndarray:
    """The flat indices (sorted) of a record's ``"pixels"``, every class (either form)."""
    if isinstance(pixels, (Mapping, str)):
        parts = list((pixels_by_class(pixels) or {}).values())
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
    if not pixels:
        return np.zeros(0, np.int64)
    starts, lengths = np.asarray(pixels, dtype=np.int64).reshape(-1, 2).T
    return _expand(starts, lengths)


def assisted_mask(record: dict | None, labels: np.ndarray) -> np.ndarray | None:
    """Pixels an acceptance of an :func:`export_record` wrote that still hold its class.

    A pixel repainted with another class (or erased) is no longer assisted. Records in the older
    form (no class per pixel) count their pixels that are still labelled. None without a
    record, on another shape, or when an acceptance kept no pixels (older records).
    """
    labels = np.asarray(labels)
    shape = labels.shape
    if not record or list(record.get("shape") or shape) != list(shape):
        return None
    values = labels.reshape(-1)
    mask = np.zeros(values.size, dtype=bool)
    for accepted in record.get("accepted", []):
        found = pixels_by_class(accepted.get("pixels"))
        if found is None:
            return None
        for class_id, flat in found.items():
            still = values[flat] != 0 if class_id is None else values[flat] == class_id
            mask[flat[still]] = True
    return mask.reshape(shape)


def provenance(
    model: PixelClassifier | Mapping[str, Any], edits: list[tuple[tuple[np.ndarray, ...], int]]
) -> dict:
    """A JSON-serialisable record of an acceptance: the model and the pixels per class.

    ``model`` is the classifier, or a JSON-serialisable description of what proposed the
    pixels (a prompt backend: its id, name, ...), copied as the record's ``"model"``.
    """
    counts: dict[str, int] = {}
    for indices, class_id in edits:
        counts[str(class_id)] = counts.get(str(class_id), 0) + int(indices[0].size)
    record: dict[str, Any] = {
        "source": "napari-domainseg assisted labeling",
        "accepted_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "pixels_per_class": counts,
    }
    if isinstance(model, Mapping):
        record["model"] = dict(model)
    else:
        record["model"] = {
            "classes": list(model.classes),
            "recipe": model.recipe.to_dict(),
            "versions": dict(model.versions),
            "trained_on": dict(model.trained_on),
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
    model: PixelClassifier | Mapping[str, Any],
    edits: Edits,
    labels: Any,
    *,
    units: dict | None = None,
    **fields: Any,
) -> dict:
    """The provenance of an acceptance just applied to ``labels``.

    :func:`provenance` plus the accepted pixels per class (:func:`encode_pixels`),
    a :func:`probe`, the per-unit digests ``units`` (:class:`.status.AcceptedUnits`) and any
    ``fields`` (model id, round, scope, policy, region, ...).
    """
    shape = tuple(np.shape(labels))
    record = provenance(model, edits)
    kept = [e for e in edits if len(e[0]) and np.size(e[0][0])]
    record.update(fields)
    record.update(
        shape=list(shape),
        pixels_encoding=RUNS_ENCODING,
        pixels=encode_pixels(kept, shape),
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
    """Append an acceptance to the ``assist`` metadata entry (numbered, in order).

    A new acceptance is a new edit: napari forgets its redo steps, so the undone acceptances
    are forgotten too (:func:`clear_redo`).
    """
    accepted = assist.setdefault("accepted", [])
    every = accepted + assist.get("undone", [])
    record["sequence"] = 1 + max((int(r.get("sequence", 0)) for r in every), default=0)
    accepted.append(record)
    clear_redo(assist)


def clear_redo(assist: Any) -> bool:
    """Forget the undone acceptances (in place): call it on every new edit of the layer.

    napari clears a labels layer's redo steps on every new edit (its ``paint`` event; undo and
    redo emit none), so an undone acceptance can no longer come back. Without this,
    :func:`reconcile` would take an undone acceptance for redone once its pixels were filled
    again (by hand, or by another acceptance) and count them twice.

    Returns
    -------
    bool
        Whether any undone acceptance was forgotten.
    """
    if not isinstance(assist, dict) or not assist.get("undone"):
        return False
    assist["undone"] = []
    return True


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

    Only acceptances still applied to ``labels`` (when given) and made on its shape are
    written: per acceptance the model id and round, time, scope, policy, pixels per class and
    the accepted pixels (:data:`RUNS_ENCODING`); each model's classes, feature recipe, library
    versions and training summary once (without the name of the image it was trained on,
    which may name a patient: that stays in the layer metadata); the totals; and with
    ``labels`` the review status of every slice (along ``axis``) or tile
    (:func:`.status.status_record`).
    """
    if not isinstance(assist, dict) or not assist.get("accepted"):
        return None
    records = [r for r in assist["accepted"] if isinstance(r, dict)]
    if labels is not None:
        shape = list(np.shape(labels))
        records = [
            r for r in records if list(r.get("shape") or shape) == shape and is_applied(labels, r)
        ]
    if not records:
        return None
    models: dict[str, dict] = {}
    accepted, totals = [], {}
    for record in records:
        model = dict(record.get("model") or {})
        model_id = str(model.pop("id", "")) or f"model-{len(models) + 1}"
        round_ = model.pop("round", None)
        if isinstance(model.get("trained_on"), Mapping):
            model["trained_on"] = {k: v for k, v in model["trained_on"].items() if k != "image"}
        models.setdefault(model_id, model)
        counts = {str(k): int(v) for k, v in (record.get("pixels_per_class") or {}).items()}
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
        entry = {
            "model_id": model_id,
            "round": round_,
            "accepted_at": record.get("accepted_at"),
            "scope": record.get("scope"),
            "policy": record.get("policy"),
            "pixels_per_class": counts,
            "pixels": record.get("pixels"),
        }
        if not isinstance(entry["pixels"], Mapping):  # an older record's list of runs
            entry["pixels_encoding"] = record.get("pixels_encoding", LEGACY_RUNS_ENCODING)
        accepted.append(entry)
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
