"""The "Orthogonal views" dock widget: the two other planes of a volume, beside the main view.

Each side view is a napari canvas (its own ``ViewerModel``) holding copies of
the main viewer's 3D layers that share their data arrays, so painting in any
view paints the same labels. The views follow one another's slice position
(the dims point), are oriented as radiologists expect (axial anterior up;
coronal and sagittal superior up), and follow the main viewer's selected
label, painting mode and brush size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from napari.components.viewer_model import ViewerModel
from napari.layers import Image, Labels, Layer
from napari.qt import QtViewer
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QSplitter

from napari_domainseg._napari import _layer_state as state

if TYPE_CHECKING:
    import napari

# slider axis -> (dims order, camera's vertical direction, plane name)
PLANES = {
    0: ((0, 1, 2), "down", "axial"),
    1: ((1, 0, 2), "up", "coronal"),
    2: ((2, 0, 1), "up", "sagittal"),
}
_SYNCED_LABEL_STATE = ("selected_label", "mode", "brush_size", "preserve_labels")


class OrthoViews(QSplitter):
    """Two side views of the planes the main viewer does not show."""

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__(Qt.Orientation.Vertical)
        self.viewer = napari_viewer
        self.models: list[ViewerModel] = []
        self.canvases: list[QtViewer] = []
        self._copies: dict[int, list[Layer]] = {}
        self._connections: list[tuple[Any, Any]] = []
        self._syncing = False
        shown = int(napari_viewer.dims.order[0]) if napari_viewer.dims.ndim == 3 else 0
        for axis in (a for a in (0, 1, 2) if a != shown):
            order, vertical, plane = PLANES[axis]
            model = ViewerModel(title=plane)
            canvas = QtViewer(model)
            self.models.append(model)
            self.canvases.append(canvas)
            self.addWidget(canvas)
            model.dims.events.current_step.connect(self._side_step_changed)
            model._domainseg_view = (order, vertical)
        for layer in napari_viewer.layers:
            self.add_copies(layer)
        self._connect(napari_viewer.layers.events.inserted, lambda e: self.add_copies(e.value))
        self._connect(napari_viewer.layers.events.removed, lambda e: self.remove_copies(e.value))
        self._connect(napari_viewer.dims.events.current_step, self._main_step_changed)
        self._main_step_changed()

    def _connect(self, emitter: Any, callback: Any) -> None:
        emitter.connect(callback)
        self._connections.append((emitter, callback))

    # -- layers -------------------------------------------------------------------------------
    def add_copies(self, layer: Layer) -> None:
        """Show a 3D image or labels layer in the side views (sharing its data)."""
        if not isinstance(layer, (Image, Labels)) or layer.ndim != 3 or id(layer) in self._copies:
            return
        copies = []
        for model in self.models:
            data, kwargs, kind = layer.as_layer_data_tuple()
            kwargs = {k: v for k, v in kwargs.items() if k != "metadata"}
            kwargs["metadata"] = state.plugin_metadata({"copy_of": layer.name})
            copy = model.add_layer(Layer.create(data, kwargs, kind))
            copies.append(copy)
            order, vertical = model._domainseg_view
            model.dims.order = order
            model.camera.orientation2d = (vertical, "right")
            model.reset_view()
        self._copies[id(layer)] = copies
        self._connect(layer.events.data, lambda _event: self._follow_data(layer, copies))
        if isinstance(layer, Labels):
            self._connect(layer.events.paint, lambda _event: self._refresh(copies))
            for copy in copies:
                copy.events.paint.connect(
                    lambda event, c=copy: self._painted_in_side_view(layer, copies, c, event)
                )
            for name in _SYNCED_LABEL_STATE:
                self._connect(
                    getattr(layer.events, name),
                    lambda _event, n=name: [setattr(c, n, getattr(layer, n)) for c in copies],
                )
        if isinstance(layer, Image):
            self._connect(
                layer.events.contrast_limits,
                lambda _event: [
                    setattr(c, "contrast_limits", layer.contrast_limits) for c in copies
                ],
            )

    def remove_copies(self, layer: Layer) -> None:
        """Drop a removed layer's copies from the side views."""
        for copy in self._copies.pop(id(layer), []):
            for model in self.models:
                if copy in model.layers:
                    model.layers.remove(copy)

    def copies_of(self, layer: Layer) -> list[Layer]:
        """The side views' copies of a main-viewer layer."""
        return list(self._copies.get(id(layer), []))

    @staticmethod
    def _follow_data(layer: Layer, copies: list[Layer]) -> None:
        """The main layer's data was replaced: show (and paint) the new array everywhere."""
        for copy in copies:
            if copy.data is not layer.data:
                copy.data = layer.data

    def _painted_in_side_view(
        self, layer: Labels, copies: list[Layer], painted: Layer, event: Any
    ) -> None:
        """Show a side-view edit everywhere and tell the main layer's listeners.

        Autosave and statistics listen to the main layer's paint events; the
        edit itself is in the side view's undo history (Ctrl+Z there undoes it).
        """
        self._refresh([layer, *copies], painted)
        layer.events.paint(value=event.value)

    @staticmethod
    def _refresh(layers: list[Layer], painted: Layer | None = None) -> None:
        for layer in layers:
            if layer is not painted:
                layer.refresh()

    # -- slice position -----------------------------------------------------------------------
    def _main_step_changed(self, _event: Any = None) -> None:
        if self._syncing or self.viewer.dims.ndim != 3:
            return
        self._syncing = True
        try:
            for model in self.models:
                if model.dims.ndim == 3:
                    model.dims.point = self.viewer.dims.point
        finally:
            self._syncing = False

    def _side_step_changed(self, event: Any) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            source = event.source
            self.viewer.dims.point = source.point
            for model in self.models:
                if model.dims is not source and model.dims.ndim == 3:
                    model.dims.point = source.point
        finally:
            self._syncing = False

    def dispose(self) -> None:
        """Disconnect from the main viewer and close the side canvases (idempotent)."""
        for emitter, callback in self._connections:
            emitter.disconnect(callback)
        self._connections.clear()
        for canvas in self.canvases:
            canvas.close()
            canvas.deleteLater()
        self.canvases.clear()
        self.models.clear()
        self._copies.clear()

    def closeEvent(self, event: Any) -> None:
        """Close the side canvases with the widget."""
        self.dispose()
        super().closeEvent(event)
