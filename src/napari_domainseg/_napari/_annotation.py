"""The "New annotation layer for image" command: labels on the image's exact grid."""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._layer_data import schema_colormap
from napari_domainseg._napari._viewer_setup import watch

__all__ = [
    "add_annotation_layer",
    "add_region_annotation_layer",
    "new_annotation_layer",
    "new_region_annotation_layer",
]


def _target_image(viewer: Any) -> Any:
    import napari

    active = viewer.layers.selection.active
    if isinstance(active, napari.layers.Image):
        return active
    images = [layer for layer in viewer.layers if isinstance(layer, napari.layers.Image)]
    plugin_images = [layer for layer in images if state.is_plugin_layer(layer)]
    candidates = plugin_images or images
    return candidates[-1] if candidates else None


def add_annotation_layer(
    viewer: Any, image: Any, schema: Any = None, instances: bool = False
) -> Any:
    """Add a labels layer with ``image``'s shape, transform and geometry reference.

    The labels are uint8 (uint16 when the schema has ids above 255; int32
    with ``instances``), all 0;
    they share the image's geometry (exact affine, reorientation, source references),
    so every export lines up with the image.
    """
    from napari_domainseg.labels.annotation import annotation_metadata, new_label_array

    if schema is None:
        schema = state.schema_of(image)
    shape = image.data.shape[:-1] if image.rgb else image.data.shape
    kwargs = {"metadata": state.plugin_metadata(
        annotation_metadata(state.inherited_info(image), image.name, tuple(shape))
    )}  # fmt: skip
    state.set_geometry(kwargs, state.geometry_of(image))
    state.set_schema(kwargs, schema)
    labels = viewer.add_labels(
        new_label_array(tuple(shape), schema, instances),
        name=f"{image.name} labels",
        metadata=kwargs["metadata"],
        scale=image.scale,
        translate=image.translate,
        rotate=image.rotate,
        shear=image.shear,
        affine=image.affine,
        axis_labels=image.axis_labels,
        units=image.units,
    )
    if schema is not None:
        labels.colormap = schema_colormap(schema)
    return labels


def new_annotation_layer() -> None:
    """npe2 command: add a labels layer for the selected (or last) image layer."""
    from napari.utils.notifications import show_info, show_warning

    from napari import current_viewer

    viewer = current_viewer()
    if viewer is None:
        return
    watch(viewer)
    image = _target_image(viewer)
    if image is None:
        show_warning("New annotation layer: open an image first (no image layer in the viewer).")
        return
    labels = add_annotation_layer(viewer, image)
    show_info(f"Added '{labels.name}' on the grid of '{image.name}' ({labels.data.dtype}).")


def add_region_annotation_layer(
    viewer: Any, image: Any, bounds: tuple[float, float, float, float], schema: Any = None
) -> Any:
    """Add labels covering only the world rectangle ``bounds`` (y0, x0, y1, x1) of a 2D raster.

    For scenes too big to paint whole: the labels are the size of the window,
    placed exactly on the raster's pixels, and export onto the full grid
    (the rest unlabeled).
    """
    from napari_domainseg.geo.coordinates import window_from_world
    from napari_domainseg.geo.grid import RasterGrid
    from napari_domainseg.labels.annotation import annotation_metadata, new_label_array

    if image.ndim != 2:
        raise ValueError("region annotation layers are for 2D rasters")
    world = state.layer_data_to_world(image)
    shape = tuple(image.data.shape)
    window = window_from_world(world, bounds, shape)
    if schema is None:
        schema = state.schema_of(image)
    kwargs = {"metadata": state.plugin_metadata(
        annotation_metadata(state.inherited_info(image), image.name, shape)
    )}  # fmt: skip
    grid = state.raster_grid_of(image) or RasterGrid.of_world_affine(world, shape, None)
    row0, col0 = grid.region[:2] if grid.region is not None else (0, 0)  # a window of a window
    state.set_geometry(kwargs, grid.with_window((row0 + window[0], col0 + window[1], *window[2:])))
    state.set_schema(kwargs, schema)
    offset = np.array([[1.0, 0.0, window[0]], [0.0, 1.0, window[1]], [0.0, 0.0, 1.0]])
    labels = viewer.add_labels(
        new_label_array(window[2:], schema),
        name=f"{image.name} labels (rows {window[0]}-{window[0] + window[2]}, "
        f"cols {window[1]}-{window[1] + window[3]})",
        metadata=kwargs["metadata"],
        affine=world @ offset,
        axis_labels=image.axis_labels,
    )
    if schema is not None:
        labels.colormap = schema_colormap(schema)
    return labels


def _visible_bounds(viewer: Any) -> tuple[float, float, float, float] | None:
    """World bounds of a selected rectangle in a Shapes layer, else of the visible canvas."""
    import napari

    for layer in viewer.layers.selection:
        if isinstance(layer, napari.layers.Shapes) and len(layer.data):
            index = max(layer.selected_data) if layer.selected_data else len(layer.data) - 1
            vertices = np.asarray(layer.data_to_world(layer.data[index]))
            low, high = vertices.min(axis=0)[-2:], vertices.max(axis=0)[-2:]
            return (low[0], low[1], high[0], high[1])
    from napari_domainseg._napari._view import visible_world_box

    box = visible_world_box(viewer)
    if box is None:
        return None
    centre, half = box
    return (centre[0] - half[0], centre[1] - half[1], centre[0] + half[0], centre[1] + half[1])


def new_region_annotation_layer() -> None:
    """npe2 command: labels for the selected rectangle (Shapes) or the visible part of a raster."""
    from napari.utils.notifications import show_info, show_warning

    from napari import current_viewer

    viewer = current_viewer()
    if viewer is None:
        return
    watch(viewer)
    image = _target_image(viewer)
    if image is None or image.ndim != 2:
        show_warning("New annotation layer for region: open a 2D raster first.")
        return
    bounds = _visible_bounds(viewer)
    if bounds is None:
        show_warning("New annotation layer for region: draw a rectangle in a Shapes layer first.")
        return
    labels = add_region_annotation_layer(viewer, image, bounds)
    show_info(f"Added '{labels.name}' on the grid of '{image.name}'.")
