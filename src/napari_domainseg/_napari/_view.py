"""What the canvas shows, from napari's public camera and canvas API only.

``layer.corner_pixels`` is updated only when the canvas is drawn, so right after the view
changes (``reset_view``, a zoom, a panel docked beside the canvas) it still describes the
previous view; and the canvas size was private (``viewer._canvas_size``) before napari 0.9.
These helpers use the camera's centre and zoom (canvas pixels per world unit) and
``viewer.canvas.size`` (napari 0.9), so they are right whatever the sign of a layer's scale (a
north-up raster has a negative y scale) or its affine.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def camera_of(viewer: Any) -> Any:
    """The viewer's camera (``viewer.scene.camera`` from napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return getattr(scene, "camera", None) or viewer.camera


def visible_world_box(viewer: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Centre and half-size of the 2-D canvas in world units of the displayed axes.

    None on a 3-D canvas, or when the canvas size is unknown (napari before 0.9, no canvas).
    """
    size = getattr(getattr(viewer, "canvas", None), "size", None)
    if viewer.dims.ndisplay != 2 or not size or min(size) <= 0:
        return None
    camera = camera_of(viewer)
    centre = np.asarray(camera.center, dtype=float)[-2:]
    half = np.asarray(size, dtype=float)[:2] / float(camera.zoom) / 2.0
    return centre, half


def visible_region(viewer: Any, layer: Any) -> tuple[slice, slice] | None:
    """The pixels of a 2-D ``layer`` (its last two axes) the canvas shows (None: unknown)."""
    box = visible_world_box(viewer)
    if box is None:
        return None
    centre, half = box
    displayed = list(viewer.dims.displayed)
    point = np.asarray(viewer.dims.point, dtype=float)
    corners = []
    for dy in (-1, 1):
        for dx in (-1, 1):
            world = point.copy()
            world[displayed] = centre + half * (dy, dx)
            corners.append(np.asarray(layer.world_to_data(world), dtype=float)[-2:])
    corners = np.asarray(corners)
    shape = layer.data.shape[-2:]
    region = []
    for axis in range(2):
        low = int(np.clip(np.floor(corners[:, axis].min() + 0.5), 0, shape[axis] - 1))
        high = int(np.clip(np.floor(corners[:, axis].max() + 0.5) + 1, low + 1, shape[axis]))
        region.append(slice(low, high))
    return (region[0], region[1])
