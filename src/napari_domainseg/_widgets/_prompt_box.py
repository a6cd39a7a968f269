"""The "Box prompt" group of the Assist tab: draw rectangles, get a proposal per rectangle.

"Add box layer" adds a Shapes layer on the annotation layer's grid, in rectangle mode. "Propose
from boxes" runs the chosen backend (one of
:func:`napari_domainseg.ops.assist.backends.available_backends`: the local classifier, or
LiteMedSAM when the ``medsam`` extra is installed) on every rectangle not proposed yet, each on
the slice it was drawn on, off the GUI thread with napari progress. The objects go, as the
class being painted then, into a separate "box proposal" labels layer (never into the
annotation); "Accept boxes" writes it into the annotation as one undo step under the Assist
tab's policy (unlabeled pixels only, unless "accept over painted pixels" is ticked) and records
its provenance in the annotation layer's metadata like an Assist acceptance
(:func:`napari_domainseg.ops.assist.accept.acceptance_record`: backend and boxes, pixels per
class, probe, per-unit digests), so undo, review status and exports treat both alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QVBoxLayout

from napari_domainseg._napari._edits import slice_axis
from napari_domainseg._widgets._domain import volume_intensity
from napari_domainseg._widgets._tab_controls import button, placement
from napari_domainseg.ops.assist import AssistError, Proposal
from napari_domainseg.ops.assist.accept import accept_edits
from napari_domainseg.ops.assist.backends import (
    LOCAL,
    OBJECT,
    Box,
    PromptError,
    available_backends,
    backend_status,
    make_backend,
)

BOX_TAG = "domainseg_box_prompt"
"""Metadata key marking the box layer and the box proposal layer (not annotation layers)."""
SOURCE = "napari-domainseg box prompt"


def rectangle_box(vertices: np.ndarray, shapes: Any, labels: Any, axis: int | None) -> Box | None:
    """The box of one rectangle (shape vertices) on the labels grid.

    The box holds the pixels whose centres lie inside the rectangle, clipped to the grid;
    None when it covers no pixel centre or is not drawn on one slice along ``axis``.
    """
    world = np.array([shapes.data_to_world(v) for v in np.asarray(vertices)])
    data = np.array([labels.world_to_data(w) for w in world])[:, -labels.ndim :]
    shape = labels.data.shape
    start, stop = [], []
    for a in range(labels.ndim):
        low, high = float(data[:, a].min()), float(data[:, a].max())
        if a == axis:
            if high - low > 0.5:
                return None  # not drawn on one slice
            index = int(np.clip(round((low + high) / 2), 0, shape[a] - 1))
            start.append(index)
            stop.append(index + 1)
            continue
        first, last = int(np.ceil(low)), int(np.floor(high))
        first, last = max(first, 0), min(last, shape[a] - 1)
        if last < first:
            return None
        start.append(first)
        stop.append(last + 1)
    return Box(tuple(start), tuple(stop), axis)


class BoxPromptGroup(QGroupBox):
    """Box prompts for the Assist tab (``tab``: its panel, viewer, image and policy)."""

    def __init__(self, tab: Any) -> None:
        super().__init__("Box prompt")
        self.tab, self.panel, self.viewer = tab, tab.panel, tab.viewer
        self.boxes_layer: Any = None
        self.proposal_layer: Any = None
        self.worker: Any = None
        self._backends: dict[Any, Any] = {}
        self._boxes: list[dict[str, Any]] = []
        self._proposed: set[bytes] = set()  # rectangles already in the box proposal
        self.backend_box = QComboBox()
        self.backend_box.addItems(available_backends())
        unavailable = {k: v for k, v in backend_status().items() if v != "available"}
        self.backend_box.setToolTip(
            "Backends that propose a mask from a box.\n"
            + "\n".join(f"{name}: {why}" for name, why in unavailable.items())
        )
        layout = QVBoxLayout(self)
        form = QFormLayout()
        form.addRow("backend", self.backend_box)
        layout.addLayout(form)
        for pair in (
            (("Add box layer", self.add_box_layer, "A shapes layer to draw rectangles on"),
             ("Propose from boxes", self.propose, "A proposal per rectangle, on its slice")),
            (("Accept boxes", self.accept, "Write the box proposal into the annotation"),
             ("Discard boxes", self.discard, "Remove the box proposal")),
        ):  # fmt: skip
            row = QHBoxLayout()
            for text, slot, tip in pair:
                row.addWidget(button(text, slot, tip))
            layout.addLayout(row)

    @property
    def busy(self) -> bool:
        """Whether a proposal is being computed."""
        return self.worker is not None

    def add_box_layer(self) -> Any:
        """A Shapes layer on the annotation layer's grid, in rectangle mode."""
        labels = self.panel.labels()
        if labels is None:
            show_warning("Box prompt: pick an image and its annotation layer first.")
            return None
        if self.boxes_layer is None or self.boxes_layer not in self.viewer.layers:
            self.boxes_layer = self.viewer.add_shapes(
                ndim=labels.ndim,
                name=f"{labels.name} boxes",
                edge_color="yellow",
                face_color="transparent",
                edge_width=1,
                metadata={BOX_TAG: "boxes"},
                **placement(labels),
            )
        self.viewer.layers.selection.active = self.boxes_layer
        self.boxes_layer.mode = "add_rectangle"
        return self.boxes_layer

    def _backend(self, name: str, image_layer: Any) -> Any:
        if name == LOCAL:
            kwargs = {"intensity": volume_intensity(image_layer)}
        elif name == "LiteMedSAM":  # what the user sees is what the model sees
            kwargs = {"window": tuple(float(v) for v in image_layer.contrast_limits)}
        else:
            kwargs = {}
        key = (name, tuple(sorted(kwargs.items())))
        if key not in self._backends:
            self._backends[key] = make_backend(name, **kwargs)
        return self._backends[key]

    def boxes(self, labels: Any) -> list[tuple[bytes, Box]]:
        """The box layer's rectangles (a key and the box on the labels grid; others skipped)."""
        if self.boxes_layer is None or self.boxes_layer not in self.viewer.layers:
            return []
        axis = slice_axis(self.viewer) if labels.ndim == 3 else None
        found, skipped = [], 0
        for vertices, kind in zip(self.boxes_layer.data, self.boxes_layer.shape_type, strict=True):
            box = (
                rectangle_box(vertices, self.boxes_layer, labels, axis)
                if kind == "rectangle"
                else None
            )
            if box is None:
                skipped += 1
            else:
                found.append((np.asarray(vertices, np.float64).tobytes(), box))
        if skipped:
            show_warning(
                f"Box prompt: {skipped} shape(s) skipped (not a rectangle on one slice, or "
                "covering no pixel of the image)."
            )
        return found

    def propose(self) -> Any:
        """Run the backend on every rectangle (in a worker); show the box proposal."""
        if self.busy or self.tab.busy:
            show_warning("Box prompt: wait for the running job.")
            return None
        labels, image_layer = self.panel.labels(), self.panel.image()
        if labels is None or image_layer is None:
            show_warning("Box prompt: pick an image and its annotation layer first.")
            return None
        drawn = self.boxes(labels)
        if not drawn:
            show_warning("Box prompt: draw rectangles on the box layer first (Add box layer).")
            return None
        if self.proposal_layer is None or self.proposal_layer not in self.viewer.layers:
            self._proposed = set()
        keys = [key for key, _ in drawn if key not in self._proposed]
        boxes = [box for key, box in drawn if key not in self._proposed]
        if not boxes:
            show_warning(
                "Box prompt: every rectangle is already proposed; draw new ones (each is "
                "proposed once, as the class selected then), or Discard boxes to start over."
            )
            return None
        image = self.tab.assist_image()
        if image is None:
            return None
        if image.shape != tuple(labels.data.shape):
            show_warning(f"Box prompt: '{labels.name}' is not on the grid of '{image.name}'.")
            return None
        name = self.backend_box.currentText()
        try:
            backend = self._backend(name, image_layer)
        except AssistError as exc:
            show_error(f"Box prompt: {exc}")
            return None
        class_id = self.panel.class_id()

        def run() -> Any:
            proposals = []
            for box in boxes:
                proposals.append(backend.propose(image, box))
                yield
            return proposals

        def done(proposals: list[Proposal]) -> None:
            self._show(labels, proposals, boxes, class_id, name)
            self._proposed.update(keys)

        worker = thread_worker(
            run,
            progress={"total": len(boxes), "desc": f"Box prompt: {name}"},
            ignore_errors=True,
        )()
        self.worker = worker
        worker.returned.connect(done)
        worker.errored.connect(self._on_error)
        worker.finished.connect(lambda: self._on_finished(worker))
        worker.start()
        return worker

    def _on_error(self, exc: Exception) -> None:
        message = str(exc) if isinstance(exc, (AssistError, PromptError)) else f"{exc!r}"
        show_error(f"Box prompt: {message}")

    def _on_finished(self, worker: Any) -> None:
        if self.worker is worker:
            self.worker = None

    def _ensure_layer(self, labels: Any) -> Any:
        layer = self.proposal_layer
        if (
            layer is None
            or layer not in self.viewer.layers
            or layer.data.shape != labels.data.shape
        ):
            self.discard()
            layer = self.viewer.add_labels(
                np.zeros(labels.data.shape, np.uint16),
                name=f"{labels.name} box proposal",
                opacity=0.6,
                metadata={BOX_TAG: "proposal"},
                **placement(labels),
            )
            layer.colormap = labels.colormap
            layer.editable = False
            self.proposal_layer = layer
            self._boxes = []
            self.viewer.layers.selection.active = labels
        return layer

    def _show(
        self,
        labels: Any,
        proposals: list[Proposal],
        boxes: list[Box],
        class_id: int,
        backend: str,
    ) -> None:
        layer = self._ensure_layer(labels)
        data = layer.data
        pixels = 0
        for proposal, box in zip(proposals, boxes, strict=True):
            window = data[proposal.region]
            found = proposal.labels == OBJECT
            window[found] = class_id
            pixels += int(found.sum())
            self._boxes.append(
                {
                    "backend": backend,
                    "class_id": class_id,
                    "start": list(box.start),
                    "stop": list(box.stop),
                    "axis": box.axis,
                }
            )
        layer.refresh()
        show_info(f"Box prompt: {len(boxes)} box(es), {pixels} pixels proposed ({backend}).")

    def accept(self) -> int:
        """Write the box proposal into the annotation as one undo step; returns pixels changed.

        The proposal stays when no pixel changed (every proposed pixel already painted).
        """
        labels = self.panel.labels()
        layer = self.proposal_layer
        if labels is None or layer is None or layer not in self.viewer.layers:
            show_warning("Box prompt: no box proposal to accept; propose from boxes first.")
            return 0
        if layer.data.shape != labels.data.shape:
            show_warning("Box prompt: the box proposal was made for another annotation layer.")
            return 0
        values = np.asarray(layer.data)
        region = tuple(slice(0, n) for n in values.shape)
        classes = tuple(int(v) for v in np.unique(values) if v)
        proposal = Proposal(region, classes, values, np.zeros(values.shape, np.float32), values > 0)
        overwrite = self.tab.overwrite.isChecked() and not labels.preserve_labels
        policy = "overwrite" if overwrite else "unlabeled"
        edits = accept_edits(np.asarray(labels.data), proposal, policy)
        backends = sorted({str(b["backend"]) for b in self._boxes})
        model = {"id": f"box prompt: {', '.join(backends)}", "backends": backends}
        changed = self.tab.apply_acceptance(
            labels, edits, model, source=SOURCE, scope="boxes", policy=policy,
            boxes=list(self._boxes),
        )  # fmt: skip
        if not changed:
            show_info(
                f"Box prompt: nothing to accept ({policy} pixels only: every proposed pixel is "
                "painted already); the box proposal stays."
            )
            return 0
        self.discard()
        show_info(f"Box prompt: accepted {changed} pixels ({policy} pixels only).")
        return changed

    def discard(self) -> None:
        """Remove the box proposal layer (the rectangles stay)."""
        if self.proposal_layer is not None and self.proposal_layer in self.viewer.layers:
            self.viewer.layers.remove(self.proposal_layer)
        self.proposal_layer = None
        self._boxes = []
        self._proposed = set()


def mount_box_prompt(tab: Any, layout: Any) -> BoxPromptGroup:
    """Add the box-prompt group to the Assist tab's layout (before its trailing stretch)."""
    group = BoxPromptGroup(tab)
    layout.insertWidget(max(0, layout.count() - 1), group)
    return group
