"""Open a raster lazily: georeferencing, band roles, nodata, stretch, and a multiscale pyramid.

Nothing here reads the full-resolution scene to open it. The pyramid's
levels are dask arrays read window by window (512x512 chunks): the file's
overviews when it has them (COG), otherwise decimated reads of the full
resolution. Contrast stretches come from the coarsest level that still has
enough pixels, with nodata, masked pixels and NaN left out.
"""

from __future__ import annotations

import math
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.windows import Window

from napari_domainseg.errors import DomainSegError
from napari_domainseg.geo.grid import RasterGrid

CHUNK = 512
STRETCH_SAMPLE = 1024
"""Longest side of the image the contrast stretch is computed from."""
STRETCH_PERCENTILES = (2.0, 98.0)
NODATA_TAGS = ("SPECIAL_VALUE_NODATA", "NODATA", "NODATA_VALUE")
"""Metadata tags (dataset or band) that declare a nodata value the file itself does not."""

# Words in band names or descriptions that give a band's role. Band numbers follow
# Sentinel-2 and Landsat 8/9, which agree for blue, green and red.
BAND_ROLES = {
    "blue": ("blue", "b2", "b02"),
    "green": ("green", "b3", "b03"),
    "red": ("red", "b4", "b04"),
    "nir": ("nir", "infrared", "b8", "b08", "b5"),
    "swir": ("swir", "swir1", "b11", "b6"),
}


def band_role(name: str) -> str | None:
    """``"red"``, ``"green"``, ``"blue"``, ``"nir"`` or ``"swir"`` from a band's name, if any."""
    words = re.findall(r"[a-z0-9]+", name.lower())
    if "near" in words and "infrared" in words:
        return "nir"
    for role, aliases in BAND_ROLES.items():
        if any(alias in words for alias in aliases):
            return role
    return None


def find_band(band_names: list[str] | tuple[str, ...], role: str) -> int | None:
    """Index of the first band whose name gives ``role``, or ``None``."""
    for index, name in enumerate(band_names):
        if band_role(name) == role:
            return index
    return None


class RasterOpenError(DomainSegError, ValueError):
    """The file is not a raster rasterio can open; the message says why."""


