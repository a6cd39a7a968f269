"""Show each domain's data the way its users expect to see it.

The viewer follows the active layer:

- geospatial: world y is northing, so the camera's vertical axis points up
  (north up);
- medical, axial acquisition: slider over z; world y is posterior, so the
  vertical axis points down (anterior up) and patient left is on the right;
- medical, coronal or sagittal acquisition: the slider steps through the
  acquired slices (world y or x) and the view shows (z, x) or (z, y) with
  superior up; sagittal views have anterior on the left.

Layer data and world coordinates never change; only ``viewer.dims.order``
and ``viewer.camera.orientation2d`` do, and only when the active layer needs
a different view from the one last applied (a user's own choice stays until
then).
"""

from __future__ import annotations

import weakref
from typing import Any

from napari_domainseg._napari._layer_data import METADATA_KEY

# (domain, acquisition plane) -> (dims order for a 3D world or None, vertical axis direction)
_VIEWS: dict[tuple[str, str | None], tuple[tuple[int, int, int] | None, str]] = {
    ("geo", None): (None, "up"),
    ("medical", "axial"): ((0, 1, 2), "down"),
    ("medical", "coronal"): ((1, 0, 2), "up"),
    ("medical", "sagittal"): ((2, 0, 1), "up"),
}
_last_view: dict[int, tuple[str, str | None] | None] = {}


def layer_domain(layer: Any) -> str | None:
    """Return ``"medical"``, ``"geo"`` or ``None`` for a layer."""
    entry = getattr(layer, "metadata", {}).get(METADATA_KEY, {})
    return entry.get("domain")


def view_key(layer: Any) -> tuple[str, str | None] | None:
    """The ``_VIEWS`` key of a layer, or ``None`` for layers the plugin did not make."""
    domain = layer_domain(layer)
    if domain == "geo":
        return ("geo", None)
    if domain == "medical":
        plane = layer.metadata[METADATA_KEY].get("acquisition_plane") or "axial"
        return ("medical", plane)
    return None


def orient_camera_for(viewer: Any, layer: Any) -> None:
    """Apply the view the layer's domain and acquisition plane call for, if not applied yet."""
    key = view_key(layer)
    if key is None or key not in _VIEWS or _last_view.get(id(viewer)) == key:
        return
    _last_view[id(viewer)] = key
    order, vertical = _VIEWS[key]
    if order is not None and viewer.dims.ndim == 3:
        viewer.dims.order = order
    if viewer.camera.orientation2d != (vertical, "right"):
        viewer.camera.orientation2d = (vertical, "right")


def follow_domain_orientation(viewer: Any) -> None:
    """Orient the camera for the active layer now and whenever it changes (idempotent)."""
    if id(viewer) in _last_view:
        return
    _last_view[id(viewer)] = None
    weakref.finalize(viewer, _last_view.pop, id(viewer), None)

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
