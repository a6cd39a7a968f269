"""Agreement between label maps: overlap, surface distances, sizes, kappa.

Definitions (documented in docs/qa.md), for class ``c`` with masks ``A`` and ``B``:

- Dice ``2|A∩B| / (|A|+|B|)``; IoU (Jaccard) ``|A∩B| / |A∪B|``; both 1 when neither has the class.
- Surface distances: from each boundary voxel of ``A`` to the nearest boundary voxel of
  ``B`` and back, in physical units (the voxel spacing is honoured). ``hd95`` is the larger
  of the two directed 95th percentiles; ``msd`` the mean of all distances in both
  directions; ``hd`` the (set) Hausdorff distance, as SimpleITK's
  ``HausdorffDistanceImageFilter`` defines it. ``None`` when either mask is empty.
- Sizes: voxel count times voxel volume (or pixel area).
- Cohen's kappa over all voxels and classes (background included); Fleiss' kappa for
  more than two annotators.
- With a schema whose classes form a tree, ``levels`` repeats the figures per class path, a
  parent's mask being the union of itself and its descendants; ``instances`` (when asked)
  holds the instance figures of :mod:`napari_domainseg.ops.instance_metrics`. Flat schemas
  and no instances give exactly the keys above.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from napari_domainseg.ops.instance_metrics import (
    Instances,
    class_key,
    has_tree,
    instance_figures,
    level_classes,
    level_members,
    objects_classes,
)

if TYPE_CHECKING:
    from napari_domainseg.labels.schema import LabelSchema


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with a face neighbour outside it (image borders count as outside)."""
    eroded = ndimage.binary_erosion(mask, border_value=0)
    return mask & ~eroded


