"""Large synthetic geodata for benchmarks: a land-cover label raster and a Sentinel-2-sized COG.

Both are built from smooth random fields: Gaussian noise on a small grid, upsampled
with a cubic B-spline (the interpolation ``scipy.ndimage.zoom(order=3)`` does, with
its spline prefilter), at several scales summed. The upsampling is separable, so a
field is evaluated strip by strip as ``rows @ coefficients @ columns.T`` with sparse
cubic weights: nothing of full size is held in float, and the result is the same
whatever the strip height. Everything is seeded, so files are identical on every
machine and run, and each file is generated once and cached under
``benchmarks/.data`` (git-ignored).

* :func:`make_landcover`: 10000 x 10000 uint8 classes 1..6 (argmax of six
  per-class fields, so any class can border any other, with unequal shares) and
  about 4 % unlabeled (0) patches, as a tiled DEFLATE GeoTIFF, EPSG:32633, 10 m,
  nodata 0.
* :func:`make_sentinel_cog`: 10980 x 10980 x 4 uint16 bands ``B2, B3, B4, B8``
  (reflectance x 10000, ~500..4000) from vegetation, brightness and water fields
  plus sensor noise, as a Cloud-Optimized GeoTIFF (DEFLATE, 512 blocks, overviews
  2..64 averaged), EPSG:32633, 10 m, nodata 0.
* :func:`write_whole_scene`: 10980 x 10980 x 4 uint16, tiled up from pieces of
  napari-domainseg's synthetic sample scene (for ``bench_assist.py --whole-scene``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
import scipy.ndimage
import scipy.sparse
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.windows import Window

from harness import DATA_DIR

CRS_EPSG = 32633
"""WGS 84 / UTM zone 33N."""
ORIGIN = (500000.0, 4000000.0)
"""Upper-left corner (easting, northing) of both rasters, in metres."""
PIXEL_M = 10.0
STRIP = 512
"""Rows generated and written at a time (one tile row)."""
SENTINEL_BANDS = ("B2", "B3", "B4", "B8")
OVERVIEW_FACTORS = (2, 4, 8, 16, 32, 64)

_PAD = 2
"""Spline coefficients beyond each edge of the small noise grid (cubic support)."""


# --------------------------------------------------------------------------- smooth fields


def _cubic_bspline(t: np.ndarray) -> np.ndarray:
    """The cubic B-spline kernel at offsets ``t``."""
    a = np.abs(t)
    return np.where(
        a < 1.0, 2.0 / 3.0 - a**2 + 0.5 * a**3, np.where(a < 2.0, (2.0 - a) ** 3 / 6.0, 0.0)
    )


def _upsample_weights(n: int, size: int) -> scipy.sparse.csr_matrix:
    """Sparse (size, n + 2 * pad) cubic B-spline weights from a padded n-grid to ``size``.

    Output index ``i`` sits at ``i * (n - 1) / (size - 1)`` on the small grid (the
    corner-aligned mapping of ``scipy.ndimage.zoom``); it takes four coefficients.

    Parameters
    ----------
    n
        Points of the small grid along this axis.
    size
        Points of the output along this axis.

    Returns
    -------
    scipy.sparse.csr_matrix
        Row ``i`` holds the weights of output ``i``.
    """
    x = np.arange(size, dtype=np.float64) * ((n - 1) / max(size - 1, 1)) + _PAD
    first = np.floor(x).astype(np.int64) - 1
    columns = first[:, None] + np.arange(4)
    weights = _cubic_bspline(x[:, None] - columns)
    rows = np.repeat(np.arange(size), 4)
    shape = (size, n + 2 * _PAD)
    return scipy.sparse.csr_matrix((weights.ravel(), (rows, columns.ravel())), shape=shape)


class SmoothField:
    """A smooth random field on a ``size`` x ``size`` grid, evaluated by row strips.

    The sum over ``scales`` of cubic-spline-upsampled standard Gaussian noise,
    each scale given as ``(n, amplitude)``: noise on an ``n`` x ``n`` grid, so
    features are about ``size / n`` pixels across.

    Parameters
    ----------
    size
        Side of the square output grid.
    scales
        ``(n, amplitude)`` per scale.
    rng
        Source of the noise (consumed at construction).
    """

    def __init__(
        self, size: int, scales: list[tuple[int, float]], rng: np.random.Generator
    ) -> None:
        self.size = size
        self._terms: list[tuple[scipy.sparse.csr_matrix, np.ndarray]] = []
        for n, amplitude in scales:
            noise = rng.standard_normal((n + 2 * _PAD, n + 2 * _PAD))
            coefficients = scipy.ndimage.spline_filter(noise, order=3, mode="mirror")
            weights = _upsample_weights(n, size)
            # Interpolate along columns once: (n + 2 pad, size), small.
            across = (weights @ coefficients.T).T * amplitude
            self._terms.append((weights, np.ascontiguousarray(across, dtype=np.float32)))

    def rows(self, start: int, stop: int, step: int = 1) -> np.ndarray:
        """The field on rows ``start:stop:step`` (all columns), float32.

        Parameters
        ----------
        start, stop, step
            Row range.

        Returns
        -------
        numpy.ndarray
            Array of shape (rows, size).
        """
        out: np.ndarray | None = None
        for weights, across in self._terms:
            part = weights[start:stop:step] @ across
            out = part if out is None else out + part
        assert out is not None
        return np.asarray(out, dtype=np.float32)

    def subsample(self, step: int) -> np.ndarray:
        """The field on every ``step``-th row and column, for quantiles.

        Parameters
        ----------
        step
            Stride in both directions.

        Returns
        -------
        numpy.ndarray
            The decimated field.
        """
        return self.rows(0, self.size, step)[:, ::step]


def _profile(size: int, count: int, dtype: str, **extra: object) -> dict[str, object]:
    profile: dict[str, object] = {
        "driver": "GTiff",
        "height": size,
        "width": size,
        "count": count,
        "dtype": dtype,
        "crs": CRS.from_epsg(CRS_EPSG),
        "transform": from_origin(*ORIGIN, PIXEL_M, PIXEL_M),
        "nodata": 0,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
    }
    profile.update(extra)
    return profile


# --------------------------------------------------------------------------- land cover


def default_landcover(size: int = 10000) -> Path:
    """Cache path of the land-cover raster of side ``size`` under :data:`DATA_DIR`."""
    return DATA_DIR / f"landcover_{size}.tif"


LANDCOVER_BIAS = (0.45, 0.25, 0.10, 0.0, -0.10, -0.20)
"""Per-class offsets of the argmax: classes 1..6 cover decreasing shares."""
UNLABELED_FRACTION = 0.04


def make_landcover(
    path: str | os.PathLike[str] | None = None,
    size: int = 10000,
    classes: int = 6,
    seed: int = 0,
) -> Path:
    """Write (once) a ``size`` x ``size`` uint8 land-cover label GeoTIFF.

    Each class ``c`` has its own smooth field (features ~2.5 km and ~250 m across,
    plus a weak ~50 m term that makes boundaries ragged and leaves small islands);
    a pixel takes the class whose field plus offset is highest, so regions are
    blobs and any class can border any other. A separate field's top
    :data:`UNLABELED_FRACTION` quantile (estimated on a 1-in-10 subsample) is
    unlabeled (0), like cloud or no-data patches.

    Parameters
    ----------
    path
        Output file (default: :func:`default_landcover`); nothing is done if it exists.
    size
        Side in pixels (10 m each).
    classes
        Number of classes (values 1..classes, at most 255).
    seed
        Seed of the noise.

    Returns
    -------
    Path
        The GeoTIFF: tiled 512, DEFLATE, nodata 0, EPSG:32633, origin
        :data:`ORIGIN`, 10 m pixels.
    """
    path = Path(path) if path is not None else default_landcover(size)
    if path.exists():
        return path
    if not 1 <= classes <= 255:
        raise ValueError(f"classes must be 1..255, got {classes}")
    rng = np.random.default_rng([seed, 1])
    scales = [(max(size // 250, 4), 1.0), (max(size // 25, 4), 0.45), (max(size // 5, 4), 0.12)]
    fields = [SmoothField(size, scales, rng) for _ in range(classes)]
    bias = [LANDCOVER_BIAS[c] if c < len(LANDCOVER_BIAS) else 0.0 for c in range(classes)]
    unlabeled = SmoothField(size, [(max(size // 500, 4), 1.0), (max(size // 50, 4), 0.3)], rng)
    threshold = float(np.quantile(unlabeled.subsample(10), 1.0 - UNLABELED_FRACTION))

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    profile = _profile(size, 1, "uint8", compress="deflate")
    with rasterio.open(partial, "w", **profile) as dst:
        for start in range(0, size, STRIP):
            stop = min(start + STRIP, size)
            best = fields[0].rows(start, stop) + np.float32(bias[0])
            labels = np.ones(best.shape, dtype=np.uint8)
            for c in range(1, classes):
                value = fields[c].rows(start, stop) + np.float32(bias[c])
                higher = value > best
                best = np.where(higher, value, best)
                labels[higher] = c + 1
            labels[unlabeled.rows(start, stop) > threshold] = 0
            dst.write(labels, 1, window=Window(0, start, size, stop - start))
    partial.rename(path)
    return path


# --------------------------------------------------------------------------- Sentinel-2 scene


def default_sentinel(size: int = 10980) -> Path:
    """Cache path of the Sentinel-2-like COG of side ``size`` under :data:`DATA_DIR`."""
    return DATA_DIR / f"sentinel_{size}_cog.tif"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _sentinel_strip(
    vegetation: SmoothField,
    brightness: SmoothField,
    water: SmoothField,
    water_level: float,
    start: int,
    stop: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Bands B2, B3, B4, B8 of rows ``start:stop`` as a (4, rows, size) uint16 array."""
    v = _sigmoid(2.0 * vegetation.rows(start, stop))  # vegetation cover 0..1
    b = _sigmoid(1.5 * brightness.rows(start, stop))  # soil / built-up brightness 0..1
    w = np.clip((water_level - water.rows(start, stop)) / 0.15, 0.0, 1.0)  # water, soft shore
    land = (
        (600 + 500 * b - 150 * v, 750 + 600 * b - 50 * v, 650 + 1400 * b - 400 * v),
        1400 + 700 * b + 2200 * v,
    )
    water_values = (700.0, 650.0, 520.0, 500.0)
    bands = np.empty((4, stop - start, vegetation.size), dtype=np.uint16)
    for index, land_band in enumerate((*land[0], land[1])):
        value = land_band * (1.0 - w) + water_values[index] * w
        value += rng.normal(0.0, 25.0, size=value.shape).astype(np.float32)  # sensor noise
        bands[index] = np.clip(np.rint(value), 1, 10000).astype(np.uint16)
    return bands


