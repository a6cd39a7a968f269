"""Spectral index layers (NDVI, NDWI), computed lazily on the raster's grid."""

from __future__ import annotations

from typing import Any

from napari.utils.notifications import show_warning
from qtpy.QtWidgets import QHBoxLayout, QWidget

from napari_domainseg._napari._layer_data import METADATA_KEY
from napari_domainseg._widgets._tab_controls import button
from napari_domainseg._widgets._tab_display_bands import band_layers
from napari_domainseg.geo.scene import find_band
from napari_domainseg.ops.indices import ndvi, ndwi

INDICES = {
    "NDVI": (ndvi, ("nir", "red"), "RdYlGn"),
    "NDWI": (ndwi, ("green", "nir"), "PiYG"),
}


class IndexButtons(QWidget):
    """One button per index; each adds the index of the panel's raster as an image layer."""

    def __init__(self, panel: Any) -> None:
        super().__init__()
        self.panel, self.viewer = panel, panel.viewer
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for name in INDICES:
            row.addWidget(button(f"Add {name} layer", lambda _=False, n=name: self.add_index(n)))

    def add_index(self, name: str) -> Any:
        """Add a lazily computed NDVI or NDWI layer on the raster's grid."""
        layers = band_layers(self.viewer, self.panel.image())
        if not layers:
            show_warning(f"{name} needs a multi-band raster opened by DomainSeg.")
            return None
        compute, roles, colormap = INDICES[name]
        names = layers[0].metadata[METADATA_KEY]["band_names"]
        bands = [find_band(names, role) for role in roles]
        if None in bands:
            show_warning(f"{name} needs bands named for {roles}.")
            return None
        by_band = {layer.metadata[METADATA_KEY]["band"]: layer for layer in layers}
        template = by_band[bands[0]]
        first, second = (by_band[b].data for b in bands)
        data = (
            [compute(a, b) for a, b in zip(first, second, strict=True)]
            if template.multiscale
            else compute(first, second)
        )
        entry = {**template.metadata[METADATA_KEY], "index": name}
        entry.pop("band", None)
        return self.viewer.add_image(
            data,
            name=f"{name}",
            colormap=colormap,
            contrast_limits=(-1.0, 1.0),
            affine=template.affine,
            scale=template.scale,
            translate=template.translate,
            metadata={METADATA_KEY: entry},
            multiscale=template.multiscale,
        )
