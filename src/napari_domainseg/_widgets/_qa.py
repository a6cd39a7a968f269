"""The "Compare annotations" dock widget: metrics of two labels layers and where they differ.

The metrics come from :mod:`napari_domainseg.ops.metrics` (the same as
``domainseg compare``); the second annotation may be a layer or a file on
the same grid. The disagreement layer marks 1 where only the first labelled,
2 where only the second, 3 where both labelled but with different classes.

With a class tree in A's schema the table has one row per level (a class path, indented by
its depth; a parent aggregates its children). When "objects" classes are present (in the
schema, or instance layers whose ``features`` give each instance its class), a second table
lists the instance figures: matched at IoU >= 0.5, precision, recall, F1, PQ.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Labels
from napari.utils.notifications import show_error
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._edits import physical_spacing
from napari_domainseg._widgets._combo import refill
from napari_domainseg.labels.instances import semantic_map
from napari_domainseg.ops.instance_metrics import Instances, marks_objects
from napari_domainseg.ops.metrics import compare

if TYPE_CHECKING:
    import napari
    from napari_domainseg.labels.schema import LabelSchema

COLUMNS = ("class", "Dice", "IoU", "HD95", "MSD", "size A", "size B")
INSTANCE_COLUMNS = ("class", "matched", "precision", "recall", "F1", "PQ", "count A", "count B")
INDENT = "    "
"""Per depth of a class path in the level rows."""
DISAGREEMENT_COLOURS = {1: "#ff7f0e", 2: "#1f77b4", 3: "#d62728"}


def disagreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 where only ``a`` is labelled, 2 where only ``b``, 3 where both differ; 0 elsewhere."""
    a, b = np.asarray(a), np.asarray(b)
    result = np.zeros(a.shape, np.uint8)
    result[(a != 0) & (b == 0)] = 1
    result[(a == 0) & (b != 0)] = 2
    result[(a != 0) & (b != 0) & (a != b)] = 3
    return result


