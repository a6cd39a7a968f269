"""The tabs of the annotation panel: display, slices, tools, statistics.

Each tab only wires controls to :mod:`napari_domainseg.ops` and
:mod:`napari_domainseg.medical.windowing`; edits go through
:func:`~napari_domainseg._napari._edits.apply_edits`, so Ctrl+Z undoes them.
The panel gives each tab its context through ``panel.image()``,
``panel.labels()`` and ``panel.class_id()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_domainseg._napari._edits import (
    apply_edits,
    current_index,
    cursor_index,
    element_size,
    physical_spacing,
    slice_axis,
)
from napari_domainseg._napari._layer_data import METADATA_KEY
from napari_domainseg._widgets._combo import refill
from napari_domainseg._widgets._domain import ImageDomain, image_domain
from napari_domainseg.geo.scene import find_band
from napari_domainseg.medical.windowing import CT_PRESETS, contrast_limits
from napari_domainseg.ops.cleanup import (
    class_edit,
    fill_holes,
    keep_largest,
    remove_islands,
    smooth,
)
from napari_domainseg.ops.indices import ndvi, ndwi
from napari_domainseg.ops.interpolate import fill_between
from napari_domainseg.ops.interpolate_image import (
    FillError,
    ImageFill,
    ImageFillSettings,
    fill_between_image,
)
from napari_domainseg.ops.region import grow_region, magic_wand
from napari_domainseg.ops.slices import annotated_slices, copy_slice, coverage_text, neighbour_slice
from napari_domainseg.ops.statistics import ClassStatistics, rows_to_csv
from napari_domainseg.ops.threshold import HU_RANGES, INDEX_RANGES, label_edit, threshold_mask

CONFIDENCE = "confidence (grow: mean ± 2.5 SD)"
SHAPE_ONLY = "shape only"
FOLLOW_IMAGE = "follow the image"
ANYWHERE = "(anywhere)"
COMPOSITES = {
    "true colour": ("red", "green", "blue"),
    "false colour (NIR)": ("nir", "red", "green"),
    "SWIR": ("swir", "nir", "red"),
}


def full_resolution(image: Any) -> Any:
    """An image layer's full-resolution data (level 0 of a pyramid)."""
    return image.data[0] if image.multiscale else image.data


def _button(text: str, slot: Any, tooltip: str = "") -> QPushButton:
    button = QPushButton(text)
    button.clicked.connect(slot)
    button.setToolTip(tooltip)
    return button


def _spin(
    value: float, low: float, high: float, step: float = 1.0, decimals: int = 1
) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setDecimals(decimals)
    spin.setSingleStep(step)
    spin.setValue(value)
    return spin


