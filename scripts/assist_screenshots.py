"""Make the screenshots of docs/assist.md: the Assist tab with a proposal, from real runs.

Usage (under a virtual display)::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/assist_screenshots.py

Medical: the real abdominal MR of ``totalseg_mr`` with strokes of liver, spleen and an
"other" class on three slices (taken from its reference segmentation), trained, and the
proposal of the visible slice. Geospatial: the Landsat scene with water, cloud and land strokes
in small squares, trained, and the proposal of the whole scene ("Predict all").
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import napari

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "qt"))

from docs_screenshots import OUT, _settle, _window  # noqa: E402
from test_assist_tab import landsat_strokes, mr_strokes  # noqa: E402

from napari_domainseg.labels import load_preset  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def _assist_panel(viewer: napari.Viewer):
    _, panel = viewer.window.add_plugin_dock_widget("napari-domainseg", "Annotation")
    panel.tabs.setCurrentWidget(panel.assist)
    return panel


def _train_and_shoot(viewer: napari.Viewer, panel, name: str) -> Path:
    panel.assist.opacity.setValue(55)
    tab = panel.assist
    whole = panel.labels().ndim == 2  # the scene: "Predict all" (it is small)
    tab.predict_after.setChecked(not whole)  # the volume: "Predict view", the visible slice
    tab.train()
    _settle(viewer, lambda: tab.model is not None and not tab.busy, 120)
    if whole:
        tab.predict_all()
        _settle(viewer, lambda: not tab.busy, 120)
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
    labels = panel.new_annotation_layer()
    labels.data = mr_strokes(reference)
    viewer.dims.set_point(0, labels.data_to_world([10, 0, 0])[0])
    return _train_and_shoot(viewer, panel, "assist-medical.png")


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
    labels.data = landsat_strokes(red, blue)
    return _train_and_shoot(viewer, panel, "assist-geo.png")


if __name__ == "__main__":
    for make in (medical, geo):
        print(make())
