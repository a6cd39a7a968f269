"""Instances: objects labelled one by one, each with a class, attributes and provenance.

An *instance map* is an integer array whose values are instance ids (0 = unlabeled). An
:class:`InstanceTable` says, for each id, which class the object belongs to, its attribute
values and where it came from (drawn by hand, accepted from the assistant, imported). The
class map is derived from both on demand (:func:`semantic_map`), never stored beside them, so
the two can never disagree.

In napari the instance map is one Labels layer and the table its per-label ``features``
(:meth:`InstanceTable.to_features`, one row per instance, ``index`` = the instance id). Files
carry the table as JSON records (:meth:`InstanceTable.to_records`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_domainseg.errors import DomainSegError

if TYPE_CHECKING:
    from napari_domainseg.labels.schema import LabelSchema

PROVENANCES = ("manual", "assisted", "imported")
"""Where an instance came from."""
MAX_INSTANCE_ID = 2**32 - 1
"""Instance ids are stored as at most uint32."""
FEATURE_COLUMNS = ("index", "class_id", "class_path", "provenance")
"""The fixed columns of :meth:`InstanceTable.to_features` (attributes follow)."""


class InstanceError(DomainSegError, ValueError):
    """An instance table that cannot be: a bad id, an unknown class, a bad provenance."""


@dataclass(frozen=True)
class Instance:
    """One object.

    Parameters
    ----------
    id
        Its value in the instance map (1 .. 2**32 - 1).
    class_id
        The schema class it belongs to.
    attributes
        Attribute values (names from the class's attribute specs), e.g. ``{"occluded": True}``.
    provenance
        ``"manual"``, ``"assisted"`` or ``"imported"``.
    """

    id: int
    class_id: int
    attributes: Mapping[str, Any] = field(default_factory=dict)
    provenance: str = "manual"

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", int(self.id))
        object.__setattr__(self, "class_id", int(self.class_id))
        object.__setattr__(self, "attributes", dict(self.attributes))
        if not 1 <= self.id <= MAX_INSTANCE_ID:
            raise InstanceError(f"instance id {self.id} is outside 1-{MAX_INSTANCE_ID}")
        if self.class_id < 1:
            raise InstanceError(f"instance {self.id}: class id {self.class_id} is not a class")
        if self.provenance not in PROVENANCES:
            raise InstanceError(
                f"instance {self.id}: provenance {self.provenance!r} is not one of "
                f"{', '.join(PROVENANCES)}"
            )

    def to_record(self) -> dict[str, Any]:
        """JSON-ready form."""
        record: dict[str, Any] = {"id": self.id, "class_id": self.class_id}
        if self.attributes:
            record["attributes"] = dict(self.attributes)
        record["provenance"] = self.provenance
        return record


@dataclass(frozen=True)
class InstanceTable:
    """The instances of one instance map, by id (immutable: edits return a new table)."""

    instances: tuple[Instance, ...] = ()
    _by_id: dict[int, Instance] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.instances, key=lambda i: i.id))
        by_id: dict[int, Instance] = {}
        for instance in ordered:
            if instance.id in by_id:
                raise InstanceError(f"instance id {instance.id} is listed twice")
            by_id[instance.id] = instance
        object.__setattr__(self, "instances", ordered)
        object.__setattr__(self, "_by_id", by_id)

    # ------------------------------------------------------------------ reading

    def __iter__(self) -> Iterator[Instance]:
        return iter(self.instances)

    def __len__(self) -> int:
        return len(self.instances)

    def __contains__(self, instance_id: object) -> bool:
        return instance_id in self._by_id

    def __getitem__(self, instance_id: int) -> Instance:
        try:
            return self._by_id[int(instance_id)]
        except KeyError:
            raise KeyError(f"no instance {instance_id}") from None

    @property
    def ids(self) -> tuple[int, ...]:
        """The instance ids, ascending."""
        return tuple(self._by_id)

    def class_of(self, instance_id: int) -> int:
        """The class id of instance ``instance_id``."""
        return self[instance_id].class_id

    def ids_of_class(self, class_id: int, schema: LabelSchema | None = None) -> tuple[int, ...]:
        """Instances of ``class_id`` (and, with ``schema``, of its descendant classes)."""
        wanted = {int(class_id)}
        if schema is not None:
            wanted |= set(schema.descendants(class_id))
        return tuple(i.id for i in self.instances if i.class_id in wanted)

    def next_id(self) -> int:
        """The id a new instance gets: one above the largest."""
        return (self.instances[-1].id + 1) if self.instances else 1

    def number_in_class(self, instance_id: int) -> int:
        """1 for the first instance of its class (by id), 2 for the second, ..."""
        return self.numbers_in_class()[int(instance_id)]

    def numbers_in_class(self) -> dict[int, int]:
        """``{instance id: its number within its class}`` for every instance, in one pass."""
        counts: dict[int, int] = {}
        numbers: dict[int, int] = {}
        for instance in self.instances:  # ascending ids
            counts[instance.class_id] = counts.get(instance.class_id, 0) + 1
            numbers[instance.id] = counts[instance.class_id]
        return numbers

    @property
    def dtype(self) -> np.dtype:
        """The smallest unsigned integer type that holds every id (and the next one)."""
        return instance_dtype(self.next_id())

    # ------------------------------------------------------------------ editing

    def with_instance(self, instance: Instance) -> InstanceTable:
        """A copy with ``instance`` added (or replacing the one with its id)."""
        kept = [i for i in self.instances if i.id != instance.id]
        return InstanceTable((*kept, instance))

    def without(self, instance_ids: Iterable[int]) -> InstanceTable:
        """A copy without the instances ``instance_ids``."""
        dropped = {int(i) for i in instance_ids}
        return InstanceTable(tuple(i for i in self.instances if i.id not in dropped))

    def relabeled(self, instance_id: int, class_id: int) -> InstanceTable:
        """A copy with instance ``instance_id`` in class ``class_id``."""
        return self.with_instance(replace(self[instance_id], class_id=int(class_id)))

    # ------------------------------------------------------------------ derived views

    def class_lookup(self, size: int | None = None) -> np.ndarray:
        """Array ``lookup[instance_id] = class_id`` (0 for ids not in the table)."""
        size = max(size or 0, self.next_id())
        dtype = np.uint16 if all(i.class_id <= 65535 for i in self.instances) else np.uint32
        lookup = np.zeros(size, dtype=dtype)
        for instance in self.instances:
            lookup[instance.id] = instance.class_id
        return lookup

    def to_features(self, schema: LabelSchema | None = None) -> dict[str, list[Any]]:
        """Napari per-label features: one row per instance, ``index`` its id.

        Columns: ``index``, ``class_id``, ``class_path`` (from ``schema``; the id as text
        without one), ``provenance``, then one column per attribute name found.
        """
        names = sorted({name for i in self.instances for name in i.attributes})
        columns: dict[str, list[Any]] = {c: [] for c in FEATURE_COLUMNS}
        columns.update({name: [] for name in names})
        for instance in self.instances:
            columns["index"].append(instance.id)
            columns["class_id"].append(instance.class_id)
            columns["class_path"].append(class_path(schema, instance.class_id))
            columns["provenance"].append(instance.provenance)
            for name in names:
                columns[name].append(instance.attributes.get(name))
        return columns

    @classmethod
    def from_features(cls, features: Mapping[str, Any]) -> InstanceTable:
        """The table napari features (a mapping of columns, or a pandas DataFrame) describe.

        Rows without an ``index`` or ``class_id`` (napari adds a row for label 0) are skipped.
        """
        columns = {str(k): list(v) for k, v in dict(features).items()}
        if "index" not in columns or "class_id" not in columns:
            return cls()
        attribute_names = [c for c in columns if c not in FEATURE_COLUMNS]
        provenances = columns.get("provenance") or ["manual"] * len(columns["index"])
        instances = []
        for row, (index, class_id) in enumerate(
            zip(columns["index"], columns["class_id"], strict=True)
        ):
            if _missing(index) or _missing(class_id) or int(index) == 0:
                continue
            attributes = {
                name: plain_value(columns[name][row])
                for name in attribute_names
                if not _missing(columns[name][row])
            }
            provenance = provenances[row]
            if _missing(provenance) or not provenance:  # an empty cell (NaN from pandas)
                provenance = "manual"
            instances.append(Instance(int(index), int(class_id), attributes, str(provenance)))
        return cls(tuple(instances))

    def to_records(self) -> list[dict[str, Any]]:
        """JSON-ready records (what the files' sidecars and tags carry)."""
        return [instance.to_record() for instance in self.instances]

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> InstanceTable:
        """The table :meth:`to_records` wrote.

        Raises
        ------
        InstanceError
            A record without an id or class, or with a bad value.
        """
        instances = []
        for number, record in enumerate(records):
            try:
                instances.append(
                    Instance(
                        int(record["id"]),
                        int(record["class_id"]),
                        dict(record.get("attributes") or {}),
                        str(record.get("provenance") or "manual"),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                if isinstance(exc, InstanceError):
                    raise
                raise InstanceError(f"instance record {number}: {exc!r} is not valid") from exc
        return cls(tuple(instances))


def instance_dtype(largest_id: int) -> np.dtype:
    """uint16 for ids up to 65535, uint32 beyond."""
    return np.dtype(np.uint16) if largest_id <= 65535 else np.dtype(np.uint32)


def semantic_map(instance_map: np.ndarray, table: InstanceTable) -> np.ndarray:
    """The class map of an instance map: each pixel its instance's class (0 stays 0).

    Ids absent from the table map to 0 here; :func:`check_instances` says which they are.
    """
    values = np.asarray(instance_map)
    largest = int(values.max(initial=0))
    lookup = table.class_lookup(largest + 1)
    return lookup[values]


@dataclass(frozen=True)
class InstanceCheck:
    """What an instance map and its table disagree on.

    Attributes
    ----------
    untabled
        Ids painted in the map that the table does not list (shown as unlabeled in the
        class view until repaired).
    unused
        Ids the table lists that no pixel holds any more.
    """

    untabled: tuple[int, ...]
    unused: tuple[int, ...]

    @property
    def ok(self) -> bool:
        """True when every painted id is in the table."""
        return not self.untabled

    def message(self, name: str = "the labels") -> str:
        """One line saying what is wrong and what the repair does ('' when ok)."""
        if self.ok:
            return ""
        shown = ", ".join(str(i) for i in self.untabled[:10])
        more = f" and {len(self.untabled) - 10} more" if len(self.untabled) > 10 else ""
        return (
            f"{name}: instance ids {shown}{more} are painted but have no class in the instance "
            "table; they are kept, shown as unlabeled in the class view until given a class "
            "(repair: assign them a class, or make them instances of 'unassigned')"
        )


def check_instances(instance_map: np.ndarray, table: InstanceTable) -> InstanceCheck:
    """Compare the ids painted in ``instance_map`` with ``table`` (nothing is dropped)."""
    present = np.unique(np.asarray(instance_map)).astype(np.int64)
    present = present[present != 0]
    listed = np.asarray(table.ids, dtype=np.int64)  # ids beyond the map's dtype compare too
    untabled = np.setdiff1d(present, listed)
    unused = np.setdiff1d(listed, present)
    return InstanceCheck(tuple(int(i) for i in untabled), tuple(int(i) for i in unused))


def repair(
    instance_map: np.ndarray, table: InstanceTable, class_id: int, provenance: str = "imported"
) -> InstanceTable:
    """``table`` with every painted id it lacks added as an instance of ``class_id``."""
    check = check_instances(instance_map, table)
    added = (Instance(instance_id, class_id, {}, provenance) for instance_id in check.untabled)
    return InstanceTable((*table.instances, *added))  # one table, not one per id


def class_path(schema: LabelSchema | None, class_id: int) -> str:
    """The class's path in ``schema`` (``"liver/lesion"``); the id as text without one."""
    if schema is None or class_id not in schema:
        return str(int(class_id))
    return schema.path(class_id)


def is_objects_class(schema: LabelSchema | None, class_id: int) -> bool:
    """Whether ``class_id`` is an "objects" class; every class is, without a schema."""
    if schema is None:
        return True
    return class_id in schema and schema.is_objects(class_id)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(np.isnan(value))
    except (TypeError, ValueError):
        return False


def plain_value(value: Any) -> Any:
    """A numpy scalar as the Python value (JSON-ready); any other value as it is."""
    return value.item() if isinstance(value, np.generic) else value


def attribute_problems(table: InstanceTable, schema: LabelSchema | None) -> list[str]:
    """Attribute values that do not fit their class's attribute specs, one line each.

    Attributes the class does not declare (e.g. a TrackingUID kept from an imported SEG) are
    not checked; an empty list when ``schema`` is ``None`` or every value fits.
    """
    if schema is None:
        return []
    problems = []
    for instance in table:
        if instance.class_id not in schema or not instance.attributes:
            continue
        specs = {spec.name: spec for spec in schema.attribute_specs(instance.class_id)}
        for name, value in instance.attributes.items():
            spec = specs.get(name)
            if spec is not None and not spec.accepts(value):
                kind = f"one of {', '.join(spec.choices)}" if spec.choices else f"a {spec.type}"
                problems.append(
                    f"instance {instance.id} ({schema.path(instance.class_id)}): {name} = "
                    f"{value!r} is not {kind}"
                )
    return problems


def warn_attribute_problems(path: Any, table: InstanceTable, schema: LabelSchema | None) -> None:
    """Warn (once, naming the file) when attribute values do not fit their specs.

    An export still writes them: the values are the annotator's, and refusing would lose the
    work; the warning says which objects to fix.
    """
    import warnings

    problems = attribute_problems(table, schema)
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        warnings.warn(
            f"{path}: attribute values that do not fit the schema are written as they are: "
            f"{shown}. Fix them in the Objects tab (or the schema).",
            stacklevel=3,
        )
