"""The map from a raster's pixels to world coordinates, and back to a GDAL transform.

GDAL's geotransform maps pixel *corners*; napari places data index ``(row, col)``
at the pixel *centre*. :func:`pixel_center_affine` makes the 3x3 matrix that
maps ``(row, col, 1)`` to map coordinates ``(y, x, 1)`` at pixel centres, so
``layer.data_to_world((row, col))`` equals ``rasterio.transform.xy(transform, row, col)``
with the axes swapped.
"""

from __future__ import annotations

import numpy as np
from affine import Affine


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


def transform_from_world_affine(world_affine: np.ndarray) -> Affine:
    """Inverse of :func:`pixel_center_affine`: the GDAL transform of a napari placement."""
    w = np.asarray(world_affine, dtype=float)
    e, d, b, a = w[0, 0], w[0, 1], w[1, 0], w[1, 1]
    f = w[0, 2] - 0.5 * (d + e)
    c = w[1, 2] - 0.5 * (a + b)
    return Affine(a, b, c, d, e, f)
