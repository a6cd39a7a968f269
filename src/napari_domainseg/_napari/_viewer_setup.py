"""What the plugin sets up in a napari viewer, done when the plugin's layers arrive in it.

Readers return layer data and nothing else. Everything a viewer needs for those layers is done
here, by a hook on the viewer's layer insertion, in the viewer the layers were inserted into:

- the view each domain's users expect (:mod:`._orientation`), applied when the active
  layer changes: north up for rasters, radiological orientation in the acquisition plane
  for volumes;
- the map-coordinate readout of the cursor (:mod:`._map_cursor`), once a geo layer arrives;
- the notice that labels autosaved for an image can be restored (:mod:`._autosave`);
- a DICOM SEG opened without its series, placed on that series when it is open here;
- vectors opened in their own CRS, reprojected into the map of the raster open here;
- the autosaver of the viewer's annotation layers (started by the Annotation panel).

The plugin's widgets and commands call :func:`watch` with their viewer; readers and sample
data call :func:`watch_current_viewer`, which only registers the hook (idempotent) and
changes nothing in the viewer. One :class:`ViewerSetup` per viewer lives as long as the
viewer (a weak-keyed map on the viewer object, not on ``id(viewer)``, whose values can be
reused; the set-up and its autosaver hold the viewer weakly). A viewer the plugin never saw
(a second viewer a script opens files in while another is current) gets no set-up until a
plugin widget or command runs in it.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

import numpy as np

from napari_domainseg._napari import _layer_state as state

SEG_FILE, SEG_SERIES, SEG_INDEX = state.SEG_FILE, state.SEG_SERIES, state.SEG_INDEX
OPENED_FOR_SEG, VECTOR_FILE = state.OPENED_FOR_SEG, state.VECTOR_FILE

_setups: weakref.WeakKeyDictionary[Any, ViewerSetup] = weakref.WeakKeyDictionary()


class ViewerSetup:
    """The plugin's hook on one viewer: reacts to inserted layers and to the active layer.

    Parameters
    ----------
    viewer
        The napari viewer (held weakly).
    """

    def __init__(self, viewer: Any) -> None:
        self._viewer = weakref.ref(viewer)
        self.applied_view: tuple[str, str | None] | None = None
        self.map_cursor = False
        self._autosaver: Any = None
        self._offered: set[str] = set()
        self._dropping: list[Any] = []
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.layers.events.removed.connect(self._on_removed)
        viewer.layers.selection.events.active.connect(self._on_active)
        for layer in list(viewer.layers):
            self.set_up_for(layer)
        if viewer.layers.selection.active is not None:
            self.orient(viewer.layers.selection.active)

    @property
    def viewer(self) -> Any:
        """The viewer (``None`` once it is gone)."""
        return self._viewer()

    @property
    def autosaver(self) -> Any:
        """The viewer's autosaver, started on first use."""
        if self._autosaver is None:
            from napari_domainseg._napari._autosave import Autosaver

            self._autosaver = Autosaver(self.viewer)
        return self._autosaver

    # ------------------------------------------------------------------ events

    def _on_inserted(self, event: Any) -> None:
        self.set_up_for(event.value)

    def _on_removed(self, event: Any) -> None:
        """A closed image is announced again when it is opened again."""
        try:
            layer = event.value
            if state.is_plugin_layer(layer) and state.geometry_of(layer) is not None:
                self._offered.discard(state.recovery_key_of(layer, _shape_of(layer)))
        except Exception:  # bookkeeping only
            pass

    def _on_active(self, event: Any) -> None:
        if event.value is not None:
            self.orient(event.value)

    def orient(self, layer: Any) -> None:
        """Apply the view ``layer`` calls for, if it is not the one applied last."""
        from napari.utils.notifications import show_warning

        from napari_domainseg._napari._orientation import orient_camera_for

        viewer = self.viewer
        try:
            if viewer is not None:
                self.applied_view = orient_camera_for(viewer, layer, self.applied_view)
        except Exception as exc:  # set-up must never break opening a file
            show_warning(f"{layer.name}: the view could not be set ({exc})")

    def set_up_for(self, layer: Any) -> None:
        """What the viewer needs for a layer that arrived (nothing for layers of others)."""
        from napari.utils.notifications import show_warning

        if not state.is_plugin_layer(layer):
            return
        try:
            if state.domain_of(layer) == "geo" and not self.map_cursor:
                from napari_domainseg._napari._map_cursor import install_map_cursor

                install_map_cursor(self.viewer)
                self.map_cursor = True
            if state.has(layer, OPENED_FOR_SEG):
                state.remove(layer, OPENED_FOR_SEG)  # a copy of the layer is not dropped
                if self._drop_if_already_open(layer):
                    return
            if state.has(layer, SEG_FILE):
                self._place_seg(layer)
            elif state.has(layer, VECTOR_FILE):
                self._place_vectors(layer)
            else:
                self._offer_recovery(layer)
                self._place_waiting_for(layer)
        except Exception as exc:  # set-up must never break opening a file
            show_warning(f"{layer.name}: {exc}")

    # ------------------------------------------------------------------ recovery notices

    def _offer_recovery(self, layer: Any) -> None:
        from napari.layers import Image

        from napari_domainseg._napari._autosave import offer_recovery

        if not isinstance(layer, Image):
            return
        shape = _shape_of(layer)
        key = state.recovery_key_of(layer, shape)
        if key not in self._offered:  # once per image (a raster's bands share one)
            self._offered.add(key)
            offer_recovery(layer, shape)

    # ------------------------------------------------------------------ DICOM SEG

    def image_of_series(self, series_uids: list[str], besides: Any = None) -> Any | None:
        """The first image layer of this viewer (other than ``besides``) showing ``series_uids``."""
        from napari.layers import Image

        for layer in list(self.viewer.layers) if self.viewer is not None else []:
            geometry = state.volume_geometry_of(layer)
            if (
                isinstance(layer, Image)
                and layer is not besides
                and layer not in self._dropping
                and geometry is not None
                and geometry.source.series_instance_uid in series_uids
            ):
                return layer
        return None

    def _place_waiting_for(self, layer: Any) -> None:
        """Place what waited for ``layer``: SEGs of its series, vectors for its map."""
        viewer = self.viewer
        volume, grid = state.volume_geometry_of(layer), state.raster_grid_of(layer)
        for other in list(viewer.layers) if viewer is not None else []:
            if other is layer:
                continue
            series = state.get(other, SEG_SERIES) or []
            if volume is not None and volume.source.series_instance_uid in series:
                self._place_seg(other)
            elif grid is not None and grid.crs is not None and state.has(other, VECTOR_FILE):
                self._place_vectors(other)

    def _drop_if_already_open(self, image: Any) -> bool:
        """Remove a series a SEG reader opened again when this viewer already shows it.

        napari is still inserting the layer, so it is removed once control returns to the
        event loop; the SEG's labels land on the series already open.
        """
        from napari.layers import Image
        from napari.utils.notifications import show_info
        from qtpy.QtCore import QTimer

        if not isinstance(image, Image):
            return False
        series = state.volume_geometry_of(image).source.series_instance_uid
        if self.image_of_series([series], besides=image) is None:
            return False
        self._dropping.append(image)

        def drop() -> None:
            viewer = self.viewer
            if viewer is not None and image in viewer.layers:
                viewer.layers.remove(image)
            self._dropping.remove(image)

        QTimer.singleShot(0, drop)
        show_info(f"'{image.name}' is already open: the SEG's labels are placed on it.")
        return True

    def _place_seg(self, layer: Any) -> None:
        """Put a SEG read in its own geometry onto its series' grid, when that series is open."""
        from napari.utils.notifications import show_info

        from napari_domainseg._napari._layer_data import layer_data
        from napari_domainseg.formats.base import Read
        from napari_domainseg.formats.dicom_seg import seg_on_image

        image = self.image_of_series(list(state.get(layer, SEG_SERIES) or []))
        if image is None:
            return
        same_grid = state.geometry_of(layer) == state.geometry_of(image)
        if same_grid and np.allclose(
            state.layer_data_to_world(layer), state.layer_data_to_world(image)
        ):
            for mark in (SEG_FILE, SEG_SERIES, SEG_INDEX):
                state.remove(layer, mark)  # on it already: nothing left to do
            return
        seg_file, index = Path(state.get(layer, SEG_FILE)), int(state.get(layer, SEG_INDEX) or 0)
        on = Read(
            None,
            seg_file,
            geometry=state.volume_geometry_of(image),
            metadata=state.inherited_info(image),
            name=image.name,
        )
        maps = seg_on_image(seg_file, on)
        ((data, kwargs, _),) = layer_data(maps[min(index, len(maps) - 1)])
        layer.data = data
        layer.scale = np.ones(layer.ndim)
        layer.translate = np.zeros(layer.ndim)
        layer.affine = state.layer_data_to_world(image)  # where the image is shown now
        layer.metadata = kwargs["metadata"]
        show_info(f"{seg_file.name}: placed on the open series '{image.name}'.")

    # ------------------------------------------------------------------ vectors

    def _raster_layer(self) -> Any | None:
        viewer = self.viewer
        if viewer is None:
            return None
        rasters = [
            layer
            for layer in viewer.layers
            if (grid := state.raster_grid_of(layer)) is not None and grid.crs is not None
        ]
        active = viewer.layers.selection.active
        if active in rasters:
            return active
        return rasters[-1] if rasters else None

    def _place_vectors(self, layer: Any) -> None:
        """Reproject vectors read in their own CRS into the map of the raster open here."""
        from napari.utils.notifications import show_info, show_warning

        from napari_domainseg._napari._geo_reader import vector_polygons

        raster = self._raster_layer()
        if raster is None:
            show_warning(
                f"{layer.name}: no georeferenced raster is open, so the vectors are shown in "
                "their own CRS's map coordinates; they move into the raster's map when you "
                "open it."
            )
            return  # still marked: placed when a raster arrives
        grid = state.raster_grid_of(raster)
        path = state.get(layer, VECTOR_FILE)
        state.remove(layer, VECTOR_FILE)
        polygons, features, original, _ = vector_polygons(path, grid)
        if original.equals(grid.crs):
            return
        layer.data = polygons
        layer.features = features
        state.update(layer, crs_wkt=grid.crs_wkt)
        show_info(f"{layer.name}: reprojected from {original.to_string()} to the raster's CRS.")


