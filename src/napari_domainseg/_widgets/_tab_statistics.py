"""The Statistics tab: per-class size, share and intensity, refreshed off the GUI thread.

After an edit only the blocks it touched are recomputed (throttled by a timer), in a
napari ``thread_worker``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._edits import element_size
from napari_domainseg._widgets._tab_controls import button
from napari_domainseg.ops.statistics import ClassStatistics, rows_to_csv


def image_validity(image: Any) -> Any:
    """Where an image layer has data: not NaN and, for rasters, not their nodata value.

    Computed from what the layer holds, lazily when it is a dask array (read block by
    block with the statistics). A raster band's nodata is shown as NaN (floats) or as
    the type's lowest value (integers; see ``_layer_data._display_band``), so those
    values are what is invalid. ``None``: valid everywhere (nothing to mask).
    """
    data = image.data
    dtype = np.dtype(data.dtype)
    invalid = np.isnan(data) if dtype.kind == "f" else None
    nodata = state.nodata_of(image) if state.domain_of(image) == "geo" else None
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        shown = nodata
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            if not (float(nodata).is_integer() and info.min <= nodata <= info.max):
                shown = None  # the band cannot hold it: no pixel is nodata
            else:
                shown = info.min  # where the display put the nodata pixels
        if shown is not None:
            equal = data == shown
            invalid = equal if invalid is None else invalid | equal
    return None if invalid is None else ~invalid


class StatisticsTab(QWidget):
    """Per-class size, share and intensity statistics, refreshed off the GUI thread after edits."""

    COLUMNS = ("label", "name", "count", "size", "share %", "mean", "SD", "min", "max")

    def __init__(self, panel: Any) -> None:
        super().__init__()
        self.panel, self.viewer = panel, panel.viewer
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.stats: ClassStatistics | None = None
        self._layer = None
        self._dirty: set[int] = set()
        self._running = False
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(300)  # throttle: at most ~3 refreshes a second
        self.timer.timeout.connect(self._refresh_dirty)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        row = QHBoxLayout()
        row.addWidget(button("Recompute", self.recompute))
        row.addWidget(button("Export CSV…", self._on_export))
        layout.addLayout(row)

    def recompute(self) -> None:
        """Summarise the whole labels layer (in a worker thread) and show the table."""
        labels, image = self.panel.labels(), self.panel.image()
        if labels is None:
            return
        values = valid = None
        if image is not None and image.data.shape == labels.data.shape and not image.multiscale:
            values, valid = image.data, image_validity(image)
        size, unit, factor = element_size(labels)
        if self._layer is not None:
            self._layer.events.paint.disconnect(self._on_paint)
        self._layer = labels
        labels.events.paint.connect(self._on_paint)
        self.unit = unit
        self.stats = ClassStatistics(
            labels.data, values, size, unit, factor, compute=False, valid=valid
        )
        self._running = True  # edits during the first pass are queued, then refreshed
        worker = thread_worker(self.stats.refresh, ignore_errors=True)()
        worker.finished.connect(self._after_refresh)
        worker.start()

    def _on_paint(self, event: Any) -> None:
        if self.stats is None:
            return
        self._dirty.update(self._touched_blocks(event.value))
        self.timer.start()

    def _touched_blocks(self, atoms: Any) -> set[int]:
        """Blocks an edit touched: from index arrays (tools) or slice keys (brush, fill)."""
        blocks: set[int] = set()
        for atom in atoms:
            key = getattr(atom, "slice_key", None)
            if key is not None and isinstance(key[0], slice):  # napari's masked paint atom
                first = key[0]
                rows = range(first.start or 0, first.stop if first.stop is not None else 0)
                blocks.update(self.stats.block_of(i) for i in rows)
                continue
            try:
                indices = atom[0]
                if len(indices) and len(indices[0]):
                    blocks.update(self.stats.block_of(int(i)) for i in np.unique(indices[0]))
            except (TypeError, IndexError):  # an atom of unknown shape: refresh everything
                return set(range(self.stats.block_count))
        return blocks

    def _refresh_dirty(self) -> None:
        if self._running or not self._dirty or self.stats is None:
            return
        blocks, self._dirty = self._dirty, set()
        self._running = True
        worker = thread_worker(self.stats.refresh, ignore_errors=True)(blocks)
        worker.finished.connect(self._after_refresh)
        worker.start()

    def _after_refresh(self) -> None:
        self._running = False
        self.show_rows()
        if self._dirty:
            self.timer.start()

    def show_rows(self) -> list:
        """Fill the table from the current statistics; return the rows."""
        if self.stats is None:
            return []
        rows = self.stats.rows(self.panel.class_names())
        self.table.setRowCount(len(rows))
        for index, row in enumerate(rows):
            cells = [
                row.label,
                row.name,
                row.count,
                f"{row.size:.4g} {self.unit}",
                f"{100 * row.share:.1f}",
            ]
            cells += [
                "" if v is None else f"{v:.4g}"
                for v in (row.mean, row.sd, row.minimum, row.maximum)
            ]
            for column, cell in enumerate(cells):
                self.table.setItem(index, column, QTableWidgetItem(str(cell)))
        return rows

    def export_csv(self, path: str | Path) -> Path:
        """Write the statistics table to ``path``."""
        path = Path(path)
        path.write_text(
            rows_to_csv(self.stats.rows(self.panel.class_names()), self.unit), encoding="utf-8"
        )
        return path

    def _on_export(self) -> None:
        if self.stats is None:
            show_error("Compute the statistics first.")
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Export statistics", "statistics.csv", "CSV (*.csv)"
        )
        if path:
            show_info(f"Statistics written to {self.export_csv(path)}")