class CompareAnnotations(QWidget):
    """Compare two annotations of the same image."""

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.first, self.second = QComboBox(), QComboBox()
        self.file: Path | None = None
        self.result: dict[str, Any] | None = None
        load = QPushButton("Second from file…")
        load.clicked.connect(self._on_load)
        run = QPushButton("Compare")
        run.clicked.connect(self.run)
        self.summary = QLabel()
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.instance_summary = QLabel()
        self.instance_table = QTableWidget(0, len(INSTANCE_COLUMNS))
        self.instance_table.setHorizontalHeaderLabels(INSTANCE_COLUMNS)
        self.instance_summary.setVisible(False)
        self.instance_table.setVisible(False)
        form = QFormLayout()
        form.addRow("annotation A", self.first)
        form.addRow("annotation B", self.second)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(load)
        layout.addWidget(run)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.instance_summary)
        layout.addWidget(self.instance_table, 1)
        for event in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            event.connect(lambda _event: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        """List the labels layers (disagreement layers excluded)."""
        names = [
            layer.name
            for layer in self.viewer.layers
            if isinstance(layer, Labels) and not state.has(layer, "disagreement")
        ]
        refill(self.first, names, fallback=0)
        refill(self.second, names, fallback=1)

    def _on_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Second annotation", "", "Labels (*.nii *.nii.gz *.nrrd *.tif *.tiff *.npy)"
        )
        if path:
            self.load_second(path)

    def load_second(self, path: str | Path) -> Labels | None:
        """Add labels from a file as a layer placed like annotation A, and pick it as B."""
        from napari_domainseg.errors import DomainSegError
        from napari_domainseg.files import load

        first = self._layer(self.first)
        if first is None:
            show_error("Pick annotation A first: the file is placed on its grid.")
            return None
        try:
            loaded = load(path)
        except DomainSegError as exc:  # names the file and says what to do
            show_error(str(exc))
            return None
        if loaded.array.shape != first.data.shape:
            show_error(f"{path}: shape {loaded.array.shape} is not A's {first.data.shape}")
            return None
        kwargs: dict[str, Any] = {"metadata": state.plugin_metadata(state.inherited_info(first))}
        state.set_geometry(kwargs, state.geometry_of(first))
        layer = self.viewer.add_labels(
            loaded.array, name=Path(path).name, affine=first.affine, scale=first.scale,
            translate=first.translate, metadata=kwargs["metadata"],
        )  # fmt: skip
        self.refresh()
        self.second.setCurrentText(layer.name)
        return layer

    def _layer(self, box: QComboBox) -> Labels | None:
        name = box.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def run(self) -> dict[str, Any] | None:
        """Compute the metrics, fill the table and show the disagreement layer."""
        a, b = self._layer(self.first), self._layer(self.second)
        if a is None or b is None or a is b:
            show_error("Pick two different labels layers.")
            return None
        if a.data.shape != b.data.shape:
            show_error(f"'{a.name}' and '{b.name}' differ in shape; compare labels on one grid.")
            return None
        spacing = physical_spacing(a)
        schema = state.schema_of(a)
        (class_a, inst_a), (class_b, inst_b) = _side(a, schema), _side(b, schema)
        instances = None
        if inst_a is not None or inst_b is not None:  # the other's connected parts
            instances = (
                inst_a if inst_a is not None else Instances.from_classes(class_a, schema),
                inst_b if inst_b is not None else Instances.from_classes(class_b, schema),
            )
        self.result = compare(class_a, class_b, spacing, schema=schema, instances=instances)
        self._fill_metrics(self.result)
        self._fill_instances(self.result.get("instances"))
        self.summary.setText(
            f"Cohen's kappa {self.result['kappa']:.4f}; distances and sizes in world units"
        )
        self._show_disagreement(a, b, class_a, class_b)
        return self.result

    def _fill_metrics(self, result: dict[str, Any]) -> None:
        """One row per class; per level of the class tree (indented by depth) when it has one."""
        if "levels" in result:
            rows = [(INDENT * m["depth"] + path, m) for path, m in result["levels"].items()]
        else:
            rows = list(result["classes"].items())
        self.table.setRowCount(len(rows))
        for row, (label, metrics) in enumerate(rows):
            cells = [label] + [
                "" if metrics[k] is None else f"{metrics[k]:.4g}"
                for k in ("dice", "iou", "hd95", "msd", "size_a", "size_b")
            ]
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))

    def _fill_instances(self, section: dict[str, Any] | None) -> None:
        """The instance table (hidden when no "objects" class is present)."""
        shown = section is not None and bool(section["classes"])
        self.instance_table.setVisible(shown)
        self.instance_summary.setVisible(shown)
        if not shown or section is None:
            self.instance_table.setRowCount(0)
            return
        rows = [(INDENT * m.get("depth", 0) + key, m) for key, m in section["classes"].items()] + [
            ("overall", section["overall"])
        ]
        self.instance_table.setRowCount(len(rows))
        for row, (label, m) in enumerate(rows):
            cells = [label, str(m["matched"])]
            cells += [f"{m[k]:.4g}" for k in ("precision", "recall", "f1", "pq")]
            cells += [str(m["count_a"]), str(m["count_b"])]
            for column, text in enumerate(cells):
                self.instance_table.setItem(row, column, QTableWidgetItem(text))
        overall = section["overall"]
        self.instance_summary.setText(
            f"instances matched at IoU >= {section['threshold']:g}: {overall['matched']} of "
            f"{overall['count_a']} (A) and {overall['count_b']} (B); count difference "
            f"{overall['count_difference']:+d}; PQ {overall['pq']:.4f}"
        )

    def _show_disagreement(
        self, a: Labels, b: Labels, class_a: np.ndarray, class_b: np.ndarray
    ) -> Labels:
        from napari.utils.colormaps import DirectLabelColormap

        data = disagreement(class_a, class_b)
        name = f"disagreement {a.name} / {b.name}"
        if name in self.viewer.layers:
            self.viewer.layers[name].data = data
            return self.viewer.layers[name]
        colours = {0: "transparent", None: "transparent", **DISAGREEMENT_COLOURS}
        return self.viewer.add_labels(
            data, name=name, affine=a.affine, scale=a.scale, translate=a.translate,
            colormap=DirectLabelColormap(color_dict=colours),
            metadata=state.plugin_metadata({"disagreement": [a.name, b.name]}),
        )  # fmt: skip


def _side(layer: Labels, schema: LabelSchema | None) -> tuple[np.ndarray, Instances | None]:
    """A layer's class map and, when "objects" classes are present, its instances.

    An instance layer (:func:`~napari_domainseg._napari._layer_state.instances_of`) is compared
    by its drawn instances and its derived class map; a class map's connected parts are the
    instances of its "objects" classes.
    """
    data = np.asarray(layer.data)
    table = state.instances_of(layer)
    if table is not None:
        return semantic_map(data, table), Instances(data, table)
    if schema is None or not marks_objects(schema):
        return data, None
    return data, Instances.from_classes(data, schema)
