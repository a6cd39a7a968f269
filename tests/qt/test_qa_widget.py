"""Comparing two annotations in napari: metrics table and disagreement layer."""

from __future__ import annotations

import numpy as np
import pytest

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._annotation import add_annotation_layer
from napari_domainseg._widgets._qa import CompareAnnotations, disagreement
from napari_domainseg.medical.export import export_labels

PLUGIN = "napari-domainseg"


def test_compare_two_layers_and_a_file(make_napari_viewer, shared_data, tmp_path):
    viewer = make_napari_viewer()
    viewer.open(str(shared_data / "medical/seg_dcmqi/ct-3slice"), plugin=PLUGIN)
    image = viewer.layers[0]
    first = add_annotation_layer(viewer, image)
    second = add_annotation_layer(viewer, image)
    first.data[1, 100:200, 100:200] = 1
    second.data[1, 100:200, 150:250] = 1
    widget = CompareAnnotations(viewer)
    widget.first.setCurrentText(first.name)
    widget.second.setCurrentText(second.name)
    result = widget.run()
    assert result["classes"]["1"]["dice"] == pytest.approx(0.5)
    assert widget.table.rowCount() == 1 and widget.table.item(0, 1).text() == "0.5"
    marks = viewer.layers[-1]
    assert marks.name.startswith("disagreement")
    assert state.get(marks, "disagreement") == [first.name, second.name]
    assert (marks.data == 1).sum() == 5000 and (marks.data == 2).sum() == 5000
    np.testing.assert_allclose(marks.data_to_world((1, 5, 5)), first.data_to_world((1, 5, 5)))
    (path, _) = export_labels(
        tmp_path / "other.nii.gz", first.data, state.volume_geometry_of(image)
    )
    loaded = widget.load_second(path)
    assert widget.second.currentText() == loaded.name
    assert state.volume_geometry_of(loaded) == state.volume_geometry_of(first), "placed like A"
    assert widget.run()["classes"]["1"]["dice"] == 1.0


def test_disagreement_codes():
    a = np.array([0, 1, 1, 2, 0])
    b = np.array([0, 0, 1, 1, 3])
    np.testing.assert_array_equal(disagreement(a, b), [0, 1, 0, 3, 2])


def _buildings_layers(viewer):
    """Two annotators' class maps under the ``buildings`` preset (a class tree with objects)."""
    from napari_domainseg.labels import load_preset

    schema = load_preset("buildings")
    a = np.zeros((32, 40), np.uint8)
    a[:, :10] = 1  # built-up
    a[2:10, 12:20] = 2  # a building
    a[20:26, 12:18] = 4  # a car
    b = a.copy()
    b[20:26, 12:18] = 3  # called only "vehicle"
    layers = []
    for name, data in (("A", a), ("B", b)):
        layer = viewer.add_labels(data, name=name)
        state.set_schema(layer, schema)
        layers.append(layer)
    return schema, layers


def test_level_rows_indented_and_the_instance_table(make_napari_viewer):
    viewer = make_napari_viewer()
    _, (first, second) = _buildings_layers(viewer)
    widget = CompareAnnotations(viewer)
    widget.first.setCurrentText(first.name)
    widget.second.setCurrentText(second.name)
    result = widget.run()
    rows = [widget.table.item(r, 0).text() for r in range(widget.table.rowCount())]
    assert rows == ["built-up", "    built-up/building", "vehicle", "    vehicle/car"]
    assert widget.table.item(2, 1).text() == "1", "the vehicle level: car + vehicle agree"
    assert widget.table.item(3, 1).text() == "0"
    assert not widget.instance_table.isHidden()
    cells = [
        [
            widget.instance_table.item(r, c).text()
            for c in range(widget.instance_table.columnCount())
        ]
        for r in range(widget.instance_table.rowCount())
    ]
    assert [row[0] for row in cells] == [
        "    built-up/building", "vehicle", "    vehicle/car", "overall",
    ]  # fmt: skip
    assert cells[0][1:6] == ["1", "1", "1", "1", "1"], "matched, precision, recall, F1, PQ"
    assert cells[2][1] == "0" and cells[-1][1] == "1"
    assert result["instances"]["overall"]["count_difference"] == 0
    assert "PQ 0.5000" in widget.instance_summary.text()


def test_an_instance_layer_keeps_touching_objects_apart(make_napari_viewer):
    from napari_domainseg.labels.instances import Instance, InstanceTable

    viewer = make_napari_viewer()
    schema, (first, _) = _buildings_layers(viewer)
    drawn = np.zeros((32, 40), np.uint16)
    drawn[2:10, 12:16], drawn[2:10, 16:20] = 1, 2  # two touching buildings
    instance_layer = viewer.add_labels(drawn, name="instances")
    state.set_schema(instance_layer, schema)
    state.set_instances(instance_layer, InstanceTable((Instance(1, 2), Instance(2, 2))), schema)
    widget = CompareAnnotations(viewer)
    widget.first.setCurrentText(first.name)
    widget.second.setCurrentText(instance_layer.name)
    building = widget.run()["instances"]["classes"]["built-up/building"]
    assert building["count_b"] == 2 and building["matched"] == 1, "IoU 0.5: one of two"
    assert widget.result["classes"]["2"]["dice"] == 1.0, "the class view of the instances"


def test_flat_class_maps_show_no_instance_table(make_napari_viewer):
    viewer = make_napari_viewer()
    first = viewer.add_labels(np.eye(8, dtype=np.uint8), name="A")
    second = viewer.add_labels(np.eye(8, dtype=np.uint8), name="B")
    widget = CompareAnnotations(viewer)
    widget.first.setCurrentText(first.name)
    widget.second.setCurrentText(second.name)
    assert set(widget.run()) == {"classes", "kappa"}
    assert widget.instance_table.isHidden() and widget.table.item(0, 0).text() == "1"
