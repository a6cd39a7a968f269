"""What the canvas shows, from the public camera and canvas API (no ``viewer._canvas_size``)."""

from __future__ import annotations

import numpy as np

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._annotation import _visible_bounds, add_region_annotation_layer
from napari_domainseg._napari._view import visible_region, visible_world_box

PLUGIN = "napari-domainseg"


def test_region_annotation_follows_the_camera_on_a_north_up_raster(make_napari_viewer,
                                                                   shared_data):  # fmt: skip
    viewer = make_napari_viewer()
    viewer.open(str(shared_data / "geo/landsat_rgb/RGB.byte.tif"), plugin=PLUGIN)
    red = viewer.layers["RGB.byte red"]
    viewer.reset_view()
    assert visible_world_box(viewer) is not None
    whole = add_region_annotation_layer(viewer, red, _visible_bounds(viewer))
    assert whole.data.shape == red.data.shape  # the whole scene is in view: all of it
    viewer.layers.selection = {red}
    centre = red.data_to_world(np.array(red.data.shape) / 2)
    camera = viewer.camera
    camera.center = tuple(centre)
    camera.zoom *= 4
    rows, cols = visible_region(viewer, red)
    part = add_region_annotation_layer(viewer, red, _visible_bounds(viewer))
    height, width = part.data.shape
    assert (height, width) == (rows.stop - rows.start, cols.stop - cols.start)
    assert height < red.data.shape[0] / 2 and width < red.data.shape[1] / 2
    row0, col0 = state.raster_grid_of(part).region[:2]
    middle = np.array(red.data.shape) / 2
    assert row0 < middle[0] < row0 + height and col0 < middle[1] < col0 + width
