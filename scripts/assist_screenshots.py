"""Make the screenshots of docs/assist.md: the Assist tab with a proposal, from real runs.

Usage (under a virtual display)::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/assist_screenshots.py

Medical: the real abdominal MR of ``totalseg_mr`` with strokes of liver, spleen and an
"other" class on three slices (taken from its reference segmentation), trained, the proposal of
every slice ("Predict all"), slices 9-11 accepted, and on slice 10 a correction taken from the
reference (pixels the proposal calls liver that are not liver, painted "other"): the review
table shows 3 painted, 2 pre-labeled and 1 corrected slice. Geospatial: the Landsat scene with
water, cloud and land strokes in small squares, trained, the proposal of the whole scene
accepted, and one tile corrected by the strokes' own colour rule.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import napari

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "qt"))

from docs_screenshots import OUT, SIZE, _settle, _window  # noqa: E402
from test_assist_tab import landsat_strokes, mr_strokes  # noqa: E402

from napari_domainseg.labels import load_preset  # noqa: E402
from napari_domainseg.labels.schema import LabelClass, LabelSchema  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
HEIGHT = 1040
"""Window height of these screenshots (the Assist tab's review tables need it)."""


def _assist_panel(viewer: napari.Viewer):
    _, panel = viewer.window.add_plugin_dock_widget("napari-domainseg", "Annotation")
    panel.tabs.setCurrentWidget(panel.assist)
    return panel


def _train_predict_all(viewer: napari.Viewer, panel) -> None:
    tab = panel.assist
    tab.opacity.setValue(55)
    tab.predict_after.setChecked(False)
    tab.train()
    _settle(viewer, lambda: tab.model is not None and not tab.busy, 120)
    tab.predict_all()
    _settle(viewer, lambda: not tab.busy, 120)


def _shoot(viewer: napari.Viewer, name: str) -> Path:
    viewer.window.resize(SIZE[0], HEIGHT)  # room for the review tables
    viewer.reset_view()
    from qtpy.QtWidgets import QApplication

    for widget in QApplication.allWidgets():  # the "accepted ... pixels" toasts
        if type(widget).__name__ == "NapariQtNotification":
            widget.close()
    viewer.reset_view()
    _settle(viewer, lambda: True)
    out = OUT / name
    viewer.screenshot(str(out), canvas_only=False)
    viewer.close()
    return out


def medical() -> Path:
    """The MR with strokes on three slices and the proposal of slice 10."""
    viewer = _window()
    folder = DATA / "medical" / "totalseg_mr"
    viewer.open(str(folder / "labels.nii.gz"), plugin="napari-domainseg")
    reference = np.asarray(viewer.layers[-1].data).copy()
    viewer.layers.remove(viewer.layers[-1])
    viewer.open(str(folder / "mr.nii.gz"), plugin="napari-domainseg")
    panel = _assist_panel(viewer)
    preset = load_preset("ct_abdomen_head")
    other = LabelClass(30, "other tissue", (150, 150, 150, 255), "Everything that is not an organ.")
    panel.classes.set_schema(LabelSchema(preset.name, (*preset.classes, other)))
    labels = panel.new_annotation_layer()
    labels.data = mr_strokes(reference)
    _train_predict_all(viewer, panel)
    tab = panel.assist
    for index in (9, 11, 10):
        viewer.dims.set_point(0, labels.data_to_world([index, 0, 0])[0])
        tab.accept("this slice")
    wrong = (np.asarray(labels.data[10]) == 1) & (reference[10] != 5)  # "liver" that is not
    rows, cols = np.nonzero(wrong)
    labels.data_setitem((np.full(rows.size, 10), rows, cols), 30)  # the annotator's correction
    tab.review_class.setCurrentIndex(tab.review_class.findData(2))  # review the spleen next
    tab.units_table.selectRow(10)
    return _shoot(viewer, "assist-medical.png")


def geo() -> Path:
    """The Landsat scene with water, cloud and land strokes and the whole scene's proposal."""
    viewer = _window()
    viewer.open(str(DATA / "geo" / "landsat_rgb" / "RGB.byte.tif"), plugin="napari-domainseg")
    panel = _assist_panel(viewer)
    panel.image_box.setCurrentText("RGB.byte red")
    panel.classes.set_schema(load_preset("land_cover"))
    labels = panel.new_annotation_layer()
    red = np.asarray(viewer.layers["RGB.byte red"].data)
    blue = np.asarray(viewer.layers["RGB.byte blue"].data)
    strokes = landsat_strokes(red, blue)
    labels.data = strokes
    _train_predict_all(viewer, panel)
    tab = panel.assist
    tab.accept("all")
    window = (slice(256, 512), slice(256, 512))  # one tile checked by the strokes' colour rule
    red_w, blue_w = red[window].astype(int), blue[window].astype(int)
    truth = np.select([blue_w > red_w + 15, red_w > 120, (red_w > 0) | (blue_w > 0)], [1, 7, 2], 0)
    rows, cols = np.nonzero((np.asarray(labels.data[window]) != truth) & (truth != 0))
    labels.data_setitem((rows + 256, cols + 256), truth[rows, cols].astype(np.uint8))
    tab.units_table.selectRow(5)
    return _shoot(viewer, "assist-geo.png")


if __name__ == "__main__":
    for make in (medical, geo):
        print(make())
