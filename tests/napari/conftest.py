"""Fixtures shared by the napari adapter tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def shown(monkeypatch) -> list[str]:
    """Texts of the warning notifications napari would show, in order."""
    import napari.utils.notifications as notifications

    said: list[str] = []
    monkeypatch.setattr(notifications, "show_warning", said.append)
    return said