def _distance_to(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Physical distance from every voxel to the nearest voxel of ``mask``."""
    return ndimage.distance_transform_edt(~mask, sampling=spacing)


def surface_distances(
    a: np.ndarray, b: np.ndarray, spacing: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Directed boundary-to-boundary distances ``A -> B`` and ``B -> A`` (physical units)."""
    boundary_a, boundary_b = _boundary(a), _boundary(b)
    return _distance_to(boundary_b, spacing)[boundary_a], _distance_to(boundary_a, spacing)[
        boundary_b
    ]


def hausdorff(a: np.ndarray, b: np.ndarray, spacing: Sequence[float]) -> float:
    """Hausdorff distance between the voxel sets ``A`` and ``B`` (physical units)."""
    return float(max(_distance_to(b, spacing)[a].max(), _distance_to(a, spacing)[b].max()))


def class_metrics(a: np.ndarray, b: np.ndarray, spacing: Sequence[float]) -> dict[str, Any]:
    """Dice, IoU, hd95, msd, hd and sizes of two boolean masks."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    voxel = float(np.prod(spacing))
    size_a, size_b = int(a.sum()), int(b.sum())
    both = int(np.count_nonzero(a & b))
    either = size_a + size_b - both
    result: dict[str, Any] = {
        "dice": 2 * both / (size_a + size_b) if size_a + size_b else 1.0,
        "iou": both / either if either else 1.0,
        "hd95": None,
        "msd": None,
        "hd": None,
        "size_a": size_a * voxel,
        "size_b": size_b * voxel,
        "size_difference": (size_b - size_a) * voxel,
    }
    if size_a and size_b:
        forward, backward = surface_distances(a, b, spacing)
        result["hd95"] = float(max(np.percentile(forward, 95), np.percentile(backward, 95)))
        result["msd"] = float(np.concatenate([forward, backward]).mean())
        result["hd"] = hausdorff(a, b, spacing)
    return result


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two label maps over all voxels (every value a category)."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    values, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    k = len(values)
    ia, ib = inverse[: a.size], inverse[a.size :]
    confusion = np.bincount(ia * k + ib, minlength=k * k).reshape(k, k).astype(np.float64)
    total = confusion.sum()
    observed = np.trace(confusion) / total
    expected = float((confusion.sum(axis=0) * confusion.sum(axis=1)).sum()) / total**2
    return 1.0 if expected == 1.0 else float((observed - expected) / (1.0 - expected))


def compare(
    a: np.ndarray,
    b: np.ndarray,
    spacing: Sequence[float],
    classes: Sequence[int] | None = None,
    schema: LabelSchema | None = None,
    instances: tuple[Instances, Instances] | None = None,
) -> dict[str, Any]:
    """Per-class metrics of ``b`` against ``a`` (same grid) and the overall Cohen's kappa.

    Parameters
    ----------
    a, b
        Class maps on one grid (``A`` is the reference).
    spacing
        Voxel or pixel size per axis (physical units).
    classes
        The class ids to report (default: every value but 0 in either map).
    schema
        With a class tree: also ``levels``, the figures of every class path present (and its
        ancestors), a parent aggregating its descendants.
    instances
        The instances of ``a`` and ``b`` (instance maps, or
        :meth:`~napari_domainseg.ops.instance_metrics.Instances.from_classes`): also
        ``instances``, the matched-instance figures of the "objects" classes.

    Returns
    -------
    dict
        ``{"classes": {"<id>": {...}}, "kappa": k}``, plus ``"levels"`` and ``"instances"``
        when asked (see the module docstring).
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in shape: {a.shape} and {b.shape}")
    if classes is None:
        classes = sorted((set(np.unique(a)) | set(np.unique(b))) - {0})
    result: dict[str, Any] = {
        "classes": {str(int(c)): class_metrics(a == c, b == c, spacing) for c in classes},
        "kappa": cohen_kappa(a, b),
    }
    if schema is not None and has_tree(schema):
        result["levels"] = {
            class_key(schema, c): {
                "id": c,
                "depth": depth,
                **class_metrics(
                    np.isin(a, level_members(schema, c)),
                    np.isin(b, level_members(schema, c)),
                    spacing,
                ),
            }
            for c, depth in level_classes(schema, classes)
        }
    if instances is not None:
        result["instances"] = _instance_section(instances[0], instances[1], classes, schema)
    return result


def _instance_section(
    a: Instances, b: Instances, classes: Sequence[int], schema: LabelSchema | None
) -> dict[str, Any]:
    present = {int(c) for c in classes}
    present |= {i.class_id for i in a.table} | {i.class_id for i in b.table}
    return instance_figures(a, b, objects_classes(schema, present), schema)


def fleiss_kappa(maps: Sequence[np.ndarray]) -> float:
    """Fleiss' kappa of N annotators' label maps (every voxel rated by all of them)."""
    stacked = np.stack([np.asarray(m).ravel() for m in maps])
    raters, voxels = stacked.shape
    values, inverse = np.unique(stacked, return_inverse=True)
    inverse = inverse.reshape(stacked.shape)
    counts = np.zeros((voxels, len(values)), dtype=np.int64)
    for rater in range(raters):
        counts[np.arange(voxels), inverse[rater]] += 1
    agreement = ((counts * (counts - 1)).sum(axis=1) / (raters * (raters - 1))).mean()
    shares = counts.sum(axis=0) / (voxels * raters)
    expected = float((shares**2).sum())
    return 1.0 if expected == 1.0 else float((agreement - expected) / (1.0 - expected))


def agreement(
    maps: Sequence[np.ndarray],
    spacing: Sequence[float],
    names: Sequence[str] | None = None,
    schema: LabelSchema | None = None,
    instances: Sequence[Instances] | None = None,
) -> dict[str, Any]:
    """Pairwise Dice per class between N annotators, and Fleiss' kappa.

    With a schema that has a class tree, each pair also has ``levels`` (Dice per class path,
    a parent aggregating its descendants) and the result ``levels`` (id and depth per path);
    with ``instances`` (one per map, in order), each pair has ``instances`` (see
    :func:`compare`).
    """
    if len(maps) < 2:
        raise ValueError("agreement needs at least two label maps")
    shapes = {np.shape(m) for m in maps}
    if len(shapes) != 1:
        raise ValueError(f"label maps differ in shape: {sorted(shapes)}")
    names = list(names or [f"annotator {i + 1}" for i in range(len(maps))])
    classes = sorted(set().union(*(set(np.unique(m)) for m in maps)) - {0})
    if instances is not None and len(instances) != len(maps):
        raise ValueError(f"{len(instances)} instance maps for {len(maps)} label maps")
    tree = schema is not None and has_tree(schema)
    levels = level_classes(schema, classes) if tree and schema is not None else []
    pairs = []
    for (i, first), (j, second) in combinations(enumerate(maps), 2):
        dice = {}
        for c in classes:
            x, y = np.asarray(first) == c, np.asarray(second) == c
            total = int(x.sum() + y.sum())
            dice[str(int(c))] = 2 * int(np.count_nonzero(x & y)) / total if total else 1.0
        pair: dict[str, Any] = {"a": names[i], "b": names[j], "dice": dice}
        if tree:
            pair["levels"] = {
                class_key(schema, c): _dice(
                    np.isin(first, level_members(schema, c)),
                    np.isin(second, level_members(schema, c)),
                )
                for c, _ in levels
            }
        if instances is not None:
            pair["instances"] = _instance_section(instances[i], instances[j], classes, schema)
        pairs.append(pair)
    result: dict[str, Any] = {
        "pairs": pairs,
        "fleiss_kappa": fleiss_kappa(maps),
        "classes": [int(c) for c in classes],
    }
    if tree:
        result["levels"] = {class_key(schema, c): {"id": c, "depth": d} for c, d in levels}
    return result


def _dice(x: np.ndarray, y: np.ndarray) -> float:
    total = int(x.sum() + y.sum())
    return 2 * int(np.count_nonzero(x & y)) / total if total else 1.0
