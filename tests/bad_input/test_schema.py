"""Hostile label schemas: refused at once, with the file, the line and a short message."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from napari_domainseg.labels import schema as schema_module
from napari_domainseg.labels.schema import (
    MAX_PROBLEMS_SHOWN,
    MAX_SCHEMA_BYTES,
    SchemaError,
    load_schema,
    parse_schema,
)

from .corpus import BadInput, check, ids

GOOD_CLASS = "  - {id: 1, name: water, color: '#0064c8'}\n"


def _write(name: str, text: str | bytes) -> callable:
    def make(folder: Path) -> Path:
        path = folder / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return make


def _laughs(depth: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for number in range(1, depth):
        lines.append(
            f"l{number}: &l{number} ["
            + ",".join([f"*{'a' if number == 1 else f'l{number - 1}'}"] * 9)
            + "]"
        )
    return (
        "\n".join(lines)
        + f"\nname: laughs\nclasses:\n  - {{id: *l{depth - 1}, name: x, color: red}}\n"
    )


CASES = [
    BadInput("schema-billion-laughs", _write("laughs.yaml", _laughs()), load_schema, "aliases"),
    BadInput(
        "schema-alias-in-name",
        _write("alias.yaml", "name: &n x\nclasses:\n" + GOOD_CLASS),
        load_schema,
        "anchors and aliases",
    ),
    BadInput("schema-recursive", _write("recursive.yaml", "&a [*a]\n"), load_schema, "aliases"),
    BadInput(
        "schema-python-object",
        _write(
            "object.yaml",
            "name: !!python/object/apply:os.system [echo owned]\nclasses:\n" + GOOD_CLASS,
        ),
        load_schema,
        "!!python/object.*not allowed",
    ),
    BadInput(
        "schema-binary-tag",
        _write("binary.yaml", "name: !!binary aGk=\nclasses: []\n"),
        load_schema,
        "!!binary",
    ),
    BadInput(
        "schema-too-large",
        _write("large.yaml", "name: big\nclasses:\n" + GOOD_CLASS * 30000),
        load_schema,
        "at most 1 MiB",
    ),
    BadInput(
        "schema-nested-too-deep",
        _write("deep.json", '{"classes": ' + "[" * 200 + "]" * 200 + "}"),
        load_schema,
        "nested|nesting",
    ),
    BadInput(
        "schema-thousand-digit-id",
        _write(
            "digits.yaml", "name: x\nclasses:\n  - {id: " + "9" * 5000 + ", name: a, color: red}\n"
        ),
        load_schema,
        "thousands of digits",
    ),
    BadInput(
        "schema-huge-name",
        _write(
            "long.yaml",
            "name: x\nclasses:\n  - {id: 0, name: '" + "n" * 200000 + "', color: red}\n",
        ),
        load_schema,
        "reserved",
    ),
    BadInput(
        "schema-mapping-as-key",
        _write("key.yaml", "name: x\nclasses:\n  - {[a, b]: 1, id: 1, name: a, color: red}\n"),
        load_schema,
        "field name must be plain text",
    ),
    BadInput(
        "schema-latin1",
        _write("latin1.yaml", "name: caf\xe9\n".encode("latin-1")),
        load_schema,
        "UTF-8",
    ),
    BadInput("schema-folder", lambda folder: folder, load_schema, "is a folder"),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_input(case: BadInput, tmp_path: Path) -> None:
    error = check(case, tmp_path)
    assert isinstance(error, SchemaError)


def test_alias_expansion_costs_nothing():
    start = time.perf_counter()
    with pytest.raises(SchemaError, match="aliases"):
        parse_schema(_laughs(12), source="laughs.yaml")
    assert time.perf_counter() - start < 0.5


def test_class_count_is_bounded_before_validation(monkeypatch):
    monkeypatch.setattr(schema_module, "MAX_CLASSES", 10)
    rows = "".join(f"  - {{id: {i}, name: c{i}, color: red}}\n" for i in range(1, 20))
    with pytest.raises(SchemaError, match="more than 10 classes") as info:
        parse_schema("name: x\nclasses:\n" + rows, source="many.yaml")
    assert len(info.value.problems) == 1, "refused before any class is checked"


def test_a_schema_at_the_size_limit_still_loads_quickly(tmp_path):
    rows, number = [], 0
    while sum(map(len, rows)) < MAX_SCHEMA_BYTES - 200:
        number += 1
        rows.append(f"  - {{id: {number}, name: c{number}, color: '#102030'}}\n")
    path = tmp_path / "big.yaml"
    path.write_text("name: big\nclasses:\n" + "".join(rows), encoding="utf-8")
    start = time.perf_counter()
    schema = load_schema(path)
    assert len(schema) == number and time.perf_counter() - start < 10


def test_every_problem_is_kept_and_the_message_is_bounded():
    rows = "".join(f"  - {{id: 0, name: c{i}, color: '#00ff00'}}\n" for i in range(100))
    with pytest.raises(SchemaError) as info:
        parse_schema("name: x\nclasses:\n" + rows, source="zeros.yaml")
    assert len(info.value.problems) == 100
    lines = str(info.value).splitlines()
    assert len(lines) == MAX_PROBLEMS_SHOWN + 2 and "80 more problems" in lines[-1]


def test_plain_json_and_yaml_schemas_still_load():
    text = '{"name": "x", "classes": [{"id": 1, "name": "a", "color": [1, 2, 3]}]}'
    assert parse_schema(text).classes[0].color == (1, 2, 3, 255)
    assert len(parse_schema("name: y\nclasses:\n" + GOOD_CLASS)) == 1


def test_a_long_field_name_is_cut_cleanly_in_the_message(tmp_path):
    from napari_domainseg.labels import load_schema

    path = tmp_path / "long_key.yaml"
    long_key = "x" * 300
    path.write_text(f"version: 1\nclasses:\n  - id: 1\n    name: a\n    {long_key}: 2\n")
    with pytest.raises(Exception) as info:
        load_schema(path)
    message = str(info.value)
    assert "x" * 60 + "..." in message and "'..." not in message and long_key not in message
