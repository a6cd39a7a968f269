"""Autosave annotation layers every N seconds and when napari quits, without blocking painting.

A Qt timer looks for labels layers edited since their last save; their data
is copied on the GUI thread (a memory copy) and written by a worker thread
to the :class:`~napari_domainseg.ops.recovery.RecoveryStore`.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from napari_domainseg._napari import _layer_state as state
from napari_domainseg.ops.recovery import RecoveryStore

DEFAULT_INTERVAL_S = 60


def layer_recovery_key(layer: Any) -> str:
    """The recovery key of a labels layer (its image's identity and grid)."""
    return state.recovery_key_of(layer, tuple(layer.data.shape))


class Autosaver:
    """Saves the viewer's edited annotation layers periodically and on quit."""

    def __init__(
        self,
        viewer: Any,
        store: RecoveryStore | None = None,
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        from qtpy.QtCore import QTimer
        from qtpy.QtWidgets import QApplication

        self._viewer = weakref.ref(viewer)  # the viewer's set-up holds this autosaver
        self.store = store or RecoveryStore()
        self._dirty: dict[int, Any] = {}
        self._watched: set[int] = set()
        self.saves = 0
        self.timer = QTimer()
        self.timer.timeout.connect(self.save_dirty)
        self.set_interval(interval_s)
        viewer.layers.events.inserted.connect(lambda event: self.watch(event.value))
        for layer in viewer.layers:
            self.watch(layer)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(lambda: self.save_dirty(blocking=True))

    @property
    def viewer(self) -> Any:
        """The viewer (``None`` once it is gone)."""
        return self._viewer()

    def set_interval(self, seconds: float) -> None:
        """Save every ``seconds`` (0 turns autosave off)."""
        self.timer.stop()
        if seconds > 0:
            self.timer.start(int(seconds * 1000))

    def watch(self, layer: Any) -> None:
        """Track edits of an annotation layer (a labels layer the plugin made or read)."""
        from napari.layers import Labels

        if not isinstance(layer, Labels) or not state.is_plugin_layer(layer):
            return
        if id(layer) in self._watched:
            return
        self._watched.add(id(layer))
        reference = weakref.ref(layer)

        def mark(event: Any = None) -> None:
            target = reference()
            if target is not None:
                self._dirty[id(target)] = reference

        layer.events.paint.connect(mark)
        layer.events.data.connect(mark)

    def save_dirty(self, blocking: bool = False) -> int:
        """Save every layer edited since its last save; return how many were queued."""
        from napari.qt.threading import thread_worker

        pending, self._dirty = self._dirty, {}
        queued = 0
        for reference in pending.values():
            layer = reference()
            if layer is None:
                continue
            snapshot = np.array(layer.data, copy=True)
            metadata = state.recovery_metadata(layer)
            key = state.recovery_key_of(layer, snapshot.shape)
            if blocking:
                self.store.save(key, snapshot, layer.name, metadata)
                self.saves += 1
            else:
                worker = thread_worker(self.store.save, ignore_errors=True)(
                    key, snapshot, layer.name, metadata
                )
                worker.returned.connect(self._count)
                worker.start()
            queued += 1
        return queued

    def _count(self, _path: Any) -> None:
        self.saves += 1


def recovered_for(source: Any, shape: tuple[int, ...], store: RecoveryStore | None = None):
    """The newest autosave for the image ``source`` (a layer or layer kwargs) of ``shape``."""
    return (store or RecoveryStore()).latest(state.recovery_key_of(source, tuple(shape)))


def offer_recovery(source: Any, shape: tuple[int, ...]) -> str | None:
    """Tell the user when labels autosaved for the image ``source`` (a layer or kwargs) exist.

    Called by :mod:`._viewer_setup` when an image layer arrives; returns the message shown.
    """
    import datetime

    from napari.utils.notifications import show_info

    recovered = recovered_for(source, shape)
    if recovered is None:
        return None
    when = datetime.datetime.fromtimestamp(recovered.saved_at).strftime("%Y-%m-%d %H:%M")
    message = (
        f"Labels '{recovered.name}' for this image were autosaved on {when} and can be "
        "restored: Plugins > DomainSeg > Annotation, tab Recovery."
    )
    show_info(message)
    return message
