"""CT display: Hounsfield window presets (key W cycles them)."""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QComboBox, QFormLayout, QGroupBox

from napari_domainseg._widgets._domain import image_domain
from napari_domainseg._widgets._tab_controls import button
from napari_domainseg.medical.windowing import CT_PRESETS, contrast_limits


class CtWindowGroup(QGroupBox):
    """Window presets for volumes in Hounsfield units."""

    def __init__(self, panel: Any) -> None:
        super().__init__("CT window (Hounsfield units)")
        self.panel = panel
        self.window_box = QComboBox()
        self.window_box.addItems(list(CT_PRESETS))
        self.window_box.activated.connect(
            lambda _: self.apply_window(self.window_box.currentText())
        )
        form = QFormLayout(self)
        form.addRow("preset", self.window_box)
        form.addRow("", button("Next window preset  [W]", self.cycle_window))
        panel.viewer.bind_key("w", lambda _viewer: self.cycle_window(), overwrite=True)

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
