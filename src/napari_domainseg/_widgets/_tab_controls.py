"""Building blocks shared by the annotation tabs: buttons, spin boxes, pixel data, placement."""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QDoubleSpinBox, QPushButton


def full_resolution(image: Any) -> Any:
    """An image layer's full-resolution data (level 0 of a pyramid)."""
    return image.data[0] if image.multiscale else image.data


def placement(layer: Any) -> dict[str, Any]:
    """Keyword arguments that put a new layer on ``layer``'s grid (affine, scale, ...)."""
    return {
        "affine": layer.affine,
        "scale": layer.scale,
        "translate": layer.translate,
        "rotate": layer.rotate,
        "shear": layer.shear,
    }


def button(text: str, slot: Any, tooltip: str = "") -> QPushButton:
    """A push button calling ``slot`` when clicked."""
    widget = QPushButton(text)
    widget.clicked.connect(slot)
    widget.setToolTip(tooltip)
    return widget


def spin(
    value: float, low: float, high: float, step: float = 1.0, decimals: int = 1
) -> QDoubleSpinBox:
    """A float spin box over [low, high]."""
    widget = QDoubleSpinBox()
    widget.setRange(low, high)
    widget.setDecimals(decimals)
    widget.setSingleStep(step)
    widget.setValue(value)
    return widget
