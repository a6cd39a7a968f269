"""Window/level: contrast limits from the DICOM header, modality defaults and named presets.

A window is ``(center, width)`` in the image's values (HU for CT); napari's
contrast limits are ``(center - width / 2, center + width / 2)``.
"""

from __future__ import annotations

import numpy as np

Window = tuple[float, float]

CT_PRESETS: dict[str, Window] = {
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "stroke": (40.0, 40.0),
    "temporal bone": (600.0, 2800.0),
    "head soft tissue": (50.0, 375.0),
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "abdomen": (40.0, 400.0),
    "liver": (60.0, 160.0),
    "bone": (400.0, 1800.0),
    "spine soft tissue": (40.0, 250.0),
}
"""Common CT window presets (center, width) in HU, as in radiology workstations."""

MODALITY_DEFAULTS: dict[str, Window] = {"CT": CT_PRESETS["abdomen"]}


def contrast_limits(window: Window) -> tuple[float, float]:
    """Contrast limits (napari) for a window ``(center, width)``."""
    center, width = window
    return (center - width / 2.0, center + width / 2.0)


def preset(name: str) -> Window:
    """The window of a named CT preset (case-insensitive)."""
    try:
        return CT_PRESETS[name.strip().lower()]
    except KeyError:
        raise KeyError(f"no window preset {name!r}; available: {', '.join(CT_PRESETS)}") from None


def default_window(
    header_window: Window | None, modality: str, values: np.ndarray | None = None
) -> Window:
    """Choose the initial window: the header's, else the modality's, else the 1-99 % range.

    Parameters
    ----------
    header_window
        The first WindowCenter/WindowWidth pair from the header, if any.
    modality
        DICOM Modality (``"CT"``, ``"MR"``, ...).
    values
        Image values, used (subsampled) when neither of the above applies.
    """
    if header_window is not None and header_window[1] > 0:
        return header_window
    if modality in MODALITY_DEFAULTS:
        return MODALITY_DEFAULTS[modality]
    if values is None or values.size == 0:
        return (0.5, 1.0)
    sample = np.asarray(values).ravel()[:: max(1, values.size // 1_000_000)]
    low, high = (float(v) for v in np.percentile(sample, (1, 99)))
    if high <= low:
        high = low + 1.0
    return ((low + high) / 2.0, high - low)
