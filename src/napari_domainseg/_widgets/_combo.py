"""Refilling a drop-down list when the layers change, keeping the user's choice."""

from __future__ import annotations

from collections.abc import Sequence

from qtpy.QtWidgets import QComboBox


def refill(box: QComboBox, names: Sequence[str], fallback: int | None = None) -> None:
    """Replace ``box``'s items with ``names``, keeping its current choice when still listed.

    Otherwise item ``fallback`` is chosen, when there is one. Signals are blocked
    meanwhile, so listeners hear only deliberate changes.
    """
    current = box.currentText()
    box.blockSignals(True)
    try:
        box.clear()
        box.addItems(list(names))
        if current in names:
            box.setCurrentText(current)
        elif fallback is not None and 0 <= fallback < len(names):
            box.setCurrentIndex(fallback)
    finally:
        box.blockSignals(False)
