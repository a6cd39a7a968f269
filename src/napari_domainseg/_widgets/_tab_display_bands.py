"""Band display for multi-band rasters: composites, any three bands as RGB, stretch, gamma."""

from __future__ import annotations

from typing import Any

import numpy as np
from napari.utils.notifications import show_warning
from qtpy.QtWidgets import QComboBox, QFormLayout, QGroupBox, QHBoxLayout

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._widgets._combo import refill
from napari_domainseg._widgets._tab_controls import button, spin
from napari_domainseg.geo.scene import find_band

COMPOSITES = {
    "true colour": ("red", "green", "blue"),
    "false colour (NIR)": ("nir", "red", "green"),
    "SWIR": ("swir", "nir", "red"),
}


def band_layers(viewer: Any, image: Any) -> list[Any]:
    """The band layers of the raster ``image`` was opened from, by band (none for other images)."""
    return state.bands_of_scene(viewer.layers, image) if image else []


def show_rgb(layers: list[Any], bands: tuple[int, ...] | list[int]) -> bool:
    """Show ``bands`` (indices) as red, green and blue; hide the other band layers."""
    by_band = {state.band_of(layer): layer for layer in layers}
    if any(b not in by_band for b in bands):
        return False
    for layer in layers:
        layer.visible = False
    for band, colour in zip(bands, ("red", "green", "blue"), strict=True):
        by_band[band].colormap = colour
        by_band[band].visible = True
    return True


class BandsGroup(QGroupBox):
    """Composites, custom R/G/B, percentile stretch and gamma for the panel's raster."""

    def __init__(self, panel: Any) -> None:
        super().__init__("Bands")
        self.panel, self.viewer = panel, panel.viewer
        self.composite_box = QComboBox()
        self.composite_box.addItems(list(COMPOSITES))
        self.composite_box.activated.connect(
            lambda _: self.apply_composite(self.composite_box.currentText())
        )
        self.custom = [QComboBox() for _ in range(3)]
        self.low_percent, self.high_percent = spin(2, 0, 50), spin(98, 50, 100)
        self.gamma = spin(1.0, 0.1, 5.0, 0.1, 2)
        self.form = QFormLayout(self)
        self.form.addRow("composite", self.composite_box)
        row = QHBoxLayout()
        for box in self.custom:
            row.addWidget(box)
        row.addWidget(button("Apply R/G/B", self.apply_custom))
        self.form.addRow("custom", row)
        self.form.addRow("stretch low %", self.low_percent)
        self.form.addRow("stretch high %", self.high_percent)
        self.form.addRow("gamma", self.gamma)
        self.form.addRow("", button("Apply stretch and gamma", self.apply_stretch))

    def band_layers(self) -> list[Any]:
        """The band layers of the panel's raster."""
        return band_layers(self.viewer, self.panel.image())

    def apply_composite(self, name: str) -> bool:
        """Show the bands of a named composite as red, green and blue."""
        layers = self.band_layers()
        if not layers:
            show_warning("Composites need a multi-band raster opened by DomainSeg.")
            return False
        names = state.band_names_of(layers[0])
        bands = [find_band(names, role) for role in COMPOSITES[name]]
        if None in bands:
            show_warning(f"{name}: the raster has no band named for {COMPOSITES[name]}.")
            return False
        show_rgb(layers, bands)
        self.composite_box.setCurrentText(name)
        return True

    def refresh_bands(self) -> None:
        """Offer the bands of the current raster in the custom R/G/B choosers."""
        layers = self.band_layers()
        names = state.band_names_of(layers[0]) if layers else []
        for box, role in zip(self.custom, ("red", "green", "blue"), strict=True):
            refill(box, names, fallback=find_band(names, role))  # start from true colour

    def apply_custom(self, bands: tuple[int, int, int] | None = None) -> bool:
        """Show any three bands (indices, default: the choosers) as red, green and blue."""
        layers = self.band_layers()
        if not layers:
            return False
        if bands is None:
            bands = tuple(box.currentIndex() for box in self.custom)  # type: ignore[assignment]
        return show_rgb(layers, bands)

    def apply_stretch(self) -> None:
        """Percentile stretch (of a decimated read) and gamma for the visible band layers."""
        from napari_domainseg.geo.scene import open_scene

        layers = [layer for layer in self.band_layers() if layer.visible]
        if not layers:
            return
        scene = open_scene(
            state.source_path_of(layers[0]), gcps=state.get(layers[0], "gcps", "pixels")
        )  # warped: warp
        for layer in layers:
            values = scene.sample(state.band_of(layer)).compressed()
            if values.size:
                low, high = np.percentile(
                    values, (self.low_percent.value(), self.high_percent.value())
                )
                layer.contrast_limits = (float(low), float(max(high, low + 1e-6)))
            layer.gamma = self.gamma.value()
