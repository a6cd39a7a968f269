"""Layers > Register > "Warp raster by its ground control points".

A raster georeferenced only by GCPs opens in pixel coordinates (with a warning that says so); this
command replaces its layers with the same raster warped onto a map grid by GDAL's GCP transformer,
read lazily. It is a command, not a second reader, so opening a file never depends on which of two
readers napari happens to try first.
"""

from __future__ import annotations

from typing import Any

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._viewer_setup import watch


def gcp_layers(layers: Any) -> dict[str, list[Any]]:
    """The layers shown in pixel coordinates from a GCP-only raster, grouped by source file."""
    groups: dict[str, list[Any]] = {}
    for layer in layers:
        warped = state.get(layer, "gcps") == "warp"
        if state.domain_of(layer) == "geo" and state.get(layer, "gcp_only") and not warped:
            groups.setdefault(state.source_path_of(layer), []).append(layer)
    return groups


def warp_layers(viewer: Any, layers: Any) -> list[Any]:
    """Replace the GCP rasters among ``layers`` by their warped versions; return the new layers."""
    from napari.layers import Layer
    from napari.utils.notifications import show_error, show_warning

    from napari_domainseg._napari._geo_reader import read_raster_warped

    groups = gcp_layers(layers)
    if not groups:
        show_warning(
            "Warp by ground control points: select a layer opened from a raster that is "
            "georeferenced only by ground control points (its warning says so when it opens)."
        )
        return []
    added = []
    for source, old in groups.items():
        try:
            layer_data = read_raster_warped(source)
        except Exception as exc:  # a command must never crash napari
            show_error(f"Cannot warp {source}: {exc}")
            continue
        for layer in old:
            viewer.layers.remove(layer)
        for data, kwargs, kind in layer_data:
            added.append(viewer.add_layer(Layer.create(data, kwargs, kind)))
    return added


def warp_selected_by_gcps() -> None:
    """npe2 command: warp the selected GCP rasters (or every one, when none is selected)."""
    from napari import current_viewer

    viewer = current_viewer()
    if viewer is None:
        return
    watch(viewer)
    selected = list(viewer.layers.selection) or list(viewer.layers)
    warp_layers(viewer, selected)
