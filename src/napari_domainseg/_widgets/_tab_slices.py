"""The Slices tab: annotated slices per class, navigation, fill between slices, copy a slice.

Fill between slices runs shape only (at once) or following the image (in a worker, with
napari progress); either is one undo step through
:func:`~napari_domainseg._napari._edits.apply_edits`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from napari_domainseg._napari._edits import (
    apply_edits,
    current_index,
    physical_spacing,
    slice_axis,
)
from napari_domainseg._widgets._domain import volume_intensity
from napari_domainseg._widgets._tab_controls import button, full_resolution
from napari_domainseg.ops.interpolate import fill_between
from napari_domainseg.ops.interpolate_image import (
    FillError,
    ImageFill,
    ImageFillSettings,
    fill_between_image,
)
from napari_domainseg.ops.planes import without_axis
from napari_domainseg.ops.slices import annotated_slices, copy_slice, coverage_text, neighbour_slice

SHAPE_ONLY = "shape only"
FOLLOW_IMAGE = "follow the image"


class SlicesTab(QWidget):
    """Annotated slices per class, navigation, fill between slices, copy to a neighbour."""

    def __init__(self, panel: Any) -> None:
        super().__init__()
        self.panel, self.viewer = panel, panel.viewer
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        row = QHBoxLayout()
        row.addWidget(button("◀ Previous annotated  [,]", lambda: self.go(-1)))
        row.addWidget(button("Next annotated ▶  [.]", lambda: self.go(1)))
        layout.addLayout(row)
        self.fill_mode = QComboBox()
        self.fill_mode.addItems([SHAPE_ONLY, FOLLOW_IMAGE])
        self.fill_mode.setToolTip(
            "shape only: signed-distance interpolation between annotated slices, in physical "
            "units. follow the image: that interpolation refined near its boundary by a "
            "classifier trained on this class's annotated slices of the panel's image; the "
            "image is used only where it improved the annotated slices themselves"
        )
        self.fill_worker: Any = None
        self.last_fill: int | None = None
        row = QHBoxLayout()
        row.addWidget(QLabel("fill"))
        row.addWidget(self.fill_mode, 1)
        layout.addLayout(row)
        layout.addWidget(
            button(
                "Fill between slices (this class, unlabeled voxels only)",
                self.fill,
                "Interpolate the selected class between its annotated slices (one undo step)",
            )
        )
        row = QHBoxLayout()
        row.addWidget(button("Copy slice to previous", lambda: self.copy(-1)))
        row.addWidget(button("Copy slice to next", lambda: self.copy(1)))
        layout.addLayout(row)
        layout.addStretch(1)
        self.viewer.bind_key(".", lambda _viewer: self.go(1), overwrite=True)
        self.viewer.bind_key(",", lambda _viewer: self.go(-1), overwrite=True)

    def _context(self) -> tuple[Any, int] | None:
        labels = self.panel.labels()
        if labels is None or labels.ndim != 3:
            show_warning("Slice tools work on a 3D labels layer: create or pick one first.")
            return None
        return labels, slice_axis(self.viewer)

    def refresh(self) -> str:
        """Update and return the 'annotated N of M slices' summary for the selected class."""
        context = self._context() if self.panel.labels() is not None else None
        if context is None:
            self.summary.setText("")
            return ""
        labels, axis = context
        slices = annotated_slices(labels.data, axis)
        class_id = self.panel.class_id()
        text = f"class {class_id}: {coverage_text(slices, class_id, labels.data.shape[axis])}"
        listed = ", ".join(str(s) for s in slices.get(class_id, [])[:40])
        self.summary.setText(f"{text}\nslices: {listed}")
        return text

    def go(self, direction: int) -> int | None:
        """Move the slider to the next (1) or previous (-1) slice holding the selected class."""
        context = self._context()
        if context is None:
            return None
        labels, axis = context
        slices = annotated_slices(labels.data, axis).get(self.panel.class_id(), np.empty(0, int))
        target = neighbour_slice(slices, current_index(self.viewer, labels, axis), direction)
        if target is not None:
            index = np.zeros(labels.ndim)
            index[axis] = target
            self.viewer.dims.set_point(axis, labels.data_to_world(index)[axis])
        return target

    def fill(self) -> Any:
        """Interpolate the selected class between its annotated slices (one undo step).

        Shape only runs at once and returns the number of voxels filled; following the image
        runs in a worker (napari progress) and returns it, the voxels written when it is done.
        """
        context = self._context()
        if context is None:
            return 0
        labels, axis = context
        if self.fill_mode.currentText() == FOLLOW_IMAGE:
            return self._fill_following_image(labels, axis)
        spacing = without_axis(physical_spacing(labels), axis)
        class_id = self.panel.class_id()
        mask = fill_between(labels.data, class_id, axis, spacing)
        changed = apply_edits(labels, [(np.nonzero(mask), class_id)])
        show_info(f"Filled {changed} voxels of class {class_id} between annotated slices.")
        self.refresh()
        return changed

    def _fill_following_image(self, labels: Any, axis: int) -> Any:
        if self.fill_worker is not None:
            show_warning("Fill between slices is already running; wait for it to finish.")
            return None
        image = self.panel.image()
        if image is None:
            show_warning("Following the image needs an image: pick it at the top of the panel.")
            return None
        class_id = self.panel.class_id()
        settings = ImageFillSettings(intensity=volume_intensity(image))
        snapshot = np.asarray(labels.data).copy()
        pixels, spacing = full_resolution(image), physical_spacing(labels)

        def run() -> ImageFill:
            return fill_between_image(
                snapshot, pixels, axis, spacing, classes=[class_id], settings=settings
            )

        worker = thread_worker(
            run,
            progress={"total": 0, "desc": f"Fill between slices: class {class_id}, image"},
            ignore_errors=True,
        )()
        worker.returned.connect(lambda result: self._apply_fill(labels, class_id, result))
        worker.errored.connect(
            lambda exc: show_error(
                f"Fill between slices: {exc}" if isinstance(exc, FillError) else f"{exc!r}"
            )
        )
        worker.finished.connect(lambda: setattr(self, "fill_worker", None))
        self.fill_worker = worker
        worker.start()
        return worker

    def _apply_fill(self, labels: Any, class_id: int, result: ImageFill) -> int:
        """Write the worker's fill into voxels still unlabeled (edits made meanwhile stay)."""
        indices, values = result.edits()
        free = np.asarray(labels.data[indices]) == 0
        indices = tuple(i[free] for i in indices)
        changed = apply_edits(labels, [(indices, values[free])])
        report = result.reports.get(class_id)
        how = f"image weight {report.weight:g} ({report.note})" if report is not None else "shape"
        show_info(
            f"Filled {changed} voxels of class {class_id} between annotated slices, "
            f"following the image: {how}."
        )
        self.refresh()
        self.last_fill = changed
        return changed

    def copy(self, direction: int) -> int:
        """Copy the current slice's labels onto the next or previous slice (unlabeled voxels)."""
        context = self._context()
        if context is None:
            return 0
        labels, axis = context
        source = current_index(self.viewer, labels, axis)
        target = source + direction
        if not 0 <= target < labels.data.shape[axis]:
            return 0
        indices, values = copy_slice(labels.data, axis, source, target)
        return apply_edits(labels, [(indices, values)])
