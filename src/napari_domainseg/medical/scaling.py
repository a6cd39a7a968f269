"""Which values a slice's stored pixels stand for: display (DICOM) or Philips "precise" scaling.

The DICOM standard maps stored values to output values with RescaleSlope
and RescaleIntercept (``DV = SV x RS + RI``): the *display* values, shown
by every DICOM viewer, and the default here. Philips MR scanners also store
a private scale slope (2005,100E, ``SS``) that gives the *precise*
floating-point values, ``FP = DV / (RS x SS)`` (Chenevert et al. 2014,
PMC3998685), which dcm2niix writes by default (its ``-p y``). Both are
offered; the choice is recorded in the volume metadata.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pydicom

from napari_domainseg.medical.header_values import float_values, text_value

PhilipsScaling = Literal["display", "precise"]
PHILIPS_SCALE_SLOPE_TAG = 0x2005100E
"""Philips MR private "scale slope" (creator ``Philips MR Imaging DD 001``, VR FL)."""


@dataclass(frozen=True)
class SliceScaling:
    """Slope and intercept that turn one slice's stored values into output values."""

    slope: float
    intercept: float
    source: str
    """``"display"`` (RescaleSlope/Intercept) or ``"philips_precise"`` (2005,100E)."""


def display_scaling(ds: pydicom.Dataset) -> tuple[float, float]:
    """RescaleSlope and RescaleIntercept (1 and 0 when absent; a zero slope counts as 1)."""
    slope = float_values(ds, "RescaleSlope")
    intercept = float_values(ds, "RescaleIntercept")
    return (slope[0] if slope and slope[0] else 1.0), (intercept[0] if intercept else 0.0)


def is_philips(ds: pydicom.Dataset) -> bool:
    """True for a header whose Manufacturer names Philips."""
    return "PHILIPS" in text_value(ds, "Manufacturer").upper()


def philips_scale_slope(ds: pydicom.Dataset) -> float | None:
    """Philips's private scale slope (2005,100E), or ``None`` if absent, zero or unreadable."""
    if PHILIPS_SCALE_SLOPE_TAG not in ds:
        return None
    try:
        value = ds[PHILIPS_SCALE_SLOPE_TAG].value
        if isinstance(value, (bytes, bytearray)):  # undecoded (no private dictionary entry)
            value = struct.unpack("<f", bytes(value[:4]))[0] if len(value) >= 4 else None
        elif isinstance(value, Sequence) and not isinstance(value, str):
            value = value[0] if len(value) else None
        number = None if value is None else float(value)
    except (KeyError, ValueError, TypeError, struct.error):
        return None
    if number is None or not math.isfinite(number) or number == 0:
        return None
    return number


def slice_scaling(ds: pydicom.Dataset, philips: PhilipsScaling = "display") -> SliceScaling:
    """The scaling of one slice.

    With ``philips="precise"`` and a Philips header carrying 2005,100E, the
    precise values ``(SV x RS + RI) / (RS x SS)``, that is slope ``1 / SS`` and
    intercept ``RI / (RS x SS)``; otherwise the display values.
    """
    slope, intercept = display_scaling(ds)
    if philips == "precise" and is_philips(ds):
        scale = philips_scale_slope(ds)
        if scale is not None:
            return SliceScaling(1.0 / scale, intercept / (slope * scale), "philips_precise")
    return SliceScaling(slope, intercept, "display")


def stack_scaling(
    headers: Sequence[pydicom.Dataset], philips: PhilipsScaling = "display"
) -> list[SliceScaling]:
    """:func:`slice_scaling` of every header (in the order given)."""
    if philips not in ("display", "precise"):
        raise ValueError(f"philips_scaling must be 'display' or 'precise', not {philips!r}")
    return [slice_scaling(h, philips) for h in headers]


def scaling_metadata(scalings: Sequence[SliceScaling], philips: PhilipsScaling) -> dict:
    """What the volume metadata records about its scaling (and a sidecar can carry).

    ``{"mode": "display" | "philips_precise", "per_slice": bool, "slope": [min,
    max], "intercept": [min, max], "requested": "display" | "precise"}``.
    """
    slopes = [s.slope for s in scalings] or [1.0]
    intercepts = [s.intercept for s in scalings] or [0.0]
    sources = {s.source for s in scalings} or {"display"}
    return {
        "mode": "philips_precise" if "philips_precise" in sources else "display",
        "requested": philips,
        "per_slice": len(set(slopes)) > 1 or len(set(intercepts)) > 1,
        "slope": [min(slopes), max(slopes)],
        "intercept": [min(intercepts), max(intercepts)],
    }
