"""The "Label schema" dock widget: choose a schema, see its classes, apply it to a labels layer.

All logic lives in :mod:`napari_domainseg.labels`; this widget only wires
controls to it and reports errors as napari notifications.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from napari.layers import Labels
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._layer_data import schema_colormap
from napari_domainseg._napari._viewer_setup import watch
from napari_domainseg.labels import (
    LabelSchema,
    SchemaError,
    format_color,
    list_presets,
    load_preset,
    load_schema,
    save_schema,
)

if TYPE_CHECKING:
    import napari

_FROM_FILE = "From file…"


class SchemaPanel(QWidget):
    """Shows the classes of a label schema and applies them to the selected labels layer."""

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.schema: LabelSchema | None = None
        watch(napari_viewer)

        self.preset_box = QComboBox()
        self.preset_box.addItems([*list_presets(), _FROM_FILE])
        self.preset_box.setToolTip("A shipped schema, or load your own YAML/JSON schema file")
        self.preset_box.activated.connect(self._on_preset_chosen)
        self.add_button = QPushButton("Add class…")
        self.add_button.setToolTip("Add a class to the schema (next free id, a distinct colour)")
        self.add_button.clicked.connect(self._on_add_clicked)
        self.save_button = QPushButton("Save as…")
        self.save_button.clicked.connect(self._on_save_clicked)
        top = QHBoxLayout()
        top.addWidget(self.preset_box, 1)
        top.addWidget(self.add_button)
        top.addWidget(self.save_button)

        self.title = QLabel()
        self.title.setWordWrap(True)
        self.class_list = QListWidget()
        self.class_list.itemClicked.connect(self._on_class_clicked)
        self.help = QLabel()
        self.help.setWordWrap(True)
        self.help.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.apply_button = QPushButton("Apply to selected labels layer")
        self.apply_button.clicked.connect(self.apply_to_active_layer)
        self.preserve_box = QCheckBox("Paint only over unlabeled pixels (never overwrite a class)")
        self.preserve_box.setToolTip(
            "napari's 'preserve labels': brush, fill and tools leave other classes' "
            "pixels alone, so shared borders are never overwritten by accident"
        )
        self.preserve_box.toggled.connect(self._on_preserve_toggled)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.title)
        layout.addWidget(self.class_list, 1)
        layout.addWidget(self.help)
        layout.addWidget(self.preserve_box)
        layout.addWidget(self.apply_button)
        self.set_schema(load_preset(list_presets()[0]))
        napari_viewer.layers.selection.events.active.connect(self._on_active_layer)
        self._on_active_layer()

    # -- state ------------------------------------------------------------------------------
    def set_schema(self, schema: LabelSchema) -> None:
        """Show ``schema``'s classes in the list."""
        self.schema = schema
        self.title.setText(f"<b>{schema.name}</b> — {len(schema)} classes")
        self.title.setToolTip(schema.description)
        self.class_list.clear()
        for label_class in schema:
            pixmap = QPixmap(14, 14)
            pixmap.fill(QColor(*label_class.color))
            shortcut = f"  [{label_class.shortcut}]" if label_class.shortcut else ""
            item = QListWidgetItem(QIcon(pixmap), f"{label_class.id}  {label_class.name}{shortcut}")
            item.setData(Qt.ItemDataRole.UserRole, label_class.id)
            item.setToolTip(label_class.description)
            self.class_list.addItem(item)
        self.help.setText("")
        presets = list_presets()
        for index, name in enumerate(presets):
            if load_preset(name) == schema:
                self.preset_box.setCurrentIndex(index)
                break

    def add_class(self, name: str, description: str = "") -> LabelSchema | None:
        """Add a class (next free id, a distinct colour) and re-apply to the active labels layer."""
        from napari_domainseg.labels.colors import default_color

        if self.schema is None or not name.strip():
            return None
        document = self.schema.to_dict()
        new_id = self.schema.max_id + 1
        entry = {"id": new_id, "name": name.strip(), "color": format_color(default_color(new_id))}
        if description:
            entry["description"] = description
        document["classes"].append(entry)
        try:
            schema = LabelSchema.from_dict(document, source="added class")
        except SchemaError as exc:
            show_error(str(exc))
            return None
        self.set_schema(schema)
        if isinstance(self.viewer.layers.selection.active, Labels):
            self.apply_to_active_layer()
        return schema

    def load_file(self, path: str | Path) -> bool:
        """Load a schema file; on error show a notification and keep the current schema."""
        try:
            schema = load_schema(path)
        except SchemaError as exc:
            show_error(str(exc))
            return False
        self.set_schema(schema)
        return True

    def save_file(self, path: str | Path) -> None:
        """Save the current schema (YAML, or JSON for a ``.json`` name)."""
        if self.schema is not None:
            save_schema(self.schema, path)
            show_info(f"Label schema saved to {path}")

    def select_class(self, class_id: int) -> None:
        """Make ``class_id`` the painted label of the active labels layer and show its guideline."""
        if self.schema is None or class_id not in self.schema:
            return
        label_class = self.schema[class_id]
        self.help.setText(f"<b>{label_class.name}</b>: {label_class.description}")
        layer = self.viewer.layers.selection.active
        if isinstance(layer, Labels):
            layer.selected_label = class_id

    def apply_to_active_layer(self) -> bool:
        """Colour the active labels layer by the schema and record the schema in its metadata."""
        layer = self.viewer.layers.selection.active
        if not isinstance(layer, Labels):
            show_error("Select a labels layer first: the schema colours a labels layer.")
            return False
        if self.schema is None:
            return False
        layer.colormap = schema_colormap(self.schema)
        state.set_schema(layer, self.schema)
        self.bind_shortcuts(layer)
        return True

    def bind_shortcuts(self, layer: Labels) -> None:
        """Let each class's shortcut key (usually its number) select it on ``layer``.

        The schema's keys take precedence over napari's own keys on that layer.
        """
        if self.schema is None:
            return
        for label_class in self.schema:
            if label_class.shortcut:

                def select(_layer: Labels, class_id: int = label_class.id) -> None:
                    self.select_class(class_id)

                layer.bind_key(label_class.shortcut, select, overwrite=True)

    # -- Qt callbacks -----------------------------------------------------------------------
    def _on_preset_chosen(self, index: int) -> None:
        choice = self.preset_box.itemText(index)
        if choice == _FROM_FILE:
            path, _ = QFileDialog.getOpenFileName(
                self, "Open label schema", "", "Label schema (*.yaml *.yml *.json)"
            )
            if path:
                self.load_file(path)
        else:
            self.set_schema(load_preset(choice))

    def _on_add_clicked(self) -> None:
        name, ok = QInputDialog.getText(self, "Add class", "Class name:")
        if ok and name:
            description, _ = QInputDialog.getText(self, "Add class", "Guideline (optional):")
            self.add_class(name, description)

    def _on_save_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save label schema", "schema.yaml", "Label schema (*.yaml *.yml *.json)"
        )
        if path:
            self.save_file(path)

    def _on_active_layer(self, event: object = None) -> None:
        """Show the schema a labels layer carries, when it carries one."""
        layer = self.viewer.layers.selection.active
        document = state.schema_document_of(layer)
        if isinstance(layer, Labels) and document:
            try:
                self.set_schema(LabelSchema.from_dict(document, source=f"layer {layer.name}"))
            except SchemaError as exc:
                show_error(str(exc))
                return
            self.bind_shortcuts(layer)
        if isinstance(layer, Labels):
            self.preserve_box.setChecked(bool(layer.preserve_labels))

    def _on_preserve_toggled(self, checked: bool) -> None:
        layer = self.viewer.layers.selection.active
        if isinstance(layer, Labels):
            layer.preserve_labels = checked

    def _on_class_clicked(self, item: QListWidgetItem) -> None:
        self.select_class(int(item.data(Qt.ItemDataRole.UserRole)))
