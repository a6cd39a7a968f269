"""The "Compare annotations" dock widget: metrics of two labels layers and where they differ.

The metrics come from :mod:`napari_domainseg.ops.metrics` (the same as
``domainseg compare``); the second annotation may be a layer or a file on
the same grid. The disagreement layer marks 1 where only the first labelled,
2 where only the second, 3 where both labelled but with different classes.
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
from napari_domainseg.ops.metrics import compare

if TYPE_CHECKING:
    import napari

COLUMNS = ("class", "Dice", "IoU", "HD95", "MSD", "size A", "size B")
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
        form = QFormLayout()
        form.addRow("annotation A", self.first)
        form.addRow("annotation B", self.second)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(load)
        layout.addWidget(run)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
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
        self.result = compare(np.asarray(a.data), np.asarray(b.data), spacing)
        self.table.setRowCount(len(self.result["classes"]))
        for row, (label, metrics) in enumerate(self.result["classes"].items()):
            cells = [label] + [
                "" if metrics[k] is None else f"{metrics[k]:.4g}"
                for k in ("dice", "iou", "hd95", "msd", "size_a", "size_b")
            ]
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.summary.setText(
            f"Cohen's kappa {self.result['kappa']:.4f}; distances and sizes in world units"
        )
        self._show_disagreement(a, b)
        return self.result

    def _show_disagreement(self, a: Labels, b: Labels) -> Labels:
        from napari.utils.colormaps import DirectLabelColormap

        data = disagreement(a.data, b.data)
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
