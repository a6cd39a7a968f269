"""Helpers for looking at what napari shows."""

from pathlib import Path

import numpy as np
import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / "demo-screenshots"


def _assert_not_blank(image: np.ndarray) -> None:
    rgb = image[..., :3].reshape(-1, 3)
    assert rgb.std() > 20, "screenshot is (nearly) uniform"
    assert len(np.unique(rgb // 32, axis=0)) >= 8, "screenshot has too few colours"


@pytest.fixture
def screenshot_folder() -> Path:
    """Where GUI tests save the screenshots they check (open them to look)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def assert_not_blank():
    """Check that a screenshot shows something: contrast and several colours."""
    return _assert_not_blank