@dataclass
class Scene:
    """A raster file opened lazily.

    Attributes
    ----------
    path
        The file.
    height, width, count
        Full-resolution size and band count.
    dtype
        Pixel type of the bands.
    transform
        GDAL/rasterio affine (pixel corners); identity when the file has none.
    crs
        The CRS (rasterio), or ``None``; :attr:`crs_wkt` gives it as WKT.
    band_names
        One name per band: description, ``BANDNAME`` tag, or ``band N``.
    nodata
        Nodata value, from the file, a metadata tag, or ``None``.
    nodata_source
        ``"file"``, ``"metadata"`` or ``None``.
    masked
        True when the file carries a validity mask (per-dataset or alpha).
    factors
        Decimation factor of each pyramid level (1 first).
    overview_levels
        For each level, the file's overview index, or ``None`` for decimated reads.
    warnings
        What the user should be told (no CRS, no transform, ...).
    warp
        ``rasterio.vrt.WarpedVRT`` options when the scene is warped from its
        ground control points (``open_scene(..., gcps="warp")``), else ``None``.
    gcp_count
        Number of ground control points in the file (0 when none).
    gcp_only
        Georeferenced only by its ground control points and shown in pixel coordinates (not
        warped: no CRS, no geotransform).
    """

    path: Path
    height: int
    width: int
    count: int
    dtype: np.dtype
    transform: Affine
    crs: CRS | None
    band_names: tuple[str, ...]
    nodata: float | None
    nodata_source: str | None
    masked: bool
    factors: list[int]
    overview_levels: list[int | None]
    shapes: list[tuple[int, int]] = field(default_factory=list)
    colorinterp: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    warp: dict[str, Any] | None = None
    gcp_count: int = 0
    gcp_only: bool = False

    def description(self) -> dict[str, Any]:
        """What a read of this scene says beside its grid: nodata, bands, file, GCP state."""
        described: dict[str, Any] = {
            "domain": "geo",
            "nodata": self.nodata,
            "band_names": list(self.band_names),
            "source_path": str(self.path),
            "gcp_only": self.gcp_only,
        }
        if self.warp is not None:
            described["gcps"] = "warp"
        return described

    def open(self, overview_level: int | None = None) -> Any:
        """Open the scene's pixels as rasterio reads them: the file, or its GCP-warped VRT.

        Use as a context manager; closing it closes the file too.
        """
        return open_pixels(self.path, self.warp, overview_level)

    @property
    def crs_wkt(self) -> str | None:
        """The CRS as WKT, or ``None``."""
        return None if self.crs is None else self.crs.to_wkt()

    @property
    def grid(self) -> RasterGrid:
        """The full-resolution grid: size, transform (pixel corners) and CRS."""
        return RasterGrid(self.height, self.width, self.transform, self.crs)

    @property
    def world_affine(self) -> np.ndarray:
        """3x3 matrix mapping ``(row, col, 1)`` to map ``(y, x, 1)`` at pixel centres."""
        return self.grid.world_affine

    def level_shape(self, level: int) -> tuple[int, int]:
        """(rows, columns) of a pyramid level."""
        if self.shapes:
            return self.shapes[level]
        factor = self.factors[level]
        return (math.ceil(self.height / factor), math.ceil(self.width / factor))

    def band_pyramid(self, band: int) -> list[da.Array]:
        """Lazy levels of one band (0-based), full resolution first."""
        levels = []
        for level in range(len(self.factors)):
            reader = _WindowReader(self, band, level)
            levels.append(
                da.from_array(
                    reader,
                    chunks=(CHUNK, CHUNK),
                    asarray=True,
                    lock=False,
                    fancy=False,
                    meta=np.empty((0, 0), dtype=self.dtype),
                )
            )
        return levels

    def sample(self, band: int, max_side: int = STRETCH_SAMPLE) -> np.ndarray:
        """A decimated read of one band (GDAL uses overviews), invalid pixels masked."""
        factor = max(1, math.ceil(max(self.height, self.width) / max_side))
        shape = (max(1, math.ceil(self.height / factor)), max(1, math.ceil(self.width / factor)))
        with self.open() as src:
            values = src.read(band + 1, out_shape=shape, resampling=Resampling.nearest)
            invalid = ~np.isfinite(values) if values.dtype.kind == "f" else np.zeros(shape, bool)
            if self.nodata is not None and not (
                isinstance(self.nodata, float) and math.isnan(self.nodata)
            ):
                invalid |= values == self.nodata
            if self.masked:
                invalid |= src.read_masks(band + 1, out_shape=shape) == 0
        return np.ma.MaskedArray(values, mask=invalid)

    def stretch(self, band: int) -> tuple[float, float]:
        """Contrast limits of a band: 2-98 % of valid pixels of a decimated read."""
        values = self.sample(band).compressed()
        if values.size == 0:  # all nodata: any valid range will do
            return (0.0, 1.0)
        low, high = (float(v) for v in np.percentile(values, STRETCH_PERCENTILES))
        return (low, high if high > low else low + 1.0)

    def composite(self) -> tuple[int, int, int] | None:
        """Bands (0-based) to show as red, green, blue; ``None`` for one or two bands."""
        if self.count < 3:
            return None
        roles = [c.lower() for c in self.colorinterp]
        if all(r in roles for r in ("red", "green", "blue")):
            return (roles.index("red"), roles.index("green"), roles.index("blue"))
        bands = [find_band(self.band_names, role) for role in ("red", "green", "blue")]
        if None not in bands and len(set(bands)) == 3:
            return tuple(bands)  # type: ignore[return-value]
        return (0, 1, 2)


