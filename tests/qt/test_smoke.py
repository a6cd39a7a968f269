"""Open napari, load both samples, dock the panel, and look at the result."""

import numpy as np
import pytest
from napari.layers import Labels

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._widgets._schema_panel import SchemaPanel


@pytest.mark.parametrize(
    "sample, domain, vertical",
    [("ct_phantom", "medical", "down"), ("synthetic_scene", "geo", "up")],
)
def test_sample_opens_with_panel_and_renders(
    make_napari_viewer, screenshot_folder, assert_not_blank, sample, domain, vertical
):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-domainseg", sample)
    _widget, panel = viewer.window.add_plugin_dock_widget("napari-domainseg", "Label schema")
    assert isinstance(panel, SchemaPanel)
    assert all(state.domain_of(layer) == domain for layer in viewer.layers)
    # Medical: anterior up (napari's default); geospatial: north up.
    assert viewer.camera.orientation2d[0] == vertical
    viewer.window.resize(1280, 820)
    viewer.reset_view()
    canvas = viewer.screenshot(str(screenshot_folder / f"smoke-{sample}.png"), canvas_only=True)
    assert_not_blank(canvas)
    window = viewer.screenshot(canvas_only=False)
    assert window.shape[1] > canvas.shape[1], "the dock widget is part of the window"


def test_schema_panel_follows_the_active_labels_layer(make_napari_viewer):
    viewer = make_napari_viewer()
    panel = SchemaPanel(viewer)
    viewer.open_sample("napari-domainseg", "synthetic_scene")
    labels = next(layer for layer in viewer.layers if isinstance(layer, Labels))
    viewer.layers.selection.active = labels
    assert panel.schema.name == "Land cover"
    assert panel.class_list.count() == len(panel.schema)
    panel.select_class(4)
    assert labels.selected_label == 4
    assert "built-up" in panel.help.text()


def test_schema_panel_applies_schema_and_reports_bad_files(
    make_napari_viewer, tmp_path, monkeypatch
):
    viewer = make_napari_viewer()
    panel = SchemaPanel(viewer)
    errors = []
    monkeypatch.setattr(
        "napari_domainseg._widgets._schema_panel.show_error", lambda message: errors.append(message)
    )
    assert not panel.apply_to_active_layer(), "no labels layer selected"
    assert "Select a labels layer" in errors[-1]

    layer = viewer.add_labels(np.zeros((8, 8), dtype=np.uint8))
    bad = tmp_path / "bad.yaml"
    bad.write_text("classes:\n  - id: 0\n    name: x\n    color: '#fff'\n")
    assert not panel.load_file(bad)
    assert "id 0 is reserved" in errors[-1] and "line 2" in errors[-1]
    assert panel.schema.name == "CT abdomen and head", "a bad file keeps the current schema"

    good = tmp_path / "good.json"
    good.write_text('{"name": "Mine", "classes": [{"id": 3, "name": "a", "color": "#ff0000"}]}')
    assert panel.load_file(good)
    assert panel.apply_to_active_layer()
    assert state.schema_document_of(layer)["name"] == "Mine"
    np.testing.assert_allclose(layer.colormap.map(np.array([3]))[0], [1, 0, 0, 1])
    panel.save_file(tmp_path / "saved.yaml")
    assert "Mine" in (tmp_path / "saved.yaml").read_text()
