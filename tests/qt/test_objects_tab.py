"""The Objects tab on the real MR and Landsat: instance layers, edits, undo, snap, attributes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._view import camera_of
from napari_domainseg._widgets._annotation_panel import AnnotationPanel
from napari_domainseg.labels import load_preset
from napari_domainseg.labels.instances import semantic_map

PLUGIN = "napari-domainseg"
SCREENSHOT = Path("/tmp/s5/objects_tab2.png")
BUILDING, CAR = 2, 4  # classes of the "buildings" preset


def _class_mask(reference: np.ndarray) -> np.ndarray:
    """The MR's reference structures as classes of the "ct_lesions" preset."""
    classes = np.zeros(reference.shape, np.uint8)
    classes[reference == 5] = 1  # liver (a region)
    classes[np.isin(reference, [2, 3])] = 3  # kidney (a region)
    classes[reference == 19] = 6  # vertebra (objects: one per connected piece)
    return classes


@pytest.fixture
def mr_objects(mr_panel):
    viewer, panel, labels, reference = mr_panel
    schema = load_preset("ct_lesions")
    panel.classes.set_schema(schema)
    state.set_schema(labels, schema)  # what the Classes tab's "Apply" does
    labels.data = _class_mask(reference)
    panel.tabs.setCurrentWidget(panel.objects)
    layer = panel.objects.make_instance_layer()
    return viewer, panel, labels, layer


def _landsat_objects(viewer, shared_data, boxes):
    """Landsat with "buildings" labels holding a building in each box, made into objects."""
    viewer.open(str(shared_data / "geo/landsat_rgb/RGB.byte.tif"), plugin=PLUGIN)
    panel = AnnotationPanel(viewer)
    panel.classes.set_schema(load_preset("buildings"))
    labels = panel.new_annotation_layer()
    classes = np.zeros(labels.data.shape, labels.data.dtype)
    for box in boxes:
        classes[box] = BUILDING
    labels.data = classes
    layer = panel.objects.make_instance_layer()
    return viewer, panel, layer


@pytest.fixture
def landsat(make_napari_viewer, shared_data, tmp_path, monkeypatch):
    """Landsat with a "buildings" labels layer holding one building, made into objects."""
    monkeypatch.setenv("NAPARI_DOMAINSEG_RECOVERY", str(tmp_path / "recovery"))
    return _landsat_objects(make_napari_viewer(), shared_data, [np.s_[100:140, 100:160]])


def _choose_class(tab, class_id: int) -> None:
    tab.class_box.setCurrentIndex(tab.class_box.findData(class_id))


def test_instance_layer_from_a_class_mask_on_the_mr(mr_objects):
    _viewer, panel, labels, layer = mr_objects
    classes = np.asarray(labels.data)
    assert state.is_instance_layer(layer) and not state.is_instance_layer(labels)
    assert state.geometry_of(layer) == state.geometry_of(labels), "the same geometry, shared"
    np.testing.assert_allclose(layer.data_to_world((3, 4, 5)), labels.data_to_world((3, 4, 5)))
    assert state.get(layer, "annotation_id") != state.get(labels, "annotation_id")
    table = state.instances_of(layer)
    _, count = ndimage.label(classes == 6)
    assert [i.class_id for i in table].count(6) == count >= 2, "one object per vertebra"
    assert [i.class_id for i in table].count(1) == 1, "a region class is one object"
    assert {i.provenance for i in table} == {"manual"}, "classes painted by hand"
    # colours: each object near its class colour, two vertebrae told apart
    first, second = table.ids_of_class(6)[:2]
    assert not np.allclose(layer.get_color(first), layer.get_color(second))
    class_rgb = np.asarray(load_preset("ct_lesions")[6].color[:3]) / 255
    assert np.abs(layer.get_color(first)[:3] - class_rgb).max() < 0.35
    # the table: one row per object, sizes in mL from the 3 mm voxels
    rows = panel.objects.model.rows
    assert [r[0] for r in rows] == list(table.ids)
    liver = next(r for r in rows if r[1] == "liver")
    assert liver[2] == f"{np.count_nonzero(classes == 1) * 27 / 1000:.4g} mL"
    assert rows[table.ids.index(first)][1] == "spine/vertebra #1"
    assert rows[table.ids.index(second)][1] == "spine/vertebra #2"
    assert load_preset("ct_lesions")[panel.objects.class_id()].kind == "objects", "by default"
    assert f"{count} spine/vertebra" in panel.objects.layer_label.text()
    assert not panel.objects.make_button.isEnabled(), "the current layer already holds objects"
    # the class view equals the class labels, computed on demand, never stored in the layer
    view = panel.objects.show_class_view()
    np.testing.assert_array_equal(view.data, classes)
    assert not view.editable and not state.is_instance_layer(view)
    assert "class_map" not in state.info(layer)


