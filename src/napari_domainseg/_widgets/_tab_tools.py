"""The Tools tab: threshold, region growing, magic wand and clean-up of the selected class.

The 2-D work on the current slice (growing in one plane, the wand) goes through
:mod:`napari_domainseg.ops.planes`; edits go through
:func:`~napari_domainseg._napari._edits.apply_edits`, so Ctrl+Z undoes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from napari.utils.notifications import show_warning
from qtpy.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QWidget

from napari_domainseg._napari._edits import (
    apply_edits,
    current_index,
    cursor_index,
    physical_spacing,
    slice_axis,
)
from napari_domainseg._widgets._combo import refill
from napari_domainseg._widgets._domain import ImageDomain
from napari_domainseg._widgets._tab_controls import button, full_resolution, spin
from napari_domainseg.ops.cleanup import (
    class_edit,
    fill_holes,
    keep_largest,
    remove_islands,
    smooth,
)
from napari_domainseg.ops.planes import on_plane, slab, without_axis
from napari_domainseg.ops.region import grow_region, magic_wand
from napari_domainseg.ops.threshold import HU_RANGES, INDEX_RANGES, label_edit, threshold_mask

CONFIDENCE = "confidence (grow: mean ± 2.5 SD)"
ANYWHERE = "(anywhere)"


class ToolsTab(QWidget):
    """Threshold, region growing, magic wand and clean-up of the selected class."""

    def __init__(self, panel: Any) -> None:
        super().__init__()
        self.panel, self.viewer = panel, panel.viewer
        self.range_box = QComboBox()
        self.range_box.addItems([*HU_RANGES, *INDEX_RANGES, "custom", CONFIDENCE])
        self.range_box.activated.connect(self._on_range)
        self.low = spin(300, -1e6, 1e6, decimals=3)
        self.high = spin(3000, -1e6, 1e6, decimals=3)
        self.in_slice = QComboBox()
        self.in_slice.addItems(["current slice", "whole volume"])
        self.within = QComboBox()
        self.within.setToolTip(
            "Limit the threshold to the pixels painted in another labels layer "
            "(paint a rough region with a big brush there first)"
        )
        self.within.addItem(ANYWHERE)
        self.tolerance = spin(50, 0, 1e6)
        self.island = spin(100, 0, 1e9)
        self.radius = spin(1.0, 0.0, 100.0, 0.5, 2)
        form = QFormLayout(self)
        form.addRow("range", self.range_box)
        form.addRow("low", self.low)
        form.addRow("high", self.high)
        form.addRow("where", self.in_slice)
        form.addRow("within", self.within)
        form.addRow("", button("Threshold into class", self.threshold))
        form.addRow(
            "", button("Grow region from cursor", self.grow, "Seed: the voxel under the cursor")
        )
        form.addRow("wand tolerance", self.tolerance)
        form.addRow("", button("Magic wand at cursor (2D)", self.wand))
        self.island_label = QLabel("min island")
        form.addRow(self.island_label, self.island)
        form.addRow("smoothing radius", self.radius)
        row = QHBoxLayout()
        row.addWidget(button("Remove islands", lambda: self.clean("islands")))
        row.addWidget(button("Keep largest", lambda: self.clean("largest")))
        row.addWidget(button("Fill holes", lambda: self.clean("holes")))
        form.addRow(row)
        row = QHBoxLayout()
        for operation in ("opening", "closing", "median"):
            row.addWidget(
                button(operation.capitalize(), lambda _=False, o=operation: self.clean(o))
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
            return slab(3, axis, current_index(self.viewer, labels, axis))
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
        axis = slice_axis(self.viewer)
        if values.ndim == 3 and values.shape[axis] == 1:
            in_plane = list(without_axis(spacing, axis))
            mask = on_plane(
                lambda plane, seed_2d: grow_region(plane, seed_2d, low, high, in_plane),
                values,
                local_seed,
                axis,
            )
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
        axis, tolerance = slice_axis(self.viewer), self.tolerance.value()
        mask = on_plane(
            lambda plane, seed_2d: magic_wand(plane, seed_2d, tolerance),
            full_resolution(image),
            seed,
            axis,
        )
        return self._apply_mask(labels, mask, slab(3, axis, seed[axis]))

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
