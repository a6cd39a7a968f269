"""The review part of the Assist tab: status per slice or tile, classes, undo of acceptances.

A mixin of :class:`~napari_domainseg._widgets._assist_tab.AssistTab` (it reads the tab's
proposal layers and tally). It shows every slice (volumes) or 256-pixel tile (scenes) with its
status (:mod:`napari_domainseg.ops.assist.status`: not started, painted, pre-labeled,
corrected) and the proposal's mean uncertainty there, and every predicted class with its
pixels and mean uncertainty (rare classes flagged); clicking a row goes there. Statuses are
refreshed per slice or tile: those a stroke touched (the layer's ``paint`` event, one per napari
history item, remembered for the last :data:`HISTORY`), all those the remembered strokes touched
after an undo or redo (``set_data``, wherever it wrote; napari emits none while the layer is
hidden, so also when it is shown again), and those of acceptances an undo removed or a redo
restored (their probe pixels, :func:`~napari_domainseg.ops.assist.accept.reconcile`), so an
undo of an acceptance also removes its provenance record, and a redo puts it back; a new
stroke forgets undone acceptances (:func:`~napari_domainseg.ops.assist.accept.clear_redo`).
The board and tally of a layout shown before are kept, with the units changed since, so
stepping through another axis and back refreshes only those; the units table is a model
(rows drawn when in view). Removed layers are disconnected and forgotten.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
from qtpy.QtCore import QAbstractTableModel, QModelIndex, Qt, QTimer
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._edits import slice_axis
from napari_domainseg._napari._view import camera_of
from napari_domainseg._widgets._tab_controls import button
from napari_domainseg.ops.assist import Proposal
from napari_domainseg.ops.assist.accept import clear_redo, reconcile
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
HISTORY = 100
"""Paint events remembered per layer (napari keeps 100 undo steps: an undo or redo can only
replay one of the last 100 paint events)."""


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


Box = tuple[slice, ...]
"""A box of the annotation (slices with start and stop): what one paint atom changed."""
Change = list[Box] | None
"""The boxes an edit changed (None: unknown, every unit)."""


def _keys_of(layout: Layout, change: Change) -> set[Key] | None:
    """The units of ``layout`` the boxes of ``change`` touch (None: every unit)."""
    if change is None:
        return None
    keys: set[Key] = set()
    for box in change:
        if box:
            keys.update(layout.keys_in(box))
    return keys


class UnitsModel(QAbstractTableModel):
    """The review table's rows, one per slice or tile, read from a :class:`StatusBoard`.

    A model behind a ``QTableView`` draws only the rows in view: 25 000 tiles of a 40 000-pixel
    scene cost nothing until scrolled to (a ``QTableWidget`` makes three items per row).
    """

    HEADERS = ("slice", "status", "uncertainty")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.keys: list[Key] = []
        self.rows: dict[Key, int] = {}
        self.board: StatusBoard | None = None
        self.uncertainty: dict = {}
        self.unit = "slice"

    def reset(self, board: StatusBoard | None, unit: str) -> None:
        """Show every unit of ``board`` (None: none)."""
        self.beginResetModel()
        self.board, self.unit = board, unit
        self.keys = board.layout.keys() if board is not None else []
        self.rows = {k: i for i, k in enumerate(self.keys)}
        self.endResetModel()
        self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, 0)

    def changed(self, keys: list[Key] | None) -> None:
        """Redraw the rows of ``keys`` (None: every row)."""
        if not self.keys:
            return
        if keys is None:
            first, last = 0, len(self.keys) - 1
        else:
            rows = [self.rows[k] for k in keys if k in self.rows]
            first, last = min(rows, default=0), max(rows, default=-1)
        if last >= first:
            self.dataChanged.emit(self.index(first, 0), self.index(last, 2))

    def rowCount(self, parent: Any = None) -> int:
        """Units shown."""
        return 0 if parent is not None and parent.isValid() else len(self.keys)

    def columnCount(self, parent: Any = None) -> int:
        """Unit, status, uncertainty."""
        return 0 if parent is not None and parent.isValid() else len(self.HEADERS)

    def text(self, row: int, column: int) -> str:
        """The text of a cell."""
        key = self.keys[row]
        if column == 0:
            return str(key) if isinstance(key, int) else f"row {key[0]}, col {key[1]}"
        if column == 1:
            return "" if self.board is None else self.board.status.get(key, "")
        value = self.uncertainty.get(key)
        return "" if value is None else f"{value:.2f}"

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Text, status colour and (column 0, user role) the unit's key."""
        if not index.isValid() or not 0 <= index.row() < len(self.keys):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(index.row(), index.column())
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == 1:
            return QColor(STATUS_COLOURS.get(self.text(index.row(), 1), "#888888"))
        if role == Qt.ItemDataRole.UserRole:
            return self.keys[index.row()]
        return None

    def headerData(
        self, section: int, orientation: Any, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Column titles."""
        if orientation != Qt.Orientation.Horizontal or role != Qt.ItemDataRole.DisplayRole:
            return None
        return self.unit if section == 0 else self.HEADERS[section]


class ReviewMixin:
    """Review status and class tables of the Assist tab (see the module docstring)."""

    def _build_review(self, layout: QVBoxLayout) -> None:
        """Add the review widgets to the tab's ``layout`` and start following the panel."""
        panel = self.panel
        self._board: StatusBoard | None = None
        self._board_layer: Any = None
        self._boards: dict[tuple[Any, Layout], StatusBoard] = {}  # the layer's other layouts
        self._dirty: dict[tuple[Any, Layout], set[Key] | None] = {}  # ... and what changed since
        self._watching: dict[Any, Any] = {}  # unique_id: layer
        self._strokes: dict[Any, deque[Change]] = {}  # unique_id: the last paint events' boxes
        self._tallies: dict[Layout, Tally] = {}  # the proposal's tallies of other layouts
        self._uncertainty: tuple[Any, dict] = (None, {})
        self.review_timer = QTimer(self)
        self.review_timer.setSingleShot(True)
        self.review_timer.setInterval(0)  # after the edit is written (see _schedule)
        self.review_timer.timeout.connect(self._flush_review)
        self._pending: Change = []
        self.review_class = QComboBox()
        self.review_class.addItem(ANY_CLASS, None)
        self.review_class.setToolTip("Review where this class is least sure")
        row = QHBoxLayout()
        row.addWidget(
            button("Next uncertain", self._on_next, "The slice or tile to review next"), 1
        )
        row.addWidget(QLabel("in"))
        row.addWidget(self.review_class, 1)
        row.addWidget(button("Refresh", self._on_refresh, "Recompute every status"))
        layout.addLayout(row)
        self.review_counts = QLabel("Status: no annotation yet.")
        self.review_counts.setWordWrap(True)
        layout.addWidget(self.review_counts)
        self.units_model = UnitsModel(self)
        self.units_table = QTableView()
        self.units_table.setModel(self.units_model)
        self._style_table(self.units_table, 170)
        self.units_table.clicked.connect(lambda index: self._on_unit_clicked(index.row()))
        layout.addWidget(self.units_table)
        self.classes_table = QTableWidget(0, 4)
        self.classes_table.setHorizontalHeaderLabels(["class", "pixels", "uncertainty", ""])
        self._style_table(self.classes_table, 140)
        for column in (1, 2, 3):  # numbers whole; the name takes what is left
            self.classes_table.horizontalHeader().setSectionResizeMode(
                column, QHeaderView.ResizeMode.ResizeToContents
            )
        self.classes_table.cellClicked.connect(self._on_class_clicked)
        layout.addWidget(self.classes_table)
        panel.labels_box.currentIndexChanged.connect(lambda _index: self.refresh_review())
        self.viewer.layers.events.removed.connect(self._on_layer_removed)

    @staticmethod
    def _style_table(table: QTableView, height: int) -> None:
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.verticalHeader().setVisible(False)
        table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        table.verticalHeader().setDefaultSectionSize(20)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        table.setMaximumHeight(height)

    def go_to(self, labels: Any, key: Key) -> None:
        """Show a slice (dims point) or a tile (camera centre) of the annotation.

        A slice: the dims point becomes the world position of voxel ``(key, cy, cx)`` (the
        other axes at the layer's centre), so ``world_to_data`` of the point, which napari
        slices at, is ``key`` along the slice axis under an oblique affine too. The displayed
        axes' coordinates of the point do not move the camera.
        """
        if labels.ndim == 3:
            axis = slice_axis(self.viewer)
            voxel = (np.asarray(labels.data.shape, dtype=float) - 1) / 2
            voxel[axis] = int(key)  # type: ignore[arg-type]
            world = np.asarray(labels.data_to_world(voxel), dtype=float)
            offset = self.viewer.dims.ndim - labels.ndim
            self.viewer.dims.set_point(tuple(range(offset, offset + 3)), tuple(world))
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
        assist = state.assist_of(labels) or {}
        return list(assist.get("accepted", []))

    def _ensure_tally(self, labels: Any) -> Tally:
        """The proposal's per-unit, per-class tally for the current layout.

        Counted once per layout and proposal: the tally of the layout shown before is kept
        (``_tallies``) until the proposal changes, so stepping through another axis and back
        does not count the whole proposal again.
        """
        layout = self._layout(labels)
        if self._tally is not None and self._tally_layout == layout:
            return self._tally
        if self._tally is not None and self._tally_layout is not None:
            self._tallies[self._tally_layout] = self._tally
        cached = self._tallies.pop(layout, None)
        if cached is None:
            whole = tuple(slice(0, n) for n in self.predicted.shape)
            proposal = Proposal(
                whole, (), self.proposal_layer.data, self.uncertainty_layer.data, self.predicted
            )
            cached = tally(proposal, layout)
        self._tally, self._tally_layout = cached, layout
        return cached

    def _forget_tallies(self) -> None:
        """The proposal changed: the kept tallies of other layouts are stale."""
        self._tallies = {}

    def _ensure_board(self, labels: Any) -> StatusBoard | None:
        """The status board of ``labels`` in the current layout (rebuilt when either changed).

        The board of a layout shown before is kept with the units changed since (paint
        events, undo and redo, acceptances), so switching back refreshes only those.
        """
        if labels is None or labels.ndim not in (2, 3) or not isinstance(labels.data, np.ndarray):
            return None  # none, or labels shown from their file (read-only): no review status
        if labels not in self.viewer.layers:
            return None  # being removed: never watched again
        layout = self._layout(labels)
        board = self._board
        if board is None or board.layout != layout or not same_layer(self._board_layer, labels):
            if board is not None and same_layer(self._board_layer, labels):
                uid = getattr(labels, "unique_id", None)
                self._boards[(uid, board.layout)] = board
                self._dirty[(uid, board.layout)] = set()
            elif board is not None:
                self._boards, self._dirty = {}, {}  # another layer: start over
            uid = getattr(labels, "unique_id", None)
            cached = self._boards.pop((uid, layout), None)
            dirty = self._dirty.pop((uid, layout), None)
            board = self._board = cached or StatusBoard(layout)
            self._board_layer = labels
            board.set_records(self._records(labels))
            board.refresh(labels.data, None if cached is None or dirty is None else dirty)
            self._watch(labels)
            self._fill_units(labels)
        return board

    def refresh_review(self, _event: Any = None) -> None:
        """Refresh the status (new board if the layer or axis changed) and class tables."""
        labels = self.panel.labels()
        board = self._ensure_board(labels)
        if board is None:
            self._board = self._board_layer = None
            self._boards, self._dirty = {}, {}
            self.units_model.reset(None, "slice")
            self.review_counts.setText(
                "Status: no annotation layer." if labels is None
                else f"Status: not shown for '{labels.name}' (not an editable 2-D or 3-D layer)."
            )  # fmt: skip
            return
        self._update_rows(None)
        self._fill_classes(labels)

    def _on_refresh(self) -> None:
        labels = self.panel.labels()
        self._board = None
        self._boards, self._dirty = {}, {}
        if labels is not None:
            assist = state.assist_of(labels)
            if assist:
                reconcile(labels.data, assist)
        self.refresh_review()

    def _refresh_units(self, labels: Any, keys: list[Key] | None) -> None:
        board = self._board
        if board is None or not same_layer(self._board_layer, labels):
            return
        board.refresh(labels.data, keys)
        self._update_rows(keys)

    def _mark_changed(self, keys_by_layout: Any) -> None:
        """Note changed units on the kept boards of other layouts.

        ``keys_by_layout(layout)`` gives the changed keys of a layout (None: every unit).
        """
        for slot in self._boards:
            if self._dirty.get(slot, set()) is None:
                continue
            keys = keys_by_layout(slot[1])
            self._dirty[slot] = None if keys is None else self._dirty.get(slot, set()) | keys

    def _unit_uncertainty(self, labels: Any) -> dict:
        if not self._layers_alive() or self.predicted.shape != tuple(labels.data.shape):
            return {}
        counted = self._ensure_tally(labels)
        if self._uncertainty[0] is not counted:  # a sort of every unit: once per tally
            self._uncertainty = (counted, counted.unit_uncertainty())
        return self._uncertainty[1]

    def _fill_units(self, labels: Any) -> None:
        board = self._board
        unit = f"slice (axis {board.layout.axis})" if labels.ndim == 3 else f"tile ({TILE} px)"
        self.units_model.reset(board, unit)

    def _update_rows(self, keys: list[Key] | None) -> None:
        board, labels = self._board, self._board_layer
        if board is None or labels is None:
            return
        uncertainty = self._unit_uncertainty(labels)
        if uncertainty is not self.units_model.uncertainty:
            self.units_model.uncertainty = uncertainty
            keys = None
        self.units_model.changed(keys)
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
        labels = self._board_layer
        if not 0 <= row < self.units_model.rowCount() or labels is None:
            return
        if labels in self.viewer.layers:
            self.go_to(labels, self.units_model.keys[row])

    def _on_class_clicked(self, row: int, _column: int = 0) -> None:
        item = self.classes_table.item(row, 0)
        if item is not None:
            index = self.review_class.findData(item.data(Qt.ItemDataRole.UserRole))
            self.review_class.setCurrentIndex(max(index, 0))

    # -- undo, redo and strokes ---------------------------------------------------------------
    def _watch(self, labels: Any) -> None:
        """Follow ``labels``' edits: strokes, undo and redo, whole-array changes, visibility."""
        uid = getattr(labels, "unique_id", id(labels))
        if uid in self._watching:
            return
        self._watching[uid] = labels
        self._strokes[uid] = deque(maxlen=HISTORY)
        labels.events.paint.connect(self._on_layer_paint)
        labels.events.set_data.connect(self._on_layer_set_data)
        labels.events.data.connect(self._on_layer_data)
        labels.events.visible.connect(self._on_layer_visible)

    def _unwatch(self, uid: Any) -> None:
        """Stop following a layer and drop every reference to it."""
        labels = self._watching.pop(uid, None)
        self._strokes.pop(uid, None)
        if labels is None:
            return
        for name, slot in (
            ("paint", self._on_layer_paint),
            ("set_data", self._on_layer_set_data),
            ("data", self._on_layer_data),
            ("visible", self._on_layer_visible),
        ):
            getattr(labels.events, name).disconnect(slot)

    def _on_layer_removed(self, event: Any) -> None:
        """A layer left the viewer: disconnect from it and forget it (board, strokes)."""
        layer = getattr(event, "value", None)
        uid = getattr(layer, "unique_id", None)
        for known in [u for u, watched in self._watching.items() if same_layer(watched, layer)]:
            self._unwatch(known)
        self._boards = {s: b for s, b in self._boards.items() if s[0] != uid}
        self._dirty = {s: d for s, d in self._dirty.items() if s[0] != uid}
        if same_layer(self._board_layer, layer):
            self._board = self._board_layer = None
            self.refresh_review()

    def _reconcile(self, labels: Any) -> list[Key] | None:
        """Move undone / redone acceptances; the units whose status may have changed."""
        assist = state.assist_of(labels)
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

        def keys_of(layout: Layout) -> set[Key] | None:
            keys: set[Key] = set()
            for record in moved:
                units = (record.get(UNITS_KEY) or {}).get(layout.name)
                if not isinstance(units, dict):
                    return None  # an older record (or one still being completed): every unit
                keys.update(parse_key(k) for k in units.get("digests", {}))
            return keys

        self._mark_changed(keys_of)
        keys = keys_of(board.layout)
        return None if keys is None else sort_keys(keys)

    def _on_layer_paint(self, event: Any) -> None:
        labels = getattr(event, "source", None)
        if self._accepting:
            return
        # a new edit: napari forgot its redo steps, so the undone acceptances go too
        clear_redo(state.assist_of(labels))
        boxes = [_changed_box(atom) for atom in (getattr(event, "value", None) or [])]
        change: Change = None if any(box is None for box in boxes) else boxes  # type: ignore[assignment]
        uid = getattr(labels, "unique_id", id(labels))
        if uid in self._strokes:
            self._strokes[uid].append(change)  # one entry per napari history item
        if same_layer(labels, self._board_layer):
            self._schedule(change)

    def _history_change(self, labels: Any) -> Change:
        """The boxes of every remembered paint event of ``labels``.

        All an undo or redo can change: napari's history holds at most the last
        :data:`HISTORY` of them.
        """
        strokes = self._strokes.get(getattr(labels, "unique_id", id(labels)), ())
        if any(change is None for change in strokes):
            return None
        return [box for change in strokes for box in change]  # type: ignore[union-attr]

    def _on_layer_set_data(self, event: Any) -> None:
        labels = getattr(event, "source", None)
        if self._accepting or not same_layer(labels, self._board_layer):
            return
        self._schedule(self._history_change(labels))  # an undo or redo, wherever it wrote

    def _on_layer_visible(self, event: Any) -> None:
        """Catch up when the layer is shown: napari does not refresh a hidden layer."""
        labels = getattr(event, "source", None)
        if self._accepting or not same_layer(labels, self._board_layer) or not labels.visible:
            return
        self._schedule(self._history_change(labels))

    def _schedule(self, change: Change) -> None:
        """Refresh the units ``change`` touches (None: every unit) once the edit is written.

        ``paint`` is emitted before ``data_setitem`` writes its pixels, so the refresh waits
        for the event loop; edits in the same loop turn are refreshed together.
        """
        if change is None or self._pending is None:
            self._pending = None
        else:
            self._pending = self._pending + list(change)
        if not self.review_timer.isActive():
            self.review_timer.start()

    def _flush_review(self) -> None:
        pending, self._pending = self._pending, []
        labels = self._board_layer
        if self._board is None or labels is None or labels not in self.viewer.layers:
            return
        self._mark_changed(lambda layout: _keys_of(layout, pending))  # the kept boards
        moved = self._reconcile(labels)  # an undo or redo of an acceptance
        touched = _keys_of(self._board.layout, pending)
        keys = None if moved is None or touched is None else sort_keys(touched | set(moved))
        if labels.ndim == 3 and self._board.layout.axis != slice_axis(self.viewer):
            self._board.refresh(labels.data, keys)  # up to date when kept for switching back
            self.refresh_review()  # another axis is stepped through now
            return
        self._refresh_units(labels, keys)

    def _on_layer_data(self, event: Any) -> None:
        labels = getattr(event, "source", None)
        if self._accepting or not same_layer(labels, self._board_layer):
            return
        assist = state.assist_of(labels)
        if assist:
            reconcile(labels.data, assist)
        self._board = None
        self._boards, self._dirty = {}, {}
        self.refresh_review()
