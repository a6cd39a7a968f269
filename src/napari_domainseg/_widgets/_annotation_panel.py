"""The "Annotation" dock widget: one place for the image, its labels, classes and tools.

Top: the image to annotate and its annotation layer (pick one, or create it
on the image's exact grid). Tabs: classes (schema, guidelines, shortcuts,
painting policy), display, slices, tools, statistics, and recovery (autosave
interval; restore labels saved before a crash).

Each tab is its own module (:mod:`._tab_display` with :mod:`._tab_display_ct`,
:mod:`._tab_display_bands` and :mod:`._tab_indices`; :mod:`._tab_slices`, :mod:`._tab_tools`,
:mod:`._tab_statistics`, :mod:`._tab_objects`; :mod:`._assist_tab`) and only wires controls to
:mod:`napari_domainseg.ops`; edits go through
:func:`~napari_domainseg._napari._edits.apply_edits`, so Ctrl+Z undoes them. The panel gives
each tab its context through ``panel.image()``, ``panel.labels()`` and ``panel.class_id()``.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import show_info
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._annotation import add_annotation_layer
from napari_domainseg._napari._viewer_setup import watch
from napari_domainseg._widgets._assist_tab import AssistTab
from napari_domainseg._widgets._combo import refill
from napari_domainseg._widgets._domain import image_domain
from napari_domainseg._widgets._schema_panel import SchemaPanel
from napari_domainseg._widgets._tab_display import DisplayTab
from napari_domainseg._widgets._tab_objects import ObjectsTab
from napari_domainseg._widgets._tab_slices import SlicesTab
from napari_domainseg._widgets._tab_statistics import StatisticsTab
from napari_domainseg._widgets._tab_tools import ToolsTab

if TYPE_CHECKING:
    import napari


class RecoveryTab(QWidget):
    """Autosave interval, and restoring the labels saved for the current image."""

    def __init__(self, panel: AnnotationPanel) -> None:
        super().__init__()
        self.panel = panel
        self.autosaver = watch(panel.viewer).autosaver
        self.interval = QSpinBox()
        self.interval.setRange(0, 3600)
        self.interval.setSuffix(" s")
        self.interval.setValue(int(self.autosaver.timer.interval() / 1000))
        self.interval.valueChanged.connect(self.autosaver.set_interval)
        self.status = QLabel()
        self.status.setWordWrap(True)
        restore = QPushButton("Restore recovered labels")
        restore.clicked.connect(self.restore)
        form = QFormLayout(self)
        form.addRow("autosave every (0: off)", self.interval)
        form.addRow(self.status)
        form.addRow(restore)

    def _key(self) -> str | None:
        image = self.panel.image()
        if image is None:
            return None
        return state.recovery_key_of(image, tuple(image.data.shape))

    def check(self) -> list:
        """Look for labels saved for the current image; say so; return the newest of each layer."""
        key = self._key()
        saves = self.autosaver.store.latest_each(key) if key else []
        if not saves:
            self.status.setText("No recovered labels for this image.")
            return []
        lines = []
        for recovered in saves:
            when = datetime.datetime.fromtimestamp(recovered.saved_at).strftime("%Y-%m-%d %H:%M:%S")
            lines.append(f"Recovered labels '{recovered.name}' saved {when}.")
        self.status.setText("\n".join(lines))
        return saves

    def restore(self) -> list[Labels]:
        """Add the newest recovered labels of every annotation layer of the current image."""
        saves = self.check()
        image = self.panel.image()
        if not saves or image is None:
            return []
        restored = []
        for recovered in saves:
            if np.shape(recovered.labels) != tuple(image.data.shape):
                continue  # saved for a region of the image: not restorable as a whole layer
            layer = add_annotation_layer(self.panel.viewer, image)
            layer.data = recovered.labels
            state.update(
                layer,
                **{k: v for k, v in recovered.metadata.items() if k in ("schema", "annotation_id")},
            )
            if recovered.metadata.get("instances") is not None:  # an instance layer: its objects
                from napari_domainseg._napari._layer_data import instance_colormap
                from napari_domainseg.labels.instances import InstanceTable

                table = InstanceTable.from_records(recovered.metadata["instances"])
                state.set_instances(layer, table, state.schema_of(layer))
                layer.colormap = instance_colormap(table, state.schema_of(layer))
            layer.name = f"{recovered.name} (recovered)"
            restored.append(layer)
            show_info(f"Restored '{recovered.name}' from the recovery store.")
        self.panel.refresh_layers()
        return restored


class AnnotationPanel(QWidget):
    """Image and annotation layer pickers above the annotation tabs."""

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.image_box, self.labels_box = QComboBox(), QComboBox()
        self.image_box.currentIndexChanged.connect(self._on_image_changed)
        new_button = QPushButton("New annotation layer")
        new_button.clicked.connect(self.new_annotation_layer)
        pickers = QFormLayout()
        pickers.addRow("image", self.image_box)
        row = QHBoxLayout()
        row.addWidget(self.labels_box, 1)
        row.addWidget(new_button)
        pickers.addRow("labels", row)

        self.classes = SchemaPanel(napari_viewer)
        self.display = DisplayTab(self)
        self.slices = SlicesTab(self)
        self.tools = ToolsTab(self)
        self.objects = ObjectsTab(self)
        self.statistics = StatisticsTab(self)
        self.recovery = RecoveryTab(self)
        self.assist = AssistTab(self)
        self._domain = None
        self.tabs = QTabWidget()
        for widget, title in (
            (self.classes, "Classes"),
            (self.display, "Display"),
            (self.slices, "Slices"),
            (self.tools, "Tools"),
            (self.objects, "Objects"),
            (self.statistics, "Statistics"),
            (self.assist, "Assist"),
            (self.recovery, "Recovery"),
        ):
            self.tabs.addTab(widget, title)
        self.tabs.currentChanged.connect(self._on_tab)

        layout = QVBoxLayout(self)
        layout.addLayout(pickers)
        layout.addWidget(self.tabs, 1)
        for event in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            event.connect(lambda _event: self.refresh_layers())
        self.refresh_layers()

    # -- context for the tabs ---------------------------------------------------------------
    def _layer(self, box: QComboBox, kind: type) -> Any:
        name = box.currentText()
        if name in self.viewer.layers and isinstance(self.viewer.layers[name], kind):
            return self.viewer.layers[name]
        return None

    def image(self) -> Image | None:
        """The image being annotated."""
        return self._layer(self.image_box, Image)

    def labels(self) -> Labels | None:
        """Its annotation layer."""
        return self._layer(self.labels_box, Labels)

    def class_id(self) -> int:
        """The class being painted (the annotation layer's selected label)."""
        labels = self.labels()
        return int(labels.selected_label) if labels is not None else 1

    def class_names(self) -> dict[int, str]:
        """Class names of the current schema."""
        schema = self.classes.schema
        return {c.id: c.name for c in schema.classes} if schema is not None else {}

    # -- layers -------------------------------------------------------------------------------
    def refresh_layers(self) -> None:
        """Fill the pickers from the viewer's layers, keeping the current choices."""
        for box, kind in ((self.image_box, Image), (self.labels_box, Labels)):
            names = [layer.name for layer in self.viewer.layers if isinstance(layer, kind)]
            refill(box, names, fallback=len(names) - 1)
        self._on_image_changed()

    def new_annotation_layer(self) -> Labels | None:
        """Create labels on the chosen image's grid, with the current schema."""
        image = self.image()
        if image is None:
            return None
        layer = add_annotation_layer(self.viewer, image, self.classes.schema)
        self.classes.bind_shortcuts(layer)
        self.refresh_layers()
        self.labels_box.setCurrentText(layer.name)
        return layer

    def _on_image_changed(self, _index: int = 0) -> None:
        domain = image_domain(self.image())
        if domain != self._domain:
            self._domain = domain
            self.display.follow(domain)
            self.tools.follow(domain)
            self.tabs.setTabEnabled(self.tabs.indexOf(self.slices), domain.ndim != 2)
        self.tools.refresh_regions()
        self.display.refresh_bands()
        if self.image() is not None:
            self.recovery.check()

    def _on_tab(self, index: int) -> None:
        if self.tabs.widget(index) is self.slices:
            self.slices.refresh()
        elif self.tabs.widget(index) is self.objects:
            self.objects.follow()
        elif self.tabs.widget(index) is self.statistics and self.statistics.stats is None:
            self.statistics.recompute()
