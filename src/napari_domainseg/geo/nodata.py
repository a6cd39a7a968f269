"""Nodata and masked pixels: where a raster has no data, labels are 0 (unlabeled), never a class.

GDAL's mask semantics decide what is invalid, as ``gdal_polygonize.py`` does:
the band's nodata value (NaN included), else its per-dataset or alpha mask.
Images may also declare nodata only in metadata (``SPECIAL_VALUE_NODATA``, as
Sentinel-2 products do); :func:`image_validity` honours that too.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import MaskFlags


def invalid_pixels(src: Any, values: np.ndarray, band: int = 1, window: Any = None) -> Any:
    """Where ``values`` (read from ``band`` in ``window``) are nodata or masked; ``None``: nowhere.

    GDAL's own mask semantics (what ``gdal_polygonize.py`` honours): the
    band's nodata value (NaN included), else its per-dataset or alpha mask.
    """
    flags = src.mask_flag_enums[band - 1]
    if MaskFlags.all_valid in flags:
        return None
    if MaskFlags.nodata in flags and src.nodatavals[band - 1] is not None:
        return _equal(values, src.nodatavals[band - 1])
    return src.read_masks(band, window=window) == 0


def _representable(value: float, dtype: np.dtype) -> bool:
    info = np.iinfo(dtype)
    return float(value).is_integer() and info.min <= value <= info.max


def unlabel_invalid(src: Any, values: np.ndarray, band: int = 1, window: Any = None) -> np.ndarray:
    """Set nodata and masked pixels of ``values`` to 0 (unlabeled), in place; return ``values``.

    Costs nothing for rasters without nodata or with nodata 0 (the plugin's own
    label GeoTIFFs); otherwise one comparison and one masked store, no copy.
    """
    nodata = src.nodatavals[band - 1]
    flags = src.mask_flag_enums[band - 1]
    if MaskFlags.all_valid in flags or (MaskFlags.nodata in flags and nodata == 0):
        return values
    invalid = invalid_pixels(src, values, band, window)
    if invalid is not None:
        np.copyto(values, 0, where=invalid)
    return values


def image_validity(
    path: str | os.PathLike[str], pixels: np.ndarray | None = None, window: Any = None
) -> np.ndarray | None:
    """Where an image has data (True), from its nodata (file or metadata), masks and NaN.

    A pixel is valid when any band is valid there (GDAL's dataset mask).
    ``pixels`` are the bands already read (``(bands, rows, cols)`` or one
    band ``(rows, cols)``); otherwise they are read (in ``window`` only, and
    only when the image can have invalid pixels). ``None``: valid everywhere.
    """
    with rasterio.open(path) as src:
        return validity(src, pixels, window)


def validity(src: Any, pixels: np.ndarray | None = None, window: Any = None) -> np.ndarray | None:
    """:func:`image_validity` of an open dataset."""
    from napari_domainseg.geo.scene import metadata_nodata

    declared = metadata_nodata(src) if src.nodata is None else None
    flags = src.mask_flag_enums
    floats = any(np.dtype(t).kind == "f" for t in src.dtypes)
    if all(MaskFlags.all_valid in f for f in flags) and declared is None and not floats:
        return None  # nothing read: every pixel has data
    if pixels is None:
        pixels = src.read(window=window)
    bands = pixels if pixels.ndim == 3 else pixels[None]
    valid = None
    for index, band in enumerate(bands):
        invalid = None
        if index < len(flags) and MaskFlags.all_valid not in flags[index]:
            invalid = invalid_pixels(src, band, index + 1, window)
        elif declared is not None:
            invalid = _equal(band, declared)
        if band.dtype.kind == "f":
            nan = np.isnan(band)
            invalid = nan if invalid is None else invalid | nan
        if invalid is None:
            return None  # one band valid everywhere: every pixel has data
        valid = ~invalid if valid is None else valid | ~invalid
    return valid


def _equal(values: np.ndarray, nodata: float) -> np.ndarray | None:
    if isinstance(nodata, float) and math.isnan(nodata):
        return np.isnan(values) if values.dtype.kind == "f" else None
    if values.dtype.kind in "iu" and not _representable(nodata, values.dtype):
        return None
    return values == nodata
