"""The "Assist" tab of the annotation panel: a classifier that learns from the strokes.

A thin widget over :mod:`napari_domainseg.ops.assist`: "Train" fits the pixel classifier on
the annotation layer's painted pixels, "Predict view" / "Predict all" show its proposal in a
separate labels layer (never in the annotation) with an uncertainty image beside it, and
"Accept" writes the proposal into the annotation (unlabeled pixels only by default) as one
undo step, recording its provenance in the annotation layer's metadata. Training and
prediction run off the GUI thread with napari progress; a prediction can be cancelled.

Below, the review part (:mod:`._assist_review`): the status of every slice or tile, the
predicted classes, "Next uncertain" for one class, and the provenance of acceptances kept in
step with undo and redo.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._edits import apply_edits, current_index, physical_spacing, slice_axis
from napari_domainseg._napari._view import visible_region
from napari_domainseg._widgets._assist_review import ReviewMixin, same_layer
from napari_domainseg._widgets._domain import volume_intensity
from napari_domainseg._widgets._prompt_box import mount_box_prompt
from napari_domainseg._widgets._tab_controls import button, full_resolution, placement
from napari_domainseg.ops.assist import (
    AssistError,
    AssistImage,
    FeatureError,
    PixelClassifier,
    Proposal,
    default_recipe,
)
from napari_domainseg.ops.assist.accept import accept_edits, acceptance_record, add_record
from napari_domainseg.ops.assist.features import blocks
from napari_domainseg.ops.assist.io import bands_image
from napari_domainseg.ops.assist.review import Tally, tally
from napari_domainseg.ops.assist.status import UNITS_KEY, AcceptedUnits, Layout

PROPOSAL_TAG = "domainseg_assist"
"""Metadata key marking the proposal and uncertainty layers (not annotation layers)."""
VIEW_SIDE = 2048
"""Longest side (pixels) of the part of a scene "Predict view" predicts."""
STROKE_DELAY_MS = 600
"""With "train on every stroke": train this long after the last paint event."""
ACCEPT_SCOPES = ("all", "this slice", "this class")


def _pyramid(image: Any) -> list[Any]:
    return list(image.data) if image.multiscale else [image.data]


def layer_assist_image(viewer: Any, image: Any) -> AssistImage:
    """The classifier's view of an image layer: a volume, or every band of a raster.

    Raises
    ------
    AssistError
        The image cannot be read by the classifier (the message says why).
    """
    domain = state.domain_of(image)
    spacing = physical_spacing(image)
    if domain == "geo" and state.band_of(image) is not None:
        bands = [
            layer
            for layer in state.bands_of_scene(viewer.layers, image)
            if layer.data.shape == image.data.shape
        ]
        names = state.band_names_of(image)
        nodata = state.nodata_of(image)
        dtype = np.dtype(full_resolution(image).dtype)
        if nodata is not None and dtype.kind in "iu":  # shown as the type's lowest value
            info = np.iinfo(dtype)
            representable = float(nodata).is_integer() and info.min <= nodata <= info.max
            nodata = float(info.min) if representable else None
        elif dtype.kind == "f":
            nodata = None  # shown as NaN, which is always invalid
        try:
            return bands_image(
                [_pyramid(layer) for layer in bands],
                spacing[-2:],
                unit="m",
                name=image.name,
                channel_names=tuple(names) if len(names) == len(bands) else (),
                nodata=nodata,
            )
        except FeatureError as exc:
            raise AssistError(str(exc)) from None
    data = _pyramid(image)[0]
    if image.rgb or len(data.shape) not in (2, 3):
        raise AssistError(
            f"{image.name}: a {len(data.shape)}-D image; the assistant works on a 2-D image, "
            "a 3-D volume or a raster opened by DomainSeg"
        )
    unit = "mm" if domain == "medical" else "pixel"
    try:
        return AssistImage.from_volume(data, spacing, name=image.name, unit=unit)
    except FeatureError as exc:
        raise AssistError(str(exc)) from None


def two_classes_painted(labels: np.ndarray) -> bool:
    """Whether at least two classes (non-zero values) are painted; no sort, so cheap per stroke."""
    top = labels.max() if labels.size else 0
    return bool(top) and bool(np.any((labels != 0) & (labels != top)))


class AssistTab(ReviewMixin, QWidget):
    """Train, predict, review and accept the pixel classifier's proposal."""

    def __init__(self, panel: Any) -> None:
        super().__init__()
        self.panel, self.viewer = panel, panel.viewer
        self.model: PixelClassifier | None = None
        self.model_id = ""
        self.rounds = 0
        self.worker: Any = None
        self.proposal_layer: Any = None
        self.uncertainty_layer: Any = None
        self.predicted: np.ndarray | None = None
        self._image: tuple[Any, AssistImage] | None = None
        self._ranking: list[Any] = []
        self._ranking_key: Any = None
        self._position = -1
        self._trained_text = ""
        self._tally: Tally | None = None
        self._tally_layout: Layout | None = None  # the layout ``_tally`` counts
        self._accepting = False  # an acceptance is being applied: its own edit events
        self._units_workers: list[Any] = []  # the other axes' digests of acceptances

        self.status = QLabel(
            "Paint a few strokes of every class (and of an 'other' class), then Train."
        )
        self.status.setWordWrap(True)
        self.predict_after = QCheckBox("Predict the view after training")
        self.predict_after.setChecked(True)
        self.on_stroke = QCheckBox("Train on every stroke")
        self.on_stroke.toggled.connect(self._follow_strokes)
        self.stroke_timer = QTimer(self)
        self.stroke_timer.setSingleShot(True)
        self.stroke_timer.setInterval(STROKE_DELAY_MS)  # debounce: train once the brush rests
        self.stroke_timer.timeout.connect(self._train_after_stroke)
        self._watched: Any = None  # the layer "train on every stroke" follows
        self.viewer.layers.events.removed.connect(self._on_watched_removed)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)
        self.opacity.valueChanged.connect(self._on_opacity)
        self.scope = QComboBox()
        self.scope.addItems(list(ACCEPT_SCOPES))
        self.overwrite = QCheckBox("Accept over painted pixels too (unless the policy forbids)")
        self.cancel_button = button("Cancel", self.cancel, "Stop the running prediction")
        self.cancel_button.setEnabled(False)

        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(button("Train", self.train, "Fit on the annotation layer's painted pixels"))
        row.addWidget(button("Predict view", self.predict_view, "The visible slice or tile"))
        row.addWidget(button("Predict all", self.predict_all, "The whole volume or scene"))
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        layout.addWidget(self.predict_after)
        layout.addWidget(self.on_stroke)
        form = QFormLayout()
        form.addRow("proposal opacity", self.opacity)
        form.addRow("accept", self.scope)
        layout.addLayout(form)
        layout.addWidget(self.overwrite)
        row = QHBoxLayout()
        row.addWidget(button("Accept", self.accept, "Write the proposal into the annotation"))
        row.addWidget(button("Discard", self.discard, "Remove the proposal"))
        layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(button("Save model…", self._on_save))
        row.addWidget(button("Load model…", self._on_load))
        layout.addLayout(row)
        layout.addWidget(self.status)

        self._build_review(layout)
        layout.addStretch(1)
        self.box_prompt = mount_box_prompt(self, layout)

    # -- context ------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether a training, prediction or box-prompt worker is running."""
        box = getattr(self, "box_prompt", None)  # mounted last in __init__
        return self.worker is not None or bool(box is not None and box.busy)

    def _pair(self) -> tuple[Any, Any] | None:
        image, labels = self.panel.image(), self.panel.labels()
        if image is None or labels is None:
            show_warning("Assist: pick an image and its annotation layer first.")
            return None
        shape = tuple(_pyramid(image)[0].shape)
        if shape != tuple(labels.data.shape):
            show_warning(
                f"Assist: '{labels.name}' ({'x'.join(map(str, labels.data.shape))}) is not on "
                f"the grid of '{image.name}' ({'x'.join(map(str, shape))}); pick the annotation "
                "layer made for this image"
            )
            return None
        return image, labels

    def assist_image(self) -> AssistImage | None:
        """The classifier's view of the panel's image (kept, so its feature cache is reused)."""
        image = self.panel.image()
        key = (id(image), id(image.data)) if image is not None else None
        if self._image is None or self._image[0] != key:
            try:
                assisted = layer_assist_image(self.viewer, image)
            except AssistError as exc:
                show_error(str(exc))
                return None
            self._image = (key, assisted)
        return self._image[1]

    def _start(self, worker: Any, on_done: Any) -> Any:
        self.worker = worker
        worker.returned.connect(on_done)
        worker.errored.connect(self._on_error)
        if hasattr(worker.signals, "aborted"):  # generator workers can be cancelled
            worker.aborted.connect(self._on_aborted)
        worker.finished.connect(lambda: self._on_finished(worker))
        self.cancel_button.setEnabled(True)
        worker.start()
        return worker

    def _on_error(self, exc: Exception) -> None:
        message = str(exc) if isinstance(exc, (AssistError, FeatureError)) else f"{exc!r}"
        self.status.setText(message)
        show_error(f"Assist: {message}")

    def _on_aborted(self) -> None:
        self.status.setText("Prediction cancelled; the proposal is unchanged.")
        show_info("Assist: prediction cancelled; nothing was written.")

    def _on_finished(self, worker: Any) -> None:
        if self.worker is worker:  # not a job chained after it
            self.worker = None
            self.cancel_button.setEnabled(False)

    # -- train --------------------------------------------------------------------------------
    def train(self) -> Any:
        """Fit a new classifier on the annotation layer's painted pixels (in a worker)."""
        if self.busy:
            show_warning("Assist: wait for the running job, or cancel it.")
            return None
        pair = self._pair()
        image = self.assist_image() if pair is not None else None
        if image is None:
            return None
        labels = pair[1]
        strokes = np.asarray(labels.data).copy()
        intensity = volume_intensity(pair[0])
        if state.domain_of(pair[0]) == "geo":
            intensity = "raw"
        recipe = default_recipe(
            image.spacing,
            image.unit,
            intensity=intensity,
            channel_names=image.channel_names if image.data.shape[0] > 1 else (),
        )
        cache = self.model.cache if self.model is not None else None
        model = PixelClassifier(recipe, cache=cache)

        def fit() -> tuple[PixelClassifier, Any]:
            return model, model.fit(image, strokes, labels.name)

        self.status.setText("Training…")
        worker = thread_worker(
            fit, progress={"total": 0, "desc": "Assist: training"}, ignore_errors=True
        )()
        return self._start(worker, self._on_trained)

    def _on_trained(self, result: tuple[PixelClassifier, Any]) -> None:
        self.model, summary = result
        self.rounds += 1
        self.model_id = uuid.uuid4().hex[:12]
        painted = ", ".join(f"{c}: {n}" for c, n in summary.painted.items())
        self._trained_text = (
            f"Round {self.rounds}: trained on classes {list(self.model.classes)} "
            f"(painted pixels {painted}) in {summary.seconds:.1f} s."
        )
        self.status.setText(self._trained_text)
        for warning in summary.warnings:
            show_warning(f"Assist: {warning}")
        if self.predict_after.isChecked():
            self.worker = None  # let the chained prediction start
            self.predict_view()

    def _follow_strokes(self, on: bool) -> None:
        """Start or stop training after every stroke on the annotation layer."""
        if self._watched is not None:
            self._watched.events.paint.disconnect(self._on_paint)
            self._watched = None
        labels = self.panel.labels()
        if on and labels is not None:
            labels.events.paint.connect(self._on_paint)
            self._watched = labels

    def _on_watched_removed(self, event: Any) -> None:
        if same_layer(self._watched, getattr(event, "value", None)):
            self._watched.events.paint.disconnect(self._on_paint)
            self._watched = None

    def _on_paint(self, _event: Any = None) -> None:
        self.stroke_timer.start()

    def _train_after_stroke(self) -> None:
        if self.busy:
            self.stroke_timer.start()  # try again when the running job is done
            return
        if self._watched is not None and two_classes_painted(np.asarray(self._watched.data)):
            self.train()  # quiet until two classes are painted

    # -- predict ------------------------------------------------------------------------------
    def view_region(self, labels: Any) -> tuple[slice, ...]:
        """The visible slice of a volume, or the visible part of a scene (at most VIEW_SIDE)."""
        shape = labels.data.shape
        if labels.ndim == 3:
            axis = slice_axis(self.viewer)
            index = current_index(self.viewer, labels, axis)
            region = [slice(0, n) for n in shape]
            region[axis] = slice(index, index + 1)
            return tuple(region)
        visible = visible_region(self.viewer, labels)
        if visible is None:  # an older napari: the corners of the last draw
            corners = np.asarray(labels.corner_pixels, dtype=int)[:, -2:]
            if not (corners[1] > corners[0]).all():  # never drawn yet: the whole extent
                corners = np.array([[0, 0], [shape[0] - 1, shape[1] - 1]])
            visible = tuple(slice(int(lo), int(hi) + 1) for lo, hi in corners.T)
        region = []
        for axis in range(2):
            low = int(np.clip(visible[axis].start, 0, shape[axis] - 1))
            high = int(np.clip(visible[axis].stop, low + 1, shape[axis]))
            if high - low > VIEW_SIDE:
                middle = (low + high) // 2
                low, high = middle - VIEW_SIDE // 2, middle + VIEW_SIDE // 2
            region.append(slice(low, high))
        return tuple(region)

    def predict_view(self) -> Any:
        """Predict the visible slice or tile."""
        pair = self._pair()
        return None if pair is None else self._predict(self.view_region(pair[1]), "view")

    def predict_all(self) -> Any:
        """Predict the whole volume or scene (cancellable)."""
        pair = self._pair()
        region = None if pair is None else tuple(slice(0, n) for n in pair[1].data.shape)
        return None if region is None else self._predict(region, "all")

    def _predict(self, region: tuple[slice, ...], what: str) -> Any:
        if self.busy:
            show_warning("Assist: wait for the running job, or cancel it.")
            return None
        if self.model is None:
            show_warning("Assist: train first (paint at least two classes), or load a model.")
            return None
        image, model = self.assist_image(), self.model
        if image is None:
            return None
        try:
            total = len(list(blocks(image.shape, model.chunk(image, region), region)))
        except (AssistError, FeatureError) as exc:
            show_error(f"Assist: {exc}")
            return None
        labels_layer = self.panel.labels()
        layout = self._layout(labels_layer)
        shown = self._layers_alive() and self.predicted.shape == tuple(labels_layer.data.shape)
        before = (
            (self.proposal_layer.data, self.uncertainty_layer.data, self.predicted)
            if shown
            else None
        )

        def run() -> Any:
            shape = tuple(s.stop - s.start for s in region)
            labels = np.zeros(shape, dtype=np.uint16)
            uncertainty = np.zeros(shape, dtype=np.float32)
            valid = np.zeros(shape, dtype=bool)
            for part in model.predict_blocks(image, region, probabilities=False):
                local = tuple(
                    slice(b.start - r.start, b.stop - r.start)
                    for b, r in zip(part.region, region, strict=True)
                )
                labels[local], uncertainty[local] = part.labels, part.uncertainty
                valid[local] = part.valid
                yield
            proposal = Proposal(region, model.classes, labels, uncertainty, valid)
            change = tally(proposal, layout)  # the review summary, off the GUI thread
            if before is not None:  # minus the pixels it replaces
                old = Proposal(region, (), *(np.asarray(a[region]) for a in before))
                change = change - tally(old, layout)
            return proposal, change, layout, before is not None

        self.status.setText(f"{self._trained_text}\nPredicting the {what} ({total} block(s))…")
        worker = thread_worker(
            run,
            progress={"total": total, "desc": f"Assist: predicting the {what}"},
            ignore_errors=True,
        )()
        return self._start(worker, self._show_proposal)

    def cancel(self) -> None:
        """Stop the running prediction at the next block; the proposal stays as it was."""
        if self.worker is not None and hasattr(self.worker, "quit"):
            self.worker.quit()

    def _show_proposal(self, result: tuple[Proposal, Tally, Layout, bool]) -> None:
        proposal, change, layout, incremental = result
        labels = self.panel.labels()
        if labels is None:
            return
        fresh = not self._ensure_layers(labels)
        self.proposal_layer.data[proposal.region] = proposal.labels
        self.uncertainty_layer.data[proposal.region] = proposal.uncertainty
        self.predicted[proposal.region] = proposal.valid
        self.proposal_layer.refresh()
        self.uncertainty_layer.refresh()
        self._ranking = []
        self._forget_tallies()  # those of other layouts: recounted when shown
        if fresh or not incremental:
            self._tally = change if fresh and not incremental else None
        elif self._tally is not None and self._tally_layout == layout:
            self._tally = self._tally + change
        else:
            self._tally = None  # another layout since: recounted from the layers below
        self._tally_layout = layout if self._tally is not None else None
        pixels = int(proposal.valid.sum())
        self.status.setText(
            f"{self._trained_text}\nProposal: {pixels} pixels, mean uncertainty "
            f"{float(proposal.uncertainty[proposal.valid].mean()) if pixels else 0:.2f}."
        )
        self.refresh_review()

    def _layers_alive(self) -> bool:
        return (
            all(
                layer is not None and layer in self.viewer.layers
                for layer in (self.proposal_layer, self.uncertainty_layer)
            )
            and self.predicted is not None
        )

    def _ensure_layers(self, labels: Any) -> bool:
        """Make the proposal layers for ``labels``' grid; True if they were already there."""
        shape = tuple(labels.data.shape)
        if self._layers_alive() and self.proposal_layer.data.shape == shape:
            return True
        self.discard()  # a proposal for another grid, or one of its layers deleted
        where = placement(labels)
        self.uncertainty_layer = self.viewer.add_image(
            np.zeros(shape, np.float32),
            name=f"{labels.name} uncertainty",
            colormap="magma",
            contrast_limits=(0.0, 1.0),
            visible=False,
            metadata={PROPOSAL_TAG: "uncertainty"},
            **where,
        )
        self.proposal_layer = self.viewer.add_labels(
            np.zeros(shape, np.uint16),
            name=f"{labels.name} proposal",
            opacity=self.opacity.value() / 100,
            metadata={PROPOSAL_TAG: "proposal"},
            **where,
        )
        self.proposal_layer.colormap = labels.colormap
        self.proposal_layer.editable = False
        self.predicted = np.zeros(shape, bool)
        self._tally = self._tally_layout = None
        self._forget_tallies()
        self.viewer.layers.selection.active = labels  # keep painting the annotation
        return False

    def _on_opacity(self, value: int) -> None:
        if self.proposal_layer is not None:
            self.proposal_layer.opacity = value / 100

    # -- accept, discard, review --------------------------------------------------------------
    def _current_proposal(self, labels: Any, scope: str) -> Proposal | None:
        if self.proposal_layer is None or self.proposal_layer not in self.viewer.layers:
            show_warning("Assist: no proposal to accept; train and predict first.")
            return None
        if self.predicted.shape != labels.data.shape:
            show_warning("Assist: the proposal was made for another annotation layer.")
            return None
        region = tuple(slice(0, n) for n in labels.data.shape)
        if scope == "this slice" and labels.ndim == 3:
            region = self.view_region(labels)
        values = np.asarray(self.proposal_layer.data[region])
        classes = tuple(int(v) for v in np.unique(values) if v)  # every round's classes shown
        return Proposal(
            region, classes, values, self.uncertainty_layer.data[region], self.predicted[region]
        )

    def accept(self, scope: str | None = None) -> int:
        """Write the proposal (all, this slice or this class) into the annotation: one undo step."""
        pair = self._pair()
        if pair is None:
            return 0
        labels = pair[1]
        scope = scope or self.scope.currentText()
        proposal = self._current_proposal(labels, scope)
        if proposal is None:
            return 0
        policy = (
            "overwrite"
            if self.overwrite.isChecked() and not labels.preserve_labels
            else ("unlabeled")
        )
        classes = [self.panel.class_id()] if scope == "this class" else None
        edits = accept_edits(np.asarray(labels.data), proposal, policy, classes)
        model = self.model
        changed = self.apply_acceptance(
            labels,
            edits,
            model,
            model_fields={"id": self.model_id, "round": self.rounds},
            scope=scope,
            policy=policy,
            region=[[s.start, s.stop] for s in proposal.region],
        )
        if changed and model is not None:
            state.assist_record(labels)["model_id"] = self.model_id
        show_info(f"Assist: accepted {changed} pixels ({scope}, {policy} pixels only).")
        return changed

    def apply_acceptance(
        self,
        labels: Any,
        edits: Any,
        model: Any,
        model_fields: dict | None = None,
        **fields: Any,
    ) -> int:
        """Apply accepted edits as one undo step and record their provenance; pixels changed.

        The one path for the tab's proposals and the box prompt's: the record
        (:func:`~napari_domainseg.ops.assist.accept.acceptance_record` of ``model``, a
        classifier or a dict describing a backend, with ``fields``; ``model_fields`` go into its
        ``"model"``) is added only when pixels changed; the board's layout is digested now, the
        others in a worker; the review is refreshed.
        """
        assist = state.assist_of(labels) or {"accepted": []}
        board = self._ensure_board(labels)
        eager = [board.layout.name] if board is not None else None  # the others in a worker
        units = AcceptedUnits(labels.data, edits, assist.get("accepted", []), eager=eager)
        self._accepting = True  # the review ignores the edit's own events
        try:
            changed = apply_edits(labels, edits)
        finally:
            self._accepting = False
        if changed and model is not None:
            record = acceptance_record(
                model, edits, labels.data, units=units.after(labels.data), **fields
            )
            record["model"].update(model_fields or {})
            state.update(labels, assist=assist)
            add_record(assist, record)
            self._watch(labels)
            self._complete_units(labels, units, record)
        board = self._ensure_board(labels)
        if board is not None:
            board.set_records(self._records(labels))
            self._refresh_units(labels, list(units.keys.get(board.layout.name, [])))
        return changed

    def _complete_units(self, labels: Any, units: AcceptedUnits, record: dict) -> Any:
        """Record the digests of the layouts the board does not show, in a worker.

        Hashing every slice along the other axes of a volume reads it all, strided (0.6 s for
        300x512x512), so it runs on a copy of the annotation off the GUI thread; the record
        gets them when done, and the kept boards of those layouts are refreshed.
        """
        if not units.deferred:
            return None
        snapshot = np.array(labels.data, copy=True)
        worker = thread_worker(units.complete, ignore_errors=True)(snapshot)

        def done(entries: dict) -> None:
            record.setdefault(UNITS_KEY, {}).update(entries)
            self._mark_changed(lambda layout: set(units.keys.get(layout.name, [])))
            if same_layer(self._board_layer, labels) and self._board is not None:
                self._board.set_records(self._records(labels))
                self._refresh_units(labels, list(units.keys.get(self._board.layout.name, [])))

        worker.returned.connect(done)
        worker.errored.connect(self._on_error)
        worker.finished.connect(lambda: self._units_workers.remove(worker))
        self._units_workers.append(worker)
        worker.start()
        return worker

    @property
    def units_pending(self) -> bool:
        """Whether the digests of an acceptance's other layouts are still being computed."""
        return bool(self._units_workers)

    def discard(self) -> None:
        """Remove the proposal and uncertainty layers."""
        for layer in (self.proposal_layer, self.uncertainty_layer):
            if layer is not None and layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.proposal_layer = self.uncertainty_layer = self.predicted = None
        self._ranking = []
        self._tally = self._tally_layout = None
        self._forget_tallies()
        self.refresh_review()

    def _on_next(self) -> None:
        self.next_uncertain(self.review_class.currentData())

    def next_uncertain(self, class_id: int | None = None) -> Any:
        """Go to the next most uncertain predicted slice (volumes) or tile (scenes).

        With ``class_id``, to the slices or tiles where the pixels predicted as that class are
        least sure, most uncertain first.
        """
        labels = self.panel.labels()
        if labels is None or self.predicted is None or not self.predicted.any():
            show_warning("Assist: predict first; review goes where the proposal is unsure.")
            return None
        if self.predicted.shape != tuple(labels.data.shape) or not self._layers_alive():
            show_warning(
                f"Assist: the proposal was made for another annotation layer than "
                f"'{labels.name}' ({'x'.join(map(str, labels.data.shape))}); predict again "
                "for this layer, or pick the layer it was made for."
            )
            return None
        counted = self._ensure_tally(labels)
        key = (class_id, self._tally_layout)
        if not self._ranking or self._ranking_key != key:
            self._ranking = counted.ranked(class_id)
            self._ranking_key, self._position = key, -1
        if not self._ranking:
            name = self.panel.class_names().get(class_id, f"class {class_id}")
            show_warning(f"Assist: the proposal has no pixel of {name}.")
            return None
        self._position = (self._position + 1) % len(self._ranking)
        target = self._ranking[self._position]
        self.go_to(labels, target.index)
        what = "slice" if labels.ndim == 3 else "tile"
        among = "" if class_id is None else f" of class {class_id}"
        self.status.setText(
            f"Uncertain {what} {target.index}{among}: mean uncertainty {target.uncertainty:.2f} "
            f"({self._position + 1} of {len(self._ranking)})."
        )
        return target.index

    # -- models -------------------------------------------------------------------------------
    def save_model(self, path: str, overwrite: bool = False) -> Any:
        """Save the classifier with its feature recipe and library versions."""
        if self.model is None:
            show_warning("Assist: nothing to save; train first.")
            return None
        try:
            saved = self.model.save(path, overwrite=overwrite)
        except (AssistError, OSError) as exc:
            show_error(f"Assist: {exc}")
            return None
        show_info(f"Assist: model saved to {saved}")
        return saved

    def load_model(self, path: str) -> PixelClassifier | None:
        """Load a saved classifier (only files you trust: a model is a pickle)."""
        try:
            model = PixelClassifier.load(path)
        except AssistError as exc:
            show_error(f"Assist: {exc}")
            return None
        self.model, self.model_id = model, uuid.uuid4().hex[:12]
        self._trained_text = f"Loaded a model for classes {list(model.classes)} from {path}."
        self.status.setText(self._trained_text)
        return model

    def _on_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save model", "model.assist", "*.assist")
        if path:
            self.save_model(path, overwrite=True)  # the dialog asked before replacing

    def _on_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load model", "", "*.assist")
        if path:
            self.load_model(path)
