"""The label schema: which classes an annotation may use, with names and colours.

A schema file is YAML (``.yaml``/``.yml``) or JSON (``.json``)::

    name: Land cover
    description: Classes for Sentinel-2 / Landsat land-cover annotation.
    version: 1
    classes:
      - id: 1
        name: water
        color: "#0064c8"
        description: Open water, rivers, lakes and sea.
        shortcut: "1"

Label value 0 is reserved for "unlabeled" and never appears in ``classes``.
The format is documented in ``docs/label_schema.md``.

Schemas come from users and from files written by others, so reading one is bounded: at most
:data:`MAX_SCHEMA_BYTES` of text and :data:`MAX_CLASSES` classes, no YAML anchors or aliases (the
"billion laughs" expansion), no tags beyond plain text, numbers, lists and mappings, and every
value quoted in a message is shortened.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from napari_domainseg.errors import DomainSegError
from napari_domainseg.labels.colors import RGBA, format_color, parse_color, to_float_rgba

SCHEMA_FORMAT_VERSION = 1
MAX_CLASS_ID = 65535
"""Largest class id: labels are exported as at most uint16 (and DICOM SEG segment numbers)."""

UNLABELED = 0
"""The label value that means "not annotated"."""

MAX_SCHEMA_BYTES = 1024 * 1024
"""Largest schema text read (1 MiB: about 20,000 classes written one per line)."""

MAX_CLASSES = MAX_CLASS_ID
"""Most classes a schema may list (one per label value 1-65535)."""

MAX_TREE_DEPTH = 16
"""Most levels of the class tree (a root class and 15 levels below it)."""

MAX_PROBLEMS_SHOWN = 20
"""Problems listed in a :class:`SchemaError` message (all are kept in ``problems``)."""

_MAX_VALUE_CHARS = 60
_YAML_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = frozenset(
    f"{_YAML_TAG}{kind}"
    for kind in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")
)

_TOP_LEVEL_FIELDS = ("name", "description", "version", "classes")
_CLASS_FIELDS = (
    "id",
    "name",
    "color",
    "description",
    "shortcut",
    "parent",
    "kind",
    "codes",
    "attributes",
)

KINDS = ("stuff", "objects")
"""Class kinds: ``"stuff"`` (regions: water, background) or ``"objects"`` (countable instances)."""

ATTRIBUTE_TYPES = ("bool", "int", "float", "text", "choice")
"""Value types an instance attribute may have."""

CODE_FIELDS = ("category", "type", "modifier", "anatomic_region")
"""Terminology codes a class may carry (DICOM SEG segment / 3D Slicer terminology fields)."""

RESERVED_ATTRIBUTE_NAMES = (
    "index",
    "id",
    "instance_id",
    "class_id",
    "class_path",
    "provenance",
    "geometry",
    "name",
    "label",
    "area_m2",
    "assisted",
)
"""Column names the instance table and the exports use (GeoJSON/GPKG/FlatGeobuf, COCO, DICOM
SEG); an attribute may not take one, in any letter case (GPKG columns ignore case)."""

PATH_SEPARATOR = "/"
"""Joins class names from the root in a class path (``"vehicle/car"``)."""


@dataclass(frozen=True)
class Code:
    """One coded concept, as DICOM and 3D Slicer write terminology.

    Parameters
    ----------
    value
        The code value, for example ``"123037004"``.
    scheme
        The coding scheme designator: ``"SCT"`` (SNOMED CT), ``"DCM"`` (DICOM), ``"SRT"``
        (the older SNOMED RT designator) ...
    meaning
        The human-readable meaning, for example ``"Anatomical Structure"``.
    """

    value: str
    scheme: str
    meaning: str

    def to_dict(self) -> dict[str, str]:
        """Return the code as written in a schema file."""
        return {"value": self.value, "scheme": self.scheme, "meaning": self.meaning}


@dataclass(frozen=True)
class ClassCodes:
    """Terminology of a class, as in a DICOM SEG segment.

    The segmented property category and type are required together; a type modifier and an
    anatomic region are optional.
    """

    category: Code
    type: Code
    modifier: Code | None = None
    anatomic_region: Code | None = None

    def to_dict(self) -> dict[str, dict[str, str]]:
        """Return the codes as written in a schema file (unset ones left out)."""
        document = {"category": self.category.to_dict(), "type": self.type.to_dict()}
        if self.modifier is not None:
            document["modifier"] = self.modifier.to_dict()
        if self.anatomic_region is not None:
            document["anatomic_region"] = self.anatomic_region.to_dict()
        return document


@dataclass(frozen=True)
class AttributeSpec:
    """An attribute every instance of a class (and of its descendants) may carry.

    Parameters
    ----------
    name
        Attribute name, for example ``"occluded"``; a column of the instance table.
    type
        One of :data:`ATTRIBUTE_TYPES`: ``"bool"``, ``"int"``, ``"float"``, ``"text"``,
        ``"choice"``.
    choices
        The allowed values of a ``"choice"`` attribute (empty for the other types).
    default
        The value a new instance gets, or ``None`` (unset).
    """

    name: str
    type: str
    choices: tuple[str, ...] = ()
    default: Any = None

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` fits this attribute (``None``, unset, always does)."""
        if value is None:
            return True
        if self.type == "bool":
            return isinstance(value, (bool, np.bool_))
        if self.type == "int":
            return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
        if self.type == "float":
            return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
                value, (bool, np.bool_)
            )
        if self.type == "text":
            return isinstance(value, str)
        if self.type == "choice":
            return isinstance(value, str) and value in self.choices
        return False

    def to_dict(self) -> dict[str, Any]:
        """Return the attribute as written in a schema file."""
        entry: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.choices:
            entry["choices"] = list(self.choices)
        if self.default is not None:
            entry["default"] = self.default
        return entry


