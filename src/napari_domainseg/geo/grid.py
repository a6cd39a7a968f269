"""The raster grid as a value, and all pixel-grid math in one place.

A :class:`RasterGrid` is what a raster's pixels mean on the map: the full grid's size, its
GDAL/rasterio transform (pixel *corners*), its CRS, and optionally the window of it that an
array covers (a labels layer drawn on part of a big scene). It is immutable and validated
when made; readers make it once from the open dataset (:meth:`RasterGrid.of_dataset`), the
napari adapter turns it into layer placement (:meth:`RasterGrid.world_affine`, pixel
*centres*, rows and columns to northing and easting) and back, and every exporter takes it.

Window offsets go through :mod:`rasterio.windows`, never by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine
from rasterio import windows
from rasterio.crs import CRS
from rasterio.windows import Window

from napari_domainseg.errors import DomainSegError

WindowTuple = tuple[int, int, int, int]
"""``(row_offset, col_offset, height, width)``: how napari-side code names a window."""


class GridError(DomainSegError, ValueError):
    """A raster grid that cannot be: no pixels, a singular transform, a window outside it."""


def pixel_center_affine(transform: Affine) -> np.ndarray:
    """The 3x3 napari-order affine of a rasterio transform, at pixel centres.

    ``x = a*(col+0.5) + b*(row+0.5) + c`` and ``y = d*(col+0.5) + e*(row+0.5) + f``;
    in napari order ``(row, col) -> (y, x)``.
    """
    a, b, c, d, e, f = transform[:6]
    return np.array(
        [
            [e, d, f + 0.5 * (d + e)],
            [b, a, c + 0.5 * (a + b)],
            [0.0, 0.0, 1.0],
        ]
    )


def transform_from_world_affine(world_affine: np.ndarray) -> Affine:
    """The rasterio transform (pixel corners) of a napari 3x3 pixel-centre affine.

    The inverse of :func:`pixel_center_affine`.
    """
    m = np.asarray(world_affine, dtype=float)
    e, d, yc = m[0]
    b, a, xc = m[1]
    return Affine(a, b, xc - 0.5 * (a + b), d, e, yc - 0.5 * (d + e))


def as_window(window: WindowTuple | Window | None) -> Window | None:
    """The rasterio ``Window`` of ``(row_offset, col_offset, height, width)`` (or a Window)."""
    if window is None or isinstance(window, Window):
        return window
    row, col, height, width = (int(v) for v in window)
    return Window(col, row, width, height)


def window_tuple(window: Window) -> WindowTuple:
    """``(row_offset, col_offset, height, width)`` of a rasterio ``Window``."""
    return (int(window.row_off), int(window.col_off), int(window.height), int(window.width))


def _crs(value: CRS | str | None) -> CRS | None:
    if value is None or isinstance(value, CRS):
        return value
    try:
        return CRS.from_user_input(value)
    except Exception as exc:  # rasterio raises CRSError with the parser's words
        raise GridError(f"not a coordinate reference system ({str(value)[:80]!r}): {exc}") from exc


@dataclass(frozen=True)
class RasterGrid:
    """A raster grid: size, transform (pixel corners, GDAL), CRS, and the window an array covers.

    Parameters
    ----------
    height, width
        Size of the whole grid in pixels.
    transform
        Pixel-corner transform of the whole grid (``rasterio`` / GDAL convention).
    crs
        The grid's CRS (a WKT or other user input is parsed once, here), or ``None``.
    window
        The part of the grid an array covers (``None``: all of it); a ``Window`` or
        ``(row_offset, col_offset, height, width)``.

    Raises
    ------
    GridError
        A size below one pixel, a transform that is not finite or not invertible, or a
        window that is not whole pixels inside the grid.
    """

    height: int
    width: int
    transform: Affine
    crs: CRS | None = None
    window: Window | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "height", int(self.height))
        object.__setattr__(self, "width", int(self.width))
        if self.height < 1 or self.width < 1:
            raise GridError(
                f"a raster grid has at least one pixel, got {self.height} x {self.width}"
            )
        transform = Affine(*tuple(self.transform)[:6])
        if not all(np.isfinite(transform[:6])) or transform.determinant == 0:
            raise GridError(f"the transform is not finite and invertible: {tuple(transform[:6])}")
        object.__setattr__(self, "transform", transform)
        object.__setattr__(self, "crs", _crs(self.crs))
        window = as_window(self.window)
        if window is not None:
            if not _whole(window):
                raise GridError(f"a window is whole pixels, got {window}")
            row, col, height, width = window_tuple(window)
            if (
                height < 1
                or width < 1
                or row < 0
                or col < 0
                or row + height > self.height
                or col + width > self.width
            ):
                raise GridError(
                    f"the window (row {row}, col {col}, {height} x {width}) is not inside the "
                    f"{self.height} x {self.width} grid"
                )
        object.__setattr__(self, "window", window)

    # ------------------------------------------------------------------ views

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the whole grid."""
        return (self.height, self.width)

    @property
    def array_shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the array the grid describes: the window's, or the grid's."""
        if self.window is None:
            return self.shape
        return (int(self.window.height), int(self.window.width))

    @property
    def region(self) -> WindowTuple | None:
        """The window as ``(row_offset, col_offset, height, width)``, or ``None``."""
        return None if self.window is None else window_tuple(self.window)

    @property
    def crs_wkt(self) -> str | None:
        """The CRS as WKT (for GDAL, geopandas, pyproj), or ``None``."""
        return None if self.crs is None else self.crs.to_wkt()

    @property
    def array_transform(self) -> Affine:
        """Pixel-corner transform of the array: the window's (rasterio.windows), or the grid's."""
        if self.window is None:
            return self.transform
        return windows.transform(self.window, self.transform)

    @property
    def world_affine(self) -> np.ndarray:
        """3x3 matrix: the array's ``(row, col, 1)`` to map ``(y, x, 1)`` at pixel centres."""
        return pixel_center_affine(self.array_transform)

    @property
    def pixel_size(self) -> float:
        """Mean side of a pixel in map units (the square root of the transform's area)."""
        return float(abs(self.transform.determinant) ** 0.5)

    # ------------------------------------------------------------------ new grids

    def with_window(self, window: WindowTuple | Window | None) -> RasterGrid:
        """The same grid describing the window ``window`` of it (``None``: the whole grid)."""
        return RasterGrid(self.height, self.width, self.transform, self.crs, window)

    def window_of(self, bounds: WindowTuple) -> WindowTuple:
        """``bounds`` (row, col, height, width) clipped to the grid (at least one pixel)."""
        row, col, height, width = (int(v) for v in bounds)
        row, col = max(0, row), max(0, col)
        return (
            row,
            col,
            max(1, min(height, self.height - row)),
            max(1, min(width, self.width - col)),
        )

    @classmethod
    def of_dataset(cls, src: Any) -> RasterGrid:
        """The grid of an open rasterio dataset (the file's, or a warped VRT's)."""
        return cls(src.height, src.width, src.transform, src.crs)

    @classmethod
    def of_world_affine(
        cls, world_affine: np.ndarray, shape: tuple[int, int], crs: CRS | str | None
    ) -> RasterGrid:
        """The grid an array of ``shape`` has where a napari pixel-centre affine puts it."""
        return cls(shape[0], shape[1], transform_from_world_affine(world_affine), crs)

    # ------------------------------------------------------------------ comparison

    def same_as(self, other: RasterGrid, tolerance: float = 1e-3) -> bool:
        """Same array size, same CRS, and the array's corners within ``tolerance`` of a pixel.

        The four corners of the array are placed by both transforms (so a difference in
        pixel size counts as much as it moves the far corner) and must lie within
        ``tolerance * pixel_size`` map units of each other.
        """
        if self.array_shape != other.array_shape:
            return False
        if not same_crs(self.crs, other.crs):
            return False
        rows, cols = self.array_shape
        corners = np.array([[0, 0, 1], [cols, 0, 1], [0, rows, 1], [cols, rows, 1]], dtype=float)
        here = corners @ np.reshape(self.array_transform[:6], (2, 3)).T
        there = corners @ np.reshape(other.array_transform[:6], (2, 3)).T
        return bool(np.abs(here - there).max() <= tolerance * self.pixel_size)

    # ------------------------------------------------------------------ serialisation

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (floats exact; the CRS as WKT)."""
        return {
            "kind": "raster_grid",
            "height": self.height,
            "width": self.width,
            "transform": [float(v) for v in self.transform[:6]],
            "crs_wkt": self.crs_wkt,
            "window": None if self.window is None else list(window_tuple(self.window)),
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> RasterGrid:
        """The grid :meth:`to_dict` describes.

        Raises
        ------
        GridError
            A document that lacks a field or holds an impossible grid.
        """
        try:
            window = document.get("window")
            return cls(
                int(document["height"]),
                int(document["width"]),
                Affine(*document["transform"][:6]),
                document.get("crs_wkt"),
                None if window is None else tuple(window),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, GridError):
                raise
            raise GridError(f"not a raster grid description ({exc!r})") from exc


def _whole(window: Window) -> bool:
    values = (window.row_off, window.col_off, window.height, window.width)
    return all(float(v).is_integer() for v in values)


def same_crs(a: CRS | None, b: CRS | None) -> bool:
    """True when both are absent, or both describe the same CRS (pyproj's judgement)."""
    if a is None or b is None:
        return a is None and b is None
    if a == b:
        return True
    import pyproj

    return pyproj.CRS.from_wkt(a.to_wkt()).equals(pyproj.CRS.from_wkt(b.to_wkt()))
