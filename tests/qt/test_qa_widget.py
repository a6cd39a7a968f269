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