@dataclass(frozen=True)
class LabelClass:
    """One annotation class.

    Parameters
    ----------
    id
        Label value painted for this class (1-65535; 0 means unlabeled).
    name
        Short unique name, for example ``"liver"`` or ``"water"``.
    color
        ``(r, g, b, a)`` integers 0-255.
    description
        The annotation guideline for this class, shown to annotators.
    shortcut
        Optional single keyboard key that selects the class.
    parent
        Id of the parent class (classes form a tree); ``None`` for a root class.
    kind
        ``"stuff"`` (regions: water, background) or ``"objects"`` (countable instances:
        buildings, lesions), see :data:`KINDS`.
    codes
        Terminology codes (SNOMED CT category / type ...), written into DICOM SEG and
        ``.seg.nrrd``; ``None`` when the class has none.
    attributes
        Attributes the instances of this class carry (its descendants inherit them).
    """

    id: int
    name: str
    color: RGBA
    description: str = ""
    shortcut: str | None = None
    parent: int | None = None
    kind: str = "stuff"
    codes: ClassCodes | None = None
    attributes: tuple[AttributeSpec, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the class as written in a schema file."""
        entry: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "color": format_color(self.color),
        }
        if self.description:
            entry["description"] = self.description
        if self.shortcut is not None:
            entry["shortcut"] = self.shortcut
        if self.parent is not None:
            entry["parent"] = self.parent
        if self.kind != "stuff":
            entry["kind"] = self.kind
        if self.codes is not None:
            entry["codes"] = self.codes.to_dict()
        if self.attributes:
            entry["attributes"] = [a.to_dict() for a in self.attributes]
        return entry


@dataclass(frozen=True)
class LabelSchema:
    """An ordered, validated set of annotation classes.

    Build one with :func:`load_schema`, :func:`parse_schema` or
    :meth:`from_dict`; each checks the rules documented in the module.
    """

    name: str
    classes: tuple[LabelClass, ...]
    description: str = ""
    _by_id: dict[int, LabelClass] = field(init=False, repr=False, compare=False)
    _children: dict[int | None, tuple[int, ...]] = field(init=False, repr=False, compare=False)
    _paths: dict[int, str] = field(init=False, repr=False, compare=False)
    _by_path: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {c.id: c for c in self.classes})
        children: dict[int | None, list[int]] = {None: []}
        for label_class in self.classes:
            if label_class.parent is not None and label_class.parent not in self._by_id:
                raise ValueError(
                    f"class {label_class.name!r} (id {label_class.id}) has parent "
                    f"{label_class.parent}, which is not a class of schema {self.name!r}"
                )
            children.setdefault(label_class.parent, []).append(label_class.id)
        object.__setattr__(self, "_children", {k: tuple(v) for k, v in children.items()})
        paths: dict[int, str] = {}
        for label_class in self.classes:  # each class walked once: linear time
            chain: list[LabelClass] = []
            on_chain: set[int] = set()
            current: LabelClass | None = label_class
            while current is not None and current.id not in paths:
                if current.id in on_chain:
                    raise ValueError(
                        f"classes of schema {self.name!r} form a cycle through "
                        f"{current.name!r} (id {current.id})"
                    )
                chain.append(current)
                on_chain.add(current.id)
                current = None if current.parent is None else self._by_id[current.parent]
            prefix = "" if current is None else paths[current.id]
            for member in reversed(chain):
                prefix = f"{prefix}{PATH_SEPARATOR}{member.name}" if prefix else member.name
                paths[member.id] = prefix
        object.__setattr__(self, "_paths", paths)
        object.__setattr__(self, "_by_path", {p.casefold(): i for i, p in paths.items()})

    def __iter__(self) -> Iterator[LabelClass]:
        return iter(self.classes)

    def __len__(self) -> int:
        return len(self.classes)

    def __getitem__(self, class_id: int) -> LabelClass:
        """Return the class with label value ``class_id``."""
        try:
            return self._by_id[class_id]
        except KeyError:
            raise KeyError(f"schema {self.name!r} has no class with id {class_id}") from None

    def __contains__(self, class_id: object) -> bool:
        return class_id in self._by_id

    def by_name(self, name: str) -> LabelClass:
        """Return the class called ``name`` (case-insensitive).

        A path (``"liver/lesion"``) is accepted too. A name used under two parents is
        ambiguous: the ``KeyError`` lists the paths to use instead (see :meth:`by_path`).
        """
        wanted = name.strip().casefold()
        found = [c for c in self.classes if c.name.casefold() == wanted]
        if len(found) == 1:
            return found[0]
        if found:
            paths = ", ".join(repr(self._paths[c.id]) for c in found)
            raise KeyError(
                f"schema {self.name!r} has {len(found)} classes named {name!r}; "
                f"give the path instead: {paths}"
            )
        if wanted in self._by_path:
            return self._by_id[self._by_path[wanted]]
        names = ", ".join(self._paths[c.id] for c in self.classes)
        raise KeyError(f"schema {self.name!r} has no class named {name!r}; it has: {names}")

    # -- the class tree -----------------------------------------------------------------------
    @property
    def is_tree(self) -> bool:
        """Whether any class has a parent (``False`` for an old flat schema)."""
        return any(c.parent is not None for c in self.classes)

    def path(self, class_id: int) -> str:
        """The class path: names from the root joined by ``"/"`` (``"vehicle/car"``)."""
        self[class_id]
        return self._paths[class_id]

    def by_path(self, path: str) -> LabelClass:
        """Return the class at ``path`` (``"liver/lesion"``; case-insensitive)."""
        exact = self._by_path.get(path.strip().casefold())  # a name may hold " / " itself
        if exact is not None:
            return self._by_id[exact]
        wanted = PATH_SEPARATOR.join(part.strip() for part in path.strip().split(PATH_SEPARATOR))
        try:
            return self._by_id[self._by_path[wanted.casefold()]]
        except KeyError:
            close = difflib.get_close_matches(wanted, list(self._paths.values()), n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise KeyError(f"schema {self.name!r} has no class at path {path!r}{hint}") from None

    def children(self, class_id: int) -> tuple[LabelClass, ...]:
        """The classes whose parent is ``class_id``, in schema order."""
        self[class_id]
        return tuple(self._by_id[i] for i in self._children.get(class_id, ()))

    def roots(self) -> tuple[LabelClass, ...]:
        """The classes without a parent, in schema order (all of them in a flat schema)."""
        return tuple(self._by_id[i] for i in self._children[None])

    def ancestors(self, class_id: int) -> tuple[int, ...]:
        """Ids of the parent, grandparent, ... of ``class_id`` (nearest first)."""
        found: list[int] = []
        parent = self[class_id].parent
        while parent is not None:
            found.append(parent)
            parent = self._by_id[parent].parent
        return tuple(found)

    def descendants(self, class_id: int) -> tuple[int, ...]:
        """Ids of every class below ``class_id`` (depth first, in schema order)."""
        self[class_id]
        found: list[int] = []
        stack = list(reversed(self._children.get(class_id, ())))
        while stack:
            current = stack.pop()
            found.append(current)
            stack.extend(reversed(self._children.get(current, ())))
        return tuple(found)

    def depth(self, class_id: int) -> int:
        """0 for a root class, 1 for its children, ..."""
        return len(self.ancestors(class_id))

    def is_objects(self, class_id: int) -> bool:
        """Whether ``class_id`` is an ``"objects"`` class (countable instances)."""
        return self[class_id].kind == "objects"

    def attribute_specs(self, class_id: int) -> tuple[AttributeSpec, ...]:
        """The attributes of ``class_id``: its own, then its parent's, grandparent's, ..."""
        specs = list(self[class_id].attributes)
        for ancestor in self.ancestors(class_id):
            specs.extend(self._by_id[ancestor].attributes)
        return tuple(specs)

    def instance_color(self, class_id: int, instance_number: int) -> RGBA:
        """A colour for instance ``instance_number`` of ``class_id``.

        Near the class colour, different for each instance and the same every time (0 gives
        the class colour itself); see :func:`instance_color`.
        """
        return instance_color(self[class_id].color, instance_number)

    @property
    def max_id(self) -> int:
        """The largest class id."""
        return max(c.id for c in self.classes)

    @property
    def label_dtype(self) -> np.dtype:
        """Smallest unsigned integer dtype that holds every class id."""
        return np.dtype(np.uint8) if self.max_id <= 255 else np.dtype(np.uint16)

    def colormap(
        self, unlisted: tuple[float, float, float, float] = (0.5, 0.5, 0.5, 1.0)
    ) -> dict[int | None, tuple[float, float, float, float]]:
        """Return label colours as ``{id: (r, g, b, a)}`` floats 0-1.

        Label 0 is transparent. The ``None`` key holds the colour for values
        that are not in the schema (napari's ``DirectLabelColormap`` default).
        """
        colors: dict[int | None, tuple[float, float, float, float]] = {
            None: unlisted,
            UNLABELED: (0.0, 0.0, 0.0, 0.0),
        }
        for label_class in self.classes:
            colors[label_class.id] = to_float_rgba(label_class.color)
        return colors

    def to_dict(self) -> dict[str, Any]:
        """Return the schema as written in a schema file."""
        document: dict[str, Any] = {"name": self.name}
        if self.description:
            document["description"] = self.description
        document["version"] = SCHEMA_FORMAT_VERSION
        document["classes"] = [c.to_dict() for c in self.classes]
        return document

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], source: str = "<dict>") -> LabelSchema:
        """Validate a parsed schema document (no line numbers in errors)."""
        text = yaml.dump(  # a dict may reuse one object (the same codes twice): no aliases
            dict(document), Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True
        )
        return parse_schema(text, source=source)


_GOLDEN = 0.6180339887498949
_PLASTIC = 0.7548776662466927


def instance_color(color: RGBA, instance_number: int) -> RGBA:
    """A colour near ``color`` for instance ``instance_number`` (deterministic).

    Lightness moves by up to ±0.16 and hue by up to ±0.045 of the colour circle, following
    two low-discrepancy sequences so that consecutive instances differ visibly; alpha is kept.
    ``instance_number`` 0 gives ``color`` itself.
    """
    import colorsys

    number = int(instance_number)
    if number == 0:
        return color
    r, g, b, a = color
    hue, lightness, saturation = colorsys.rgb_to_hls(r / 255.0, g / 255.0, b / 255.0)
    shift = ((number * _GOLDEN) % 1.0 - 0.5) * 0.32
    lightness_new = lightness + shift
    if not 0.06 <= lightness_new <= 0.94:
        lightness_new = lightness - shift
    lightness_new = min(max(lightness_new, 0.04), 0.96)
    hue = (hue + ((number * _PLASTIC) % 1.0 - 0.5) * 0.09) % 1.0
    red, green, blue = colorsys.hls_to_rgb(hue, lightness_new, saturation)
    return (round(red * 255), round(green * 255), round(blue * 255), a)


class _NoAliasDumper(yaml.SafeDumper):
    """Writes a repeated object out again instead of as a YAML alias (which parsing refuses)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


@dataclass(frozen=True)
class SchemaProblem:
    """One thing wrong with a schema file."""

    source: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}, line {self.line}"
        return f"{where}, {self.field}: {self.message}"


class SchemaError(DomainSegError, ValueError):
    """A schema file is not valid; ``problems`` lists every problem found.

    The message lists the first :data:`MAX_PROBLEMS_SHOWN` problems, one per line, and how
    many more there are.
    """

    def __init__(self, problems: Iterable[SchemaProblem]):
        self.problems = list(problems)
        count = len(self.problems)
        lines = [str(p) for p in self.problems[:MAX_PROBLEMS_SHOWN]]
        if count > MAX_PROBLEMS_SHOWN:
            lines.append(f"... and {count - MAX_PROBLEMS_SHOWN} more problems")
        header = f"invalid label schema ({count} problem{'s' if count != 1 else ''}):"
        super().__init__("\n  ".join([header, *lines]))


def short_repr(value: Any, limit: int = _MAX_VALUE_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages about untrusted values.

    Containers are not formatted whole (a hostile document can make them huge): only their
    type and length are shown.
    """
    if isinstance(value, (list, tuple, dict, set)):
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + f"... ({len(value)} characters)"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MAX_DEPTH = 10


def _shorten(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters."""
    return text if len(text) <= limit else text[:limit] + "..."


def _check_events(text: str, source: str) -> None:
    """Refuse what a schema must not use, from the parser's events, before any node exists.

    Anchors and aliases (``&a``/``*a``: the "billion laughs" expansion), tags other than plain
    text, numbers, lists and mappings (``!!python/object``), nesting deeper than a schema needs
    and more than :data:`MAX_CLASSES` classes are refused with the line where they occur.

    Raises
    ------
    SchemaError
        With the first such construct; YAML syntax errors propagate as ``yaml.YAMLError``.
    """
    depth = 0
    mappings = 0
    for event in yaml.parse(text, Loader=_LOADER):
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        reason = None
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            reason = (
                "YAML anchors and aliases (&name, *name) are not allowed in a label schema; "
                "write each value out"
            )
        elif getattr(event, "tag", None) not in (None, "!", *_PLAIN_TAGS):
            reason = (
                f"the tag {short_repr(event.tag.replace(_YAML_TAG, '!!'))} is not allowed; a label "
                "schema holds only "
                "text, numbers, lists and mappings"
            )
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            # classes are the mappings at depth 3 (document, list, class); their codes and
            # attributes, deeper, are bounded by the text size
            mappings += isinstance(event, yaml.MappingStartEvent) and depth <= 3
            if depth > _MAX_DEPTH:
                reason = (
                    f"nested more than {_MAX_DEPTH} levels deep; a schema needs at most 6 "
                    "(classes, codes, attributes)"
                )
            elif mappings > MAX_CLASSES + 1:
                reason = (
                    f"more than {MAX_CLASSES} classes (one per label value 1-{MAX_CLASS_ID}); "
                    "split the schema or remove unused classes"
                )
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        if reason is not None:
            raise SchemaError([SchemaProblem(source, line, "document", reason)])


class _Collector:
    """Gathers problems so that one error reports all of them."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[SchemaProblem] = []

    def add(self, node: yaml.Node | None, field_path: str, message: str) -> None:
        line = None if node is None else node.start_mark.line + 1
        self.problems.append(SchemaProblem(self.source, line, field_path, message))


def _mapping_items(
    node: yaml.MappingNode, where: str, problems: _Collector
) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """Return ``{key: (key_node, value_node)}``, reporting duplicate keys."""
    items: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            problems.add(key_node, f"{where}<key>", "a field name must be plain text")
            continue
        key = _shorten(str(key_node.value), _MAX_VALUE_CHARS)
        if key in items:
            problems.add(key_node, f"{where}{key}", "this field is given twice")
        items[key] = (key_node, value_node)
    return items


def _check_unknown(
    items: Mapping[str, tuple[yaml.Node, yaml.Node]],
    known: tuple[str, ...],
    where: str,
    problems: _Collector,
) -> None:
    for key, (key_node, _) in items.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(known)}"
            problems.add(key_node, f"{where}{key}", f"unknown field{hint}")


class _Unreadable:
    """Marks a value that could not be constructed (the problem is already reported)."""


_UNREADABLE = _Unreadable()


def _value(node: yaml.Node, field_path: str, problems: _Collector) -> Any:
    """The Python value of a node, or :data:`_UNREADABLE` with the problem reported."""
    try:
        return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError) as exc:
        reason = getattr(exc, "problem", None) or str(exc)
        if "digits" in reason and "integer" in reason:
            reason = "a number with thousands of digits"
        problems.add(node, field_path, f"cannot be read: {_shorten(reason, 120)}")
        return _UNREADABLE


def _parse_class(
    node: yaml.Node, index: int, problems: _Collector
) -> tuple[dict[str, Any], dict[str, yaml.Node]] | None:
    where = f"classes[{index}]"
    if not isinstance(node, yaml.MappingNode):
        problems.add(node, where, "each class must be a mapping with id, name and color")
        return None
    items = _mapping_items(node, f"{where}.", problems)
    _check_unknown(items, _CLASS_FIELDS, f"{where}.", problems)
    values: dict[str, Any] = {}
    nodes: dict[str, yaml.Node] = {}
    for key in ("id", "name", "color"):
        if key not in items:
            problems.add(node, f"{where}.{key}", "missing (every class needs id, name and color)")
    for key, (_, value_node) in items.items():
        if key in ("codes", "attributes"):
            nodes[key] = value_node  # checked node by node, for line numbers
        elif key in _CLASS_FIELDS:
            value = _value(value_node, f"{where}.{key}", problems)
            if value is _UNREADABLE:
                continue
            values[key] = value
            nodes[key] = value_node
    return values, nodes


def _check_class(
    values: dict[str, Any], nodes: dict[str, yaml.Node], index: int, problems: _Collector
) -> LabelClass | None:
    where = f"classes[{index}]"
    ok = True
    class_id = values.get("id")
    if "id" in values:
        if isinstance(class_id, bool) or not isinstance(class_id, int):
            problems.add(nodes["id"], f"{where}.id", f"{short_repr(class_id)} is not an integer")
            ok = False
        elif class_id == UNLABELED:
            problems.add(
                nodes["id"], f"{where}.id", "id 0 is reserved for unlabeled; use 1 or higher"
            )
            ok = False
        elif not 1 <= class_id <= MAX_CLASS_ID:
            problems.add(
                nodes["id"],
                f"{where}.id",
                f"{short_repr(class_id)} is outside the allowed 1-{MAX_CLASS_ID}",
            )
            ok = False
    name = values.get("name")
    if "name" in values and (not isinstance(name, str) or not name.strip()):
        problems.add(nodes["name"], f"{where}.name", f"{short_repr(name)} is not a non-empty text")
        ok = False
    color: RGBA | None = None
    if "color" in values:
        try:
            color = parse_color(values["color"])
        except (ValueError, TypeError, OverflowError) as exc:
            problems.add(nodes["color"], f"{where}.color", _shorten(str(exc)))
            ok = False
    description = values.get("description", "")
    if description is None:
        description = ""
    if not isinstance(description, str):
        problems.add(nodes["description"], f"{where}.description", "must be text")
        ok = False
    shortcut = values.get("shortcut")
    if shortcut is not None:
        shortcut = shortcut if isinstance(shortcut, str) else str(shortcut)
        if len(shortcut) != 1 or not shortcut.isalnum():
            problems.add(
                nodes["shortcut"],
                f"{where}.shortcut",
                f"{short_repr(shortcut)} is not a single letter or digit",
            )
            ok = False
    kind = values.get("kind", "stuff")
    if kind not in KINDS:
        close = difflib.get_close_matches(str(kind), KINDS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        problems.add(
            nodes["kind"],
            f"{where}.kind",
            f"{short_repr(kind)} is not a kind; {hint}use 'objects' (countable instances: "
            "buildings, lesions) or 'stuff' (regions: water, background)",
        )
        ok = False
    codes = None
    if "codes" in nodes:
        codes = _check_codes(nodes["codes"], f"{where}.codes", problems)
        ok = ok and codes is not None
    attributes: tuple[AttributeSpec, ...] = ()
    if "attributes" in nodes:
        checked_attributes = _check_attributes(nodes["attributes"], f"{where}.attributes", problems)
        if checked_attributes is None:
            ok = False
        else:
            attributes = checked_attributes
    if not ok or class_id is None or name is None or color is None:
        return None
    return LabelClass(
        id=class_id,
        name=name.strip(),
        color=color,
        description=description.strip(),
        shortcut=shortcut,
        kind=kind,
        codes=codes,
        attributes=attributes,
    )


_CODE_ENTRY_FIELDS = ("value", "scheme", "meaning")
_SCHEME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_CODE_LIMITS = {"value": 64, "scheme": 16, "meaning": 64}
"""Longest code texts: DICOM's LongCodeValue, CodingSchemeDesignator (SH), CodeMeaning (LO)."""
_CODE_HELP = (
    "write it as {value: '123037004', scheme: SCT, meaning: Anatomical Structure} "
    "(SCT = SNOMED CT, DCM = DICOM)"
)


def _check_code(node: yaml.Node, where: str, problems: _Collector) -> Code | None:
    """One ``{value, scheme, meaning}`` entry of ``codes``."""
    if not isinstance(node, yaml.MappingNode):
        problems.add(node, where, f"must be a mapping; {_CODE_HELP}")
        return None
    items = _mapping_items(node, f"{where}.", problems)
    _check_unknown(items, _CODE_ENTRY_FIELDS, f"{where}.", problems)
    texts: dict[str, str] = {}
    for key in _CODE_ENTRY_FIELDS:
        if key not in items:
            problems.add(node, f"{where}.{key}", f"missing; {_CODE_HELP}")
            continue
        value_node = items[key][1]
        value = _value(value_node, f"{where}.{key}", problems)
        if value is _UNREADABLE:
            continue
        if key == "value" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            problems.add(
                value_node, f"{where}.{key}", f"{short_repr(value)} is not a non-empty text"
            )
            continue
        value = value.strip()
        if len(value) > _CODE_LIMITS[key]:
            problems.add(
                value_node,
                f"{where}.{key}",
                f"{short_repr(value)} is longer than the {_CODE_LIMITS[key]} characters DICOM "
                "allows; shorten it",
            )
            continue
        if key == "scheme" and not _SCHEME.match(value):
            problems.add(
                value_node,
                f"{where}.{key}",
                f"{short_repr(value)} is not a coding scheme designator; use one like 'SCT' "
                "(SNOMED CT), 'DCM' (DICOM) or 'SRT'",
            )
            continue
        texts[key] = value
    if len(texts) != len(_CODE_ENTRY_FIELDS):
        return None
    return Code(value=texts["value"], scheme=texts["scheme"], meaning=texts["meaning"])


def _check_codes(node: yaml.Node, where: str, problems: _Collector) -> ClassCodes | None:
    """A class's ``codes``: category and type (required together), modifier, anatomic_region."""
    if not isinstance(node, yaml.MappingNode):
        problems.add(
            node,
            where,
            "must be a mapping with category and type (and optionally modifier, anatomic_region)",
        )
        return None
    items = _mapping_items(node, f"{where}.", problems)
    _check_unknown(items, CODE_FIELDS, f"{where}.", problems)
    ok = True
    for key in ("category", "type"):
        if key not in items:
            problems.add(
                node,
                f"{where}.{key}",
                "missing: codes need both category and type (the DICOM SEG segmented property "
                "category and type); add it or remove codes",
            )
            ok = False
    found: dict[str, Code] = {}
    for key in CODE_FIELDS:
        if key in items:
            code = _check_code(items[key][1], f"{where}.{key}", problems)
            if code is None:
                ok = False
            else:
                found[key] = code
    if not ok:
        return None
    return ClassCodes(
        category=found["category"],
        type=found["type"],
        modifier=found.get("modifier"),
        anatomic_region=found.get("anatomic_region"),
    )


_ATTRIBUTE_FIELDS = ("name", "type", "choices", "default")


def _check_attributes(
    node: yaml.Node, where: str, problems: _Collector
) -> tuple[AttributeSpec, ...] | None:
    """A class's ``attributes``: a list of ``{name, type, choices, default}``."""
    if not isinstance(node, yaml.SequenceNode):
        problems.add(
            node, where, "must be a list of attributes, each {name: ..., type: bool|int|...}"
        )
        return None
    specs: list[AttributeSpec] = []
    first_seen: dict[str, int] = {}
    ok = True
    for number, entry in enumerate(node.value):
        spec = _check_attribute(entry, f"{where}[{number}]", problems)
        if spec is None:
            ok = False
            continue
        key = spec.name.casefold()
        if key in first_seen:
            problems.add(
                entry,
                f"{where}[{number}].name",
                f"{short_repr(spec.name)} is already used by {where}[{first_seen[key]}]; "
                "rename one of them",
            )
            ok = False
            continue
        first_seen[key] = number
        specs.append(spec)
    return tuple(specs) if ok else None


def _check_attribute(node: yaml.Node, where: str, problems: _Collector) -> AttributeSpec | None:
    if not isinstance(node, yaml.MappingNode):
        problems.add(node, where, "each attribute must be a mapping {name: ..., type: ...}")
        return None
    items = _mapping_items(node, f"{where}.", problems)
    _check_unknown(items, _ATTRIBUTE_FIELDS, f"{where}.", problems)
    values: dict[str, Any] = {}
    for key, (_, value_node) in items.items():
        if key in _ATTRIBUTE_FIELDS:
            value = _value(value_node, f"{where}.{key}", problems)
            if value is _UNREADABLE:
                return None
            values[key] = value
    ok = True
    for key in ("name", "type"):
        if key not in items:
            problems.add(node, f"{where}.{key}", "missing (every attribute needs name and type)")
            ok = False
    name = values.get("name")
    if "name" in values:
        if not isinstance(name, str) or not name.strip():
            problems.add(items["name"][1], f"{where}.name", f"{short_repr(name)} is not a name")
            ok = False
        elif name.strip().casefold() in RESERVED_ATTRIBUTE_NAMES:
            problems.add(
                items["name"][1],
                f"{where}.name",
                f"{short_repr(name)} is a column of the instance table; choose another name "
                f"(reserved: {', '.join(RESERVED_ATTRIBUTE_NAMES)})",
            )
            ok = False
    kind = values.get("type")
    if "type" in values and kind not in ATTRIBUTE_TYPES:
        close = difflib.get_close_matches(str(kind), ATTRIBUTE_TYPES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        problems.add(
            items["type"][1],
            f"{where}.type",
            f"unknown attribute type {short_repr(kind)}; {hint}use one of "
            f"{', '.join(ATTRIBUTE_TYPES)}",
        )
        ok = False
    choices: tuple[str, ...] = ()
    if "choices" in values:
        raw = values["choices"]
        choices_node = items["choices"][1]
        if kind != "choice":
            problems.add(
                choices_node,
                f"{where}.choices",
                "choices apply only to type 'choice'; set type: choice or remove them",
            )
            ok = False
        elif (
            not isinstance(raw, list)
            or not raw
            or not all(isinstance(c, str) and c.strip() for c in raw)
        ):
            problems.add(
                choices_node,
                f"{where}.choices",
                "must be a non-empty list of texts, e.g. [low, medium, high] (quote numbers)",
            )
            ok = False
        else:
            choices = tuple(c.strip() for c in raw)
            if len(set(choices)) != len(choices):
                problems.add(choices_node, f"{where}.choices", "a choice is listed twice")
                ok = False
    elif kind == "choice":
        problems.add(
            node,
            f"{where}.choices",
            "missing: a 'choice' attribute needs choices, e.g. choices: [low, medium, high]",
        )
        ok = False
    if not ok:
        return None
    default = values.get("default")
    spec = AttributeSpec(name=name.strip(), type=kind, choices=choices)
    if default is not None:
        if kind == "float" and isinstance(default, int) and not isinstance(default, bool):
            default = float(default)
        if not spec.accepts(default):
            if kind == "choice":
                fix = f"use one of {', '.join(choices)}"
            else:
                fix = {
                    "bool": "write true or false",
                    "int": "write a whole number",
                    "float": "write a number",
                    "text": "quote it",
                }[kind]
            problems.add(
                items["default"][1],
                f"{where}.default",
                f"{short_repr(default)} does not fit type {kind!r}; {fix}",
            )
            return None
    return AttributeSpec(name=spec.name, type=kind, choices=choices, default=default)


def _check_unique(
    classes: list[tuple[LabelClass, dict[str, yaml.Node], int]], problems: _Collector
) -> None:
    for attribute, normalise in (
        ("id", lambda v: v),
        ("shortcut", lambda v: v.casefold()),
    ):
        first_seen: dict[Any, int] = {}
        for label_class, nodes, index in classes:
            value = getattr(label_class, attribute)
            if value is None:
                continue
            key = normalise(value)
            if key in first_seen:
                problems.add(
                    nodes.get(attribute),
                    f"classes[{index}].{attribute}",
                    f"{short_repr(value)} is already used by classes[{first_seen[key]}]",
                )
            else:
                first_seen[key] = index


_PARENT_HELP = "give the id, path (like 'liver') or name of another class in this schema"


def _resolve_parents(
    checked: list[tuple[LabelClass, dict[str, yaml.Node], int]],
    problems: _Collector,
    complete: bool,
) -> dict[int, int]:
    """``{index: parent id}`` for each class with a valid ``parent`` reference.

    A reference is an id, a path or a name. A name shared by several classes resolves to the
    one root class of that name; paths are matched once their own parents are known. When
    some classes were invalid (not ``complete``) a reference to no class is not reported: it
    may name one of them.
    """
    ids = {c.id: (c, i) for c, _, i in reversed(checked)}
    by_index = {i: (c, nodes) for c, nodes, i in checked}
    refs = {i: nodes for c, nodes, i in checked if "parent" in nodes}
    raw = {  # already read once by _parse_class, which reported any problem
        i: _value(nodes["parent"], f"classes[{i}].parent", _Collector(""))
        for i, nodes in refs.items()
    }
    named: dict[str, list[int]] = {}
    for c, _, i in checked:
        named.setdefault(c.name.casefold(), []).append(i)
    resolved: dict[int, int] = {}
    deferred: dict[int, str] = {}
    for index, nodes in refs.items():
        label_class = by_index[index][0]
        node, where = nodes["parent"], f"classes[{index}].parent"
        value = raw[index]
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
            problems.add(node, where, f"{short_repr(value)} is not a class; {_PARENT_HELP}")
        elif isinstance(value, int):
            if value == label_class.id:
                problems.add(
                    node, where, "a class cannot be its own parent; give another class or none"
                )
            elif value not in ids:
                if complete:
                    problems.add(node, where, f"no class has id {value}; {_PARENT_HELP}")
            else:
                resolved[index] = value
        elif len(_split_path(value)) > 1:
            deferred[index] = PATH_SEPARATOR.join(_split_path(value))
        else:
            value = PATH_SEPARATOR.join(_split_path(value))
            candidates = named.get(value.strip().casefold(), [])
            if len(candidates) > 1:
                candidates = [i for i in candidates if i not in refs] or candidates
            if len(candidates) == 1 and candidates[0] == index:
                problems.add(
                    node, where, "a class cannot be its own parent; give another class or none"
                )
            elif len(candidates) == 1:
                resolved[index] = by_index[candidates[0]][0].id
            elif candidates:
                listed = ", ".join(f"classes[{i}] (id {by_index[i][0].id})" for i in candidates)
                problems.add(
                    node,
                    where,
                    f"{short_repr(value)} names {len(candidates)} classes ({listed}); give the "
                    "parent's id or path instead",
                )
            elif complete:
                close = difflib.get_close_matches(value, [c.name for c, _, _ in checked])
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.add(
                    node, where, f"no class is called {short_repr(value)}{hint}; {_PARENT_HELP}"
                )
    while deferred:  # a path resolves once every class on it is placed
        paths = _paths_of(checked, resolved, set(refs) - set(resolved))
        by_path = {p.casefold(): i for i, p in reversed(list(paths.items()))}
        progress = False
        for index, path in list(deferred.items()):
            target = by_path.get(path.casefold())
            if target is not None:
                if target == index:
                    problems.add(
                        refs[index]["parent"],
                        f"classes[{index}].parent",
                        "a class cannot be its own parent; give another class or none",
                    )
                else:
                    resolved[index] = by_index[target][0].id
                del deferred[index]
                progress = True
        if not progress:
            break
    unplaced_names = {by_index[i][0].name.casefold() for i in set(refs) - set(resolved)}
    known = list(_paths_of(checked, resolved, set(refs) - set(resolved)).values())
    for index, path in deferred.items() if complete else ():
        if _split_path(path)[-1].casefold() in unplaced_names:
            reason = (
                f"the path {short_repr(path)} ends at a class whose own parent is wrong or "
                "missing; fix that class first"
            )
        else:
            close = difflib.get_close_matches(path, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            reason = f"no class has the path {short_repr(path)}{hint}; {_PARENT_HELP}"
        problems.add(refs[index]["parent"], f"classes[{index}].parent", reason)
    return resolved


def _split_path(path: str) -> list[str]:
    """The names of a class path, without blanks (``" liver / lesion/"`` -> liver, lesion)."""
    return [part.strip() for part in path.split(PATH_SEPARATOR) if part.strip()]


def _paths_of(
    checked: list[tuple[LabelClass, dict[str, yaml.Node], int]],
    parents: Mapping[int, int],
    unplaced: set[int],
) -> dict[int, str]:
    """``{index: path}`` for each class whose chain of parents is known and ends at a root.

    A class more than :data:`MAX_TREE_DEPTH` levels deep gets no path. Each class is walked
    once (linear time, whatever the file).
    """
    index_of = {c.id: i for c, _, i in reversed(checked)}
    names = {i: c.name for c, _, i in checked}
    result: dict[int, tuple[str, int] | None] = {}
    for _, _, start in checked:
        chain: list[int] = []
        on_chain: set[int] = set()
        current: int | None = start
        while current not in result and current not in unplaced and current not in on_chain:
            chain.append(current)
            on_chain.add(current)
            parent_id = parents.get(current)
            if parent_id is None:
                current = None
                break
            current = index_of[parent_id]
        top = ("", -1) if current is None else result.get(current)
        for index in reversed(chain):
            if top is not None and top[1] + 1 < MAX_TREE_DEPTH:
                prefix, depth = top
                top = (
                    f"{prefix}{PATH_SEPARATOR}{names[index]}" if prefix else names[index],
                    depth + 1,
                )
            else:
                top = None
            result[index] = top
    return {i: entry[0] for i, entry in result.items() if entry is not None}


def _check_tree(
    checked: list[tuple[LabelClass, dict[str, yaml.Node], int]],
    problems: _Collector,
    complete: bool = True,
) -> list[tuple[LabelClass, dict[str, yaml.Node], int]]:
    """Resolve parents and check the tree: cycles, unique paths, inherited attributes.

    Returns the classes with their ``parent`` set.
    """
    before = len(problems.problems)
    parents = _resolve_parents(checked, problems, complete)
    unplaced = {i for _, nodes, i in checked if "parent" in nodes} - set(parents)
    index_of = {c.id: i for c, _, i in reversed(checked)}
    by_index = {i: c for c, _, i in checked}
    in_cycle: set[int] = set()
    done: set[int] = set()
    for _, _, start in checked:  # follow parents; meeting the walk itself again is a cycle
        walk: list[int] = []
        on_walk: set[int] = set()
        current = start
        while current in parents and current not in on_walk and current not in done:
            walk.append(current)
            on_walk.add(current)
            current = index_of[parents[current]]
        done.update(walk)
        if current in on_walk:
            cycle = walk[walk.index(current) :]
            in_cycle.update(cycle)
            first = min(cycle)
            order = cycle[cycle.index(first) :] + cycle[: cycle.index(first)]
            shown = [*order[:8], first] if len(order) <= 8 else [*order[:8]]
            names = " → ".join(short_repr(by_index[i].name, 30) for i in shown)
            if len(order) > 8:
                names += f" → ... ({len(order)} classes)"
            problems.add(
                next(nodes for _, nodes, i in checked if i == first)["parent"],
                f"classes[{first}].parent",
                f"the classes {names} (each followed by its parent) form a cycle; give one of "
                "them another parent or none",
            )
    paths = _paths_of(checked, parents, unplaced | in_cycle)

    def below_a_problem(index: int) -> bool:
        """True when a parent up the chain is unplaced or in a cycle (already reported)."""
        seen: set[int] = set()
        while index in parents and index not in seen:
            seen.add(index)
            index = index_of[parents[index]]
            if index in unplaced or index in in_cycle:
                return True
        return index in unplaced or index in in_cycle

    for label_class, nodes, index in checked:
        if (
            index not in paths
            and index not in unplaced
            and index not in in_cycle
            and not below_a_problem(index)
        ):
            problems.add(
                nodes.get("parent"),
                f"classes[{index}].parent",
                f"{short_repr(label_class.name)} is more than {MAX_TREE_DEPTH} levels below its "
                "root class; attach it higher up",
            )
    first_seen: dict[str, int] = {}
    for label_class, nodes, index in checked:
        if index not in paths:
            continue
        key = paths[index].casefold()
        if key not in first_seen:
            first_seen[key] = index
        elif PATH_SEPARATOR not in paths[index] or index not in parents:
            problems.add(
                nodes.get("name"),
                f"classes[{index}].name",
                f"{short_repr(label_class.name)} is already used by classes[{first_seen[key]}]",
            )
        else:
            problems.add(
                nodes.get("name"),
                f"classes[{index}].name",
                f"the path {short_repr(paths[index])} is already used by "
                f"classes[{first_seen[key]}]; classes under one parent need different names",
            )
    if len(problems.problems) > before:
        return checked
    placed = [
        (
            replace(c, parent=parents[i]) if i in parents else c,
            nodes,
            i,
        )
        for c, nodes, i in checked
    ]
    classes = {c.id: (c, nodes, i) for c, nodes, i in placed}
    for label_class, nodes, index in placed:
        parent = label_class.parent
        inherited: dict[str, LabelClass] = {}
        while parent is not None:
            ancestor = classes[parent][0]
            for spec in ancestor.attributes:
                inherited.setdefault(spec.name.casefold(), ancestor)
            parent = ancestor.parent
        for number, spec in enumerate(label_class.attributes):
            owner = inherited.get(spec.name.casefold())
            if owner is not None:
                problems.add(
                    nodes["attributes"].value[number],
                    f"classes[{index}].attributes[{number}].name",
                    f"{short_repr(spec.name)} is already an attribute of the ancestor class "
                    f"{owner.name!r} (classes[{classes[owner.id][2]}]); it is inherited: remove "
                    "it here or rename it",
                )
    return placed


def parse_schema(text: str, source: str = "<string>") -> LabelSchema:
    """Parse and validate a schema from YAML or JSON text.

    Parameters
    ----------
    text
        The document. JSON is accepted too, as YAML is a superset of it.
    source
        Name used in error messages (usually the file path).

    Returns
    -------
    LabelSchema

    Raises
    ------
    SchemaError
        Listing every problem with its line number and field.
    """
    problems = _Collector(source)
    if len(text) > MAX_SCHEMA_BYTES:
        raise SchemaError([_too_large(source, len(text))])
    try:
        _check_events(text, source)
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        reason = _shorten(getattr(exc, "problem", None) or str(exc))
        raise SchemaError(
            [SchemaProblem(source, line, "document", f"not valid YAML/JSON: {reason}")]
        ) from None
    if not isinstance(root, yaml.MappingNode):
        raise SchemaError(
            [SchemaProblem(source, None, "document", "expected a mapping with a 'classes' list")]
        )
    items = _mapping_items(root, "", problems)
    _check_unknown(items, _TOP_LEVEL_FIELDS, "", problems)

    name = _value(items["name"][1], "name", problems) if "name" in items else Path(source).stem
    if not isinstance(name, str) or not name.strip():
        if name is not _UNREADABLE:
            problems.add(items["name"][1], "name", f"{short_repr(name)} is not a non-empty text")
        name = Path(source).stem
    description = (
        _value(items["description"][1], "description", problems) if "description" in items else ""
    )
    if not isinstance(description, str):
        if description is not _UNREADABLE:
            problems.add(items["description"][1], "description", "must be text")
        description = ""
    if "version" in items:
        version = _value(items["version"][1], "version", problems)
        if version is not _UNREADABLE and version != SCHEMA_FORMAT_VERSION:
            problems.add(
                items["version"][1],
                "version",
                f"format version {short_repr(version)} is not supported (this release reads "
                f"version {SCHEMA_FORMAT_VERSION})",
            )

    checked: list[tuple[LabelClass, dict[str, yaml.Node], int]] = []
    if "classes" not in items:
        problems.add(root, "classes", "missing: list the annotation classes under 'classes:'")
    else:
        classes_node = items["classes"][1]
        if not isinstance(classes_node, yaml.SequenceNode) or not classes_node.value:
            problems.add(classes_node, "classes", "must be a non-empty list of classes")
        else:
            for index, class_node in enumerate(classes_node.value):
                parsed = _parse_class(class_node, index, problems)
                if parsed is None:
                    continue
                values, nodes = parsed
                label_class = _check_class(values, nodes, index, problems)
                if label_class is not None:
                    checked.append((label_class, nodes, index))
            _check_unique(checked, problems)
            checked = _check_tree(checked, problems, len(checked) == len(classes_node.value))

    if problems.problems:
        raise SchemaError(problems.problems)
    return LabelSchema(
        name=name.strip(), description=description.strip(), classes=tuple(c for c, _, _ in checked)
    )


def load_schema(path: str | os.PathLike[str]) -> LabelSchema:
    """Load and validate a schema file (``.yaml``, ``.yml`` or ``.json``).

    Raises
    ------
    SchemaError
        If the file cannot be read or is not a valid schema; the message names
        the file, the line and the field.
    """
    path = Path(path)
    if path.is_dir():
        raise SchemaError(
            [SchemaProblem(str(path), None, "file", "is a folder; give the schema file inside it")]
        )
    try:
        with open(path, "rb") as handle:  # never read more than the limit
            data = handle.read(MAX_SCHEMA_BYTES + 1)
        if len(data) > MAX_SCHEMA_BYTES:
            raise SchemaError([_too_large(str(path), path.stat().st_size)])
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SchemaError(
            [
                SchemaProblem(
                    str(path), None, "file", f"cannot be read as UTF-8 text: {_shorten(reason)}"
                )
            ]
        ) from None
    return parse_schema(text, source=str(path))


def _too_large(source: str, size: int) -> SchemaProblem:
    return SchemaProblem(
        source,
        None,
        "file",
        f"is {size / 2**20:.1f} MiB; a label schema may be at most {MAX_SCHEMA_BYTES // 2**20} MiB "
        f"(at most {MAX_CLASSES} classes): is this the right file?",
    )


def dump_schema(schema: LabelSchema, fmt: str = "yaml") -> str:
    """Serialise a schema as ``"yaml"`` or ``"json"`` text."""
    document = schema.to_dict()
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    raise ValueError(f"unknown schema format {fmt!r}; use 'yaml' or 'json'")


def save_schema(schema: LabelSchema, path: str | os.PathLike[str]) -> Path:
    """Write a schema atomically; the format follows the extension (.json or YAML)."""
    from napari_domainseg.atomic import atomic_write

    path = Path(path)
    fmt = "json" if path.suffix.lower() == ".json" else "yaml"
    with atomic_write(path, overwrite=True) as tmp:
        tmp.write_text(dump_schema(schema, fmt), encoding="utf-8")
    return path


def covering_schema(values: Iterable[int], schema: LabelSchema | None) -> LabelSchema:
    """``schema`` plus a class ``"label N"`` for every value it does not name.

    Exports use it so that every painted value, even one outside the schema,
    has a name and a colour in the written file.
    """
    from napari_domainseg.labels.colors import default_color

    classes = list(schema.classes) if schema is not None else []
    known = {c.id for c in classes}
    for value in sorted({int(v) for v in values} - known - {UNLABELED}):
        classes.append(LabelClass(id=value, name=f"label {value}", color=default_color(value)))
    if schema is None:
        return LabelSchema(name="labels", classes=tuple(classes))
    return LabelSchema(name=schema.name, classes=tuple(classes), description=schema.description)


def schema_or_none(document: Any, source: str = "<dict>") -> LabelSchema | None:
    """The schema a file or layer carries (mapping or JSON text); ``None`` if absent or damaged.

    A damaged schema must never hide the labels it came with.
    """
    if not document:
        return None
    try:
        if isinstance(document, str):
            document = json.loads(document)
        return LabelSchema.from_dict(document, source=source)
    except (SchemaError, TypeError, ValueError, KeyError):
        return None
