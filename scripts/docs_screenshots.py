"""Make the screenshots of docs/medical.md and docs/geo.md from the real test data.

Usage (under a virtual display)::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/docs_screenshots.py

Each picture is a real napari window. Medical: the DICOM series picker, an annotated CT
with the label schema panel, a DICOM SEG made by another tool opened on its series.
Geospatial: a Sentinel-2 scene with the cursor's map coordinates, an annotated Landsat
scene with the label schema panel, and exported polygons reopened over the scene.
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
GEO = ROOT.parent / "shared" / "data" / "geo"
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


def _window() -> napari.Viewer:
    """A shown napari window of the screenshot size."""
    viewer = napari.Viewer(show=True)
    viewer.window.resize(*SIZE)
    return viewer


def _shoot(viewer: napari.Viewer, name: str) -> Path:
    """Let the window settle, fit the view, save the whole window as ``name``, close it."""
    _settle(viewer, lambda: True)
    viewer.reset_view()
    out = OUT / name
    viewer.screenshot(str(out), canvas_only=False)
    viewer.close()
    return out


def series_picker() -> Path:
    """The series picker listing a study folder, with the chosen series opened."""
    viewer = _window()
    _, picker = viewer.window.add_plugin_dock_widget("napari-domainseg", "DICOM series")
    picker.scan(SHARED / "ct_head_study")
    _settle(viewer, lambda: picker.discovery is not None)
    picker.open_selected()
    _settle(viewer, lambda: len(viewer.layers) == 1)
    return _shoot(viewer, "medical-series-picker.png")


def annotated() -> Path:
    """A CT with a labels layer made for it, painted, and the schema panel."""
    from napari_domainseg._napari._annotation import add_annotation_layer
    from napari_domainseg.labels import load_preset

    viewer = _window()
    viewer.open(str(SHARED / "seg_dcmqi/ct-3slice"), plugin="napari-domainseg")
    image = viewer.layers[0]
    image.contrast_limits = (-160, 240)  # abdomen window 40/400
    schema = load_preset("ct_abdomen_head")
    labels = add_annotation_layer(viewer, image, schema)
    # Paint where the liver is: dcmqi's liver.dcm marks it on this series.
    from napari_domainseg._napari import _layer_state as state
    from napari_domainseg.medical.dicom_seg import SegReference, read_dicom_seg

    reference = SegReference.from_geometry(
        state.volume_geometry_of(image), bool(state.get(image, "resampled"))
    )
    liver = read_dicom_seg(SHARED / "seg_dcmqi/liver.dcm", reference).label_maps[0].array
    labels.data[liver > 0] = 1
    labels.refresh()
    viewer.layers.selection.active = labels
    viewer.window.add_plugin_dock_widget("napari-domainseg", "Label schema")
    viewer.dims.set_point(0, labels.data_to_world([1, 0, 0])[0])
    _settle(viewer, lambda: True)
    return _shoot(viewer, "medical-annotated.png")


def overlapping_seg() -> Path:
    """A dcmqi DICOM SEG with overlapping segments opened on its series."""
    viewer = _window()
    viewer.open(str(SHARED / "seg_dcmqi/ct-3slice"), plugin="napari-domainseg")
    viewer.layers[0].contrast_limits = (-160, 240)
    viewer.open(str(SHARED / "seg_dcmqi/partial_overlaps.dcm"), plugin="napari-domainseg")
    for layer in viewer.layers[1:]:
        layer.opacity = 0.5
    viewer.dims.set_point(0, viewer.layers[0].data_to_world([1, 0, 0])[0])
    return _shoot(viewer, "medical-dicom-seg.png")


def sentinel_scene() -> Path:
    """A Sentinel-2 true-colour COG with the cursor's map coordinates and lon/lat."""
    viewer = _window()
    path = next((GEO / "sentinel2_tci").glob("*.tif"))
    viewer.open(str(path), plugin="napari-domainseg")
    viewer.reset_view()
    layer = viewer.layers[0]
    viewer.cursor.position = tuple(layer.data_to_world((300, 250)))
    _settle(viewer, lambda: viewer.text_overlay.visible)
    out = OUT / "geo-scene.png"
    viewer.screenshot(str(out), canvas_only=False)
    viewer.close()
    return out


def _landsat_labels() -> np.ndarray:
    """Land cover painted from the Landsat scene: water, vegetation, clouds (for the picture)."""
    import rasterio

    with rasterio.open(GEO / "landsat_rgb/RGB.byte.tif") as src:
        red, green, blue = (band.astype(int) for band in src.read())
    labels = np.zeros(red.shape, np.uint8)
    valid = (red + green + blue) > 0
    labels[valid & (blue > red + 15)] = 1  # water
    labels[valid & (green >= blue) & (red < 60)] = 2  # tree cover
    labels[valid & (red > 180) & (green > 180) & (blue > 180)] = 9  # cloud
    return labels


