"""The radiologist's path in a real viewer: open, pick a series, annotate, export, reopen."""

from __future__ import annotations

import numpy as np

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._annotation import new_annotation_layer
from napari_domainseg._widgets._series_picker import SeriesPicker

PLUGIN = "napari-domainseg"


def test_annotate_export_and_reopen_a_dicom_seg(
    make_napari_viewer, shared_data, tmp_path, screenshot_folder, assert_not_blank
):
    viewer = make_napari_viewer(show=True)
    viewer.open(str(shared_data / "medical/ct_head_study"), plugin=PLUGIN)
    image = viewer.layers[0]
    new_annotation_layer()
    labels = viewer.layers[-1]
    assert labels.name == f"{image.name} labels"
    assert labels.data.shape == image.data.shape and labels.data.dtype == np.uint8
    np.testing.assert_allclose(labels.affine.affine_matrix, image.affine.affine_matrix)
    np.testing.assert_allclose(labels.scale, image.scale)
    np.testing.assert_allclose(labels.translate, image.translate)
    assert state.get(labels, "source_image")["name"] == image.name
    np.testing.assert_array_equal(
        state.volume_geometry_of(labels).affine, state.volume_geometry_of(image).affine
    )
    assert not state.has(labels, "window")

    k = image.data.shape[0] // 2
    labels.data[k, 200:300, 180:330] = 1
    labels.data[k, 320:360, 230:280] = 3
    labels.refresh()
    viewer.dims.set_point(0, labels.data_to_world([k, 0, 0])[0])
    viewer.window.resize(1280, 820)
    viewer.reset_view()
    canvas = viewer.screenshot(str(screenshot_folder / "medical-annotated.png"))
    assert_not_blank(canvas)

    viewer.layers.selection = {labels}
    target = tmp_path / "brain.dcm"
    viewer.layers.save(str(target), selected=True, plugin=PLUGIN)
    assert target.is_file()
    # napari's Save dialog confirmed replacing the file: the writer replaces it atomically
    viewer.layers.save(str(target), selected=True, plugin=PLUGIN)
    assert [p.name for p in tmp_path.iterdir()] == ["brain.dcm"], "no partial file left"

    viewer.open(str(target), plugin=PLUGIN)
    reopened = viewer.layers[-1]
    assert len(viewer.layers) == 3, "the open series is reused: only the labels are added"
    np.testing.assert_array_equal(reopened.data, labels.data)
    for index in ([k, 200, 180], [k, 359, 279]):
        np.testing.assert_allclose(reopened.data_to_world(index), image.data_to_world(index))


def test_series_picker_lists_and_opens_series(make_napari_viewer, qtbot, shared_data):
    viewer = make_napari_viewer()
    picker = SeriesPicker(viewer)
    picker.scan(shared_data / "medical/ct_head_study")
    qtbot.waitUntil(lambda: picker.discovery is not None, timeout=20000)
    summaries = [picker.series_list.item(i).text() for i in range(picker.series_list.count())]
    assert any("STD BRAIN 5MM" in s for s in summaries)
    assert len(summaries) > 1, "the scout and summary series are listed too"
    assert "STD BRAIN 5MM" in picker.selected_candidate().summary(), (
        "the best series is preselected"
    )
    picker.patient_box.setChecked(True)
    picker.open_selected()
    qtbot.waitUntil(lambda: len(viewer.layers) == 1, timeout=20000)
    assert viewer.layers[0].data.shape == (28, 512, 512)
    assert "PatientName" in state.get(viewer.layers[0], "patient")
    assert "PatientName" in picker.patient_label.text()


def test_series_picker_resamples_only_when_asked(make_napari_viewer, qtbot, shared_data):
    viewer = make_napari_viewer()
    picker = SeriesPicker(viewer)
    picker.scan(shared_data / "medical/bad_input/slice_gap")
    qtbot.waitUntil(lambda: picker.discovery is not None, timeout=20000)
    picker.open_selected()
    qtbot.waitUntil(lambda: "not regular" in picker.status.text(), timeout=20000)
    assert len(viewer.layers) == 0
    picker.resample_box.setChecked(True)
    picker.open_selected()
    qtbot.waitUntil(lambda: len(viewer.layers) == 1, timeout=20000)
    layer = viewer.layers[0]
    assert layer.data.shape[0] == 5
    assert not state.has(layer, "patient")
    assert state.get(layer, "resampled")