def open_series() -> set[str]:
    """Series instance UIDs of the image layers open in the viewers the plugin watches.

    A SEG reader asks, so it does not search the disk for a series the user already has
    open; the labels are placed on it when they arrive in its viewer.
    """
    found: set[str] = set()
    for viewer in list(_setups):
        for layer in list(viewer.layers):
            geometry = state.volume_geometry_of(layer)
            if geometry is not None and geometry.source.series_instance_uid:
                found.add(geometry.source.series_instance_uid)
    return found


def watch(viewer: Any) -> ViewerSetup:
    """The plugin's set-up of ``viewer``, registered on first use (idempotent)."""
    setup = _setups.get(viewer)
    if setup is None:
        setup = _setups[viewer] = ViewerSetup(viewer)
    return setup


def watch_current_viewer() -> None:
    """Register the layer-insertion hook on the current napari viewer, if there is one.

    For readers and sample data, whose layers napari inserts next. The reader itself changes
    nothing in the viewer; on first registration the hook sets up the layers already open
    (their view, a waiting SEG or vector layer), as it does for each layer that arrives.
    """
    try:
        import napari

        viewer = napari.current_viewer()
    except Exception:  # no Qt, no viewer: nothing to set up
        return
    if viewer is not None:
        watch(viewer)


def _shape_of(layer: Any) -> tuple[int, ...]:
    """A layer's full-resolution shape (the first level of a multiscale image)."""
    return tuple(layer.data[0].shape if getattr(layer, "multiscale", False) else layer.data.shape)
