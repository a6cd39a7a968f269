"""The Objects tab: instance layers (one id per object); new, split, merge, snap, attributes.

An instance layer is a labels layer whose values are instance ids; its napari ``features``
say which class each id belongs to (:mod:`napari_domainseg.labels.instances`). The tab only
wires controls to :mod:`napari_domainseg.ops.instances`: every edit of the map is one
``layer.data_setitem`` inside ``layer.block_history()`` (one Ctrl+Z), then the features are
updated. Undo brings pixels back but not table rows, so the tab remembers every instance it
has seen on a layer and gives an id undo repainted its record again. An id painted that no
record names (a raw number typed into the label box) is reported with a "Repair" action,
never dropped. The table shows each object's mean intensity in the panel's image (when it is
on the same grid) and the attributes its class defines are edited for the selected object.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
from napari.layers import Labels
from napari.utils.notifications import (
    Notification,
    NotificationSeverity,
    notification_manager,
    show_info,
    show_warning,
)
from qtpy.QtCore import QAbstractTableModel, QModelIndex, Qt, QTimer
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSpinBox,
    QTableView,
    QWidget,
)

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._edits import physical_spacing
from napari_domainseg._napari._layer_data import instance_colormap, schema_colormap
from napari_domainseg._napari._view import camera_of
from napari_domainseg._widgets._tab_controls import button, placement
from napari_domainseg.labels.instances import (
    Instance,
    InstanceError,
    InstanceTable,
    check_instances,
    class_path,
    is_objects_class,
    repair,
    semantic_map,
)
from napari_domainseg.labels.schema import AttributeSpec
from napari_domainseg.ops import instances as ops
from napari_domainseg.ops.statistics import instance_statistics

UNLISTED = (0.5, 0.5, 0.5, 1.0)
"""Colour of an id without a class (grey: visible, never hidden)."""
_UNIT_TEXT = {"m2": "m²", "mm2": "mm²", "m3": "m³", "mm3": "mm³"}


Row = tuple[int, str, str, float | None, str]
"""One object in the table: id, class path, size, mean intensity (or ``None``), provenance."""


class InstanceModel(QAbstractTableModel):
    """The instances of a layer as rows: id, class path, size, mean, provenance."""

    HEADERS = ("id", "class", "size", "mean", "source")
    TIPS = ("", "", "", "Mean intensity of the panel's image inside the object (HU for CT)", "")

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[Row] = []

    def set_rows(self, rows: list[Row]) -> None:
        """Replace the rows (one per instance, ascending id)."""
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role != Qt.ItemDataRole.DisplayRole:
            return None
        value = self.rows[index.row()][index.column()]
        if isinstance(value, float):
            return f"{value:.5g}"
        return "" if value is None else str(value)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.TIPS[section] or None
        return None


class AttributeEditor(QGroupBox):
    """One editor per attribute of an object's class: checkbox, spin box, line edit or combo.

    ``on_change(name, value)`` is called with the edited value (Python ``bool``, ``int``,
    ``float``, ``str``, or ``None`` for an unset choice); it returns whether it was taken.
    """

    def __init__(self, on_change: Callable[[str, Any], bool]) -> None:
        super().__init__("attributes")
        self._on_change = on_change
        self._form = QFormLayout(self)
        self._key: tuple[Any, ...] | None = None
        self.editors: dict[str, QWidget] = {}
        self.setVisible(False)

    def show_instance(self, instance: Instance | None, specs: tuple[AttributeSpec, ...]) -> None:
        """Edit ``instance``'s attributes (hidden for ``None`` or a class without attributes)."""
        specs = tuple({s.name: s for s in reversed(specs)}.values())[::-1]  # own spec first
        if instance is None or not specs:
            self._key = None
            self.setVisible(False)
            return
        key = (instance.id, instance.class_id, specs)
        if key != self._key:
            while self._form.rowCount():
                self._form.removeRow(0)
            self.editors = {s.name: self._editor(s) for s in specs}
            for name, editor in self.editors.items():
                self._form.addRow(name, editor)
            self._key = key
        self.setTitle(f"attributes of object {instance.id}")
        for spec in specs:
            _set_value(self.editors[spec.name], instance.attributes.get(spec.name, spec.default))
        self.setVisible(True)

    def _editor(self, spec: AttributeSpec) -> QWidget:
        def changed(value: Any) -> None:
            self._on_change(spec.name, value)

        if spec.type == "bool":
            box = QCheckBox()
            box.toggled.connect(lambda checked: changed(bool(checked)))
            return box
        if spec.type in ("int", "float"):
            number: QSpinBox | QDoubleSpinBox
            if spec.type == "int":
                number = QSpinBox()
                number.setRange(-(2**31), 2**31 - 1)
                number.valueChanged.connect(lambda value: changed(int(value)))
            else:
                number = QDoubleSpinBox()
                number.setRange(-1e12, 1e12)
                number.setDecimals(4)
                number.valueChanged.connect(lambda value: changed(float(value)))
            number.setKeyboardTracking(False)  # typed numbers count on Enter, not per digit
            return number
        if spec.type == "choice":
            combo = QComboBox()
            combo.addItem("(unset)", None)
            for choice in spec.choices:
                combo.addItem(choice, choice)
            combo.currentIndexChanged.connect(lambda _index: changed(combo.currentData()))
            return combo
        line = QLineEdit()
        line.editingFinished.connect(lambda: changed(line.text()))
        return line


