"""The Display tab: CT windows, band display and spectral indices, shown by the image's domain."""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from napari_domainseg._widgets._domain import ImageDomain, image_domain
from napari_domainseg._widgets._tab_display_bands import BandsGroup
from napari_domainseg._widgets._tab_display_ct import CtWindowGroup
from napari_domainseg._widgets._tab_indices import IndexButtons


class DisplayTab(QWidget):
    """Window presets for volumes; composites, stretch, gamma and index layers for rasters."""

    def __init__(self, panel: Any) -> None:
        super().__init__()
        self.panel, self.viewer = panel, panel.viewer
        self.ct_group = CtWindowGroup(panel)
        self.bands_group = BandsGroup(panel)
        self.indices = IndexButtons(panel)
        self.bands_group.form.addRow("indices", self.indices)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        for widget in (self.ct_group, self.bands_group, self.hint):
            layout.addWidget(widget)
        layout.addStretch(1)
        # the controls, under the names the panel and its users know
        self.apply_window, self.cycle_window = (
            self.ct_group.apply_window,
            self.ct_group.cycle_window,
        )
        bands = self.bands_group
        self.custom = bands.custom
        self.low_percent, self.high_percent = bands.low_percent, bands.high_percent
        self.apply_composite, self.apply_custom = bands.apply_composite, bands.apply_custom
        self.apply_stretch, self.refresh_bands = bands.apply_stretch, bands.refresh_bands
        self.add_index = self.indices.add_index
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