class _WindowReader:
    """Array-like view of one band at one pyramid level that reads only requested windows."""

    ndim = 2

    def __init__(self, scene: Scene, band: int, level: int) -> None:
        self.scene, self.band, self.level = scene, band, level
        self.shape = scene.level_shape(level)
        self.dtype = scene.dtype
        self._local = threading.local()

    def _dataset(self) -> Any:
        dataset = getattr(self._local, "dataset", None)
        if dataset is None or dataset.closed:
            dataset = self.scene.open(self.scene.overview_levels[self.level])
            self._local.dataset = dataset
        return dataset

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        rows, columns = (k.indices(n) for k, n in zip(key, self.shape, strict=True))
        height, width = rows[1] - rows[0], columns[1] - columns[0]
        if height <= 0 or width <= 0:
            return np.empty((max(height, 0), max(width, 0)), dtype=self.dtype)
        dataset = self._dataset()
        factor = self.scene.factors[self.level]
        if self.scene.overview_levels[self.level] is not None or factor == 1:
            window = Window(columns[0], rows[0], width, height)
            return dataset.read(self.band + 1, window=window)
        # No overview: read the full-resolution window decimated (nearest neighbour).
        window = Window(
            columns[0] * factor,
            rows[0] * factor,
            min(width * factor, self.scene.width - columns[0] * factor),
            min(height * factor, self.scene.height - rows[0] * factor),
        )
        return dataset.read(
            self.band + 1, window=window, out_shape=(height, width), resampling=Resampling.nearest
        )


class _Warped:
    """A GCP-warped VRT that closes its source file with it."""

    def __init__(self, source: Any, options: dict[str, Any]) -> None:
        from rasterio.crs import CRS
        from rasterio.vrt import WarpedVRT

        self.source = source
        options = dict(options)
        options["src_crs"] = CRS.from_wkt(options["src_crs"])
        options["resampling"] = Resampling[options.get("resampling", "nearest")]
        self.vrt = WarpedVRT(source, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.vrt, name)

    def close(self) -> None:
        self.vrt.close()
        self.source.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_pixels(path: Path, warp: dict[str, Any] | None, overview_level: int | None = None) -> Any:
    """Open ``path`` for reading pixels: plain, at an overview level, or GCP-warped (lazy VRT)."""
    if warp is not None:
        return _Warped(rasterio.open(path), warp)
    options = {} if overview_level is None else {"overview_level": overview_level}
    return rasterio.open(path, **options)


def _gcp_description(count: int, crs: Any) -> str:
    where = f"in {crs.to_string()}" if crs else "without a CRS"
    return f"{count} ground control points ({where})"


def metadata_nodata(src: Any) -> float | None:
    """A nodata value declared only in metadata tags (dataset or band), or ``None``."""
    for tags in (src.tags(), *(src.tags(b) for b in range(1, src.count + 1))):
        for key in NODATA_TAGS:
            if key in tags:
                try:
                    return float(tags[key])
                except ValueError:
                    continue
    return None


def _nodata(src: Any) -> tuple[float | None, str | None]:
    if src.nodata is not None:
        return float(src.nodata), "file"
    value = metadata_nodata(src)
    return (value, "metadata") if value is not None else (None, None)


def _band_names(src: Any) -> tuple[str, ...]:
    """Description, else BANDNAME tag, else colour interpretation, else ``band N``."""
    names = []
    for band in range(1, src.count + 1):
        role = ColorInterp(src.colorinterp[band - 1]).name
        described = src.descriptions[band - 1] or src.tags(band).get("BANDNAME")
        if described:
            names.append(described)
        elif role not in ("undefined", "gray", "grey"):
            names.append(role)
        else:
            names.append(f"band {band}")
    return tuple(names)


GCP_MODES = ("pixels", "warp")
"""How to open a raster georeferenced only by ground control points."""


def open_scene(path: str | os.PathLike[str], gcps: str = "pixels") -> Scene:
    """Open a raster's metadata and plan its pyramid; no pixels are read.

    Parameters
    ----------
    path
        Any raster GDAL reads.
    gcps
        For rasters georeferenced only by ground control points: ``"pixels"``
        (default) shows them in pixel coordinates with a warning; ``"warp"``
        warps them onto a north-up grid in the GCPs' CRS with GDAL's GCP
        transformer (a lazy ``WarpedVRT``, nearest neighbour).

    Raises
    ------
    RasterOpenError
        If rasterio cannot open the file or it has no bands.
    """
    path = Path(path)
    if gcps not in GCP_MODES:
        raise ValueError(f"gcps must be one of {GCP_MODES}, not {gcps!r}")
    try:
        src = rasterio.open(path)
    except Exception as exc:
        raise RasterOpenError(f"{path} is not a raster GDAL can read: {exc}") from None
    with src:
        if src.count == 0:
            raise RasterOpenError(f"{path} has no raster bands (a container of subdatasets?)")
        points, gcp_crs = src.gcps
        gcp_only = bool(points) and src.transform.is_identity and src.crs is None
        if gcp_only and gcps == "warp":
            return _open_warped(path, src, len(points), gcp_crs)
        return _scene_of(path, src, len(points), gcp_crs if gcp_only else None, gcp_only)


