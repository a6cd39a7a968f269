"""Map coordinates and longitude/latitude of the cursor, shown in the canvas's text overlay.

Installed once per viewer by the raster reader. On each cursor move it finds
the geo layer under consideration (the active one, else the last geo layer),
and formats the world position with a cached ``MapCoordinates`` formatter
(:mod:`napari_domainseg.geo.coordinates`): a few microseconds, no file access.
"""

from __future__ import annotations

import weakref
from typing import Any

from napari_domainseg._napari._layer_data import METADATA_KEY

_installed: set[int] = set()


def _geo_entry(viewer: Any) -> dict | None:
    active = viewer.layers.selection.active
    candidates = [active] if active is not None else []
    candidates += list(reversed(viewer.layers))
    for layer in candidates:
        entry = layer.metadata.get(METADATA_KEY, {})
        if entry.get("domain") == "geo":
            return entry
    return None


def map_cursor_text(viewer: Any, formatters: dict[str | None, Any]) -> str:
    """The overlay text for the viewer's cursor position ('' when no geo layer is open)."""
    from napari_domainseg.geo.coordinates import MapCoordinates

    entry = _geo_entry(viewer)
    if entry is None:
        return ""
    crs_wkt = entry.get("crs_wkt")
    formatter = formatters.get(crs_wkt)
    if formatter is None:
        formatter = formatters[crs_wkt] = MapCoordinates(crs_wkt)
    position = viewer.cursor.position
    if len(position) < 2:
        return ""
    y, x = position[-2], position[-1]
    return formatter.describe(float(y), float(x))


def install_map_cursor(viewer: Any) -> None:
    """Show the cursor's map coordinates in ``viewer`` from now on (idempotent)."""
    if id(viewer) in _installed:
        return
    _installed.add(id(viewer))
    weakref.finalize(viewer, _installed.discard, id(viewer))
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


def show_map_coordinates() -> None:
    """Install the map cursor readout in the current viewer, if there is one."""
    import napari

    viewer = napari.current_viewer()
    if viewer is not None:
        install_map_cursor(viewer)