def landsat_annotated() -> Path:
    """Landsat with a land-cover labels layer made for it, and the label schema panel."""
    from napari_domainseg._napari._annotation import add_annotation_layer
    from napari_domainseg.labels import load_preset

    viewer = _window()
    viewer.open(str(GEO / "landsat_rgb/RGB.byte.tif"), plugin="napari-domainseg")
    labels = add_annotation_layer(viewer, viewer.layers[0], load_preset("land_cover"))
    labels.data = _landsat_labels()
    labels.opacity = 0.5
    viewer.layers.selection.active = labels
    viewer.window.add_plugin_dock_widget("napari-domainseg", "Label schema")
    return _shoot(viewer, "geo-annotated.png")


def landsat_polygons() -> Path:
    """The land cover exported as GeoPackage polygons and reopened as shapes over the scene."""
    import tempfile

    from napari_domainseg._napari import _layer_state as state
    from napari_domainseg.geo.vectors import export_polygons
    from napari_domainseg.labels import load_preset

    viewer = _window()
    viewer.open(str(GEO / "landsat_rgb/RGB.byte.tif"), plugin="napari-domainseg")
    grid = state.raster_grid_of(viewer.layers[0])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "land_cover.gpkg"
        labels = _landsat_labels()
        labels[labels != 1] = 0  # the water polygons
        export_polygons(path, labels, grid, load_preset("land_cover"), min_area=1e6)
        viewer.open(str(path), plugin="napari-domainseg")
    shapes = viewer.layers[-1]
    shapes.edge_width = 300
    shapes.edge_color = "yellow"
    viewer.window.add_plugin_dock_widget("napari-domainseg", "Import vectors as labels")
    return _shoot(viewer, "geo-polygons.png")


def annotation_panel_ct() -> Path:
    """The annotation panel on a CT: bone thresholded, islands removed, statistics in mL."""
    from napari_domainseg.labels import load_preset

    viewer = _window()
    viewer.open(str(SHARED / "seg_dcmqi/ct-3slice"), plugin="napari-domainseg")
    _, panel = viewer.window.add_plugin_dock_widget("napari-domainseg", "Annotation")
    panel.classes.set_schema(load_preset("ct_abdomen_head"))
    labels = panel.new_annotation_layer()
    labels.selected_label = 5  # bone
    panel.tools.range_box.setCurrentText("bone")
    panel.tools._on_range(0)
    panel.tools.in_slice.setCurrentText("whole volume")
    panel.tools.threshold()
    panel.tools.island.setValue(500.0)
    panel.tools.clean("islands")
    panel.display.apply_window("abdomen")
    panel.statistics.recompute()  # in a worker thread: wait for its rows
    _settle(viewer, lambda: panel.statistics.table.rowCount() > 0)
    panel.tabs.setCurrentWidget(panel.statistics)
    viewer.dims.set_point(0, labels.data_to_world([1, 0, 0])[0])
    return _shoot(viewer, "medical-annotation-panel.png")


def annotation_panel_scene() -> Path:
    """The annotation panel on the 4-band sample scene: false colour and an NDVI layer."""
    viewer = _window()
    viewer.open_sample("napari-domainseg", "synthetic_scene")
    _, panel = viewer.window.add_plugin_dock_widget("napari-domainseg", "Annotation")
    panel.image_box.setCurrentText("scene B4 red")
    panel.display.apply_composite("false colour (NIR)")
    index = panel.display.add_index("NDVI")
    index.opacity = 0.6
    index.blending = "translucent"
    panel.tabs.setCurrentWidget(panel.display)
    return _shoot(viewer, "geo-annotation-panel.png")


def ortho_views() -> Path:
    """A head CT with coronal and sagittal views beside the axial view, labels in all three."""
    from napari_domainseg._napari._annotation import add_annotation_layer
    from napari_domainseg._widgets._ortho_views import OrthoViews

    viewer = _window()
    viewer.window.resize(1500, 900)
    viewer.open(str(SHARED / "ct_head_study"), plugin="napari-domainseg")
    labels = add_annotation_layer(viewer, viewer.layers[0])
    labels.data[9, 280:320, 180:340] = 4
    labels.data[5:20, 290:310, 240:260] = 2
    labels.refresh()
    views = OrthoViews(viewer)
    viewer.window.add_dock_widget(views, area="right", name="Orthogonal views")
    viewer.dims.set_point(0, viewer.layers[0].data_to_world((9, 0, 0))[0])
    _settle(viewer, lambda: True)
    for model in views.models:
        model.reset_view()
    out = _shoot(viewer, "medical-ortho-views.png")
    return out


def main() -> int:
    """Write every screenshot and print their paths."""
    OUT.mkdir(parents=True, exist_ok=True)
    makers = (series_picker, annotated, overlapping_seg, sentinel_scene, landsat_annotated)
    more = (landsat_polygons, annotation_panel_ct, annotation_panel_scene, ortho_views)
    for make in (*makers, *more):
        path = make()
        image = Image.open(path)
        assert np.asarray(image).std() > 10, f"{path} looks blank"
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
