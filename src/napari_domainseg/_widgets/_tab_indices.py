"""Spectral index layers (NDVI, NDWI), computed lazily on the raster's grid."""

from __future__ import annotations

from typing import Any

from napari.utils.notifications import show_warning
from qtpy.QtWidgets import QHBoxLayout, QWidget

from napari_domainseg._napari import _layer_state as state
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
        names = state.band_names_of(layers[0])
        bands = [find_band(names, role) for role in roles]
        if None in bands:
            show_warning(f"{name} needs bands named for {roles}.")
            return None
        by_band = {state.band_of(layer): layer for layer in layers}
        template = by_band[bands[0]]
        first, second = (by_band[b].data for b in bands)
        data = (
            [compute(a, b) for a, b in zip(first, second, strict=True)]
            if template.multiscale
            else compute(first, second)
        )
        entry = {**state.inherited_info(template), "index": name}
        entry.pop("band", None)
        layer_kwargs: dict[str, Any] = {"metadata": state.plugin_metadata(entry)}
        state.set_geometry(layer_kwargs, state.geometry_of(template))
        return self.viewer.add_image(
            data,
            name=f"{name}",
            colormap=colormap,
            contrast_limits=(-1.0, 1.0),
            affine=template.affine,
            scale=template.scale,
            translate=template.translate,
            metadata=layer_kwargs["metadata"],
            multiscale=template.multiscale,
        )
