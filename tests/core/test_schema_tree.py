"""The class tree of a label schema: parents, kinds, codes, attributes and their validation."""

from __future__ import annotations

import dataclasses

import pytest

from napari_domainseg.labels import list_presets, load_preset
from napari_domainseg.labels.schema import (
    AttributeSpec,
    ClassCodes,
    Code,
    LabelClass,
    LabelSchema,
    SchemaError,
    dump_schema,
    parse_schema,
)

TREE = """\
name: tree
classes:
  - {id: 1, name: vehicle, color: "#c80000", kind: objects}
  - id: 2
    name: car
    parent: vehicle
    color: "#dc1414"
    kind: objects
    attributes:
      - {name: occluded, type: bool, default: false}
  - {id: 3, name: truck, color: "#b40000", parent: 1, kind: objects}
  - {id: 4, name: wheel, color: "#202020", parent: vehicle/car, kind: objects}
  - {id: 5, name: water, color: "#0064c8"}
"""


def problems_of(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(SchemaError) as info:
        parse_schema(text, source="t.yaml")
    return [(p.line, p.field, p.message) for p in info.value.problems]


def classes(rows: str) -> str:
    return "name: t\nclasses:\n" + rows


def test_the_tree_presets_load_with_their_codes_and_attributes():
    assert {"ct_lesions", "buildings"} <= set(list_presets())
    ct = load_preset("ct_lesions")
    lesion = ct.by_path("liver/lesion")
    assert ct.is_objects(lesion.id) and not ct.is_objects(ct.by_path("liver").id)
    assert lesion.codes == ClassCodes(
        category=Code("49755003", "SCT", "Morphologically Abnormal Structure"),
        type=Code("52988006", "SCT", "Lesion"),
        anatomic_region=Code("10200004", "SCT", "Liver"),
    )
    assert ct.by_name("liver").codes.category == Code("123037004", "SCT", "Anatomical Structure")
    assert ct.by_name("liver").codes.type == Code("10200004", "SCT", "Liver")
    assert ct.by_name("kidney").codes.type.value == "64033007"
    assert ct.by_path("kidney/cyst").codes.type.value == "441457006"
    assert ct.by_path("spine/vertebra").codes.anatomic_region.value == "51282000"
    assert ct.attribute_specs(lesion.id) == (
        AttributeSpec("confidence", "choice", ("low", "medium", "high"), "medium"),
    )
    geo = load_preset("buildings")
    building = geo.by_path("built-up/building")
    assert geo.is_objects(building.id) and geo.by_path("vehicle/car").kind == "objects"
    assert [s.name for s in geo.attribute_specs(building.id)] == ["occluded"]
    assert {c.name for c in geo.roots()} == {"built-up", "vehicle", "water", "vegetation"}
    assert all(c.description for c in [*ct, *geo])


def test_paths_children_ancestors_descendants():
    schema = parse_schema(TREE)
    assert [schema.path(c.id) for c in schema] == [
        "vehicle",
        "vehicle/car",
        "vehicle/truck",
        "vehicle/car/wheel",
        "water",
    ]
    assert schema.by_path("Vehicle / Car/wheel").id == 4
    assert [c.id for c in schema.children(1)] == [2, 3]
    assert schema.children(5) == ()
    assert schema.ancestors(4) == (2, 1) and schema.ancestors(1) == ()
    assert schema.descendants(1) == (2, 4, 3) and schema.descendants(4) == ()
    assert [c.id for c in schema.roots()] == [1, 5]
    assert schema.depth(4) == 2 and schema.is_tree
    assert [s.name for s in schema.attribute_specs(4)] == ["occluded"], "inherited from car"
    with pytest.raises(KeyError, match="did you mean 'vehicle/car'"):
        schema.by_path("vehicle/cars")


def test_a_name_under_two_parents_needs_its_path():
    schema = LabelSchema(
        "x",
        (
            LabelClass(1, "liver", (200, 0, 0, 255)),
            LabelClass(2, "kidney", (0, 200, 0, 255)),
            LabelClass(3, "lesion", (0, 0, 200, 255), parent=1, kind="objects"),
            LabelClass(4, "lesion", (0, 0, 100, 255), parent=2, kind="objects"),
        ),
    )
    with pytest.raises(KeyError, match="'liver/lesion', 'kidney/lesion'"):
        schema.by_name("lesion")
    assert schema.by_name("liver").id == 1 and schema.by_name("kidney/lesion").id == 4
    assert parse_schema(dump_schema(schema)) == schema, "the same name under two parents is fine"


def test_instance_colours_differ_stay_near_the_class_and_repeat():
    schema = load_preset("buildings")
    building = schema.by_path("built-up/building")
    colours = [schema.instance_color(building.id, n) for n in range(1, 201)]
    assert len(set(colours)) >= 195, "consecutive instances get different colours"
    assert colours == [schema.instance_color(building.id, n) for n in range(1, 201)]
    assert schema.instance_color(building.id, 0) == building.color
    for colour in colours:
        assert max(abs(a - b) for a, b in zip(colour, building.color, strict=True)) <= 90
        assert colour[3] == building.color[3]
    for label_class in [*schema, *load_preset("land_cover")]:  # dark, light and grey classes
        first = {schema_colour(label_class, n) for n in range(1, 21)}
        assert len(first) >= 15, label_class.name


def schema_colour(label_class: LabelClass, number: int):
    alone = dataclasses.replace(label_class, parent=None)
    return LabelSchema("one", (alone,)).instance_color(alone.id, number)


@pytest.mark.parametrize("name", ["ct_lesions", "buildings", "ct_abdomen_head", "land_cover"])
@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_round_trip_gives_an_equal_schema(name, fmt):
    schema = load_preset(name)
    again = parse_schema(dump_schema(schema, fmt))
    assert again == schema
    assert [again.path(c.id) for c in again] == [schema.path(c.id) for c in schema]
    assert LabelSchema.from_dict(schema.to_dict()) == schema


def test_an_old_flat_schema_writes_exactly_the_old_fields():
    for name in ("ct_abdomen_head", "land_cover"):
        for entry in load_preset(name).to_dict()["classes"]:
            assert set(entry) <= {"id", "name", "color", "description", "shortcut"}
    flat = LabelClass(1, "water", (0, 100, 200, 255), "Open water.", "1")
    assert flat.to_dict() == {
        "id": 1,
        "name": "water",
        "color": "#0064c8",
        "description": "Open water.",
        "shortcut": "1",
    }
    schema = LabelSchema("flat", (flat,))
    assert schema.roots() == (flat,) and schema.path(1) == "water" and not schema.is_tree


def test_a_cycle_names_its_classes():
    problems = problems_of(
        classes(
            '  - {id: 1, name: a, color: "#f00", parent: c}\n'
            '  - {id: 2, name: b, color: "#f00", parent: 1}\n'
            '  - {id: 3, name: c, color: "#f00", parent: b}\n'
            '  - {id: 4, name: d, color: "#f00"}\n'
        )
    )
    assert len(problems) == 1
    line, field, message = problems[0]
    assert (line, field) == (3, "classes[0].parent")
    assert "'a' → 'c' → 'b' → 'a'" in message and "cycle" in message and "another parent" in message


@pytest.mark.parametrize(
    ("row", "field", "expected"),
    [
        ("parent: 9", "parent", "no class has id 9"),
        ("parent: wheel", "parent", "no class is called 'wheel'"),
        ("parent: vehicle/cars", "parent", "no class has the path 'vehicle/cars'"),
        ("parent: x", "parent", "a class cannot be its own parent"),
        ("parent: 3", "parent", "a class cannot be its own parent"),
        ("parent: [1]", "parent", "is not a class"),
        ("kind: object", "kind", "did you mean 'objects'"),
        ("kind: things", "kind", "use 'objects' (countable instances"),
    ],
)
def test_bad_parents_and_kinds_are_reported_on_their_line(row, field, expected):
    rows = (
        '  - {id: 1, name: vehicle, color: "#f00"}\n'
        '  - {id: 2, name: car, color: "#f00", parent: 1}\n'
        f'  - {{id: 3, name: x, color: "#f00", {row}}}\n'
    )
    problems = problems_of(classes(rows))
    assert len(problems) == 1, problems
    line, where, message = problems[0]
    assert (line, where) == (5, f"classes[2].{field}") and expected in message
    assert any(hint in message for hint in ("give", "use", "did you mean")), "a fix is offered"


def test_a_duplicate_path_is_reported_but_a_name_may_repeat_elsewhere():
    rows = (
        '  - {id: 1, name: liver, color: "#f00"}\n'
        '  - {id: 2, name: lesion, color: "#f00", parent: liver}\n'
        '  - {id: 3, name: kidney, color: "#f00"}\n'
        '  - {id: 4, name: lesion, color: "#f00", parent: kidney}\n'
        '  - {id: 5, name: Lesion, color: "#f00", parent: 1}\n'
    )
    problems = problems_of(classes(rows))
    assert problems == [
        (
            7,
            "classes[4].name",
            "the path 'liver/Lesion' is already used by classes[1]; classes under one parent "
            "need different names",
        )
    ]
    schema = parse_schema(classes(rows.rsplit("  - ", 1)[0]))
    assert schema.path(4) == "kidney/lesion"


def test_a_name_shared_by_two_parents_cannot_be_a_parent_reference():
    rows = (
        '  - {id: 1, name: liver, color: "#f00"}\n'
        '  - {id: 2, name: lesion, color: "#f00", parent: liver}\n'
        '  - {id: 3, name: kidney, color: "#f00"}\n'
        '  - {id: 4, name: lesion, color: "#f00", parent: kidney}\n'
        '  - {id: 5, name: core, color: "#f00", parent: lesion}\n'
        '  - {id: 6, name: rim, color: "#f00", parent: kidney/lesion}\n'
    )
    problems = problems_of(classes(rows))
    assert len(problems) == 1
    assert problems[0][:2] == (7, "classes[4].parent")
    assert "names 2 classes" in problems[0][2] and "id or path instead" in problems[0][2]


CATEGORY = "category: {value: 123037004, scheme: SCT, meaning: Anatomical Structure}"
TYPE = "type: {value: '10200004', scheme: SCT, meaning: Liver}"


def ok_codes(category: str = CATEGORY, type_: str = TYPE, extra: str = "") -> str:
    return "{" + ", ".join(part for part in (category, type_, extra) if part) + "}"


@pytest.mark.parametrize(
    ("codes", "field", "expected"),
    [
        (ok_codes(category=""), "codes.category", "both category"),
        (ok_codes(type_=""), "codes.type", "both category"),
        ("[1, 2]", "codes", "must be a mapping with category and type"),
        (
            ok_codes(extra="laterality: {value: '1', scheme: SCT, meaning: x}"),
            "codes.laterality",
            "unknown field",
        ),
        (ok_codes(type_="type: {value: '1', meaning: Liver}"), "codes.type.scheme", "missing"),
        (
            ok_codes(type_="type: {value: '1', scheme: SCT, meaning: ''}"),
            "codes.type.meaning",
            "not a non-empty text",
        ),
        (
            ok_codes(type_="type: {value: '1', scheme: 'S C T', meaning: x}"),
            "codes.type.scheme",
            "not a coding scheme designator",
        ),
        (
            ok_codes(type_="type: {value: '" + "9" * 70 + "', scheme: SCT, meaning: x}"),
            "codes.type.value",
            "longer than the 64 characters",
        ),
        (ok_codes(category="category: 5"), "codes.category", "must be a mapping"),
    ],
)
def test_bad_codes_are_reported_on_their_line(codes, field, expected):
    rows = '  - {id: 1, name: a, color: "#f00"}\n  - id: 2\n    name: b\n    color: "#f00"\n'
    problems = problems_of(classes(rows + f"    codes: {codes}\n"))
    assert len(problems) == 1, problems
    line, where, message = problems[0]
    assert (line, where) == (7, f"classes[1].{field}") and expected in message


def test_codes_parse_and_numbers_become_text():
    schema = parse_schema(classes(f'  - {{id: 1, name: a, color: "#f00", codes: {ok_codes()}}}\n'))
    assert schema[1].codes == ClassCodes(
        Code("123037004", "SCT", "Anatomical Structure"), Code("10200004", "SCT", "Liver")
    )


@pytest.mark.parametrize(
    ("attribute", "field", "expected"),
    [
        ("{name: level, type: choice}", "attributes[0].choices", "needs choices"),
        ("{name: level, type: choice, choices: []}", "attributes[0].choices", "non-empty list"),
        ("{name: level, type: choice, choices: [a, a]}", "attributes[0].choices", "listed twice"),
        ("{name: ok, type: bool, choices: [a]}", "attributes[0].choices", "only to type 'choice'"),
        ("{name: ok, type: boolean}", "attributes[0].type", "did you mean 'bool'"),
        ("{name: ok, type: colour}", "attributes[0].type", "unknown attribute type 'colour'"),
        ("{name: ok, type: bool, default: 'yes'}", "attributes[0].default", "true or false"),
        ("{name: n, type: int, default: 1.5}", "attributes[0].default", "whole number"),
        ("{name: n, type: int, default: true}", "attributes[0].default", "whole number"),
        ("{name: n, type: float, default: abc}", "attributes[0].default", "write a number"),
        ("{name: n, type: text, default: 3}", "attributes[0].default", "quote it"),
        (
            "{name: c, type: choice, choices: [lo, hi], default: mid}",
            "attributes[0].default",
            "use one of lo, hi",
        ),
        ("{name: class_id, type: int}", "attributes[0].name", "column of the instance table"),
        ("{type: int}", "attributes[0].name", "needs name and type"),
        ("{name: n, type: int, colour: red}", "attributes[0].colour", "unknown field"),
    ],
)
def test_bad_attributes_are_reported_on_their_line(attribute, field, expected):
    rows = f'  - id: 1\n    name: a\n    color: "#f00"\n    attributes:\n      - {attribute}\n'
    problems = problems_of(classes(rows))
    assert len(problems) == 1, problems
    line, where, message = problems[0]
    assert (line, where) == (7, f"classes[0].{field}") and expected in message


def test_attribute_names_clash_with_inherited_ones_and_within_a_class():
    rows = (
        "  - id: 1\n    name: vehicle\n    color: '#f00'\n"
        "    attributes: [{name: occluded, type: bool}]\n"
        "  - id: 2\n    name: car\n    color: '#f00'\n    parent: vehicle\n"
        "    attributes:\n      - {name: colour, type: text}\n"
        "      - {name: Occluded, type: bool}\n"
    )
    problems = problems_of(classes(rows))
    assert len(problems) == 1
    line, where, message = problems[0]
    assert (line, where) == (13, "classes[1].attributes[1].name")
    assert "ancestor class 'vehicle'" in message and "remove it here or rename it" in message
    twice = "    attributes: [{name: a, type: bool}, {name: A, type: int}]\n"
    problems = problems_of(classes("  - id: 1\n    name: x\n    color: '#f00'\n" + twice))
    assert problems[0][:2] == (6, "classes[0].attributes[1].name") and "rename" in problems[0][2]


def test_attribute_defaults_are_kept_and_floats_widened():
    rows = (
        "  - id: 1\n    name: x\n    color: '#f00'\n    attributes:\n"
        "      - {name: score, type: float, default: 1}\n"
        "      - {name: count, type: int, default: 3}\n"
        "      - {name: note, type: text}\n"
    )
    specs = parse_schema(classes(rows))[1].attributes
    assert specs[0].default == 1.0 and isinstance(specs[0].default, float)
    assert specs[1].default == 3 and specs[2].default is None
    assert specs[0].accepts(2) and not specs[1].accepts(True) and specs[2].accepts("x")


def test_a_bad_class_does_not_hide_a_child_behind_a_missing_parent_error():
    rows = (
        '  - {id: 1, name: liver, color: "reddish"}\n'
        '  - {id: 2, name: lesion, color: "#f00", parent: liver}\n'
    )
    problems = problems_of(classes(rows))
    assert [p[1] for p in problems] == ["classes[0].color"]


def test_the_tree_depth_is_bounded():
    rows = "".join(
        f'  - {{id: {i}, name: c{i}, color: "#123"' + (f", parent: {i - 1}}}\n" if i > 1 else "}\n")
        for i in range(1, 19)
    )
    problems = problems_of(classes(rows))
    assert [p[1] for p in problems] == ["classes[16].parent", "classes[17].parent"]
    assert "more than 16 levels" in problems[0][2]


def test_a_schema_built_in_python_with_a_broken_tree_is_refused():
    with pytest.raises(ValueError, match="not a class"):
        LabelSchema("x", (LabelClass(1, "a", (1, 2, 3, 255), parent=7),))
    with pytest.raises(ValueError, match="cycle"):
        LabelSchema(
            "x",
            (
                LabelClass(1, "a", (1, 2, 3, 255), parent=2),
                LabelClass(2, "b", (1, 2, 3, 255), parent=1),
            ),
        )
