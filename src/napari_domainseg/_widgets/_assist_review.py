"""The review part of the Assist tab: status per slice or tile, classes, undo of acceptances.

A mixin of :class:`~napari_domainseg._widgets._assist_tab.AssistTab` (it reads the tab's
proposal layers and tally). It shows every slice (volumes) or 256-pixel tile (scenes) with its
status (:mod:`napari_domainseg.ops.assist.status`: not started, painted, pre-labeled,
corrected) and the proposal's mean uncertainty there, and every predicted class with its
pixels and mean uncertainty (rare classes flagged); clicking a row goes there. Statuses are
refreshed per slice or tile: those a stroke touched (the layer's ``paint`` event), those in view
after an undo or redo (``set_data``), and those of acceptances an undo removed or a redo
restored (their probe pixels, :func:`~napari_domainseg.ops.assist.accept.reconcile`), so an
undo of an acceptance also removes its provenance record, and a redo puts it back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from napari_domainseg._napari._edits import current_index, slice_axis
from napari_domainseg._napari._layer_data import METADATA_KEY
from napari_domainseg.ops.assist import Proposal
from napari_domainseg.ops.assist.accept import reconcile
from napari_domainseg.ops.assist.review import Tally, tally
from napari_domainseg.ops.assist.status import (
    TILE,
    UNITS_KEY,
    Key,
    Layout,
    StatusBoard,
    parse_key,
    sort_keys,
)

ANY_CLASS = "any class"
STATUS_COLOURS = {
    "not started": "#6b6b6b",
    "painted": "#3d7fd1",
    "pre-labeled": "#d9a400",
    "corrected": "#2e9d4f",
}
"""Text colours of the statuses in the review table."""


def camera_of(viewer: Any) -> Any:
    """The viewer's camera (``viewer.scene.camera`` from napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return getattr(scene, "camera", None) or viewer.camera


def same_layer(a: Any, b: Any) -> bool:
    """Whether two layer references are the same layer.

    Plugin widgets see napari's layers through proxies (a new object per access) and events
    carry the layer itself, so identity cannot tell; the layers' ``unique_id`` can.
    """
    if a is None or b is None:
        return False
    return a is b or getattr(a, "unique_id", a) == getattr(b, "unique_id", b)


def _changed_box(atom: Any) -> tuple[slice, ...] | None:
    """The bounding box of one history atom of a ``paint`` event (None: unknown form).

    napari gives ``(indices, old values, new values)`` for ``data_setitem`` and
    ``(slice_key, mask, old values, value)`` for brush, fill and polygon edits.
    """
    try:
        first = atom[0]
        if all(isinstance(s, slice) for s in first):
            return tuple(first)
        arrays = [np.asarray(i) for i in first]
        if not arrays or arrays[0].size == 0:
            return ()
        return tuple(slice(int(a.min()), int(a.max()) + 1) for a in arrays)
    except (TypeError, IndexError, ValueError):
        return None


def make_button(text: str, slot: Any, tooltip: str = "") -> QPushButton:
    """A push button calling ``slot``."""
    button = QPushButton(text)
    button.clicked.connect(slot)
    button.setToolTip(tooltip)
    return button


