"""Keep the 2D camera oriented the way each domain expects.

Medical world y is posterior, which napari's default downward vertical axis
shows as anterior up (radiological convention). Geospatial world y is
northing, which must point up for north-up display. The viewer follows the
domain of the active layer.
"""

from __future__ import annotations

import weakref
from typing import Any

from napari_domainseg._napari._layer_data import METADATA_KEY

_VERTICAL = {"medical": "down", "geo": "up"}
_followed: set[int] = set()


def layer_domain(layer: Any) -> str | None:
    """Return ``"medical"``, ``"geo"`` or ``None`` for a layer."""
    entry = getattr(layer, "metadata", {}).get(METADATA_KEY, {})
    return entry.get("domain")


def orient_camera_for(viewer: Any, layer: Any) -> None:
    """Point the camera's vertical axis as the layer's domain expects."""
    vertical = _VERTICAL.get(layer_domain(layer) or "")
    if vertical is not None and viewer.camera.orientation2d[0] != vertical:
        viewer.camera.orientation2d = (vertical, "right")


def follow_domain_orientation(viewer: Any) -> None:
    """Orient the camera for the active layer now and whenever it changes (idempotent)."""
    if id(viewer) in _followed:
        return
    _followed.add(id(viewer))
    weakref.finalize(viewer, _followed.discard, id(viewer))

    def on_active(event: Any) -> None:
        if event.value is not None:
            orient_camera_for(viewer, event.value)

    viewer.layers.selection.events.active.connect(on_active)
    if viewer.layers.selection.active is not None:
        orient_camera_for(viewer, viewer.layers.selection.active)


def follow_in_current_viewer() -> None:
    """Install :func:`follow_domain_orientation` in the current napari viewer, if any."""
    import napari

    viewer = napari.current_viewer()
    if viewer is not None:
        follow_domain_orientation(viewer)
