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
then). :mod:`._viewer_setup` calls this when the active layer changes.
"""

from __future__ import annotations

from typing import Any

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._view import camera_of

# (domain, acquisition plane) -> (dims order for a 3D world or None, vertical axis direction)
_VIEWS: dict[tuple[str, str | None], tuple[tuple[int, int, int] | None, str]] = {
    ("geo", None): (None, "up"),
    ("medical", "axial"): ((0, 1, 2), "down"),
    ("medical", "coronal"): ((1, 0, 2), "up"),
    ("medical", "sagittal"): ((2, 0, 1), "up"),
}


def layer_domain(layer: Any) -> str | None:
    """Return ``"medical"``, ``"geo"`` or ``None`` for a layer."""
    return state.domain_of(layer)


def view_key(layer: Any) -> tuple[str, str | None] | None:
    """The ``_VIEWS`` key of a layer, or ``None`` for layers the plugin did not make."""
    domain = layer_domain(layer)
    if domain == "geo":
        return ("geo", None)
    if domain == "medical":
        plane = state.get(layer, "acquisition_plane") or "axial"
        return ("medical", plane)
    return None


def orient_camera_for(viewer: Any, layer: Any, applied: tuple[str, str | None] | None) -> Any:
    """Apply the view ``layer``'s domain and acquisition plane call for, unless already ``applied``.

    Returns the view now applied (``applied`` when nothing changed): the caller keeps it, so
    a user's own choice of view stays until a layer needs a different one.
    """
    key = view_key(layer)
    if key is None or key not in _VIEWS or applied == key:
        return applied
    order, vertical = _VIEWS[key]
    if order is not None and viewer.dims.ndim == 3:
        viewer.dims.order = order
    camera = camera_of(viewer)
    if camera.orientation2d != (vertical, "right"):
        camera.orientation2d = (vertical, "right")
    return key
