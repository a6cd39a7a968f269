"""A georeferenced raster and the map from its pixels to world coordinates.

GDAL's geotransform maps pixel *corners*; napari places data index ``(row, col)``
at the pixel *centre*. :func:`pixel_center_affine` makes the 3x3 matrix that
maps ``(row, col, 1)`` to map coordinates ``(y, x, 1)`` at pixel centres, so
``layer.data_to_world((row, col))`` equals ``rasterio.transform.xy(transform, row, col)``
with the axes swapped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine


@dataclass
class Raster:
    """Bands of a raster with their georeferencing.

    Parameters
    ----------
    array
        Pixel values, axes (band, row, col).
    transform
        GDAL/rasterio affine transform (pixel corner convention).
    crs_wkt
        Coordinate reference system as WKT, or ``None`` when the file has none.
    nodata
        The nodata value, or ``None``.
    band_names
        One name per band (description, or ``"band N"``).
    metadata
        Other file metadata (tags, driver, path).
    """

    array: np.ndarray
    transform: Affine
    crs_wkt: str | None
    nodata: float | None = None
    band_names: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def world_affine(self) -> np.ndarray:
        """3x3 matrix mapping ``(row, col, 1)`` to ``(y, x, 1)`` at pixel centres."""
        return pixel_center_affine(self.transform)


def pixel_center_affine(transform: Affine) -> np.ndarray:
    """Return the 3x3 napari-order affine for a rasterio transform.

    ``x = a*(col+0.5) + b*(row+0.5) + c`` and ``y = d*(col+0.5) + e*(row+0.5) + f``;
    in napari order (row, col) -> (y, x).
    """
    a, b, c, d, e, f = (
        transform.a,
        transform.b,
        transform.c,
        transform.d,
        transform.e,
        transform.f,
    )
    return np.array(
        [
            [e, d, f + 0.5 * (d + e)],
            [b, a, c + 0.5 * (a + b)],
            [0.0, 0.0, 1.0],
        ]
    )


def read_raster(path: str | os.PathLike[str]) -> Raster:
    """Read every band of a raster file with its georeferencing.

    This reads the full-resolution data; it is meant for small rasters and
    sample data (lazy multiscale opening is in the geospatial reader).
    """
    path = Path(path)
    with rasterio.open(path) as src:
        array = src.read()
        names = tuple(
            description or f"band {index}"
            for index, description in enumerate(src.descriptions, start=1)
        )
        return Raster(
            array=array,
            transform=src.transform,
            crs_wkt=src.crs.to_wkt() if src.crs else None,
            nodata=src.nodata,
            band_names=names,
            metadata={"driver": src.driver, "path": str(path), "tags": src.tags()},
        )


def transform_from_world_affine(world_affine: np.ndarray) -> Affine:
    """Inverse of :func:`pixel_center_affine`: the GDAL transform of a napari placement."""
    w = np.asarray(world_affine, dtype=float)
    e, d, b, a = w[0, 0], w[0, 1], w[1, 0], w[1, 1]
    f = w[0, 2] - 0.5 * (d + e)
    c = w[1, 2] - 0.5 * (a + b)
    return Affine(a, b, c, d, e, f)
