"""Annotation panel: statistics never count a raster's nodata; the stretch of a warped raster.

A generated GeoTIFF whose top half is nodata is labelled entirely as one class: the class
counts every labelled pixel, but its mean, minimum and maximum come from the pixels with data
only. A raster georeferenced by ground control points, warped, is stretched from the warped
scene (``open_scene(..., gcps="warp")``), not from its pixel grid.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._gcp_warp import warp_layers
from napari_domainseg._widgets._annotation_panel import AnnotationPanel
from napari_domainseg._widgets._tab_statistics import image_validity
from napari_domainseg.geo import scene as scene_module

from ..helpers.geotiffs import gcp_geotiff

PLUGIN = "napari-domainseg"


def _raster(path, dtype: str, nodata: float):
    values = np.full((64, 64), 100, dtype)
    values[:, 32:] = 300
    values[:32] = nodata
    with rasterio.open(path, "w", driver="GTiff", height=64, width=64, count=1, dtype=dtype,
                       crs="EPSG:32633", transform=from_origin(500000, 6000000, 10, 10),
                       nodata=nodata) as dst:  # fmt: skip
        dst.write(values, 1)
    return path


@pytest.mark.parametrize("dtype, nodata", [("uint16", 9999), ("int16", -9999), ("float32", -1.0),
                                           ("float32", float("nan"))])  # fmt: skip
def test_statistics_leave_nodata_out_of_the_means(make_napari_viewer, qtbot, tmp_path, dtype,
                                                  nodata):  # fmt: skip
    viewer = make_napari_viewer()
    viewer.open(str(_raster(tmp_path / "scene.tif", dtype, nodata)), plugin=PLUGIN)
    (image,) = viewer.layers
    assert not image.multiscale
    panel = AnnotationPanel(viewer)
    labels = panel.new_annotation_layer()
    labels.data[:] = 1  # nodata pixels included
    panel.statistics.recompute()
    qtbot.waitUntil(lambda: not panel.statistics._running, timeout=10000)
    (row,) = panel.statistics.stats.rows()
    assert row.count == 64 * 64, "sizes count every labelled pixel"
    assert row.mean == pytest.approx(200.0), "nodata never enters a mean"
    assert (row.minimum, row.maximum) == (100.0, 300.0)


def test_a_value_the_band_cannot_hold_masks_nothing(make_napari_viewer, tmp_path):
    path = tmp_path / "zeros.tif"
    with rasterio.open(path, "w", driver="GTiff", height=8, width=8, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(0, 80, 10, 10)) as dst:  # fmt: skip
        dst.write(np.zeros((8, 8), np.uint8), 1)
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin=PLUGIN)
    (image,) = viewer.layers
    assert image_validity(image) is None, "an integer band without nodata: nothing to mask"
    state.update(image, nodata=-9999)  # not a uint8 value: 0 stays a value
    assert image_validity(image) is None, "0 is data, never mistaken for the nodata"


def test_stretch_of_a_warped_raster_reads_the_warped_scene(make_napari_viewer, tmp_path,
                                                           monkeypatch):  # fmt: skip
    ramp = np.arange(40 * 50).reshape(40, 50).astype(np.uint8) % 200 + 20
    path = gcp_geotiff(tmp_path / "gcps.tif", ramp)
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin=PLUGIN)
    (warped,) = warp_layers(viewer, list(viewer.layers))
    assert state.get(warped, "gcps") == "warp"
    opened = []
    original = scene_module.open_scene

    def recording(source, gcps="pixels"):
        opened.append(gcps)
        return original(source, gcps=gcps)

    monkeypatch.setattr(scene_module, "open_scene", recording)
    panel = AnnotationPanel(viewer)
    panel.display.low_percent.setValue(2)
    panel.display.high_percent.setValue(98)
    panel.display.apply_stretch()
    assert opened == ["warp"]
    values = original(path, gcps="warp").sample(0).compressed()
    expected = np.percentile(values, (2, 98))
    np.testing.assert_allclose(warped.contrast_limits, expected)