class DisplayTab(QWidget):
    """Window presets for volumes; composites, stretch, gamma and index layers for rasters."""

    def __init__(self, panel: Any) -> None:
        super().__init__()
        self.panel, self.viewer = panel, panel.viewer
        self.window_box = QComboBox()
        self.window_box.addItems(list(CT_PRESETS))
        self.window_box.activated.connect(
            lambda _: self.apply_window(self.window_box.currentText())
        )
        self.composite_box = QComboBox()
        self.composite_box.addItems(list(COMPOSITES))
        self.composite_box.activated.connect(
            lambda _: self.apply_composite(self.composite_box.currentText())
        )
        self.custom = [QComboBox() for _ in range(3)]
        self.low_percent, self.high_percent = _spin(2, 0, 50), _spin(98, 50, 100)
        self.gamma = _spin(1.0, 0.1, 5.0, 0.1, 2)
        self.ct_group = QGroupBox("CT window (Hounsfield units)")
        ct_form = QFormLayout(self.ct_group)
        ct_form.addRow("preset", self.window_box)
        ct_form.addRow("", _button("Next window preset  [W]", self.cycle_window))
        self.bands_group = QGroupBox("Bands")
        form = QFormLayout(self.bands_group)
        form.addRow("composite", self.composite_box)
        row = QHBoxLayout()
        for box in self.custom:
            row.addWidget(box)
        row.addWidget(_button("Apply R/G/B", self.apply_custom))
        form.addRow("custom", row)
        form.addRow("stretch low %", self.low_percent)
        form.addRow("stretch high %", self.high_percent)
        form.addRow("gamma", self.gamma)
        form.addRow("", _button("Apply stretch and gamma", self.apply_stretch))
        row = QHBoxLayout()
        row.addWidget(_button("Add NDVI layer", lambda: self.add_index("NDVI")))
        row.addWidget(_button("Add NDWI layer", lambda: self.add_index("NDWI")))
        form.addRow("indices", row)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        for widget in (self.ct_group, self.bands_group, self.hint):
            layout.addWidget(widget)
        layout.addStretch(1)
        self.viewer.bind_key("w", lambda _viewer: self.cycle_window(), overwrite=True)
        self.follow(image_domain(None))

    def follow(self, domain: ImageDomain) -> None:
        """Show the controls the picked image calls for, and say why others are hidden."""
        self.ct_group.setVisible(domain.hounsfield)
        self.bands_group.setVisible(domain.bands)
        if domain.domain is None:
            hint = "Pick an image opened by DomainSeg to see its display controls."
        elif domain.domain == "medical" and not domain.hounsfield:
            hint = (
                f"{domain.modality} intensities are not Hounsfield units: the window comes "
                "from the header; adjust it with the layer's contrast limits."
            )
        else:
            hint = ""
        self.hint.setText(hint)
        self.hint.setVisible(bool(hint))

    def apply_window(self, name: str) -> None:
        """Set the image's contrast limits to a CT window preset."""
        image = self.panel.image()
        if image is None:
            return
        image.contrast_limits = contrast_limits(CT_PRESETS[name])
        self.window_box.setCurrentText(name)

    def cycle_window(self) -> None:
        """The next window preset (key W); nothing for images that are not in HU."""
        if not image_domain(self.panel.image()).hounsfield:
            return
        names = list(CT_PRESETS)
        current = names.index(self.window_box.currentText())
        self.apply_window(names[(current + 1) % len(names)])

    def _band_layers(self) -> list[Any]:
        image = self.panel.image()
        source = image.metadata.get(METADATA_KEY, {}).get("source_path") if image else None
        return [
            layer
            for layer in self.viewer.layers
            if layer.metadata.get(METADATA_KEY, {}).get("source_path") == source
            and "band" in layer.metadata.get(METADATA_KEY, {})
        ]

    def apply_composite(self, name: str) -> bool:
        """Show the bands of a named composite as red, green and blue."""
        layers = self._band_layers()
        if not layers:
            show_warning("Composites need a multi-band raster opened by DomainSeg.")
            return False
        names = layers[0].metadata[METADATA_KEY]["band_names"]
        bands = [find_band(names, role) for role in COMPOSITES[name]]
        if None in bands:
            show_warning(f"{name}: the raster has no band named for {COMPOSITES[name]}.")
            return False
        self._show_rgb(layers, bands)
        self.composite_box.setCurrentText(name)
        return True

    @staticmethod
    def _show_rgb(layers: list[Any], bands: tuple[int, ...] | list[int]) -> bool:
        """Show ``bands`` (indices) as red, green and blue; hide the other band layers."""
        by_band = {layer.metadata[METADATA_KEY]["band"]: layer for layer in layers}
        if any(b not in by_band for b in bands):
            return False
        for layer in layers:
            layer.visible = False
        for band, colour in zip(bands, ("red", "green", "blue"), strict=True):
            by_band[band].colormap = colour
            by_band[band].visible = True
        return True

    def refresh_bands(self) -> None:
        """Offer the bands of the current raster in the custom R/G/B choosers."""
        layers = self._band_layers()
        names = layers[0].metadata[METADATA_KEY]["band_names"] if layers else []
        for box, role in zip(self.custom, ("red", "green", "blue"), strict=True):
            refill(box, names, fallback=find_band(names, role))  # start from true colour

    def apply_custom(self, bands: tuple[int, int, int] | None = None) -> bool:
        """Show any three bands (indices, default: the choosers) as red, green and blue."""
        layers = self._band_layers()
        if not layers:
            return False
        if bands is None:
            bands = tuple(box.currentIndex() for box in self.custom)  # type: ignore[assignment]
        return self._show_rgb(layers, bands)

    def apply_stretch(self) -> None:
        """Percentile stretch (of a decimated read) and gamma for the visible band layers."""
        from napari_domainseg.geo.scene import open_scene

        layers = [layer for layer in self._band_layers() if layer.visible]
        if not layers:
            return
        entry = layers[0].metadata[METADATA_KEY]
        scene = open_scene(entry["source_path"], gcps=entry.get("gcps", "pixels"))  # warped: warp
        for layer in layers:
            values = scene.sample(layer.metadata[METADATA_KEY]["band"]).compressed()
            if values.size:
                low, high = np.percentile(
                    values, (self.low_percent.value(), self.high_percent.value())
                )
                layer.contrast_limits = (float(low), float(max(high, low + 1e-6)))
            layer.gamma = self.gamma.value()

    def add_index(self, name: str) -> Any:
        """Add a lazily computed NDVI or NDWI layer on the raster's grid."""
        layers = self._band_layers()
        if not layers:
            show_warning(f"{name} needs a multi-band raster opened by DomainSeg.")
            return None
        names = layers[0].metadata[METADATA_KEY]["band_names"]
        roles = ("nir", "red") if name == "NDVI" else ("green", "nir")
        bands = [find_band(names, role) for role in roles]
        if None in bands:
            show_warning(f"{name} needs bands named for {roles}.")
            return None
        by_band = {layer.metadata[METADATA_KEY]["band"]: layer for layer in layers}
        first, second = (by_band[b].data for b in bands)
        compute = ndvi if name == "NDVI" else ndwi
        data = (
            [compute(a, b) for a, b in zip(first, second, strict=True)]
            if by_band[bands[0]].multiscale
            else compute(first, second)
        )
        template = by_band[bands[0]]
        entry = {**template.metadata[METADATA_KEY], "index": name}
        entry.pop("band", None)
        return self.viewer.add_image(
            data,
            name=f"{name}",
            colormap="RdYlGn" if name == "NDVI" else "PiYG",
            contrast_limits=(-1.0, 1.0),
            affine=template.affine,
            scale=template.scale,
            translate=template.translate,
            metadata={METADATA_KEY: entry},
            multiscale=template.multiscale,
        )


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
        row.addWidget(_button("◀ Previous annotated  [,]", lambda: self.go(-1)))
        row.addWidget(_button("Next annotated ▶  [.]", lambda: self.go(1)))
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
            _button(
                "Fill between slices (this class, unlabeled voxels only)",
                self.fill,
                "Interpolate the selected class between its annotated slices (one undo step)",
            )
        )
        row = QHBoxLayout()
        row.addWidget(_button("Copy slice to previous", lambda: self.copy(-1)))
        row.addWidget(_button("Copy slice to next", lambda: self.copy(1)))
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
        spacing = [s for i, s in enumerate(physical_spacing(labels)) if i != axis]
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
        modality = image.metadata.get(METADATA_KEY, {}).get("modality")
        settings = ImageFillSettings(intensity="hu" if modality == "CT" else "percentile")
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


