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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
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

MAX_PROBLEMS_SHOWN = 20
"""Problems listed in a :class:`SchemaError` message (all are kept in ``problems``)."""

_MAX_VALUE_CHARS = 60
_YAML_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = frozenset(
    f"{_YAML_TAG}{kind}"
    for kind in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")
)

_TOP_LEVEL_FIELDS = ("name", "description", "version", "classes")
_CLASS_FIELDS = ("id", "name", "color", "description", "shortcut")


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
    """

    id: int
    name: str
    color: RGBA
    description: str = ""
    shortcut: str | None = None

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

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {c.id: c for c in self.classes})

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
        """Return the class called ``name`` (case-insensitive)."""
        wanted = name.strip().casefold()
        for label_class in self.classes:
            if label_class.name.casefold() == wanted:
                return label_class
        names = ", ".join(c.name for c in self.classes)
        raise KeyError(f"schema {self.name!r} has no class named {name!r}; it has: {names}")

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
        text = yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True)
        return parse_schema(text, source=source)


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
            mappings += isinstance(event, yaml.MappingStartEvent)
            if depth > _MAX_DEPTH:
                reason = f"nested more than {_MAX_DEPTH} levels deep; a schema is a flat list"
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
        if key in _CLASS_FIELDS:
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
    if not ok or class_id is None or name is None or color is None:
        return None
    return LabelClass(
        id=class_id,
        name=name.strip(),
        color=color,
        description=description.strip(),
        shortcut=shortcut,
    )


def _check_unique(
    classes: list[tuple[LabelClass, dict[str, yaml.Node], int]], problems: _Collector
) -> None:
    for attribute, normalise in (
        ("id", lambda v: v),
        ("name", lambda v: v.casefold()),
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
