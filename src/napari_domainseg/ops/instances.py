"""Edits of an instance map and its table: new object, split, merge, relabel, delete, snap.

Every function takes an instance map (integer array, 0 = unlabeled, values = instance ids,
see :mod:`napari_domainseg.labels.instances`) and an :class:`InstanceTable`, and returns a NEW
map and table; the inputs are never modified. The result (:class:`Edited`) unpacks as
``instance_map, table = split_instance(...)`` and also carries the :class:`InstanceEdit`: the
indices whose value changed, with the old and new values, so the GUI records the whole
operation as ONE undo step on the layer it shows::

    result = merge_instances(layer.data, table, ids)
    layer.data_setitem(result.edit.indices, result.edit.new_values)  # one undo step

(when ``result.instance_map.dtype`` is wider than the layer's, because ids passed 65535,
replace the layer data instead). :meth:`InstanceEdit.apply_in_place` and
:meth:`InstanceEdit.revert_in_place` do the same on a plain array.

New ids are one above the largest of the table and of the map, so an id painted but missing
from the table (see :func:`~napari_domainseg.labels.instances.check_instances`) is never reused.
Maps are uint16 while ids fit, uint32 beyond (up to 2**32 - 1 instances).

Connectivity is 1 everywhere (edge-connected in 2D, face-connected in 3D) unless a function
takes ``connectivity``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from scipy import ndimage

from napari_domainseg.labels.instances import (
    MAX_INSTANCE_ID,
    Instance,
    InstanceError,
    InstanceTable,
    instance_dtype,
    is_objects_class,
)

if TYPE_CHECKING:
    from napari_domainseg.labels.schema import LabelSchema

_INDEX = np.intp


@dataclass(frozen=True, eq=False)
class InstanceEdit:
    """The pixels an operation changed: ``array[indices]`` was ``old_values``, is ``new_values``.

    ``indices`` is a tuple of index arrays (one per axis, as :func:`numpy.nonzero` gives).
    """

    indices: tuple[np.ndarray, ...]
    old_values: np.ndarray
    new_values: np.ndarray

    def __len__(self) -> int:
        return int(self.old_values.size)

    def apply_in_place(self, array: np.ndarray) -> None:
        """Write the new values into ``array`` (modifies it: for the GUI's layer data)."""
        array[self.indices] = self.new_values

    def revert_in_place(self, array: np.ndarray) -> None:
        """Write the old values back into ``array`` (modifies it)."""
        array[self.indices] = self.old_values


@dataclass(frozen=True, eq=False)
class Edited:
    """The result of an edit: the new map and table, what changed, and the ids made or kept.

    Unpacks as ``(instance_map, table)``.

    Attributes
    ----------
    instance_map
        The new instance map (a new array).
    table
        The new table (``None`` only from :func:`snap_to_neighbours` called without one).
    edit
        The pixels changed (old and new values), for one undo step.
    instance_ids
        The ids the operation made or kept: the new object's, the split's pieces (the
        original id first), the merge target; empty when nothing changed.
    """

    instance_map: np.ndarray
    table: InstanceTable | None
    edit: InstanceEdit
    instance_ids: tuple[int, ...] = field(default=())

    def __iter__(self) -> Iterator[Any]:
        return iter((self.instance_map, self.table))


# --------------------------------------------------------------------------- table only


def new_instance(
    table: InstanceTable,
    class_id: int,
    attributes: Mapping[str, Any] | None = None,
    provenance: str = "manual",
) -> tuple[InstanceTable, int]:
    """A table with one more instance of ``class_id`` (id: one above the largest).

    Returns
    -------
    (table, instance_id)
    """
    instance_id = table.next_id()
    if instance_id > MAX_INSTANCE_ID:
        raise InstanceError(f"no instance id left (the largest is {MAX_INSTANCE_ID})")
    instance = Instance(instance_id, class_id, dict(attributes or {}), provenance)
    return InstanceTable((*table.instances, instance)), instance_id


def relabel_instance(table: InstanceTable, instance_id: int, class_id: int) -> InstanceTable:
    """A table with instance ``instance_id`` in class ``class_id`` (the map is unchanged)."""
    _require(table, [instance_id])
    return table.relabeled(instance_id, class_id)


# --------------------------------------------------------------------------- painting


def paint_new_object(
    instance_map: np.ndarray,
    table: InstanceTable,
    mask: np.ndarray,
    class_id: int,
    only_unlabeled: bool = True,
    attributes: Mapping[str, Any] | None = None,
    provenance: str = "manual",
) -> Edited:
    """Paint a new instance of ``class_id`` where ``mask`` is set.

    With ``only_unlabeled`` (the default) only unlabeled pixels are painted, so an object drawn
    against its neighbours shares their border exactly (no overlap, no gap where the stroke
    covered them). Without it the mask is painted over everything; an instance painted over
    entirely stays in the table (``check_instances`` lists it as unused).

    When no pixel is painted the map and table are returned unchanged and ``instance_ids`` is
    empty (no instance without pixels is made).
    """
    values = np.asarray(instance_map)
    target = _mask(mask, values.shape)
    if only_unlabeled:
        target = target & (values == 0)
    indices = np.nonzero(target)
    if not indices[0].size:
        return _unchanged(values, table)
    instance_id = _next_id(values, table)
    instance = Instance(instance_id, class_id, dict(attributes or {}), provenance)
    return _write(
        values, InstanceTable((*table.instances, instance)), indices, instance_id, (instance_id,)
    )


def add_to_instance(
    instance_map: np.ndarray,
    table: InstanceTable,
    mask: np.ndarray,
    instance_id: int,
    only_unlabeled: bool = True,
) -> Edited:
    """Paint ``mask`` into the existing instance ``instance_id``.

    Only over unlabeled pixels by default, as :func:`paint_new_object`.
    """
    _require(table, [instance_id])
    values = np.asarray(instance_map)
    target = _mask(mask, values.shape)
    target = target & ((values == 0) if only_unlabeled else (values != instance_id))
    indices = np.nonzero(target)
    if not indices[0].size:
        return _unchanged(values, table)
    return _write(values, table, indices, int(instance_id), (int(instance_id),))


# --------------------------------------------------------------------------- split, merge, delete


def split_instance(
    instance_map: np.ndarray,
    table: InstanceTable,
    instance_id: int,
    stroke_mask: np.ndarray,
    plane_axis: int | Literal["auto"] | None = "auto",
) -> Edited:
    """Cut instance ``instance_id`` along a stroke into one instance per connected piece.

    The stroke's pixels inside the instance are taken out and the rest is split into connected
    pieces (connectivity 1: edge-connected in 2D, face-connected in 3D). The largest piece keeps
    the id (ties: the first in array order); every other piece becomes a new instance of the same
    class with the same attributes and provenance. The stroke pixels then go to the nearest piece
    (Euclidean, in pixels), so the pieces share their borders: no gap is left.

    **Strokes drawn on one plane of a volume.** napari paints on the displayed slice, and a cut
    there cannot separate a 3D object that continues above and below it. So when the stroke lies
    in one plane (one index along an axis; ``plane_axis="auto"`` checks axes 0, 1, 2 in order, or
    name the axis) the split is made in that plane only, with 2D connectivity 1: the pieces of
    that plane are split off; the instance's pixels outside the plane, and the largest piece
    of the plane, keep the id. ``plane_axis=None`` always splits in 3D. With ``"auto"``, a
    stroke that leaves its plane in fewer than two pieces (for example a wall drawn through
    every slice, which covers its own plane) is taken as a 3D cut.

    Nothing changes (``instance_ids`` empty) when the stroke misses the instance or leaves it in
    one piece.

    Raises
    ------
    InstanceError
        ``instance_id`` is not in the table or has no pixels; a named plane axis the stroke does
        not lie in.
    """
    _require(table, [instance_id])
    instance_id = int(instance_id)
    values = np.asarray(instance_map)
    stroke = _mask(stroke_mask, values.shape)
    inside = values == instance_id
    box = _bounding_box(inside)
    if box is None:
        raise InstanceError(f"instance {instance_id} has no pixels to split")
    inside, stroke = inside[box], stroke[box] & inside[box]
    if not stroke.any():
        return _unchanged(values, table)
    axis = _stroke_plane(stroke, plane_axis)
    region, pieces, count = _pieces(inside, stroke, axis)
    if count < 2 and axis is not None and plane_axis == "auto":  # a wall, not a slice stroke
        region, pieces, count = _pieces(inside, stroke, None)
    if count < 2:
        return _unchanged(values, table)
    inside, stroke = inside[region], stroke[region]
    nearest = ndimage.distance_transform_edt(
        pieces == 0, return_distances=False, return_indices=True
    )
    pieces[stroke] = pieces[tuple(index[stroke] for index in nearest)]
    sizes = np.bincount(pieces.ravel(), minlength=count + 1)[1:]
    keep = int(np.argmax(sizes)) + 1
    first = _next_id(values, table)
    lookup = np.zeros(count + 1, dtype=np.int64)
    others = [label for label in range(1, count + 1) if label != keep]
    lookup[keep] = instance_id
    lookup[others] = np.arange(first, first + len(others))
    moved = inside & (pieces != keep)
    local = np.nonzero(moved)
    indices = _global_indices(local, box, region)
    original = table[instance_id]
    new = [replace(original, id=int(lookup[label])) for label in others]
    return _write(
        values,
        InstanceTable((*table.instances, *new)),
        indices,
        lookup[pieces[local]],
        (instance_id, *(i.id for i in new)),
    )


def merge_instances(
    instance_map: np.ndarray,
    table: InstanceTable,
    ids: Iterable[int],
    class_id: int | None = None,
) -> Edited:
    """Merge instances ``ids`` into the smallest of them.

    The merged instance keeps the smallest id's attributes and provenance. Their classes must
    agree, unless ``class_id`` is given (the merged instance's class).

    Raises
    ------
    InstanceError
        An id not in the table (repair the table first), or classes that differ without
        ``class_id``.
    """
    wanted = sorted({int(i) for i in ids})
    _require(table, wanted)
    classes = {table.class_of(i) for i in wanted}
    if class_id is None and len(classes) > 1:
        raise InstanceError(
            f"instances {', '.join(map(str, wanted))} are of classes "
            f"{', '.join(map(str, sorted(classes)))}; pass class_id= to merge them into one"
        )
    values = np.asarray(instance_map)
    target = wanted[0]
    merged = table.without(wanted[1:])
    if class_id is not None and class_id != merged.class_of(target):
        merged = merged.relabeled(target, class_id)
    indices = np.nonzero(np.isin(values, wanted[1:])) if len(wanted) > 1 else _no_indices(values)
    return _write(values, merged, indices, target, (target,))


def delete_instances(instance_map: np.ndarray, table: InstanceTable, ids: Iterable[int]) -> Edited:
    """Erase instances ``ids`` (their pixels become unlabeled) and drop them from the table.

    An id painted in the map but missing from the table may be deleted too (a repair).

    Raises
    ------
    InstanceError
        An id neither in the table nor painted.
    """
    wanted = sorted({int(i) for i in ids})
    values = np.asarray(instance_map)
    erase = np.isin(values, wanted)
    missing = [i for i in wanted if i not in table]
    if missing:
        painted = set(np.unique(values[erase]).tolist())
        unknown = [i for i in missing if i not in painted]
        if unknown:
            raise InstanceError(f"no instance {', '.join(map(str, unknown))} to delete")
    return _write(values, table.without(wanted), np.nonzero(erase), 0, ())


# --------------------------------------------------------------------------- from a class map


def make_instances(
    class_map: np.ndarray,
    schema: LabelSchema | None,
    connectivity: int = 1,
    min_size: int = 0,
    provenance: str = "assisted",
) -> tuple[np.ndarray, InstanceTable]:
    """Instances from a class map (for example an accepted assistant proposal).

    Each connected component of an ``"objects"`` class becomes one instance; each ``"stuff"``
    class becomes one instance (a region, however many parts it has). Classes the schema does
    not list are treated as "stuff"; without a schema every class is "objects". Components of
    an "objects" class smaller than ``min_size`` pixels are left unlabeled (0 keeps all, so the
    class map is exactly :func:`~napari_domainseg.labels.instances.semantic_map` of the result).
    New instances get the schema's attribute defaults.

    Ids are given class by class (ascending class id), components in array order.

    Parameters
    ----------
    connectivity
        1 (edge / face neighbours) up to ``class_map.ndim`` (diagonals too).

    Returns
    -------
    (instance_map, table)
        The map is uint16, or uint32 beyond 65535 instances.
    """
    classes = np.asarray(class_map)
    if classes.dtype.kind not in "ui":
        raise InstanceError(f"a class map must hold integers, not {classes.dtype}")
    if not 1 <= connectivity <= max(classes.ndim, 1):
        raise InstanceError(f"connectivity must be 1-{classes.ndim}, not {connectivity}")
    if classes.size and classes.min() < 0:
        raise InstanceError("a class map has no negative class ids")
    structure = ndimage.generate_binary_structure(classes.ndim, connectivity)
    out = np.zeros(classes.shape, dtype=np.uint16)
    instances: list[Instance] = []
    next_id = 1
    boxes = ndimage.find_objects(classes) if classes.size else []
    for index, box in enumerate(boxes):
        class_id = index + 1
        if box is None:
            continue
        member = classes[box] == class_id
        attributes = _default_attributes(schema, class_id)
        if is_objects_class(schema, class_id):
            pieces, count = ndimage.label(member, structure=structure)
            if min_size > 0 and count:
                sizes = np.bincount(pieces.ravel(), minlength=count + 1)
                kept = np.flatnonzero(sizes >= min_size)
                kept = kept[kept != 0]
                lookup = np.zeros(count + 1, dtype=np.int64)
                lookup[kept] = np.arange(1, kept.size + 1)
                pieces, count = lookup[pieces], int(kept.size)
                member = pieces != 0
        else:
            pieces, count = member.astype(np.uint8), 1
        if not count:
            continue
        last = next_id + count - 1
        if last > MAX_INSTANCE_ID:
            raise InstanceError(f"more than {MAX_INSTANCE_ID} instances")
        if last > np.iinfo(out.dtype).max:
            out = out.astype(instance_dtype(last))
        view = out[box]
        view[member] = (pieces[member].astype(np.int64) + (next_id - 1)).astype(out.dtype)
        instances.extend(
            Instance(i, class_id, dict(attributes), provenance) for i in range(next_id, last + 1)
        )
        next_id = last + 1
    return out, InstanceTable(tuple(instances))


# --------------------------------------------------------------------------- shared borders


def snap_to_neighbours(
    instance_map: np.ndarray, max_gap_px: int = 1, table: InstanceTable | None = None
) -> Edited:
    """Close small gaps between touching objects: gap pixels go to the nearest instance.

    A gap pixel is an unlabeled pixel that lies, along one axis, between two DIFFERENT
    instances with at most ``max_gap_px`` unlabeled pixels between them (1: a one-pixel crack
    such as a rasterised shared polygon edge leaves). It is given to the nearer of the two
    (ties: the smaller id; over several axes, the nearest candidate). Labelled pixels are never
    changed, and unlabeled pixels next to one instance only (an object's outside) stay
    unlabeled. ``table`` is passed through to the result unchanged.
    """
    if max_gap_px < 1:
        raise InstanceError(f"max_gap_px must be at least 1, not {max_gap_px}")
    values = np.asarray(instance_map)
    if values.ndim == 0 or not values.size:
        return _unchanged(values, table)
    block = max(1, 2**22 // max(1, values[0].size))  # ~4 M pixels per block
    found_indices: list[tuple[np.ndarray, ...]] = []
    found_values: list[np.ndarray] = []
    for start in range(0, values.shape[0], block):
        stop = min(values.shape[0], start + block)
        low, high = max(0, start - max_gap_px), min(values.shape[0], stop + max_gap_px)
        label, _ = _gap_labels(values[low:high], max_gap_px)
        inner = label[start - low : stop - low]
        local = np.nonzero(inner)
        found_values.append(inner[local])
        found_indices.append((local[0] + start, *local[1:]))
    indices = tuple(
        np.concatenate([f[a] for f in found_indices]).astype(_INDEX) for a in range(values.ndim)
    )
    return _write(values, table, indices, np.concatenate(found_values), ())


def _gap_labels(values: np.ndarray, gap: int) -> tuple[np.ndarray, np.ndarray]:
    """For each pixel of ``values``: the instance it snaps to (0: none), and the distance."""
    best = np.zeros(values.shape, dtype=values.dtype)
    best_distance = np.full(values.shape, gap + 1, dtype=np.int16)
    empty = values == 0
    for axis in range(values.ndim):
        before, d_before = _nearest_along(values, axis, gap, forward=False)
        after, d_after = _nearest_along(values, axis, gap, forward=True)
        gap_here = (
            empty
            & (before != 0)
            & (after != 0)
            & (before != after)
            & (d_before + d_after - 1 <= gap)
        )
        take_before = (d_before < d_after) | ((d_before == d_after) & (before < after))
        candidate = np.where(take_before, before, after)
        distance = np.where(take_before, d_before, d_after)
        better = gap_here & (
            (best == 0)
            | (distance < best_distance)
            | ((distance == best_distance) & (candidate < best))
        )
        best[better] = candidate[better]
        best_distance[better] = distance[better]
    return best, best_distance


def _nearest_along(
    values: np.ndarray, axis: int, gap: int, forward: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The nearest labelled value within ``gap`` pixels before (or after) along ``axis``.

    Also its distance (``gap + 1`` where there is none).
    """
    label = np.zeros(values.shape, dtype=values.dtype)
    distance = np.full(values.shape, gap + 1, dtype=np.int16)
    n = values.shape[axis]
    for step in range(1, min(gap, n - 1) + 1):
        target = [slice(None)] * values.ndim
        source = [slice(None)] * values.ndim
        if forward:  # the pixel `step` further along
            target[axis], source[axis] = slice(0, n - step), slice(step, n)
        else:
            target[axis], source[axis] = slice(step, n), slice(0, n - step)
        seen = values[tuple(source)]
        here = label[tuple(target)]
        take = (here == 0) & (seen != 0)
        here[take] = seen[take]
        distance[tuple(target)][take] = step
    return label, distance


# --------------------------------------------------------------------------- helpers


def _require(table: InstanceTable, ids: Iterable[int]) -> None:
    missing = [int(i) for i in ids if int(i) not in table]
    if missing:
        raise InstanceError(
            f"instance {', '.join(map(str, missing))} is not in the instance table "
            "(check_instances / repair give painted ids a class)"
        )


def _mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(mask, dtype=bool)
    if array.shape != shape:
        raise InstanceError(f"mask {array.shape} does not match the instance map {shape}")
    return array


def _next_id(values: np.ndarray, table: InstanceTable) -> int:
    """One above the largest id of the table and of the map."""
    largest = int(values.max(initial=0)) if values.size else 0
    next_id = max(table.next_id(), largest + 1)
    if next_id > MAX_INSTANCE_ID:
        raise InstanceError(f"no instance id left (the largest is {MAX_INSTANCE_ID})")
    return next_id


def _fitting(values: np.ndarray, largest: int) -> np.dtype:
    """The map's dtype if it holds ``largest``, else the instance dtype that does."""
    if values.dtype.kind in "ui" and np.iinfo(values.dtype).max >= largest:
        return values.dtype
    return instance_dtype(largest)


def _write(
    values: np.ndarray,
    table: InstanceTable | None,
    indices: tuple[np.ndarray, ...],
    new_values: Any,
    made: tuple[int, ...],
) -> Edited:
    """A copy of ``values`` with ``new_values`` at ``indices``, and the edit recorded."""
    new = np.asarray(new_values)
    largest = int(new.max(initial=0)) if new.size else 0
    out = values.astype(_fitting(values, largest), copy=True)
    old = out[indices]
    new = np.broadcast_to(new, old.shape).astype(out.dtype)
    changed = old != new
    if not changed.all():
        indices = tuple(index[changed] for index in indices)
        old, new = old[changed], new[changed]
    out[indices] = new
    return Edited(out, table, InstanceEdit(indices, old, np.ascontiguousarray(new)), made)


def _no_indices(values: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(np.zeros(0, dtype=_INDEX) for _ in range(values.ndim))


def _unchanged(values: np.ndarray, table: InstanceTable | None) -> Edited:
    empty = np.zeros(0, dtype=values.dtype)
    return Edited(values.copy(), table, InstanceEdit(_no_indices(values), empty, empty), ())


def _bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    if not mask.size:
        return None
    boxes = ndimage.find_objects(mask.view(np.uint8))
    return boxes[0] if boxes else None


def _other_axes(ndim: int, axis: int) -> tuple[int, ...]:
    return tuple(a for a in range(ndim) if a != axis)


def _stroke_plane(stroke: np.ndarray, plane_axis: int | str | None) -> int | None:
    """The axis the stroke lies in one plane of (volumes only), or ``None`` (split in nD)."""
    if stroke.ndim < 3 or plane_axis is None:
        return None
    if plane_axis == "auto":
        for axis in range(stroke.ndim):
            if np.count_nonzero(stroke.any(axis=_other_axes(stroke.ndim, axis))) == 1:
                return axis
        return None
    axis = int(plane_axis)
    if np.count_nonzero(stroke.any(axis=_other_axes(stroke.ndim, axis))) != 1:
        raise InstanceError(f"the stroke does not lie in one plane along axis {axis}")
    return axis


def _pieces(
    inside: np.ndarray, stroke: np.ndarray, axis: int | None
) -> tuple[tuple[slice | int, ...], np.ndarray, int]:
    """The region split (the stroke's plane, or all), its pieces and how many."""
    region: tuple[slice | int, ...] = (slice(None),) * inside.ndim
    if axis is not None:
        plane = int(np.flatnonzero(stroke.any(axis=_other_axes(stroke.ndim, axis)))[0])
        region = tuple(plane if a == axis else slice(None) for a in range(inside.ndim))
    rest = inside[region] & ~stroke[region]
    pieces, count = ndimage.label(rest, structure=ndimage.generate_binary_structure(rest.ndim, 1))
    return region, pieces, int(count)


def _global_indices(
    local: tuple[np.ndarray, ...], box: tuple[slice, ...], region: tuple[slice | int, ...]
) -> tuple[np.ndarray, ...]:
    """Indices into the full map of ``local`` indices into ``map[box][region]``."""
    found = iter(local)
    indices = []
    for axis_box, axis_region in zip(box, region, strict=True):
        if isinstance(axis_region, int):
            indices.append(np.full(local[0].shape, axis_box.start + axis_region, dtype=_INDEX))
        else:
            indices.append(next(found).astype(_INDEX) + axis_box.start)
    return tuple(indices)


def _default_attributes(schema: LabelSchema | None, class_id: int) -> dict[str, Any]:
    if schema is None or class_id not in schema:
        return {}
    return {s.name: s.default for s in schema.attribute_specs(class_id) if s.default is not None}