def _open_warped(path: Path, src: Any, count: int, gcp_crs: Any) -> Scene:
    if gcp_crs is None:
        raise RasterOpenError(
            f"{path} has {count} ground control points without a CRS, so it cannot be warped "
            "onto a map; open it in pixel coordinates instead"
        )
    warp = {"src_crs": gcp_crs.to_wkt(), "resampling": "nearest"}
    with _Warped(rasterio.open(path), warp) as vrt:
        scene = _scene_of(path, vrt, count, None, gcp_only=False, warp=warp)
    scene.warnings.append(
        f"{path.name}: warped onto a {scene.height}x{scene.width} grid in {gcp_crs.to_string()} "
        f"from its {_gcp_description(count, gcp_crs)} with GDAL's GCP transformer "
        "(nearest neighbour); exports are on this warped grid."
    )
    return scene


def _scene_of(
    path: Path,
    src: Any,
    gcp_count: int,
    gcp_crs: Any,
    gcp_only: bool,
    warp: dict[str, Any] | None = None,
) -> Scene:
    """The scene of an open dataset (the file, or its warped VRT)."""
    warnings = []
    transform = src.transform
    has_transform = not transform.is_identity or src.rpcs
    if gcp_only:
        warnings.append(
            f"{path.name} is georeferenced by {_gcp_description(gcp_count, gcp_crs)}, not by a "
            "geotransform: it is shown in pixel coordinates (one pixel = one unit) and exports "
            "carry no CRS. To place it on the map, open it warped with GDAL's GCP transformer "
            "(in napari: Layers > Register > 'Warp raster by its ground control points'; in "
            "Python: open_scene(path, gcps='warp'))."
        )
    elif src.crs is None:
        warnings.append(
            f"{path.name} has no coordinate reference system: it is shown in "
            + ("its transform's units" if has_transform else "pixel coordinates")
            + "; exports carry no CRS."
        )
    if not has_transform and not gcp_count:
        warnings.append(f"{path.name} has no geotransform: one pixel = one unit, origin 0.")
    nodata, nodata_source = _nodata(src)
    masked = any(
        MaskFlags.per_dataset in flags or MaskFlags.alpha in flags for flags in src.mask_flag_enums
    )
    overviews = src.overviews(1) if warp is None else []
    shapes = [(src.height, src.width)]
    if overviews:
        factors = [1, *overviews]
        overview_levels: list[int | None] = [None, *range(len(overviews))]
        for index in range(len(overviews)):
            with rasterio.open(path, overview_level=index) as overview:
                shapes.append((overview.height, overview.width))
    else:
        factors, overview_levels = [1], [None]
        while max(src.height, src.width) / factors[-1] > 2 * CHUNK:
            factors.append(factors[-1] * 2)
            overview_levels.append(None)
            shapes.append((math.ceil(src.height / factors[-1]), math.ceil(src.width / factors[-1])))
    return Scene(
        path=path,
        height=src.height,
        width=src.width,
        count=src.count,
        dtype=np.dtype(src.dtypes[0]),
        transform=transform,
        crs=src.crs if src.crs else None,
        band_names=_band_names(src),
        nodata=nodata,
        nodata_source=nodata_source,
        masked=masked,
        factors=factors,
        overview_levels=overview_levels,
        shapes=shapes,
        colorinterp=tuple(ColorInterp(c).name for c in src.colorinterp),
        tags=dict(src.tags()),
        warnings=warnings,
        warp=warp,
        gcp_count=gcp_count,
        gcp_only=gcp_only,
    )
