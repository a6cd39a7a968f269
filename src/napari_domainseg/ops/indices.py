"""Spectral indices computed lazily (numpy or dask arrays in, same kind out)."""

from __future__ import annotations

from typing import Any

import numpy as np


def normalized_difference(a: Any, b: Any) -> Any:
    """``(a - b) / (a + b)`` as float32; NaN where both are 0. Works on dask arrays lazily."""
    a = a.astype(np.float32)
    b = b.astype(np.float32)
    total = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        return (a - b) / total


def ndvi(nir: Any, red: Any) -> Any:
    """Normalized difference vegetation index."""
    return normalized_difference(nir, red)


def ndwi(green: Any, nir: Any) -> Any:
    """Normalized difference water index (McFeeters)."""
    return normalized_difference(green, nir)