def test_new_object_paints_only_unlabeled_voxels_and_table_click_moves_the_view(mr_objects, qtbot):
    viewer, panel, _labels, layer = mr_objects
    viewer.window.add_dock_widget(panel, name="Annotation")
    tab = panel.objects
    before = np.asarray(layer.data).copy()
    _choose_class(tab, 2)  # liver/lesion
    assert tab.class_box.itemText(0) == "liver/lesion", "objects classes come first"
    assert tab.class_box.itemText(tab.class_box.count() - 1) == "spine (region)"
    instance_id = tab.new_object()
    assert layer.selected_label == instance_id == before.max() + 1
    table = state.instances_of(layer)
    assert table[instance_id].class_id == 2 and table[instance_id].provenance == "manual"
    assert table[instance_id].attributes == {"confidence": "medium"}, "the schema's default"
    assert "not painted yet" in tab.model.rows[-1][2]
    # paint across the liver's edge: only the unlabeled voxels join the new object
    liver = tuple(np.argwhere(before == 1)[0])
    layer.brush_size = 15
    layer.paint(liver, instance_id)
    after = np.asarray(layer.data)
    assert np.count_nonzero(after == instance_id) > 0
    np.testing.assert_array_equal(after[before != 0], before[before != 0])
    qtbot.waitUntil(lambda: "mL" in tab.model.rows[-1][2], timeout=3000)  # the table follows
    # "N" on the layer starts the next object
    from napari.utils.key_bindings import KeyBinding

    layer.keymap[KeyBinding.from_str("N")](layer)
    assert layer.selected_label == instance_id + 1
    # a row click selects the object and centres the view on it, in world coordinates
    vertebra = state.instances_of(layer).ids_of_class(6)[0]
    where = tab.go_to(vertebra)
    assert layer.selected_label == vertebra
    voxel = np.round(layer.world_to_data(where)).astype(int)
    assert after[tuple(voxel)] == vertebra
    axis = viewer.dims.not_displayed[0]
    assert viewer.dims.point[axis] == pytest.approx(where[axis], abs=1.6)
    shown = [where[a] for a in viewer.dims.displayed]
    np.testing.assert_allclose(camera_of(viewer).center[-2:], shown, atol=1e-6)


def test_shared_border_with_the_polygon_tool(landsat):
    _viewer, panel, layer = landsat
    tab = panel.objects
    assert layer.preserve_labels and tab.shared.isChecked(), "on by default"
    before = np.asarray(layer.data).copy()
    _choose_class(tab, BUILDING)
    second = tab.new_object()
    # a polygon reaching well into the first building
    layer.paint_polygon([[120, 130], [120, 200], [180, 200], [180, 130]], second)
    after = np.asarray(layer.data)
    np.testing.assert_array_equal(after[before == 1], 1)  # the neighbour is untouched
    drawn = after == second
    assert drawn.any() and not (drawn & (before != 0)).any()
    # they touch: the new object fills right up to the old one (no gap)
    touching = ndimage.binary_dilation(before == 1) & drawn
    assert touching.sum() >= 40
    # and the check can fail: without shared borders the polygon paints over the neighbour
    tab.shared.setChecked(False)
    assert not layer.preserve_labels
    layer.paint_polygon([[120, 130], [120, 200], [180, 200], [180, 130]], second)
    assert np.count_nonzero(np.asarray(layer.data) == 1) < np.count_nonzero(before == 1)


