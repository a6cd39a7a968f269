"""Make the screenshots of docs/medical.md from the real test data (run under xvfb-run).

Usage::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/docs_screenshots.py

Each picture is a real napari window: the DICOM series picker, an annotated CT with the
label schema panel, and a DICOM SEG made by another tool opened on its series.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

import napari

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "medical"
OUT = ROOT / "docs" / "images"
SIZE = (1400, 860)


def _settle(viewer: napari.Viewer, condition, timeout: float = 30.0) -> None:
    from qtpy.QtWidgets import QApplication

    deadline = time.monotonic() + timeout
    while not condition():
        QApplication.processEvents()
        if time.monotonic() > deadline:
            raise TimeoutError("the viewer did not finish in time")
        time.sleep(0.05)
    QApplication.processEvents()


def series_picker() -> Path:
    """The series picker listing a study folder, with the chosen series opened."""
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(*SIZE)
    _, picker = viewer.window.add_plugin_dock_widget("napari-domainseg", "DICOM series")
    picker.scan(SHARED / "ct_head_study")
    _settle(viewer, lambda: picker.discovery is not None)
    picker.open_selected()
    _settle(viewer, lambda: len(viewer.layers) == 1)
    viewer.reset_view()
    path = OUT / "medical-series-picker.png"
    viewer.screenshot(str(path), canvas_only=False)
    viewer.close()
    return path


def annotated() -> Path:
    """A CT with a labels layer made for it, painted, and the schema panel."""
    from napari_domainseg._napari._annotation import add_annotation_layer
    from napari_domainseg.labels import load_preset

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(*SIZE)
    viewer.open(str(SHARED / "seg_dcmqi/ct-3slice"), plugin="napari-domainseg")
    image = viewer.layers[0]
    image.contrast_limits = (-160, 240)  # abdomen window 40/400
    schema = load_preset("ct_abdomen_head")
    labels = add_annotation_layer(viewer, image, schema)
    # Paint where the liver is: dcmqi's liver.dcm marks it on this series.
    from napari_domainseg.medical.dicom_seg import SegReference, read_dicom_seg

    entry = image.metadata["domainseg"]
    reference = SegReference.from_metadata(entry, image.data.shape)
    liver = read_dicom_seg(SHARED / "seg_dcmqi/liver.dcm", reference).label_maps[0].array
    labels.data[liver > 0] = 1
    labels.refresh()
    viewer.layers.selection.active = labels
    viewer.window.add_plugin_dock_widget("napari-domainseg", "Label schema")
    viewer.dims.set_point(0, labels.data_to_world([1, 0, 0])[0])
    _settle(viewer, lambda: True)
    viewer.reset_view()
    path = OUT / "medical-annotated.png"
    viewer.screenshot(str(path), canvas_only=False)
    viewer.close()
    return path


def overlapping_seg() -> Path:
    """A dcmqi DICOM SEG with overlapping segments opened on its series."""
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(*SIZE)
    viewer.open(str(SHARED / "seg_dcmqi/ct-3slice"), plugin="napari-domainseg")
    viewer.layers[0].contrast_limits = (-160, 240)
    viewer.open(str(SHARED / "seg_dcmqi/partial_overlaps.dcm"), plugin="napari-domainseg")
    for layer in viewer.layers[1:]:
        layer.opacity = 0.5
    viewer.dims.set_point(0, viewer.layers[0].data_to_world([1, 0, 0])[0])
    viewer.reset_view()
    path = OUT / "medical-dicom-seg.png"
    viewer.screenshot(str(path), canvas_only=False)
    viewer.close()
    return path


def main() -> int:
    """Write every screenshot and print their paths."""
    OUT.mkdir(parents=True, exist_ok=True)
    for make in (series_picker, annotated, overlapping_seg):
        path = make()
        image = Image.open(path)
        assert np.asarray(image).std() > 10, f"{path} looks blank"
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