def make_sentinel_cog(
    path: str | os.PathLike[str] | None = None,
    size: int = 10980,
    bands: int = 4,
    seed: int = 0,
) -> Path:
    """Write (once) a Sentinel-2-sized 4-band uint16 scene as a Cloud-Optimized GeoTIFF.

    Vegetation, brightness and water fields (features ~1.8 km and ~180 m across)
    drive plausible reflectances x 10000: vegetation is dark in B4 and bright in
    B8, water dark in B8; Gaussian sensor noise (sigma 25) is added per pixel.
    Strips of :data:`STRIP` rows go to an uncompressed tiled GeoTIFF, which gets
    averaged overviews :data:`OVERVIEW_FACTORS` and is then copied with GDAL's
    ``COG`` driver (DEFLATE, horizontal predictor, 512 blocks, those overviews).

    Parameters
    ----------
    path
        Output file (default: :func:`default_sentinel`); nothing is done if it exists.
    size
        Side in pixels (10 m each); Sentinel-2 tiles are 10980.
    bands
        Number of bands: 4 (``B2, B3, B4, B8``) or fewer, taken in that order.
    seed
        Seed of the noise.

    Returns
    -------
    Path
        The COG: EPSG:32633, origin :data:`ORIGIN`, 10 m pixels, nodata 0, band
        descriptions ``B2, B3, B4, B8``.
    """
    path = Path(path) if path is not None else default_sentinel(size)
    if path.exists():
        return path
    if not 1 <= bands <= len(SENTINEL_BANDS):
        raise ValueError(f"bands must be 1..{len(SENTINEL_BANDS)}, got {bands}")
    rng = np.random.default_rng([seed, 2])
    scales = [(max(size // 180, 4), 1.0), (max(size // 18, 4), 0.4)]
    vegetation = SmoothField(size, scales, rng)
    brightness = SmoothField(size, scales, rng)
    water = SmoothField(size, [(max(size // 400, 4), 1.0), (max(size // 40, 4), 0.25)], rng)
    water_level = float(np.quantile(water.subsample(10), 0.06))  # ~6 % open water

    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".staging.tif")
    partial = path.with_name(path.name + ".partial")
    profile = _profile(size, bands, "uint16", interleave="pixel", photometric="minisblack")
    with rasterio.open(staging, "w", **profile) as dst:
        for index, name in enumerate(SENTINEL_BANDS[:bands]):
            dst.set_band_description(index + 1, name)
        for strip, start in enumerate(range(0, size, STRIP)):
            stop = min(start + STRIP, size)
            noise = np.random.default_rng([seed, 3, strip])
            data = _sentinel_strip(vegetation, brightness, water, water_level, start, stop, noise)
            dst.write(data[:bands], window=Window(0, start, size, stop - start))
    with rasterio.open(staging, "r+") as dst:
        dst.build_overviews(list(OVERVIEW_FACTORS), Resampling.average)
    try:
        rasterio.shutil.copy(
            staging,
            partial,
            driver="COG",
            COMPRESS="DEFLATE",
            PREDICTOR="YES",
            BLOCKSIZE=512,
            OVERVIEWS="FORCE_USE_EXISTING",
            NUM_THREADS="ALL_CPUS",
            BIGTIFF="IF_SAFER",
        )
    finally:
        staging.unlink(missing_ok=True)
    partial.rename(path)
    return path


# --------------------------------------------------------------------------- whole synthetic scene


WHOLE_SIDE = 10980
"""Side of a Sentinel-2 tile at 10 m (pixels)."""
WHOLE_TILE = 1830
"""Side of each synthetic piece the whole scene is tiled from (10980 = 6 x 1830)."""


def write_whole_scene(path: Path, side: int = WHOLE_SIDE, piece: int = WHOLE_TILE) -> Path:
    """A ``side`` x ``side`` 4-band uint16 GeoTIFF, COG-like, tiled up from synthetic pieces.

    Each ``piece`` x ``piece`` window is a synthetic scene (:mod:`napari_domainseg.geo.synthetic`,
    four seeds in turn, each with its own nodata corner); the file has 512-pixel internal tiles,
    DEFLATE, band interleave and overviews 2..32, written window by window (never the whole
    scene in memory).
    """
    from napari_domainseg.geo import synthetic

    geometry = synthetic.SceneGeometry(height=piece, width=piece)
    pieces = [synthetic.synthetic_scene_bands(geometry, seed=11 + k) for k in range(4)]
    profile = {
        "driver": "GTiff",
        "width": side,
        "height": side,
        "count": 4,
        "dtype": "uint16",
        "crs": f"EPSG:{synthetic.EPSG}",
        "transform": from_origin(geometry.west, geometry.north, 10.0, 10.0),
        "nodata": synthetic.NODATA,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
        "interleave": "band",
        "BIGTIFF": "IF_SAFER",
    }
    with rasterio.open(path, "w", **profile) as dst:
        for index, name in enumerate(synthetic.BAND_NAMES, start=1):
            dst.set_band_description(index, name)
        for row in range(0, side, piece):
            for col in range(0, side, piece):
                bands = pieces[(row // piece + 2 * (col // piece)) % 4]
                h, w = min(piece, side - row), min(piece, side - col)
                dst.write(bands[:, :h, :w], window=Window(col, row, w, h))
        dst.build_overviews([2, 4, 8, 16, 32], Resampling.average)
        dst.update_tags(ns="rio_overview", resampling="average")
    return path


if __name__ == "__main__":
    for written in (make_landcover(), make_sentinel_cog()):
        print(f"{written} ({written.stat().st_size / 2**20:.0f} MiB)")