class ReviewMixin:
    """Review status and class tables of the Assist tab (see the module docstring)."""

    def _build_review(self, layout: QVBoxLayout) -> None:
        """Add the review widgets to the tab's ``layout`` and start following the panel."""
        panel = self.panel
        self._board: StatusBoard | None = None
        self._board_layer: Any = None
        self._unit_rows: dict[Key, int] = {}
        self._watching: list[Any] = []
        self._accepting = False
        self.review_timer = QTimer(self)
        self.review_timer.setSingleShot(True)
        self.review_timer.setInterval(0)  # after the edit is written (see _schedule)
        self.review_timer.timeout.connect(self._flush_review)
        self._pending: set[Key] | None = set()
        self.review_class = QComboBox()
        self.review_class.addItem(ANY_CLASS, None)
        self.review_class.setToolTip("Review where this class is least sure")
        row = QHBoxLayout()
        row.addWidget(
            make_button("Next uncertain", self._on_next, "The slice or tile to review next"), 1
        )
        row.addWidget(QLabel("in"))
        row.addWidget(self.review_class, 1)
        row.addWidget(make_button("Refresh", self._on_refresh, "Recompute every status"))
        layout.addLayout(row)
        self.review_counts = QLabel("Status: no annotation yet.")
        self.review_counts.setWordWrap(True)
        layout.addWidget(self.review_counts)
        self.units_table = self._table(("slice", "status", "uncertainty"), 170)
        self.units_table.cellClicked.connect(self._on_unit_clicked)
        layout.addWidget(self.units_table)
        self.classes_table = self._table(("class", "pixels", "uncertainty", ""), 140)
        self.classes_table.cellClicked.connect(self._on_class_clicked)
        layout.addWidget(self.classes_table)
        panel.labels_box.currentIndexChanged.connect(lambda _index: self.refresh_review())

    @staticmethod
    def _table(headers: tuple[str, ...], height: int) -> QTableWidget:
        table = QTableWidget(0, len(headers))
        table.setHorizontalHeaderLabels(list(headers))
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.verticalHeader().setVisible(False)
        table.verticalHeader().setDefaultSectionSize(20)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        table.setMaximumHeight(height)
        return table

    def go_to(self, labels: Any, key: Key) -> None:
        """Show a slice (dims step) or a tile (camera centre) of the annotation."""
        if labels.ndim == 3:
            axis = slice_axis(self.viewer)
            point = np.zeros(3)
            point[axis] = int(key)  # type: ignore[arg-type]
            self.viewer.dims.set_point(axis, labels.data_to_world(point)[axis])
            return
        shape = labels.data.shape
        centre = [min(k + TILE / 2, (k + shape[i]) / 2) for i, k in enumerate(key)]  # type: ignore[arg-type]
        world = np.asarray(labels.data_to_world(centre))
        camera = camera_of(self.viewer)
        camera.center = (*np.asarray(camera.center)[: -len(world)], *world)

    # -- review status --------------------------------------------------------------------------
    def _layout(self, labels: Any) -> Layout:
        shape = tuple(labels.data.shape)
        if len(shape) == 3:
            return Layout(shape, axis=slice_axis(self.viewer))
        return Layout(shape, tile=TILE)

    @staticmethod
    def _records(labels: Any) -> list[dict]:
        assist = labels.metadata.get(METADATA_KEY, {}).get("assist") or {}
        return list(assist.get("accepted", []))

    def _ensure_tally(self, labels: Any) -> Tally:
        """The proposal's per-unit, per-class tally for the current layout (counted if needed)."""
        layout = self._layout(labels)
        if self._tally is None or self._tally.keys != layout.keys():
            whole = tuple(slice(0, n) for n in self.predicted.shape)
            proposal = Proposal(
                whole, (), self.proposal_layer.data, self.uncertainty_layer.data, self.predicted
            )
            self._tally = tally(proposal, layout)
        return self._tally

    def _ensure_board(self, labels: Any) -> StatusBoard | None:
        """The status board of ``labels`` in the current layout (rebuilt when either changed)."""
        if labels is None or labels.ndim not in (2, 3) or not isinstance(labels.data, np.ndarray):
            return None  # none, or labels shown from their file (read-only): no review status
        layout = self._layout(labels)
        board = self._board
        if board is None or board.layout != layout or not same_layer(self._board_layer, labels):
            board = self._board = StatusBoard(layout)
            self._board_layer = labels
            board.set_records(self._records(labels))
            board.refresh(labels.data)
            self._watch(labels)
            self._fill_units(labels)
        return board

    def refresh_review(self, _event: Any = None) -> None:
        """Refresh the status (new board if the layer or axis changed) and class tables."""
        labels = self.panel.labels()
        board = self._ensure_board(labels)
        if board is None:
            self.units_table.setRowCount(0)
            self._board = self._board_layer = None
            self.review_counts.setText(
                "Status: no annotation layer." if labels is None
                else f"Status: not shown for '{labels.name}' (not an editable 2-D or 3-D layer)."
            )  # fmt: skip
            return
        self._fill_units(labels)
        self._fill_classes(labels)

    def _on_refresh(self) -> None:
        labels = self.panel.labels()
        self._board = None
        if labels is not None:
            assist = labels.metadata.get(METADATA_KEY, {}).get("assist")
            if assist:
                reconcile(labels.data, assist)
        self.refresh_review()

    def _refresh_units(self, labels: Any, keys: list[Key] | None) -> None:
        board = self._board
        if board is None or not same_layer(self._board_layer, labels):
            return
        board.refresh(labels.data, keys)
        self._update_rows(keys)

    def _unit_uncertainty(self, labels: Any) -> dict:
        if not self._layers_alive() or self.predicted.shape != tuple(labels.data.shape):
            return {}
        return self._ensure_tally(labels).unit_uncertainty()

    def _fill_units(self, labels: Any) -> None:
        board = self._board
        table = self.units_table
        table.setHorizontalHeaderLabels([
            f"slice (axis {board.layout.axis})" if labels.ndim == 3 else f"tile ({TILE} px)",
            "status",
            "uncertainty",
        ])  # fmt: skip
        keys = board.layout.keys()
        table.setRowCount(len(keys))
        self._unit_rows = {k: i for i, k in enumerate(keys)}
        for key, row in self._unit_rows.items():
            text = str(key) if labels.ndim == 3 else f"row {key[0]}, col {key[1]}"
            item = QTableWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, key)
            table.setItem(row, 0, item)
        self._update_rows(None)

    def _update_rows(self, keys: list[Key] | None) -> None:
        board, labels = self._board, self._board_layer
        if board is None or labels is None:
            return
        uncertainty = self._unit_uncertainty(labels)
        table = self.units_table
        for key in board.layout.keys() if keys is None else keys:
            row = self._unit_rows.get(key)
            if row is None:
                continue
            status = board.status.get(key, "")
            item = QTableWidgetItem(status)
            item.setForeground(QColor(STATUS_COLOURS.get(status, "#888888")))
            table.setItem(row, 1, item)
            value = uncertainty.get(key)
            table.setItem(row, 2, QTableWidgetItem("" if value is None else f"{value:.2f}"))
        what = "slices" if labels.ndim == 3 else "tiles"
        self.review_counts.setText(f"{what.capitalize()}: {board.summary()}")

    def _fill_classes(self, labels: Any) -> None:
        table = self.classes_table
        current = self.review_class.currentData()
        self.review_class.blockSignals(True)
        self.review_class.clear()
        self.review_class.addItem(ANY_CLASS, None)
        if not self._layers_alive() or self.predicted.shape != tuple(labels.data.shape):
            table.setRowCount(0)
            self.review_class.blockSignals(False)
            return
        names = self.panel.class_names()
        summary = self._ensure_tally(labels).summary()
        table.setRowCount(len(summary))
        for row, entry in enumerate(summary):
            name = names.get(entry.value, f"label {entry.value}")
            item = QTableWidgetItem(f"{entry.value} {name}")
            rgba = np.asarray(labels.colormap.map(entry.value), dtype=float).ravel()[:4]
            swatch = QColor.fromRgbF(*(float(np.clip(v, 0, 1)) for v in rgba[:3]), 1.0)
            item.setData(Qt.ItemDataRole.DecorationRole, swatch)
            item.setData(Qt.ItemDataRole.UserRole, entry.value)
            table.setItem(row, 0, item)
            table.setItem(row, 1, QTableWidgetItem(f"{entry.pixels} ({entry.fraction:.1%})"))
            table.setItem(row, 2, QTableWidgetItem(f"{entry.mean_uncertainty:.2f}"))
            note = QTableWidgetItem("rare" if entry.rare else "")
            if entry.rare:
                note.setForeground(QColor("#e0603a"))
                note.setToolTip("Few pixels: review this class (Next uncertain in this class)")
            table.setItem(row, 3, note)
            self.review_class.addItem(f"{entry.value} {name}", entry.value)
        index = self.review_class.findData(current)
        self.review_class.setCurrentIndex(max(index, 0))
        self.review_class.blockSignals(False)

    def _on_unit_clicked(self, row: int, _column: int = 0) -> None:
        item = self.units_table.item(row, 0)
        labels = self._board_layer
        if item is not None and labels is not None and labels in self.viewer.layers:
            self.go_to(labels, item.data(Qt.ItemDataRole.UserRole))

    def _on_class_clicked(self, row: int, _column: int = 0) -> None:
        item = self.classes_table.item(row, 0)
        if item is not None:
            index = self.review_class.findData(item.data(Qt.ItemDataRole.UserRole))
            self.review_class.setCurrentIndex(max(index, 0))

    # -- undo, redo and strokes ---------------------------------------------------------------
    def _watch(self, labels: Any) -> None:
        """Follow ``labels``' edits: strokes, undo and redo, whole-array changes."""
        if any(same_layer(layer, labels) for layer in self._watching):
            return
        self._watching.append(labels)
        labels.events.paint.connect(self._on_layer_paint)
        labels.events.set_data.connect(self._on_layer_set_data)
        labels.events.data.connect(self._on_layer_data)

    def _reconcile(self, labels: Any) -> list[Key] | None:
        """Move undone / redone acceptances; the units whose status may have changed."""
        assist = labels.metadata.get(METADATA_KEY, {}).get("assist")
        if not assist or self._accepting:
            return []
        before = {id(r) for r in assist.get("accepted", [])}
        if not reconcile(labels.data, assist):
            return []
        after = {id(r) for r in assist.get("accepted", [])}
        moved = [
            r for r in assist.get("accepted", []) + assist.get("undone", [])
            if (id(r) in before) != (id(r) in after)
        ]  # fmt: skip
        board = self._board
        if board is None or not same_layer(self._board_layer, labels):
            return []
        board.set_records(assist.get("accepted", []))
        keys = set()
        for record in moved:
            units = (record.get(UNITS_KEY) or {}).get(board.layout.name)
            if not isinstance(units, dict):
                return None  # an older record: every unit
            keys.update(parse_key(k) for k in units.get("digests", {}))
        return sort_keys(keys)

    def _visible_keys(self, labels: Any) -> list[Key]:
        board = self._board
        if board is None:
            return []
        if labels.ndim == 3:
            return [current_index(self.viewer, labels, board.layout.axis)]
        return board.layout.keys_in(self.view_region(labels))

    def _on_layer_paint(self, event: Any) -> None:
        labels = getattr(event, "source", None)
        if self._accepting or not same_layer(labels, self._board_layer):
            return
        boxes = [_changed_box(atom) for atom in (getattr(event, "value", None) or [])]
        if any(box is None for box in boxes):
            self._schedule(None)
            return
        touched: set[Key] = set()
        for box in boxes:
            if box:
                touched.update(self._board.layout.keys_in(box))
        self._schedule(touched)

    def _on_layer_set_data(self, event: Any) -> None:
        labels = getattr(event, "source", None)
        if self._accepting or not same_layer(labels, self._board_layer):
            return
        self._schedule(set(self._visible_keys(labels)))  # an undo or redo of a stroke, in view

    def _schedule(self, keys: set[Key] | None) -> None:
        """Refresh ``keys`` (None: every unit) once the edit is written.

        ``paint`` is emitted before ``data_setitem`` writes its pixels, so the refresh waits
        for the event loop; edits in the same loop turn are refreshed together.
        """
        if keys is None or self._pending is None:
            self._pending = None
        else:
            self._pending |= keys
        if not self.review_timer.isActive():
            self.review_timer.start()

    def _flush_review(self) -> None:
        pending, self._pending = self._pending, set()
        labels = self._board_layer
        if self._board is None or labels is None or labels not in self.viewer.layers:
            return
        if labels.ndim == 3 and self._board.layout.axis != slice_axis(self.viewer):
            self.refresh_review()  # another axis is stepped through now
            return
        moved = self._reconcile(labels)  # an undo or redo of an acceptance
        keys = None if moved is None or pending is None else sort_keys(pending | set(moved))
        self._refresh_units(labels, keys)

    def _on_layer_data(self, event: Any) -> None:
        labels = getattr(event, "source", None)
        if self._accepting or not same_layer(labels, self._board_layer):
            return
        assist = labels.metadata.get(METADATA_KEY, {}).get("assist")
        if assist:
            reconcile(labels.data, assist)
        self._board = None
        self.refresh_review()
