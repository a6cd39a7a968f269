"""Threshold pre-labeling: intensity ranges (HU presets) and spectral index thresholds."""

from __future__ import annotations

import numpy as np

HU_RANGES: dict[str, tuple[float, float]] = {
    "bone": (300.0, 3000.0),
    "lung": (-1000.0, -400.0),
    "fat": (-190.0, -30.0),
    "soft tissue": (-30.0, 100.0),
    "blood (contrast)": (100.0, 300.0),
    "air": (-1100.0, -900.0),
}
"""Hounsfield ranges (inclusive) for common tissues."""

INDEX_RANGES: dict[str, tuple[str, float, float]] = {
    "vegetation (NDVI > 0.4)": ("ndvi", 0.4, 1.0),
    "water (NDWI > 0)": ("ndwi", 0.0, 1.0),
}
"""Spectral index thresholds: (index, low, high)."""


def threshold_mask(
    image: np.ndarray,
    low: float,
    high: float,
    region: np.ndarray | None = None,
) -> np.ndarray:
    """Pixels with ``low <= value <= high`` (NaN never), optionally only inside ``region``."""
    values = np.asarray(image)
    with np.errstate(invalid="ignore"):
        mask = (values >= low) & (values <= high)
    if region is not None:
        mask &= np.asarray(region, dtype=bool)
    return mask


def label_edit(
    mask: np.ndarray, labels: np.ndarray, class_id: int, policy: str = "unlabeled"
) -> tuple[tuple[np.ndarray, ...], int]:
    """Indices to set to ``class_id`` from a mask, honouring the painting policy.

    ``policy``: ``"unlabeled"`` (paint only over 0), ``"preserve"`` (keep
    other classes; same as unlabeled for a single class), or ``"overwrite"``.
    """
    if policy not in ("unlabeled", "preserve", "overwrite"):
        raise ValueError(f"unknown policy {policy!r}")
    change = np.asarray(mask, dtype=bool) & (labels != class_id)
    if policy != "overwrite":
        change &= labels == 0
    return np.nonzero(change), class_id