class ObjectsTab(QWidget):
    """Instance layers: make one from class labels, new objects, split, merge, relabel, delete."""

    def __init__(self, panel: Any) -> None:
        super().__init__()
        self.panel, self.viewer = panel, panel.viewer
        self._known: weakref.WeakKeyDictionary[Labels, dict[int, Instance]] = (
            weakref.WeakKeyDictionary()
        )
        self._strokes: weakref.WeakKeyDictionary[Labels, Any] = weakref.WeakKeyDictionary()
        self._pieces: weakref.WeakKeyDictionary[Labels, set[int]] = weakref.WeakKeyDictionary()
        self._watched: weakref.WeakSet[Labels] = weakref.WeakSet()
        self._writing = False
        self._reported: set[int] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(400)
        self._timer.timeout.connect(self._refresh_if_shown)

        self.layer_label = QLabel()
        self.layer_label.setWordWrap(True)
        self.class_box = QComboBox()
        self.class_box.setToolTip(
            "The class of new objects, and the class 'Relabel' and 'Repair' give"
        )
        self.shared = QCheckBox("Shared borders (paint only unlabeled pixels)")
        self.shared.setToolTip(
            "Brush, fill and polygon paint only pixels no object holds yet, so a new object "
            "drawn against a neighbour meets it exactly: no gap, no overlap"
        )
        self.shared.toggled.connect(self._on_shared)
        self.model = InstanceModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)  # the class path
        self.table.clicked.connect(self._on_row_clicked)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._show_attributes())
        self.attributes = AttributeEditor(self.set_attribute)
        self.snap_status = QLabel()
        self.snap_status.setWordWrap(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.repair_button = button(
            "Repair", self.repair, "Give every painted id without a class the chosen class"
        )
        self.repair_button.setVisible(False)

        form = QFormLayout(self)
        form.addRow(self.layer_label)
        self.make_button = button(
            "Make instance layer from these labels",
            self.make_instance_layer,
            "A new layer with one id per object: each connected piece of an 'objects' "
            "class becomes an object, each region class one object",
        )
        form.addRow(self.make_button)
        form.addRow("class of new objects", self.class_box)
        form.addRow(
            button(
                "New object (N)",
                self.new_object,
                "Start a new object of the class; paint it, then press N for the next one",
            )
        )
        form.addRow(self.shared)
        form.addRow(self.table)
        grid = QGridLayout()
        grid.addWidget(
            button(
                "Split selected",
                self.split_selected,
                "Erase (or paint) a cut through the selected object first; each piece "
                "becomes an object",
            ),
            0,
            0,
        )
        grid.addWidget(button("Merge selected", self.merge_selected), 0, 1)
        grid.addWidget(button("Relabel to chosen class", self.relabel_selected), 1, 0)
        grid.addWidget(button("Delete selected", self.delete_selected), 1, 1)
        form.addRow(grid)
        form.addRow(self.attributes)
        form.addRow(
            button(
                "Snap to neighbours",
                self.snap_neighbours,
                "Close 1-pixel gaps between touching objects (each gap pixel goes to the "
                "nearer object; labelled pixels never change). One Ctrl+Z undoes it",
            ),
            self.snap_status,
        )
        form.addRow(
            button(
                "Show class view",
                self.show_class_view,
                "A read-only layer of the classes, computed from the objects now",
            )
        )
        form.addRow(self.status, self.repair_button)
        panel.labels_box.currentTextChanged.connect(lambda _text: self.follow())
        panel.image_box.currentIndexChanged.connect(lambda _index: self._timer.start())
        self.follow()

    # -- context --------------------------------------------------------------------------------
    def layer(self) -> Labels | None:
        """The panel's labels layer when it is an instance layer, else ``None``."""
        labels = self.panel.labels()
        return labels if labels is not None and state.is_instance_layer(labels) else None

    def schema(self, layer: Any = None) -> Any:
        """The schema of ``layer`` (or the panel's current one)."""
        found = state.schema_of(layer) if layer is not None else None
        return found if found is not None else self.panel.classes.schema

    def instances(self, layer: Labels) -> InstanceTable:
        """The layer's instance table (its features)."""
        return state.instances_of(layer) or InstanceTable()

    def class_id(self) -> int | None:
        """The class chosen in the class box."""
        value = self.class_box.currentData()
        return None if value is None else int(value)

    def follow(self) -> None:
        """Follow the panel's labels layer: the classes, shared borders, N, the table."""
        layer = self.layer()
        labels = self.panel.labels()
        self._fill_classes(self.schema(labels))
        self.make_button.setEnabled(labels is not None and layer is None)
        if layer is None:
            self.layer_label.setText(
                "Current labels hold classes. Make an instance layer to label objects one by one."
                if labels is not None
                else "Pick or create a labels layer above."
            )
            self.model.set_rows([])
            return
        self._watch(layer)
        self.shared.blockSignals(True)
        self.shared.setChecked(bool(layer.preserve_labels))
        self.shared.blockSignals(False)
        self.refresh()

    def _fill_classes(self, schema: Any) -> None:
        current = self.class_box.currentData()
        self.class_box.blockSignals(True)
        self.class_box.clear()
        if schema is not None:
            objects = [c for c in schema if is_objects_class(schema, c.id)]
            regions = [c for c in schema if c not in objects]
            for label_class in objects:
                self.class_box.addItem(class_path(schema, label_class.id), label_class.id)
            if objects and regions:
                self.class_box.insertSeparator(self.class_box.count())
            for label_class in regions:
                self.class_box.addItem(
                    f"{class_path(schema, label_class.id)} (region)", label_class.id
                )
        found = self.class_box.findData(current)
        if found >= 0 and schema is not None and not is_objects_class(schema, int(current)):
            found = -1 if objects else found  # an objects class by default, when there is one
        self.class_box.setCurrentIndex(found if found >= 0 else 0)
        self.class_box.blockSignals(False)

    def _watch(self, layer: Labels) -> None:
        if layer in self._watched:
            return
        self._watched.add(layer)
        self._remember(layer, self.instances(layer))
        ref = weakref.ref(layer)
        layer.events.paint.connect(lambda event: self._on_paint(ref, event))
        layer.events.selected_label.connect(lambda _event: self._on_selected_label(layer))
        layer.events.set_data.connect(lambda _event: self._timer.start())
        layer.bind_key("n", lambda _layer: self.new_object(), overwrite=True)

    def _remember(self, layer: Labels, table: InstanceTable) -> None:
        self._known.setdefault(layer, {}).update({i.id: i for i in table})

    # -- making an instance layer ---------------------------------------------------------------
    def make_instance_layer(self) -> Labels | None:
        """A new instance layer from the current class labels (same grid, geometry, schema)."""
        labels = self.panel.labels()
        if labels is None:
            show_warning("Pick the labels to make objects from first.")
            return None
        if state.is_instance_layer(labels):
            show_info(f"'{labels.name}' already holds objects.")
            return labels
        schema = self.schema(labels)
        provenance = "assisted" if state.assist_of(labels) else "manual"
        instance_map, table = ops.make_instances(
            np.asarray(labels.data), schema, provenance=provenance
        )
        info = state.inherited_info(labels)
        info["annotation_id"] = uuid.uuid4().hex  # its own autosaves
        kwargs: dict[str, Any] = {"metadata": state.plugin_metadata(info)}
        state.set_geometry(kwargs, state.geometry_of(labels))
        state.set_schema(kwargs, schema)
        state.set_instances(kwargs, table, schema)
        layer = self.viewer.add_labels(
            instance_map,
            name=f"{labels.name} objects",
            metadata=kwargs["metadata"],
            features=kwargs["features"],
            axis_labels=labels.axis_labels,
            units=labels.units,
            **placement(labels),
        )
        layer.colormap = instance_colormap(table, schema)
        layer.preserve_labels = True  # shared borders by default
        labels.visible = False  # the objects cover the classes they came from
        self.panel.refresh_layers()
        self.panel.labels_box.setCurrentText(layer.name)
        self.viewer.layers.selection.active = layer
        self.follow()
        show_info(f"'{layer.name}': {len(table)} objects from the classes of '{labels.name}'.")
        return layer

    # -- objects ----------------------------------------------------------------------------------
    def new_object(self) -> int | None:
        """Add an instance of the chosen class and select it: painting then draws it."""
        layer, class_id = self.layer(), self.class_id()
        if layer is None or class_id is None:
            show_warning("Make or pick an instance layer, and choose a class, first.")
            return None
        table, instance_id = ops.new_instance(
            self._table(layer), class_id, _defaults(self.schema(layer), class_id)
        )
        if instance_id > np.iinfo(layer.data.dtype).max:
            layer.data = np.asarray(layer.data).astype(table.dtype)  # more ids than the dtype holds
        self._set_table(layer, table)
        layer.selected_label = instance_id
        if layer.mode == "pan_zoom":
            layer.mode = "paint"
        self.refresh()
        return instance_id

    def selected_ids(self) -> list[int]:
        """Ids of the rows selected in the table (or the layer's selected label)."""
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        ids = [self.model.rows[row][0] for row in rows if row < len(self.model.rows)]
        layer = self.layer()
        if not ids and layer is not None and layer.selected_label:
            ids = [int(layer.selected_label)]
        return ids

    def select(self, ids: list[int]) -> None:
        """Select the rows of ``ids`` in the table."""
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for row, values in enumerate(self.model.rows):
            if values[0] in ids:
                self.table.selectRow(row)
        self.table.setSelectionMode(mode)

    def split_selected(self) -> int:
        """Split the selected object along the cut last painted or erased through it."""
        layer, ids = self.layer(), self.selected_ids()
        if layer is None or len(ids) != 1:
            show_warning("Select one object to split.")
            return 0
        instance_id, current = ids[0], np.asarray(layer.data)
        stroke = self._strokes.get(layer)
        mask = np.zeros(current.shape, bool)
        working = current
        if stroke is not None:
            indices, old = stroke
            cut = old == instance_id  # pixels the last stroke took from this object
            cut_indices = tuple(axis[cut] for axis in indices)
            mask[cut_indices] = True
            working = current.copy()
            working[cut_indices] = instance_id  # the object before the cut
        if not mask.any():
            show_warning(
                "Erase a cut through the object with the eraser (or paint across it), then "
                "press Split."
            )
            return 0
        result = self._run(ops.split_instance, working, self._table(layer), instance_id, mask)
        if result is None or len(result.instance_ids) < 2:
            show_info("The cut does not divide the object: nothing split.")
            return 0
        self._strokes.pop(layer, None)
        self._pieces.setdefault(layer, set()).update(result.instance_ids[1:])
        self._apply(layer, result, diff_from=current)
        show_info(f"Object {instance_id} split into {len(result.instance_ids)} objects.")
        return len(result.instance_ids)

    def merge_selected(self) -> int | None:
        """Merge the selected objects into the one with the smallest id."""
        layer, ids = self.layer(), self.selected_ids()
        if layer is None or len(ids) < 2:
            show_warning("Select two or more objects in the table to merge (Ctrl+click).")
            return None
        result = self._run(ops.merge_instances, np.asarray(layer.data), self._table(layer), ids)
        if result is None:
            return None
        self._apply(layer, result)
        layer.selected_label = result.instance_ids[0]
        return result.instance_ids[0]

    def relabel_selected(self) -> int:
        """Give the selected objects the chosen class (their pixels do not change)."""
        layer, ids, class_id = self.layer(), self.selected_ids(), self.class_id()
        if layer is None or not ids or class_id is None:
            show_warning("Select objects and the class to give them.")
            return 0
        table = self._table(layer)
        for instance_id in ids:
            table = self._run(ops.relabel_instance, table, instance_id, class_id)
            if table is None:
                return 0
        self._set_table(layer, table)
        self.refresh()
        return len(ids)

    def delete_selected(self) -> int:
        """Erase the selected objects (Ctrl+Z brings them back)."""
        layer, ids = self.layer(), self.selected_ids()
        if layer is None or not ids:
            show_warning("Select the objects to delete.")
            return 0
        result = self._run(ops.delete_instances, np.asarray(layer.data), self._table(layer), ids)
        if result is None:
            return 0
        self._apply(layer, result)
        return len(ids)

    def snap_neighbours(self) -> int:
        """Close 1-pixel gaps between touching objects (one undo step); the pixels filled."""
        layer = self.layer()
        if layer is None:
            show_warning("Make or pick an instance layer first.")
            return 0
        result = self._run(ops.snap_to_neighbours, np.asarray(layer.data), 1, self._table(layer))
        if result is None:
            return 0
        filled = len(result.edit)
        if filled:
            self._apply(layer, result)
        self.snap_status.setText(
            f"{filled} gap pixel{'s' * (filled != 1)} filled (Ctrl+Z undoes it)"
            if filled
            else "No 1-pixel gap between objects."
        )
        return filled

    # -- attributes -----------------------------------------------------------------------------
    def selected_instance(self) -> Instance | None:
        """The selected object's record, when exactly one object with a record is selected."""
        layer, ids = self.layer(), self.selected_ids()
        if layer is None or len(ids) != 1:
            return None
        table = self.instances(layer)
        return table[ids[0]] if ids[0] in table else None

    def _show_attributes(self) -> None:
        instance = self.selected_instance()
        specs = () if instance is None else _specs(self.schema(self.layer()), instance.class_id)
        self.attributes.show_instance(instance, specs)

    def set_attribute(self, name: str, value: Any) -> bool:
        """Set attribute ``name`` of the selected object (refused when its spec rejects it)."""
        layer, instance = self.layer(), self.selected_instance()
        if layer is None or instance is None:
            show_warning("Select one object to edit its attributes.")
            return False
        schema = self.schema(layer)
        spec = next((s for s in _specs(schema, instance.class_id) if s.name == name), None)
        if spec is None or not spec.accepts(value):
            wanted = "no such attribute for its class"
            if spec is not None:
                takes = f"one of {', '.join(spec.choices)}" if spec.choices else f"a {spec.type}"
                wanted = f"{name} takes {takes}"
            show_warning(f"Object {instance.id}: {name} = {value!r} refused ({wanted}).")
            self._show_attributes()  # the editor shows the kept value again
            return False
        attributes = dict(instance.attributes)
        if value is None:
            attributes.pop(name, None)
        else:
            attributes[name] = value
        table = self._table(layer).with_instance(replace(instance, attributes=attributes))
        state.set_instances(layer, table, schema)  # the colours do not change
        self._remember(layer, table)
        return True

    # -- writing --------------------------------------------------------------------------------
    def _run(self, function: Any, *args: Any) -> Any:
        try:
            return function(*args)
        except InstanceError as exc:
            show_warning(str(exc))
            return None

    def _table(self, layer: Labels) -> InstanceTable:
        """The layer's table as the pixels now are, after an undo or a redo.

        Ids undo painted back get their records again; pieces a split made that undo erased
        are dropped (an object made with "New object" stays until deleted, painted or not).
        """
        table = self.instances(layer)
        known = self._known.get(layer, {})
        check = check_instances(np.asarray(layer.data), table)
        restored = [known[i] for i in check.untabled if i in known]
        erased = set(check.unused) & self._pieces.get(layer, set())
        if restored or erased:
            table = InstanceTable((*table.without(erased).instances, *restored))
            self._set_table(layer, table)
        return table

    def _set_table(self, layer: Labels, table: InstanceTable) -> None:
        schema = self.schema(layer)
        state.set_instances(layer, table, schema)
        layer.colormap = instance_colormap(table, schema)
        self._remember(layer, table)

    def _apply(self, layer: Labels, result: Any, diff_from: np.ndarray | None = None) -> None:
        """Write an edit as one undo step, then the table."""
        new_map = result.instance_map
        self._writing = True
        try:
            if new_map.dtype.itemsize > layer.data.dtype.itemsize:
                layer.data = new_map  # more ids than the layer's dtype holds: no undo
                show_info("More than 65535 objects: the layer now stores 32-bit ids.")
            else:
                if diff_from is None:
                    indices, values = result.edit.indices, result.edit.new_values
                else:
                    indices = np.nonzero(new_map != diff_from)
                    values = new_map[indices]
                if len(indices) and len(indices[0]):
                    with layer.block_history():
                        layer.data_setitem(indices, values)
        finally:
            self._writing = False
        self._set_table(layer, result.table)
        self.refresh()

    # -- painting events ------------------------------------------------------------------------
    def _on_paint(self, ref: Any, event: Any) -> None:
        layer = ref()
        if layer is None or self._writing:
            return
        indices, old, new = _changed(event.value, layer.data.ndim)
        self._strokes[layer] = (indices, old)
        painted = {int(v) for v in np.unique(new)} - {0}
        # napari emits the event before it writes a brush or polygon stroke: look after it
        QTimer.singleShot(0, lambda: self._after_paint(ref, painted))

    def _after_paint(self, ref: Any, painted: set[int]) -> None:
        layer = ref()
        if layer is None:
            return
        if painted - set(self.instances(layer).ids):
            self._table(layer)  # ids undo or redo brought back get their records
            self.report(layer)  # the others: a notification with "Repair"
            if layer is self.layer():
                self.refresh()
        else:
            self._timer.start()

    def report(self, layer: Labels | None = None) -> tuple[int, ...]:
        """Say which painted ids have no class (a notification with "Repair"); return them."""
        layer = layer or self.layer()
        if layer is None:
            return ()
        check = check_instances(np.asarray(layer.data), self.instances(layer))
        self.repair_button.setVisible(not check.ok)
        self.status.setText(check.message(f"'{layer.name}'"))
        new = set(check.untabled) - self._reported
        if new:
            self._reported |= new
            notification_manager.dispatch(
                Notification(
                    check.message(f"'{layer.name}'"),
                    NotificationSeverity.WARNING,
                    actions=[("Repair", lambda *_args: self.repair())],
                )
            )
        return check.untabled

    def repair(self) -> tuple[int, ...]:
        """Give every painted id without a record the chosen class (nothing is erased)."""
        layer, class_id = self.layer(), self.class_id()
        if layer is None or class_id is None:
            return ()
        table = self._table(layer)
        data = np.asarray(layer.data)
        fixed = check_instances(data, table).untabled
        self._set_table(layer, repair(data, table, class_id, provenance="manual"))
        self._reported -= set(fixed)
        self.refresh()
        return fixed

    # -- the table and the view -----------------------------------------------------------------
    def _refresh_if_shown(self) -> None:
        tabs = getattr(self.panel, "tabs", None)
        if tabs is not None and tabs.currentWidget() is self:
            self.refresh()

    def refresh(self) -> None:
        """Recount the objects (sizes) and fill the table."""
        layer = self.layer()
        if layer is None:
            self.model.set_rows([])
            return
        table, schema = self._table(layer), self.schema(layer)
        data = np.asarray(layer.data)
        stats = {
            row.id: row
            for row in instance_statistics(
                data,
                table,
                physical_spacing(layer),
                _length_unit(layer),
                intensities=_intensities(self.panel.image(), data.shape),
                schema=schema,
            )
        }
        rows: list[Row] = []
        numbers = table.numbers_in_class()
        counts: dict[str, int] = {}
        for instance in table:
            row = stats.get(instance.id)
            size = _size_text(row.size, row.unit) if row is not None else "not painted yet"
            name = class_path(schema, instance.class_id)
            counts[name] = counts.get(name, 0) + 1
            if is_objects_class(schema, instance.class_id):
                name = f"{name} #{numbers[instance.id]}"
            mean = row.mean if row is not None else None
            rows.append((instance.id, name, size, mean, instance.provenance))
        summary = ", ".join(f"{count} {name}" for name, count in counts.items())
        self.layer_label.setText(
            f"'{layer.name}': {len(table)} objects" + (f" ({summary})" if summary else "")
        )
        for value, row in stats.items():
            if value not in table:
                size = _size_text(row.size, row.unit)
                rows.append((value, "(no class: repair)", size, row.mean, "?"))
        selected = self.selected_ids()
        self.model.set_rows(sorted(rows, key=lambda r: r[0]))
        self.select(selected)
        self._show_attributes()
        self.report(layer)

    def _select_row(self, instance_id: int) -> None:
        for row, values in enumerate(self.model.rows):
            if values[0] == instance_id:
                self.table.selectRow(row)
                return
        self.table.clearSelection()  # a new object, not listed yet: the layer's label counts

    def _on_selected_label(self, layer: Labels) -> None:
        self._select_row(layer.selected_label)
        self._show_attributes()

    def _on_row_clicked(self, index: QModelIndex) -> None:
        self.go_to(self.model.rows[index.row()][0])

    def go_to(self, instance_id: int) -> tuple[float, ...] | None:
        """Select instance ``instance_id`` and centre the view on it (its world position)."""
        layer = self.layer()
        if layer is None:
            return None
        layer.selected_label = int(instance_id)
        where = np.nonzero(np.asarray(layer.data) == instance_id)
        if not len(where[0]):
            return None
        points = np.stack(where, axis=1)
        nearest = points[np.argmin(((points - points.mean(axis=0)) ** 2).sum(axis=1))]
        world = np.asarray(layer.data_to_world(nearest), dtype=float)
        offset = self.viewer.dims.ndim - layer.ndim
        displayed = list(self.viewer.dims.displayed)
        for axis in range(layer.ndim):
            if axis + offset not in displayed:
                self.viewer.dims.set_point(axis + offset, world[axis])
        camera_of(self.viewer).center = tuple(world[[a - offset for a in displayed]])
        return tuple(world)

    def show_class_view(self) -> Labels | None:
        """A read-only layer of the classes the objects make (computed now, never stored)."""
        layer = self.layer()
        if layer is None:
            show_warning("Pick an instance layer first.")
            return None
        table, schema = self._table(layer), self.schema(layer)
        classes = semantic_map(np.asarray(layer.data), table)
        name = f"{layer.name}: class view"
        if name in self.viewer.layers:
            view = self.viewer.layers[name]
            view.data = classes
        else:
            kwargs: dict[str, Any] = {
                "metadata": state.plugin_metadata(
                    {k: v for k, v in state.inherited_info(layer).items() if k != "annotation_id"}
                )
            }
            state.set_geometry(kwargs, state.geometry_of(layer))
            state.set_schema(kwargs, schema)
            view = self.viewer.add_labels(
                classes, name=name, metadata=kwargs["metadata"], **placement(layer)
            )
        if schema is not None:
            view.colormap = schema_colormap(schema)
        view.editable = False
        return view

    def _on_shared(self, checked: bool) -> None:
        layer = self.layer()
        if layer is not None:
            layer.preserve_labels = checked


def _changed(item: Any, ndim: int) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    """Indices, old and new values of a napari paint event's history item."""
    indices: list[list[np.ndarray]] = [[] for _ in range(ndim)]
    old_values, new_values = [], []
    for atom in item:
        if hasattr(atom, "slice_key"):  # a mask-based edit: brush, fill, polygon (full ndim)
            starts = [(k.start or 0) if isinstance(k, slice) else int(k) for k in atom.slice_key]
            old = np.asarray(atom.old_values)
            mask = np.ones(old.shape, bool) if atom.mask is None else np.asarray(atom.mask)
            local = np.nonzero(mask)
            for axis in range(ndim):
                indices[axis].append(np.asarray(local[axis]) + starts[axis])
            old = old.ravel()
            old_values.append(old)
            new_values.append(np.full(old.shape, atom.new_value))
        else:  # data_setitem: (indices, old values, new values)
            where, old, new = atom
            for axis in range(ndim):
                indices[axis].append(np.asarray(where[axis]).ravel())
            old = np.asarray(old).ravel()
            old_values.append(old)
            new_values.append(np.broadcast_to(np.asarray(new), old.shape).ravel())
    if not old_values:
        empty = np.zeros(0, np.intp)
        return tuple(empty for _ in range(ndim)), empty, empty
    return (
        tuple(np.concatenate(axis).astype(np.intp) for axis in indices),
        np.concatenate(old_values),
        np.concatenate(new_values),
    )


def _defaults(schema: Any, class_id: int) -> dict[str, Any]:
    specs = getattr(schema, "attribute_specs", None)
    if specs is None or class_id not in schema:
        return {}
    return {s.name: s.default for s in specs(class_id) if s.default is not None}


def _specs(schema: Any, class_id: int) -> tuple[AttributeSpec, ...]:
    """The attribute specs of ``class_id`` (own and inherited; none without a schema)."""
    specs = getattr(schema, "attribute_specs", None)
    return tuple(specs(class_id)) if specs is not None and class_id in schema else ()


def _set_value(editor: QWidget, value: Any) -> None:
    """Show ``value`` in an attribute editor without calling back."""
    editor.blockSignals(True)
    try:
        if isinstance(editor, QCheckBox):
            editor.setChecked(bool(value))
        elif isinstance(editor, QSpinBox):
            editor.setValue(int(value) if value is not None else 0)
        elif isinstance(editor, QDoubleSpinBox):
            editor.setValue(float(value) if value is not None else 0.0)
        elif isinstance(editor, QComboBox):
            editor.setCurrentIndex(max(0, editor.findData(value)))
        elif isinstance(editor, QLineEdit):
            editor.setText("" if value is None else str(value))
    finally:
        editor.blockSignals(False)


def _intensities(image: Any, shape: tuple[int, ...]) -> Any:
    """The image's data when it lies on the labels' grid (same shape, one scale), else ``None``."""
    if image is None or getattr(image, "multiscale", False) or getattr(image, "rgb", False):
        return None
    data = image.data
    return data if tuple(np.shape(data)) == tuple(shape) else None


def _length_unit(layer: Any) -> str:
    """The unit of the layer's spacing: mm for volumes, the CRS's linear unit for rasters."""
    if state.domain_of(layer) == "medical":
        return "mm"
    grid = state.raster_grid_of(layer)
    if grid is not None and grid.crs is not None and grid.crs.is_projected:
        return str(grid.crs.linear_units or "")
    return ""


def _size_text(size: float, unit: str) -> str:
    if unit in ("pixels", "voxels"):
        return f"{int(size)} {unit}"
    return f"{size:.4g} {_UNIT_TEXT.get(unit, unit)}"
