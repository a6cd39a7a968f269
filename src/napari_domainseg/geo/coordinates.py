"""Map coordinates and longitude/latitude of a world position, for the cursor readout."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyproj


class MapCoordinates:
    """Formats napari world positions (map y, x at pixel centres) of one CRS.

    Building the transformer once per CRS keeps each cursor update to a few
    microseconds.

    Parameters
    ----------
    crs
        A rasterio or pyproj CRS, WKT (or other pyproj input), or ``None``.
    """

    def __init__(self, crs: Any) -> None:
        self.crs = pyproj.CRS.from_user_input(crs) if crs else None
        self._to_lonlat = None
        if self.crs is not None and not self.crs.is_geographic:
            self._to_lonlat = pyproj.Transformer.from_crs(self.crs, 4326, always_xy=True)

    @property
    def crs_name(self) -> str:
        """A short CRS label: ``EPSG:32618`` when it has one, else its name."""
        if self.crs is None:
            return "no CRS"
        epsg = self.crs.to_epsg()
        return f"EPSG:{epsg}" if epsg else self.crs.name

    def lonlat(self, y: float, x: float) -> tuple[float, float] | None:
        """Longitude and latitude of map position (y, x), or ``None`` without a CRS."""
        if self.crs is None:
            return None
        if self._to_lonlat is None:  # geographic: x is longitude, y latitude
            return (x, y)
        lon, lat = self._to_lonlat.transform(x, y)
        return (lon, lat) if np.isfinite(lon) and np.isfinite(lat) else None

    def describe(self, y: float, x: float) -> str:
        """``"E 355012.5  N 4230115.0  (EPSG:32618)   38.21735 N  77.54720 W"``."""
        if self.crs is None:
            return f"x {x:.3f}  y {y:.3f}  (no CRS)"
        if self.crs.is_geographic:
            text = f"lon {x:.6f}  lat {y:.6f}  ({self.crs_name})"
        else:
            text = f"E {x:.2f}  N {y:.2f}  ({self.crs_name})"
            lonlat = self.lonlat(y, x)
            if lonlat is not None:
                lon, lat = lonlat
                text += (
                    f"   {abs(lat):.5f} {'N' if lat >= 0 else 'S'}"
                    f"  {abs(lon):.5f} {'E' if lon >= 0 else 'W'}"
                )
        return text


def window_from_world(
    world_affine: np.ndarray, bounds: tuple[float, float, float, float], shape: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Pixel window ``(row, col, height, width)`` covering world bounds ``(y0, x0, y1, x1)``.

    ``world_affine`` maps ``(row, col, 1)`` to world ``(y, x, 1)`` at pixel
    centres; the window is clipped to ``shape`` and is at least one pixel.
    """
    y0, x0, y1, x1 = bounds
    corners = np.array([[y0, x0, 1], [y0, x1, 1], [y1, x0, 1], [y1, x1, 1]], dtype=float)
    pixels = corners @ np.linalg.inv(np.asarray(world_affine, dtype=float)).T
    low = np.floor(pixels[:, :2].min(axis=0) + 0.5).astype(int)
    high = np.ceil(pixels[:, :2].max(axis=0) + 0.5).astype(int)
    low = np.clip(low, 0, np.array(shape) - 1)
    high = np.clip(high, low + 1, np.array(shape))
    return (int(low[0]), int(low[1]), int(high[0] - low[0]), int(high[1] - low[1]))