class ToolsTab(QWidget):
    """Threshold, region growing, magic wand and clean-up of the selected class."""

    def __init__(self, panel: Any) -> None:
        super().__init__()
        self.panel, self.viewer = panel, panel.viewer
        self.range_box = QComboBox()
        self.range_box.addItems([*HU_RANGES, *INDEX_RANGES, "custom", CONFIDENCE])
        self.range_box.activated.connect(self._on_range)
        self.low = _spin(300, -1e6, 1e6, decimals=3)
        self.high = _spin(3000, -1e6, 1e6, decimals=3)
        self.in_slice = QComboBox()
        self.in_slice.addItems(["current slice", "whole volume"])
        self.within = QComboBox()
        self.within.setToolTip(
            "Limit the threshold to the pixels painted in another labels layer "
            "(paint a rough region with a big brush there first)"
        )
        self.within.addItem(ANYWHERE)
        self.tolerance = _spin(50, 0, 1e6)
        self.island = _spin(100, 0, 1e9)
        self.radius = _spin(1.0, 0.0, 100.0, 0.5, 2)
        form = QFormLayout(self)
        form.addRow("range", self.range_box)
        form.addRow("low", self.low)
        form.addRow("high", self.high)
        form.addRow("where", self.in_slice)
        form.addRow("within", self.within)
        form.addRow("", _button("Threshold into class", self.threshold))
        form.addRow(
            "", _button("Grow region from cursor", self.grow, "Seed: the voxel under the cursor")
        )
        form.addRow("wand tolerance", self.tolerance)
        form.addRow("", _button("Magic wand at cursor (2D)", self.wand))
        self.island_label = QLabel("min island")
        form.addRow(self.island_label, self.island)
        form.addRow("smoothing radius", self.radius)
        row = QHBoxLayout()
        row.addWidget(_button("Remove islands", lambda: self.clean("islands")))
        row.addWidget(_button("Keep largest", lambda: self.clean("largest")))
        row.addWidget(_button("Fill holes", lambda: self.clean("holes")))
        form.addRow(row)
        row = QHBoxLayout()
        for operation in ("opening", "closing", "median"):
            row.addWidget(
                _button(operation.capitalize(), lambda _=False, o=operation: self.clean(o))
            )
        form.addRow(row)

    def follow(self, domain: ImageDomain) -> None:
        """Offer the ranges and units of the image's domain (HU for CT, indices for scenes)."""
        ranges = [*HU_RANGES] if domain.hounsfield else []
        ranges += [*INDEX_RANGES] if domain.bands else []
        refill(self.range_box, [*ranges, "custom", CONFIDENCE], fallback=0)
        self._on_range(0)
        self.island_label.setText(f"min island ({domain.area_unit})")

    def _on_range(self, _index: int) -> None:
        name = self.range_box.currentText()
        if name in HU_RANGES or name in INDEX_RANGES:
            low, high = HU_RANGES[name] if name in HU_RANGES else INDEX_RANGES[name][1:]
            self.low.setValue(low)
            self.high.setValue(high)

    def _pair(self) -> tuple[Any, Any] | None:
        image, labels = self.panel.image(), self.panel.labels()
        if image is None or labels is None or image.data.shape != labels.data.shape:
            show_warning("Pick an image and an annotation layer made for it first.")
            return None
        return image, labels

    def _region(self, labels: Any) -> tuple[slice, ...]:
        """The whole volume, or the current slice."""
        if labels.ndim == 3 and self.in_slice.currentText() == "current slice":
            axis = slice_axis(self.viewer)
            region = [slice(None)] * 3
            region[axis] = slice(current_index(self.viewer, labels, axis), None)
            region[axis] = slice(region[axis].start, region[axis].start + 1)
            return tuple(region)
        return tuple(slice(None) for _ in range(labels.ndim))

    def _apply_mask(self, labels: Any, mask: np.ndarray, region: tuple[slice, ...]) -> int:
        full = np.zeros(labels.data.shape, bool)
        full[region] = mask
        policy = "unlabeled" if labels.preserve_labels else "overwrite"
        indices, value = label_edit(full, np.asarray(labels.data), self.panel.class_id(), policy)
        return apply_edits(labels, [(indices, value)])

    def threshold(self) -> int:
        """Label the image's values in [low, high] (in the current slice or everywhere)."""
        pair = self._pair()
        if pair is None:
            return 0
        image, labels = pair
        region = self._region(labels)
        values = np.asarray(full_resolution(image)[region])
        within = self.region_layer()
        if within is not None and within.data.shape != labels.data.shape:
            show_warning(f"'{within.name}' is not on the annotation layer's grid; ignored.")
            within = None
        limit = None if within is None else np.asarray(within.data[region]) != 0
        mask = threshold_mask(values, self.low.value(), self.high.value(), limit)
        return self._apply_mask(labels, mask, region)

    def refresh_regions(self) -> None:
        """List the labels layers that can limit a threshold (all but the annotation layer)."""
        from napari.layers import Labels

        names = [
            layer.name
            for layer in self.viewer.layers
            if isinstance(layer, Labels) and layer is not self.panel.labels()
        ]
        refill(self.within, [ANYWHERE, *names])

    def region_layer(self) -> Any:
        """The labels layer limiting the threshold, or ``None``."""
        name = self.within.currentText()
        return self.viewer.layers[name] if name != ANYWHERE and name in self.viewer.layers else None

    def _seeded(self) -> tuple[Any, Any, tuple[int, ...]] | None:
        """Image, labels and the voxel under the cursor (the seed), or ``None``."""
        pair = self._pair()
        if pair is None:
            return None
        seed = cursor_index(self.viewer, pair[0])
        if seed is None:
            show_warning("Put the cursor on the image first: the seed is the voxel under it.")
            return None
        return (*pair, seed)

    def grow(self) -> int:
        """Grow from the voxel under the cursor: within [low, high], or confidence-connected."""
        seeded = self._seeded()
        if seeded is None:
            return 0
        image, labels, seed = seeded
        region = self._region(labels)
        offset = [s.start or 0 for s in region]
        local_seed = tuple(v - o for v, o in zip(seed, offset, strict=True))
        values = np.asarray(full_resolution(image)[region])
        spacing = physical_spacing(image)
        low, high = self.low.value(), self.high.value()
        if self.range_box.currentText() == CONFIDENCE:
            low = high = None
        if values.ndim == 3 and values.shape[slice_axis(self.viewer)] == 1:
            axis = slice_axis(self.viewer)
            plane = np.take(values, 0, axis=axis)
            seed_2d = tuple(v for i, v in enumerate(local_seed) if i != axis)
            in_plane = [s for i, s in enumerate(spacing) if i != axis]
            grown = grow_region(plane, seed_2d, low, high, in_plane)
            mask = np.expand_dims(grown, axis)
        else:
            mask = grow_region(values, local_seed, low, high, spacing)
        return self._apply_mask(labels, mask, region)

    def wand(self) -> int:
        """Flood the current 2D plane from the cursor within the tolerance."""
        seeded = self._seeded()
        if seeded is None:
            return 0
        image, labels, seed = seeded
        if labels.ndim == 2:
            mask = magic_wand(np.asarray(full_resolution(image)), seed, self.tolerance.value())
            return self._apply_mask(labels, mask, (slice(None), slice(None)))
        axis = slice_axis(self.viewer)
        region = [slice(None)] * 3
        region[axis] = slice(seed[axis], seed[axis] + 1)
        plane = np.take(np.asarray(full_resolution(image)[tuple(region)]), 0, axis=axis)
        seed_2d = tuple(v for i, v in enumerate(seed) if i != axis)
        mask = np.expand_dims(magic_wand(plane, seed_2d, self.tolerance.value()), axis)
        return self._apply_mask(labels, mask, tuple(region))

    def clean(self, operation: str) -> int:
        """Clean the selected class: islands, largest component, holes, or smoothing."""
        labels = self.panel.labels()
        if labels is None:
            return 0
        class_id = self.panel.class_id()
        data = np.asarray(labels.data)
        mask = data == class_id
        spacing = physical_spacing(labels)
        if operation == "islands":
            new = remove_islands(mask, self.island.value(), spacing)
        elif operation == "largest":
            new = keep_largest(mask)
        elif operation == "holes":
            new = fill_holes(mask, slice_axis(self.viewer) if data.ndim == 3 else None)
        else:
            new = smooth(mask, operation, self.radius.value(), spacing)
        return apply_edits(labels, class_edit(data, class_id, new))


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
    entry = image.metadata.get(METADATA_KEY, {})
    nodata = entry.get("nodata") if entry.get("domain") == "geo" else None
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
        row.addWidget(_button("Recompute", self.recompute))
        row.addWidget(_button("Export CSV…", self._on_export))
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
