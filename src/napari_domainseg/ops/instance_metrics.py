"""Agreement per level of a class tree, and per instance for "objects" classes.

Definitions (documented in docs/qa.md):

- **Levels.** With a schema whose classes form a tree, the mask of class ``c`` at its level is
  the union of ``c`` and every descendant of ``c`` (a parent aggregates its children). Levels
  are keyed by class path (``vehicle/car``) and carry the depth in the tree (roots are 0).
- **Instances.** Two instance maps (or class maps split into connected components) are matched
  class by class: an instance of ``A`` and one of ``B`` match when their IoU is at least the
  threshold (0.5), one to one, the largest IoU first. Above 0.5 a match is unique (two
  instances of one map cannot both overlap a third by more than half), so the greedy order
  gives the optimal matching. With ``A`` as the reference: precision = matched / count(B),
  recall = matched / count(A), F1 = 2 matched / (count(A) + count(B)); segmentation quality
  SQ = mean IoU of the matches; recognition quality RQ = F1; panoptic quality PQ = SQ x RQ
  (Kirillov et al. 2019). All are 1 when neither map has an instance of the class.
  ``overall`` pools the matches of every instance's own class; ``pq_mean`` is the mean PQ
  over the classes reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_domainseg.labels.instances import InstanceTable, class_path

if TYPE_CHECKING:
    from napari_domainseg.labels.schema import LabelSchema

IOU_THRESHOLD = 0.5
"""Instances match at IoU >= 0.5."""


# ---------------------------------------------------------------------- the class tree


def has_tree(schema: LabelSchema | None) -> bool:
    """True when ``schema`` has a class with a parent (a flat schema reports as today)."""
    if schema is None:
        return False
    return any(getattr(c, "parent", None) is not None for c in schema.classes)


class_key = class_path
"""The key of a class in the results: its path (``vehicle/car``), the id as text without one."""


def level_classes(schema: LabelSchema, present: Iterable[int]) -> list[tuple[int, int]]:
    """``(class id, depth)`` of the classes present and their ancestors, in tree order.

    Tree order: each root in schema order, then its children (depth first), so a table
    indented by depth reads as the tree.
    """
    wanted: set[int] = set()
    for value in present:
        value = int(value)
        if value in schema:
            wanted.add(value)
            wanted.update(schema.ancestors(value))
    order: list[tuple[int, int]] = []

    def visit(class_id: int, depth: int) -> None:
        if class_id in wanted:
            order.append((class_id, depth))
        for child in schema.classes:
            if getattr(child, "parent", None) == class_id:
                visit(child.id, depth + 1)

    for root in schema.classes:
        if getattr(root, "parent", None) is None:
            visit(root.id, 0)
    return order


def level_members(schema: LabelSchema, class_id: int) -> np.ndarray:
    """The class ids whose pixels count for ``class_id``'s level: itself and its descendants."""
    return np.array(sorted({int(class_id), *schema.descendants(class_id)}), dtype=np.int64)


def level_masks(
    label_map: np.ndarray, schema: LabelSchema, levels: Sequence[tuple[int, int]]
) -> dict[int, np.ndarray]:
    """Boolean mask of every level of ``levels`` in ``label_map``."""
    values = np.asarray(label_map)
    return {c: np.isin(values, level_members(schema, c)) for c, _ in levels}


# ---------------------------------------------------------------------- instances


@dataclass(frozen=True)
class Instances:
    """An instance map with its table, as one side of a comparison.

    Attributes
    ----------
    map
        Integer array of instance ids (0 = unlabeled).
    table
        The class of each instance.
    source
        ``"instance map"`` (drawn or imported instances) or ``"connected components"``
        (a class map split into its face-connected parts).
    """

    map: np.ndarray
    table: InstanceTable
    source: str = "instance map"

    @classmethod
    def from_classes(
        cls, class_map: np.ndarray, schema: LabelSchema | None = None, connectivity: int = 1
    ) -> Instances:
        """Each connected part of each "objects" class of ``class_map`` one instance.

        Without a schema that marks a class "objects", every class is split into its parts
        (:func:`~napari_domainseg.ops.instances.make_instances`). ``connectivity`` 1 joins
        face neighbours only (4-connected in 2D, 6 in 3D); the array's rank joins every
        neighbour (8 / 26).
        """
        from napari_domainseg.ops.instances import make_instances

        marks = schema if schema is not None and marks_objects(schema) else None
        instance_map, table = make_instances(
            class_map, marks, connectivity=connectivity, provenance="imported"
        )
        return cls(instance_map, table, "connected components")

    def class_ids(self) -> np.ndarray:
        """Class of each instance id: ``lookup[instance_id]`` (0 for ids not in the table)."""
        largest = int(np.asarray(self.map).max(initial=0))
        return self.table.class_lookup(largest + 1).astype(np.int64)


