"""Map coordinates and longitude/latitude of the cursor, shown in the canvas's text overlay.

Installed once per viewer (:mod:`._viewer_setup`) when a geo layer arrives. On each cursor
move it finds
the geo layer under consideration (the active one, else the last geo layer),
and formats the world position with a cached ``MapCoordinates`` formatter
(:mod:`napari_domainseg.geo.coordinates`): a few microseconds, no file access.
"""

from __future__ import annotations

from typing import Any

from napari_domainseg._napari import _layer_state as state


def _geo_layer(viewer: Any) -> Any | None:
    active = viewer.layers.selection.active
    candidates = [active] if active is not None else []
    candidates += list(reversed(viewer.layers))
    for layer in candidates:
        if state.domain_of(layer) == "geo":
            return layer
    return None


def map_cursor_text(viewer: Any, formatters: dict[Any, Any]) -> str:
    """The overlay text for the viewer's cursor position ('' when no geo layer is open)."""
    from napari_domainseg.geo.coordinates import MapCoordinates

    layer = _geo_layer(viewer)
    if layer is None:
        return ""
    grid = state.raster_grid_of(layer)
    key = grid if grid is not None else state.get(layer, "crs_wkt")
    formatter = formatters.get(key)
    if formatter is None:  # the CRS is parsed once per grid (or vector layer)
        crs = grid.crs if grid is not None else state.get(layer, "crs_wkt")
        formatter = formatters[key] = MapCoordinates(crs)
    position = viewer.cursor.position
    if len(position) < 2:
        return ""
    y, x = position[-2], position[-1]
    return formatter.describe(float(y), float(x))


def install_map_cursor(viewer: Any) -> None:
    """Show the cursor's map coordinates in ``viewer``'s text overlay from now on.

    Called once per viewer by :class:`._viewer_setup.ViewerSetup` when the first geo layer
    arrives.
    """
    formatters: dict[str | None, Any] = {}
    overlay = viewer.text_overlay
    overlay.position = "bottom_left"
    overlay.font_size = 10
    overlay.color = "white"

    def on_move(event: Any = None) -> None:
        text = map_cursor_text(viewer, formatters)
        overlay.text = text
        overlay.visible = bool(text)

    viewer.cursor.events.position.connect(on_move)
