"""Orthogonal views: the other two planes, sharing data, following the slice position."""

from __future__ import annotations

import numpy as np

from napari_domainseg._napari._annotation import add_annotation_layer
from napari_domainseg._widgets._ortho_views import OrthoViews

PLUGIN = "napari-domainseg"


def test_side_views_show_the_other_planes_and_paint_the_same_labels(
    make_napari_viewer, qtbot, shared_data, screenshot_folder, assert_not_blank
):
    viewer = make_napari_viewer(show=True)
    viewer.open(str(shared_data / "medical/ct_head_study"), plugin=PLUGIN)
    image = viewer.layers[0]
    labels = add_annotation_layer(viewer, image)
    views = OrthoViews(viewer)
    qtbot.addWidget(views)
    viewer.window.add_dock_widget(views, area="right", name="Orthogonal views")
    assert [m.title for m in views.models] == ["coronal", "sagittal"]
    assert [tuple(m.dims.order) for m in views.models] == [(1, 0, 2), (2, 0, 1)]
    assert all(m.camera.orientation2d[0] == "up" for m in views.models), "superior up"
    image_copy, labels_copy = (views.copies_of(layer)[0] for layer in (image, labels))
    assert np.shares_memory(labels_copy.data, labels.data)
    np.testing.assert_allclose(image_copy.data_to_world((3, 4, 5)), image.data_to_world((3, 4, 5)))

    # The slice position follows from the main view to the side views and back.
    viewer.dims.set_point(1, image.data_to_world((0, 300, 0))[1])
    assert all(np.allclose(m.dims.point, viewer.dims.point) for m in views.models)
    views.models[0].dims.set_point(0, image.data_to_world((9, 0, 0))[0])
    assert np.isclose(viewer.dims.point[0], image.data_to_world((9, 0, 0))[0])
    assert np.isclose(views.models[1].dims.point[0], viewer.dims.point[0])

    # Painting in a side view paints the main labels; the main viewer's label state follows.
    labels.selected_label = 4
    assert labels_copy.selected_label == 4
    labels_copy.data_setitem((np.full(20, 9), np.full(20, 300), np.arange(200, 220)), 4)
    assert (labels.data[9, 300, 200:220] == 4).all()
    labels.data[9, 280:320, 180:340] = 4
    labels.refresh()
    viewer.window.resize(1400, 900)
    qtbot.wait(300)
    canvas = viewer.screenshot(
        str(screenshot_folder / "medical-ortho-views.png"), canvas_only=False
    )
    assert_not_blank(canvas)
    viewer.layers.remove(labels)
    assert labels_copy not in views.models[0].layers
    views.dispose()
    del image_copy, labels_copy


def test_side_views_follow_replaced_data_and_report_their_edits(
    make_napari_viewer, qtbot, shared_data
):
    viewer = make_napari_viewer()
    viewer.open(str(shared_data / "medical/ct_head_study"), plugin=PLUGIN)
    labels = add_annotation_layer(viewer, viewer.layers[0])
    views = OrthoViews(viewer)
    qtbot.addWidget(views)
    labels.data = np.ones_like(labels.data)  # e.g. restored or imported labels
    (copy, _) = views.copies_of(labels)
    assert copy.data is labels.data
    seen = []
    labels.events.paint.connect(lambda event: seen.append(event.value))
    copy.data_setitem((np.array([3]), np.array([4]), np.array([5])), 7)
    assert labels.data[3, 4, 5] == 7 and seen, "autosave and statistics hear side-view edits"
    views.dispose()
    del copy