@dataclass(frozen=True)
class Overlaps:
    """Pixel counts of every instance and of every overlapping pair of two instance maps."""

    a: np.ndarray
    """Instance ids of ``A`` in the overlapping pairs."""
    b: np.ndarray
    """Instance ids of ``B`` in the overlapping pairs."""
    intersection: np.ndarray
    """Pixels the pair shares."""
    iou: np.ndarray
    """IoU of each pair."""
    ids_a: np.ndarray
    """Every instance id painted in ``A`` (ascending)."""
    ids_b: np.ndarray
    """Every instance id painted in ``B`` (ascending)."""


def _sizes(instance_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids, counts = np.unique(instance_map, return_counts=True)
    keep = ids != 0
    return ids[keep].astype(np.int64), counts[keep].astype(np.int64)


def overlaps(a_map: np.ndarray, b_map: np.ndarray) -> Overlaps:
    """Sparse intersection counts of two instance maps (``np.unique`` on pair codes).

    Only pairs that share a pixel are listed, so the cost grows with the pixels labelled
    in both maps, not with (instances of A) x (instances of B).
    """
    a_map, b_map = np.asarray(a_map), np.asarray(b_map)
    if a_map.shape != b_map.shape:
        raise ValueError(f"instance maps differ in shape: {a_map.shape} and {b_map.shape}")
    both = (a_map != 0) & (b_map != 0)
    ia = a_map[both].astype(np.uint64)
    ib = b_map[both].astype(np.uint64)
    width = int(b_map.max(initial=0)) + 1
    if (int(a_map.max(initial=0)) + 1) * width < 2**63:
        codes, counts = np.unique(ia * np.uint64(width) + ib, return_counts=True)
        pair_a, pair_b = codes // np.uint64(width), codes % np.uint64(width)
    else:  # ids too large for one 64-bit code: unique rows instead
        pairs, counts = np.unique(np.stack([ia, ib], axis=1), axis=0, return_counts=True)
        pair_a, pair_b = pairs[:, 0], pairs[:, 1]
    pair_a, pair_b = pair_a.astype(np.int64), pair_b.astype(np.int64)
    ids_a, sizes_a = _sizes(a_map)
    ids_b, sizes_b = _sizes(b_map)
    size_a = sizes_a[np.searchsorted(ids_a, pair_a)]
    size_b = sizes_b[np.searchsorted(ids_b, pair_b)]
    iou = counts / (size_a + size_b - counts).astype(np.float64)
    return Overlaps(pair_a, pair_b, counts.astype(np.int64), iou, ids_a, ids_b)


def match_pairs(
    a: np.ndarray, b: np.ndarray, iou: np.ndarray, threshold: float = IOU_THRESHOLD
) -> list[tuple[int, int, float]]:
    """One-to-one matches among candidate pairs at ``iou >= threshold``, largest IoU first."""
    keep = iou >= threshold
    order = np.argsort(-iou[keep], kind="stable")
    used_a: set[int] = set()
    used_b: set[int] = set()
    matches = []
    for i, j, v in zip(a[keep][order], b[keep][order], iou[keep][order], strict=True):
        if int(i) in used_a or int(j) in used_b:
            continue
        used_a.add(int(i))
        used_b.add(int(j))
        matches.append((int(i), int(j), float(v)))
    return matches


def figures(count_a: int, count_b: int, ious: Sequence[float]) -> dict[str, Any]:
    """Matched count, precision, recall, F1, SQ, RQ, PQ and count difference (B - A)."""
    matched = len(ious)
    if count_a + count_b == 0:
        precision = recall = f1 = sq = 1.0
    else:
        precision = matched / count_b if count_b else 0.0
        recall = matched / count_a if count_a else 0.0
        f1 = 2 * matched / (count_a + count_b)
        sq = float(np.mean(ious)) if matched else 0.0
    return {
        "count_a": int(count_a),
        "count_b": int(count_b),
        "matched": int(matched),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "sq": float(sq),
        "rq": float(f1),
        "pq": float(sq * f1),
        "count_difference": int(count_b - count_a),
    }


def _match_within(
    found: Overlaps,
    class_a: np.ndarray,
    class_b: np.ndarray,
    members: np.ndarray | None,
    threshold: float,
) -> tuple[int, int, list[tuple[int, int, float]]]:
    """Matches among instances whose class is in ``members`` (``None``: same class only)."""
    cls_a, cls_b = class_a[found.ids_a], class_b[found.ids_b]
    pair_a, pair_b = class_a[found.a], class_b[found.b]
    if members is None:
        count_a, count_b = int((cls_a > 0).sum()), int((cls_b > 0).sum())
        keep = (pair_a == pair_b) & (pair_a > 0)
    else:
        count_a, count_b = int(np.isin(cls_a, members).sum()), int(np.isin(cls_b, members).sum())
        keep = np.isin(pair_a, members) & np.isin(pair_b, members)
    matches = match_pairs(found.a[keep], found.b[keep], found.iou[keep], threshold)
    return count_a, count_b, matches


def _lookup(instances: Instances, size: int) -> np.ndarray:
    lookup = instances.class_ids()
    if lookup.size < size:
        lookup = np.pad(lookup, (0, size - lookup.size))
    return lookup


def instance_figures(
    a: Instances,
    b: Instances,
    classes: Sequence[int],
    schema: LabelSchema | None = None,
    threshold: float = IOU_THRESHOLD,
) -> dict[str, Any]:
    """Instance agreement of ``b`` against ``a`` for each class of ``classes`` and overall.

    With a schema that has a tree, a class's instances include those of its descendants
    (a parent level aggregates its children's objects) and the keys are class paths.

    Returns
    -------
    dict
        ``{"threshold", "source", "classes": {key: figures}, "overall": figures,
        "pq_mean"}``; see :func:`figures`.
    """
    found = overlaps(a.map, b.map)
    size = max(int(np.asarray(a.map).max(initial=0)), int(np.asarray(b.map).max(initial=0))) + 1
    class_a, class_b = _lookup(a, size), _lookup(b, size)
    tree = has_tree(schema)
    per_class: dict[str, Any] = {}
    for class_id in classes:
        members = (
            level_members(schema, class_id)
            if tree and schema is not None
            else np.array([int(class_id)], dtype=np.int64)
        )
        count_a, count_b, matches = _match_within(found, class_a, class_b, members, threshold)
        row: dict[str, Any] = {"id": int(class_id)}
        if tree and schema is not None:
            row["depth"] = len(schema.ancestors(class_id))
        row.update(figures(count_a, count_b, [m[2] for m in matches]))
        per_class[class_key(schema if tree else None, class_id)] = row
    wanted = np.array(sorted({int(c) for c in classes}), dtype=np.int64)
    class_a = np.where(np.isin(class_a, wanted), class_a, 0)
    class_b = np.where(np.isin(class_b, wanted), class_b, 0)
    count_a, count_b, matches = _match_within(found, class_a, class_b, None, threshold)
    pqs = [row["pq"] for row in per_class.values()]
    return {
        "threshold": float(threshold),
        "source": sorted({a.source, b.source}),
        "classes": per_class,
        "overall": figures(count_a, count_b, [m[2] for m in matches]),
        "pq_mean": float(np.mean(pqs)) if pqs else 1.0,
    }


def objects_classes(schema: LabelSchema | None, present: Iterable[int]) -> list[int]:
    """The classes of ``present`` (and, with a tree, their ancestors) that are "objects".

    Without a schema that marks any class as "objects", every class present counts (the
    caller asked for instance figures).
    """
    present = sorted({int(c) for c in present if int(c) != 0})
    if schema is None or not marks_objects(schema):
        return present
    candidates = [c for c, _ in level_classes(schema, present)] if has_tree(schema) else present
    return [c for c in candidates if c in schema and schema.is_objects(c)]


def marks_objects(schema: LabelSchema) -> bool:
    """Whether any class of ``schema`` is an "objects" class."""
    return any(schema.is_objects(c.id) for c in schema.classes)