def test_split_merge_relabel_delete_each_one_undo_step(landsat):
    _viewer, panel, layer = landsat
    tab = panel.objects
    original = np.asarray(layer.data).copy()
    assert state.instances_of(layer).ids == (1,)
    # erase a cut through the building (the eraser polygon), then split
    layer.selected_label = 1
    layer.paint_polygon([[95, 128], [95, 131], [145, 131], [145, 128]], 0)
    cut = np.asarray(layer.data).copy()
    assert np.count_nonzero(cut != original) == 40 * 4
    assert tab.split_selected() == 2
    split = np.asarray(layer.data).copy()
    table = state.instances_of(layer)
    assert table.ids == (1, 2) and table[2].class_id == BUILDING
    assert set(np.unique(split[original == 1])) == {1, 2}, "the cut is shared, no gap"
    assert ndimage.label(split == 1)[1] == 1 and ndimage.label(split == 2)[1] == 1
    layer.undo()
    np.testing.assert_array_equal(layer.data, cut)
    tab.refresh()
    assert state.instances_of(layer).ids == (1,), "undo took the piece away"
    layer.redo()
    tab.refresh()
    np.testing.assert_array_equal(layer.data, split)
    assert state.instances_of(layer).ids == (1, 2)
    # merge both: one step
    tab.select([1, 2])
    assert tab.merge_selected() == 1
    np.testing.assert_array_equal(layer.data, np.where(split == 2, 1, split))
    assert state.instances_of(layer).ids == (1,)
    layer.undo()
    np.testing.assert_array_equal(layer.data, split)
    tab.refresh()
    assert state.instances_of(layer).ids == (1, 2), "the merged-away object came back"
    # relabel one to car: the table changes, the pixels do not
    _choose_class(tab, CAR)
    tab.select([2])
    assert tab.relabel_selected() == 1
    assert state.instances_of(layer)[2].class_id == CAR
    np.testing.assert_array_equal(layer.data, split)
    view = tab.show_class_view()
    np.testing.assert_array_equal(view.data, np.where(split == 2, CAR, np.where(split, 2, 0)))
    assert layer.features.set_index("index").loc[2, "class_path"] == "vehicle/car"
    # delete: one step, undone whole
    tab.select([1])
    assert tab.delete_selected() == 1
    np.testing.assert_array_equal(layer.data, np.where(split == 1, 0, split))
    assert state.instances_of(layer).ids == (2,)
    layer.undo()
    np.testing.assert_array_equal(layer.data, split)
    tab.refresh()
    assert state.instances_of(layer).ids == (1, 2)
    np.testing.assert_array_equal(
        semantic_map(layer.data, state.instances_of(layer)), tab.show_class_view().data
    )


def test_an_id_without_a_class_is_reported_and_repaired_never_dropped(landsat, qtbot):
    from napari.utils.notifications import notification_manager

    _viewer, panel, layer = landsat
    tab = panel.objects
    seen = len(notification_manager.records)
    layer.brush_size = 5
    layer.paint((300, 300), 99)  # a raw number typed into napari's label box
    assert np.count_nonzero(layer.data == 99) > 0

    def notes():
        return [n for n in notification_manager.records[seen:] if "99" in str(n.message)]

    qtbot.waitUntil(lambda: bool(notes()), timeout=3000)
    notes = notes()
    assert notes and [name for name, _ in notes[-1].actions] == ["Repair"]
    assert tab.repair_button.isVisible() or not tab.isVisible()
    assert "(no class: repair)" in [row[1] for row in tab.model.rows]
    assert "built-up/building #1" in [row[1] for row in tab.model.rows]
    _choose_class(tab, CAR)
    notes[-1].actions[0][1]()  # the notification's Repair button
    table = state.instances_of(layer)
    assert table[99].class_id == CAR and np.count_nonzero(layer.data == 99) > 0
    assert not tab.repair_button.isVisible() and tab.status.text() == ""


def test_snap_fills_one_pixel_gaps_in_one_undo_step(
    make_napari_viewer, shared_data, tmp_path, monkeypatch
):
    monkeypatch.setenv("NAPARI_DOMAINSEG_RECOVERY", str(tmp_path / "recovery"))
    boxes = [
        np.s_[100:140, 100:129],  # 1-px crack (column 129) to the next building
        np.s_[100:140, 130:160],
        np.s_[200:220, 100:120],  # 2-px gap (columns 120, 121): not a crack, kept
        np.s_[200:220, 122:140],
    ]
    _viewer, panel, layer = _landsat_objects(make_napari_viewer(), shared_data, boxes)
    tab = panel.objects
    before = np.asarray(layer.data).copy()
    assert len(state.instances_of(layer)) == 4
    left, right = before[120, 110], before[120, 150]
    assert left != right and before[120, 129] == 0
    assert tab.snap_neighbours() == 40
    after = np.asarray(layer.data).copy()
    changed = after != before
    assert np.count_nonzero(changed) == 40
    assert changed[100:140, 129].all(), "exactly the crack"
    assert set(np.unique(after[100:140, 129])) <= {left, right}
    np.testing.assert_array_equal(after[before != 0], before[before != 0])  # labels kept
    assert not after[200:220, 120:122].any(), "a wider gap is not a crack"
    assert not after[99].any() and not after[:, 99].any(), "outsides stay unlabeled"
    assert "40 gap pixels filled" in tab.snap_status.text()
    layer.undo()  # one step
    np.testing.assert_array_equal(layer.data, before)
    layer.redo()
    np.testing.assert_array_equal(layer.data, after)
    assert tab.snap_neighbours() == 0, "nothing left to snap"
    assert "No 1-pixel gap" in tab.snap_status.text()
    np.testing.assert_array_equal(layer.data, after)


