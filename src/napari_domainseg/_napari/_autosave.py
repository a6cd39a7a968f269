"""Autosave annotation layers every N seconds and when napari quits, without blocking painting.

A Qt timer looks for labels layers edited since their last save; their data
is copied on the GUI thread (a memory copy) and written by a worker thread
to the :class:`~napari_domainseg.ops.recovery.RecoveryStore`.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from napari_domainseg._napari._layer_data import METADATA_KEY
from napari_domainseg.ops.recovery import RecoveryStore, recovery_key

DEFAULT_INTERVAL_S = 60


def layer_recovery_key(layer: Any) -> str:
    """The recovery key of a labels layer (its image's identity and grid)."""
    return recovery_key(layer.metadata.get(METADATA_KEY, {}), tuple(layer.data.shape))


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

        self.viewer = viewer
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

    def set_interval(self, seconds: float) -> None:
        """Save every ``seconds`` (0 turns autosave off)."""
        self.timer.stop()
        if seconds > 0:
            self.timer.start(int(seconds * 1000))

    def watch(self, layer: Any) -> None:
        """Track edits of an annotation layer (a labels layer the plugin made or read)."""
        from napari.layers import Labels

        if not isinstance(layer, Labels) or METADATA_KEY not in layer.metadata:
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
            metadata = dict(layer.metadata.get(METADATA_KEY, {}))
            key = recovery_key(metadata, snapshot.shape)
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


_autosavers: dict[int, Autosaver] = {}


def autosaver_for(viewer: Any) -> Autosaver:
    """The viewer's autosaver, started on first use."""
    if id(viewer) not in _autosavers:
        _autosavers[id(viewer)] = Autosaver(viewer)
        weakref.finalize(viewer, _autosavers.pop, id(viewer), None)
    return _autosavers[id(viewer)]


def recovered_for(
    metadata: dict[str, Any], shape: tuple[int, ...], store: RecoveryStore | None = None
):
    """The newest autosave for an image with this plugin metadata and shape, if any."""
    return (store or RecoveryStore()).latest(recovery_key(metadata, tuple(shape)))


def offer_recovery(layer_data: tuple) -> str | None:
    """Tell the user when labels autosaved for the image being opened can be restored."""
    import datetime

    from napari.utils.notifications import show_info

    data, kwargs, _ = layer_data
    shape = data[0].shape if isinstance(data, list) else data.shape
    recovered = recovered_for(kwargs.get("metadata", {}).get(METADATA_KEY, {}), shape)
    if recovered is None:
        return None
    when = datetime.datetime.fromtimestamp(recovered.saved_at).strftime("%Y-%m-%d %H:%M")
    message = (
        f"Labels '{recovered.name}' for this image were autosaved on {when} and can be "
        "restored: Plugins > DomainSeg > Annotation, tab Recovery."
    )
    show_info(message)
    return message
