import json

import numpy as np
import pytest

from napari_domainseg.labels import (
    LabelSchema,
    SchemaError,
    dump_schema,
    list_presets,
    load_preset,
    load_schema,
    parse_color,
    parse_schema,
    save_schema,
)

VALID = """\
name: Test
classes:
  - id: 1
    name: water
    color: "#0064c8"
    description: Open water.
    shortcut: "1"
  - id: 2
    name: forest
    color: [0, 100, 0]
"""


def problems_of(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(SchemaError) as info:
        parse_schema(text, source="s.yaml")
    return [(p.line, p.field, p.message) for p in info.value.problems]


def test_presets_load_and_cover_both_domains():
    assert list_presets()[:2] == ["ct_abdomen_head", "land_cover"]
    ct = load_preset("ct_abdomen_head")
    land = load_preset("land_cover")
    assert ct.by_name("liver").id == 1 and "bone" in {c.name for c in ct}
    assert {"water", "built-up", "bare soil", "cloud"} <= {c.name for c in land}
    assert all(c.description for c in [*ct, *land]), "every preset class has a guideline"
    assert all(c.id != 0 for c in [*ct, *land])


def test_unknown_preset_names_the_available_ones():
    with pytest.raises(KeyError, match="land_cover"):
        load_preset("nope")


def test_parse_valid_schema():
    schema = parse_schema(VALID)
    assert [c.id for c in schema] == [1, 2]
    assert schema[1].color == (0, 100, 200, 255)
    assert schema[2].color == (0, 100, 0, 255)
    assert schema[1].shortcut == "1" and schema[2].shortcut is None
    assert schema.label_dtype == np.uint8
    assert 2 in schema and 3 not in schema


def test_colormap_for_napari():
    colors = parse_schema(VALID).colormap()
    assert colors[0] == (0.0, 0.0, 0.0, 0.0), "label 0 (unlabeled) is transparent"
    assert colors[1] == pytest.approx((0.0, 100 / 255, 200 / 255, 1.0))
    assert None in colors, "napari's DirectLabelColormap needs a default colour"


def test_large_ids_need_uint16():
    schema = parse_schema(VALID.replace("id: 2", "id: 300"))
    assert schema.label_dtype == np.uint16


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_save_and_load_round_trip(tmp_path, suffix):
    schema = load_preset("land_cover")
    path = save_schema(schema, tmp_path / f"schema{suffix}")
    if suffix == ".json":
        json.loads(path.read_text())
    assert load_schema(path) == schema


def test_from_dict_round_trip():
    schema = load_preset("ct_abdomen_head")
    assert LabelSchema.from_dict(schema.to_dict()) == schema
    assert "liver" in dump_schema(schema, "json")


def test_duplicate_ids_name_both_entries_and_line():
    problems = problems_of(VALID.replace("id: 2", "id: 1"))
    assert problems == [(8, "classes[1].id", "1 is already used by classes[0]")]


def test_duplicate_names_are_case_insensitive():
    problems = problems_of(VALID.replace("name: forest", "name: Water"))
    assert problems == [(9, "classes[1].name", "'Water' is already used by classes[0]")]


def test_id_zero_is_reserved():
    ((line, field, message),) = problems_of(VALID.replace("id: 1", "id: 0"))
    assert (line, field) == (3, "classes[0].id")
    assert "reserved for unlabeled" in message


@pytest.mark.parametrize(
    "color, expected",
    [
        ('"reddish"', "is not a colour"),
        ('"#12345"', "is not a colour"),
        ("[0, 100]", "2 components"),
        ("[0, 100, 300]", "outside 0-255"),
        ("[0, 100, 0.5]", "non-integer"),
    ],
)
def test_bad_colours_name_line_and_field(color, expected):
    ((line, field, message),) = problems_of(VALID.replace("[0, 100, 0]", color))
    assert (line, field) == (10, "classes[1].color")
    assert expected in message and "#rrggbb" in message


def test_typo_in_field_suggests_the_right_one():
    problems = problems_of(VALID.replace('color: "#0064c8"', 'colour: "#0064c8"'))
    assert (5, "classes[0].colour", "unknown field; did you mean 'color'?") in problems
    assert [field for _, field, _ in problems] == ["classes[0].colour", "classes[0].color"]


def test_missing_fields_and_all_problems_reported_at_once():
    text = "classes:\n  - id: 1\n  - id: x\n    name: a\n    color: '#fff'\n"
    problems = problems_of(text)
    fields = [field for _, field, _ in problems]
    assert "classes[0].name" in fields and "classes[0].color" in fields
    assert "classes[1].id" in fields


def test_duplicate_key_and_bad_shortcut():
    text = VALID.replace('shortcut: "1"', 'shortcut: "F1"\n    name: again')
    fields = [field for _, field, _ in problems_of(text)]
    assert "classes[0].name" in fields  # given twice
    assert "classes[0].shortcut" in fields


def test_not_yaml_and_not_a_mapping():
    ((line, field, message),) = problems_of("classes: [\n  - id: 1\n")
    assert field == "document" and "not valid YAML" in message and line is not None
    ((_, _, message),) = problems_of("- just\n- a list\n")
    assert "mapping" in message


def test_empty_class_list_and_unsupported_version():
    fields = [field for _, field, _ in problems_of("version: 2\nclasses: []\n")]
    assert fields == ["version", "classes"]


def test_error_message_is_readable(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(VALID.replace("id: 2", "id: 0"))
    with pytest.raises(SchemaError) as info:
        load_schema(path)
    assert str(info.value).startswith("invalid label schema (1 problem):")
    assert f"{path}, line 8, classes[1].id: id 0 is reserved" in str(info.value)


def test_unreadable_file_is_a_schema_error(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(SchemaError, match="cannot be read"):
        load_schema(path)


def test_parse_color_forms():
    assert parse_color("#abc") == (0xAA, 0xBB, 0xCC, 255)
    assert parse_color("#01020304") == (1, 2, 3, 4)
    assert parse_color([1, 2, 3, 4]) == (1, 2, 3, 4)
    with pytest.raises(ValueError):
        parse_color(True)


def test_label_arrays_for_an_image_take_the_schema_dtype():
    from napari_domainseg.labels.annotation import annotation_metadata, new_label_array
    from napari_domainseg.labels.schema import LabelClass, LabelSchema

    small = LabelSchema(name="s", classes=(LabelClass(1, "a", (1, 2, 3, 255)),))
    large = LabelSchema(name="l", classes=(LabelClass(300, "b", (1, 2, 3, 255)),))
    assert new_label_array((2, 3)).dtype == np.uint8
    assert new_label_array((2, 3), small).dtype == np.uint8
    assert new_label_array((2, 3), large).dtype == np.uint16
    assert new_label_array((2, 3), small, instances=True).dtype == np.int32
    assert not new_label_array((4, 5, 6)).any()
    inherited = annotation_metadata(
        {"affine": [[1]], "window": (40, 400), "patient": {"PatientName": "X"}, "crs_wkt": "W"},
        "ct",
        (4, 5, 6),
    )
    assert len(inherited.pop("annotation_id")) == 32, "every labels layer gets its own id"
    assert inherited == {
        "affine": [[1]],
        "crs_wkt": "W",
        "source_image": {"name": "ct", "shape": [4, 5, 6]},
    }