def test_attributes_of_the_selected_object(mr_objects):
    from napari.utils.notifications import notification_manager

    _viewer, panel, _labels, layer = mr_objects
    tab = panel.objects
    _choose_class(tab, 2)  # liver/lesion: a "confidence" choice, default "medium"
    lesion = tab.new_object()
    assert tab.selected_ids() == [lesion]
    assert not tab.attributes.isHidden() and list(tab.attributes.editors) == ["confidence"]
    combo = tab.attributes.editors["confidence"]
    assert combo.currentText() == "medium"
    combo.setCurrentText("high")  # the user picks "high"
    assert state.instances_of(layer)[lesion].attributes == {"confidence": "high"}
    assert layer.features.set_index("index").loc[lesion, "confidence"] == "high"
    # a value the spec rejects is refused with a notification; the table keeps "high"
    seen = len(notification_manager.records)
    assert not tab.set_attribute("confidence", "certain")
    assert not tab.set_attribute("confidence", 3)
    refused = [n for n in notification_manager.records[seen:] if "refused" in str(n.message)]
    assert len(refused) == 2 and "low, medium, high" in str(refused[0].message)
    assert state.instances_of(layer)[lesion].attributes == {"confidence": "high"}
    assert combo.currentText() == "high"
    combo.setCurrentIndex(combo.findData(None))  # "(unset)"
    assert state.instances_of(layer)[lesion].attributes == {}
    # another class: its own editors; a region without attributes or two objects: none
    vertebra = state.instances_of(layer).ids_of_class(6)[0]
    tab.select([vertebra])
    assert list(tab.attributes.editors) == ["level"] and not tab.attributes.isHidden()
    tab.attributes.editors["level"].setCurrentText("L1")
    assert layer.features.set_index("index").loc[vertebra, "level"] == "L1"
    tab.select([vertebra, lesion])
    assert tab.attributes.isHidden()
    tab.select([state.instances_of(layer).ids_of_class(1)[0]])  # the liver
    assert tab.attributes.isHidden()


def test_mean_intensity_column_on_the_mr(mr_objects):
    viewer, panel, _labels, layer = mr_objects
    tab = panel.objects
    image = panel.image()
    assert image is not None and image.data.shape == layer.data.shape
    data, mr = np.asarray(layer.data), np.asarray(image.data, dtype=np.float64)
    table = state.instances_of(layer)
    column = tab.model.HEADERS.index("mean")
    for instance_id in (table.ids_of_class(1)[0], table.ids_of_class(6)[0]):
        row = next(r for r in tab.model.rows if r[0] == instance_id)
        expected = mr[data == instance_id].mean()
        assert row[column] == pytest.approx(expected, rel=1e-9)
        shown = tab.model.data(tab.model.index(tab.model.rows.index(row), column))
        assert shown == f"{expected:.5g}"
    # an image on another grid gives no mean (never a mean of the wrong pixels)
    viewer.add_image(np.ones((4, 5, 6), np.float32), name="other grid")
    panel.refresh_layers()
    panel.image_box.setCurrentText("other grid")
    tab.refresh()
    assert all(r[column] is None for r in tab.model.rows)


def test_screenshot_of_the_objects_tab(mr_objects, assert_not_blank):
    viewer, panel, _labels, layer = mr_objects
    viewer.window.add_dock_widget(panel, name="Annotation")
    panel.tabs.setCurrentWidget(panel.objects)
    viewer.layers.selection.active = layer
    vertebra = state.instances_of(layer).ids_of_class(6)[0]
    panel.objects.select([vertebra])
    panel.objects.go_to(vertebra)
    assert not panel.objects.attributes.isHidden(), "the selected vertebra's level"
    image = viewer.screenshot(canvas_only=False)
    assert_not_blank(image)
    from imageio.v3 import imwrite

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    imwrite(SCREENSHOT, image)
