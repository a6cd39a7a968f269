"""Label rasters on a scene's grid: make them, write them as GeoTIFF or COG, read them back.

A label GeoTIFF has the source's CRS, transform, width and height; nodata 0
(unlabeled); DEFLATE compression in 512x512 tiles; internal overviews made
with ``mode`` resampling (a class, never an average of classes); a colour
table from the schema; and the schema itself in the ``LABEL_SCHEMA`` tag
(class names also per value in ``CLASS_<id>`` tags), so QGIS shows the colours
and every tool sees the names.

Labels may cover only a window of the scene (for scenes too big to paint
whole: the grid's :attr:`~napari_domainseg.geo.grid.RasterGrid.window`); they are written
onto the full grid all the same.

Instance labels (an instance map and its
:class:`~napari_domainseg.labels.instances.InstanceTable`) are written as two bands: band 1
the class map as above (colour table, schema), band 2 the instance ids, described ``class``
and ``instance``, with the table's records as JSON in the dataset tag :data:`INSTANCES_TAG`.
A GeoTIFF has one pixel type for all its bands, so both bands take the larger of the two
(uint16 at least; uint32 beyond 65535 instances).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.windows import Window

from napari_domainseg.atomic import atomic_write
from napari_domainseg.errors import DomainSegError
from napari_domainseg.formats.base import LABELS, Read
from napari_domainseg.geo.grid import RasterGrid
from napari_domainseg.geo.nodata import unlabel_invalid
from napari_domainseg.labels.instances import (
    InstanceTable,
    check_instances,
    instance_dtype,
    semantic_map,
)
from napari_domainseg.labels.schema import LabelSchema, covering_schema, schema_or_none

SCHEMA_TAG = "LABEL_SCHEMA"
ASSIST_TAG = "DOMAINSEG_ASSIST"
"""Dataset tag with the provenance of assisted labeling (JSON; as ``domainseg assist`` writes)."""
INSTANCES_TAG = "DOMAINSEG_INSTANCES"
"""Dataset tag of an instance label GeoTIFF: the instance table's records (JSON list)."""
CLASS_BAND, INSTANCE_BAND = 1, 2
"""The bands of an instance label GeoTIFF: the class map, the instance map."""
BLOCK = 512


class InstanceWarning(UserWarning):
    """Painted instance ids missing from the instance table (kept; the message says the repair)."""


def label_dtype(labels: np.ndarray) -> np.dtype:
    """Storage type: the smallest unsigned type holding every value (int32 beyond uint16)."""
    high = int(labels.max(initial=0))
    if int(labels.min(initial=0)) < 0:
        raise ValueError("labels must be 0 (unlabeled) or positive class ids")
    for dtype in (np.uint8, np.uint16, np.uint32):
        if high <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"label value {high} does not fit 32 bits")


def overview_factors(height: int, width: int, smallest: int = 256) -> list[int]:
    """Overview decimation factors (2, 4, ...) until the longest side is under ``smallest``."""
    factors = []
    factor = 2
    while max(height, width) / factor >= smallest // 2 and max(height, width) > smallest:
        factors.append(factor)
        factor *= 2
    return factors


def write_assist_tag(dst: Any, record: dict) -> None:
    """Write the assisted-labeling provenance ``record`` as the dataset tag :data:`ASSIST_TAG`."""
    dst.update_tags(**{ASSIST_TAG: json.dumps(record, separators=(",", ":"))})


def raster_profile(grid: RasterGrid, dtype: np.dtype | str, count: int = 1) -> dict:
    """The rasterio profile of a tiled, DEFLATE GeoTIFF on the whole of ``grid``.

    Integers (labels): nodata 0, horizontal predictor. Floats (probabilities, uncertainty):
    nodata NaN, floating-point predictor.
    """
    dtype = np.dtype(dtype)
    floating = np.issubdtype(dtype, np.floating)
    profile = {
        "driver": "GTiff",
        "height": grid.height,
        "width": grid.width,
        "count": count,
        "dtype": dtype.name,
        "transform": grid.transform,
        "nodata": float("nan") if floating else 0,
        "compress": "deflate",
        "predictor": 3 if floating else 2,
        "BIGTIFF": "IF_SAFER",
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
    }
    if grid.crs is not None:
        profile["crs"] = grid.crs
    return profile


_PROFILE_NODATA = object()


@contextlib.contextmanager
def open_geotiff(
    path: str | os.PathLike[str],
    grid: RasterGrid,
    dtype: np.dtype | str,
    count: int = 1,
    nodata: Any = _PROFILE_NODATA,
    overwrite: bool = False,
    cog: bool = False,
) -> Iterator[Any]:
    """The one GeoTIFF writer: a dataset on ``grid`` open for writing, moved into place atomically.

    Label rasters, chips and strip-by-strip output all write through it. The file has the
    :func:`raster_profile` (tiled, DEFLATE) and appears at ``path`` only when the ``with``
    block finishes; on any exception nothing is left behind and an existing file is kept.

    Parameters
    ----------
    path
        Output ``.tif``.
    grid
        Size, transform and CRS of the file (the whole grid; its window plays no part).
    dtype, count
        Pixel type and number of bands.
    nodata
        The nodata value (``None``: none); by default the profile's (0, or NaN for floats).
    overwrite
        Replace an existing file.
    cog
        Finish as a Cloud-Optimized GeoTIFF (GDAL's COG driver; overviews by ``mode``,
        for labels): the dataset yielded is a plain GeoTIFF, copied when the block ends.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is false (before anything is written).
    """
    path = Path(path)
    profile = raster_profile(grid, dtype, count)
    if nodata is not _PROFILE_NODATA:
        profile["nodata"] = nodata
    with atomic_write(path, overwrite=overwrite) as tmp:
        if not cog:
            with rasterio.open(tmp, "w", **profile) as dst:
                yield dst
            return
        with tempfile.TemporaryDirectory(dir=path.parent) as folder:
            plain = Path(folder) / "plain.tif"
            with rasterio.open(plain, "w", **profile) as dst:
                yield dst
            rasterio.shutil.copy(
                plain,
                tmp,
                driver="COG",
                compress="DEFLATE",
                predictor="YES",
                blocksize=BLOCK,
                overview_resampling="mode",
                BIGTIFF="IF_SAFER",
            )


def _write_band(dst: Any, values: np.ndarray, band: int, grid: RasterGrid) -> None:
    """Write ``values`` (the grid's array: whole, or its window) into ``band``; 0 elsewhere."""
    dtype = np.dtype(dst.dtypes[0])
    window = grid.window
    target = window or Window(0, 0, grid.width, grid.height)
    if window is not None:  # the rest of the scene is unlabeled
        for row in range(0, grid.height, BLOCK * 8):
            rows = min(BLOCK * 8, grid.height - row)
            dst.write(
                np.zeros((rows, grid.width), dtype), band, window=Window(0, row, grid.width, rows)
            )
    dst.write(values.astype(dtype, copy=False), band, window=target)


def _write_labels(
    dst: Any,
    labels: np.ndarray,
    grid: RasterGrid,
    schema: LabelSchema,
    assist: dict | None = None,
) -> None:
    _write_band(dst, labels, 1, grid)
    describe_labels(dst, schema, grid)
    if assist:
        write_assist_tag(dst, assist)


def _write_instances(
    dst: Any,
    classes: np.ndarray,
    instance_map: np.ndarray,
    table: InstanceTable,
    grid: RasterGrid,
    schema: LabelSchema,
    assist: dict | None = None,
) -> None:
    _write_band(dst, classes, CLASS_BAND, grid)
    _write_band(dst, instance_map, INSTANCE_BAND, grid)
    describe_labels(dst, schema, grid)  # colour table and class names on band 1; overviews
    dst.set_band_description(CLASS_BAND, "class")
    dst.set_band_description(INSTANCE_BAND, "instance")
    dst.update_tags(**{INSTANCES_TAG: json.dumps(table.to_records(), separators=(",", ":"))})
    if assist:
        write_assist_tag(dst, assist)


def describe_labels(dst: Any, schema: LabelSchema | None, grid: RasterGrid) -> None:
    """Finish a label GeoTIFF open for writing: colour table, class names, mode overviews."""
    dtype = np.dtype(dst.dtypes[0])
    if schema is not None:
        if dtype.itemsize <= 2:
            dst.write_colormap(
                1, {c.id: tuple(c.color) for c in schema.classes if c.id <= np.iinfo(dtype).max}
            )
        dst.update_tags(**{SCHEMA_TAG: json.dumps(schema.to_dict(), separators=(",", ":"))})
        dst.update_tags(1, **{f"CLASS_{c.id}": c.name for c in schema.classes})
    dst.set_band_description(1, "labels")
    factors = overview_factors(grid.height, grid.width)
    if factors:
        dst.build_overviews(factors, Resampling.mode)
        dst.update_tags(ns="rio_overview", resampling="mode")


def write_label_geotiff(
    path: str | os.PathLike[str],
    labels: np.ndarray,
    grid: RasterGrid,
    schema: LabelSchema | None = None,
    cog: bool = False,
    overwrite: bool = False,
    assist: dict | None = None,
    instances: InstanceTable | None = None,
) -> list[Path]:
    """Write labels as a GeoTIFF (or Cloud-Optimized GeoTIFF) on the full scene grid, atomically.

    Parameters
    ----------
    path
        Output ``.tif``.
    labels
        Label array of ``grid.array_shape``: the whole grid, or its window.
    grid
        The scene's grid (size, transform, CRS), with the window ``labels`` cover, if any;
        the file is always the whole grid (outside the window: unlabeled).
    schema
        Class names and colours; painted values it lacks become ``label N``.
    cog
        Write a Cloud-Optimized GeoTIFF (GDAL's COG driver, overviews by ``mode``).
    overwrite
        Replace an existing file.
    assist
        Provenance of assisted labeling, written as the dataset tag :data:`ASSIST_TAG`
        (JSON). Its pixel runs and tile keys index ``labels``; with a window the record
        gains ``"window": [row_offset, col_offset, height, width]``, where that array lies in
        the file's grid (add the offsets to a run's row and column to find it in the file).
    instances
        With a table, ``labels`` is an instance map: the file has the class band (1) and the
        instance band (2), and the table in the :data:`INSTANCES_TAG` tag (see the module).
        Painted ids the table lacks are kept in band 2 (class 0 in band 1), with an
        :class:`InstanceWarning` naming them and the repair.
    """
    path = Path(path)
    labels = np.asarray(labels)
    if assist and grid.region is not None:
        assist = {**assist, "window": list(grid.region)}
    if labels.ndim != 2:
        raise ValueError(f"{path}: a label GeoTIFF holds one 2D band; got {labels.ndim} dimensions")
    expected = grid.array_shape
    if labels.shape != expected:
        raise ValueError(
            f"{path}: labels of shape {labels.shape} do not match the grid ({expected}); "
            "make them with 'New annotation layer for image'"
        )
    if instances is not None:
        return _write_instance_geotiff(
            path, labels, grid, schema, instances, cog, overwrite, assist
        )
    schema = covering_schema(np.unique(labels), schema)
    dtype = label_dtype(labels)
    with open_geotiff(path, grid, dtype, cog=cog, overwrite=overwrite) as dst:
        _write_labels(dst, labels, grid, schema, assist)
    return [path]


def _write_instance_geotiff(
    path: Path,
    instance_map: np.ndarray,
    grid: RasterGrid,
    schema: LabelSchema | None,
    table: InstanceTable,
    cog: bool,
    overwrite: bool,
    assist: dict | None,
) -> list[Path]:
    """The two-band (class, instance) GeoTIFF of an instance map and its table."""
    if instance_map.dtype.kind not in "iu":
        raise ValueError(f"{path}: an instance map holds integer ids, got {instance_map.dtype}")
    largest = max(int(instance_map.max(initial=0)), table.next_id() - 1)
    check_class_ids(instance_map, path)
    warn_untabled(instance_map, table, path.name)
    classes = semantic_map(instance_map, table)
    schema = covering_schema(np.unique(classes), schema)
    dtype = np.promote_types(label_dtype(classes), instance_dtype(largest))
    with open_geotiff(path, grid, dtype, count=2, cog=cog, overwrite=overwrite) as dst:
        _write_instances(dst, classes, instance_map, table, grid, schema, assist)
    return [path]


def warn_untabled(instance_map: np.ndarray, table: InstanceTable, name: str) -> str:
    """Warn (:class:`InstanceWarning`) about painted ids ``table`` lacks; the message, or ''."""
    import warnings

    message = check_instances(instance_map, table).message(name)
    if message:
        warnings.warn(message, InstanceWarning, stacklevel=3)
    return message


EAGER_PIXELS = 1 << 27
"""Label rasters up to this many pixels (128 Mi) are read into memory; larger ones stay lazy."""


class LabelValueError(DomainSegError, ValueError):
    """A label raster holds values that are not class ids; the message says which and what to do."""


def schema_of(path: str | os.PathLike[str]) -> LabelSchema | None:
    """The schema stored in a label GeoTIFF's tags, or ``None`` (damaged or absent)."""
    with rasterio.open(path) as src:
        return schema_or_none(src.tags().get(SCHEMA_TAG), source=f"{path} {SCHEMA_TAG}")


def is_instance_raster(src: Any) -> bool:
    """True for an open two-band integer raster with the :data:`INSTANCES_TAG` tag."""
    return src.count == 2 and np.dtype(src.dtypes[0]).kind in "iu" and INSTANCES_TAG in src.tags()


def label_band(src: Any) -> int:
    """The band an open label raster's labels are read from: 2 (instances) or 1 (classes)."""
    return INSTANCE_BAND if is_instance_raster(src) else 1


def instance_records(src: Any, source: Any = None) -> list[dict] | None:
    """The instance table records of an open instance label raster (``None``: not one).

    Raises
    ------
    LabelValueError
        If the :data:`INSTANCES_TAG` tag is not a valid instance table.
    """
    if not is_instance_raster(src):
        return None
    from napari_domainseg.labels.instances import InstanceError

    text = src.tags()[INSTANCES_TAG]
    try:
        return InstanceTable.from_records(json.loads(text)).to_records()
    except (ValueError, TypeError, InstanceError) as exc:
        where = f"{source}: " if source is not None else ""
        raise LabelValueError(
            f"{where}the {INSTANCES_TAG} tag is not an instance table ({exc}); rewrite it "
            "from the layer (export again) or remove the tag to read band 2 without classes"
        ) from None


def untabled_warning(instance_map: np.ndarray, records: list[dict], name: str) -> list[str]:
    """The warning (a one-item list) when painted instance ids are missing from ``records``."""
    message = check_instances(instance_map, InstanceTable.from_records(records)).message(name)
    return [message] if message else []


def is_label_raster(path: str | os.PathLike[str]) -> bool:
    """True for one-band integer rasters that carry a label schema or a colour table.

    And for instance label rasters (:func:`is_instance_raster`).
    """
    with rasterio.open(path) as src:
        if is_instance_raster(src):
            return True
        if src.count != 1 or np.dtype(src.dtypes[0]).kind not in "iu":
            return False
        if SCHEMA_TAG in src.tags():
            return True
        try:
            src.colormap(1)
        except ValueError:
            return False
        return True


def read_grid(path: str | os.PathLike[str]) -> RasterGrid:
    """The grid of a raster from its header alone (size, transform, CRS); no pixel is read."""
    with rasterio.open(path) as src:
        return RasterGrid.of_dataset(src)


def check_class_ids(
    values: np.ndarray,
    source: str | os.PathLike[str] | None = None,
    where: np.ndarray | None = None,
) -> None:
    """Refuse negative labels (a class id is 0 or positive): name the file and what to do.

    Only signed types are scanned (the pixels in ``where``, default all), so
    unsigned rasters cost nothing.
    """
    if values.dtype.kind != "i" or values.size == 0:
        return
    low = int(values.min(initial=0, where=True if where is None else where))
    if low < 0:
        where = f"{source}: " if source is not None else ""
        raise LabelValueError(
            f"{where}holds negative label {low}; class ids are 0 (unlabeled) or positive. "
            "If it marks missing data, declare it as the raster's nodata value "
            f"(gdal_edit.py -a_nodata {low}) and try again"
        )


def read_labels(src: Any, window: Any = None, source: Any = None, band: int = 1) -> np.ndarray:
    """Band ``band`` (default 1) of an open label raster (in ``window``), nodata as 0.

    Nodata and masked pixels read as 0. ``source`` names the file in the error message
    (``None``: not named).

    Raises
    ------
    LabelValueError
        If a valid pixel holds a negative value.
    """
    values = unlabel_invalid(src, src.read(band, window=window), band, window)
    check_class_ids(values, source)
    return values


class _LabelWindows:
    """Array-like view of a label raster that reads (and unlabels) only requested windows."""

    ndim = 2

    def __init__(self, path: str, shape: tuple[int, int], dtype: np.dtype, band: int = 1) -> None:
        self.path, self.shape, self.dtype, self.band = path, shape, dtype, band
        self._local = threading.local()

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        rows, columns = (k.indices(n) for k, n in zip(key, self.shape, strict=True))
        height, width = rows[1] - rows[0], columns[1] - columns[0]
        if height <= 0 or width <= 0:
            return np.empty((max(height, 0), max(width, 0)), dtype=self.dtype)
        src = getattr(self._local, "src", None)
        if src is None or src.closed:
            src = self._local.src = rasterio.open(self.path)
        window = Window(columns[0], rows[0], width, height)
        return read_labels(src, window, self.path, self.band)


MAX_CHUNKS_PER_SIDE = 256
"""Lazy label arrays have at most this many chunks along a side (dask's graph stays small)."""


def lazy_labels(path: str | os.PathLike[str], chunk: int | None = None, band: int = 1) -> Any:
    """A label raster's band ``band`` as a lazy dask array (nodata and masked pixels read as 0).

    Chunks are ``chunk`` pixels square (default: 512, grown in steps of 512
    so no side has more than :data:`MAX_CHUNKS_PER_SIDE` chunks).
    """
    import dask.array as da

    with rasterio.open(path) as src:
        shape, dtype = (src.height, src.width), np.dtype(src.dtypes[0])
    if chunk is None:
        blocks = math.ceil(max(shape) / MAX_CHUNKS_PER_SIDE / BLOCK)
        chunk = BLOCK * max(1, blocks)
    windows = _LabelWindows(str(path), shape, dtype, band)
    return da.from_array(
        windows, chunks=(chunk, chunk), asarray=True, lock=False, fancy=False,
        meta=np.empty((0, 0), dtype=dtype),
    )  # fmt: skip


def read_label_raster(path: str | os.PathLike[str], lazy: bool | None = None) -> Read:
    """Read a label raster with its grid and schema; nodata and masked pixels read as 0.

    Returns a labels :class:`~napari_domainseg.formats.base.Read`: ``array`` a NumPy array,
    or a lazy dask array for rasters above :data:`EAGER_PIXELS` (read window by window when
    shown or computed); ``geometry`` the grid; ``metadata["nodata"]`` the value the file
    declared, now read as 0 (unlabeled).

    An instance label raster (two bands and the :data:`INSTANCES_TAG` tag) reads as its
    instance map (band 2), with the table's records in ``metadata["instances"]``
    (:meth:`~napari_domainseg.labels.instances.InstanceTable.from_records` restores the
    table) and ``schema`` its classes' schema. Painted ids the table lacks are kept and
    named in ``warnings`` with the repair (checked when the pixels are in memory).

    Parameters
    ----------
    path
        A one-band integer raster.
    lazy
        Keep the pixels on disk (a dask array read window by window). ``None``:
        lazy above :data:`EAGER_PIXELS` pixels, in memory otherwise.

    Raises
    ------
    LabelValueError
        If a valid pixel holds a negative value (checked when pixels are read), or the
        instance tag is damaged.
    """
    with rasterio.open(path) as src:
        grid = RasterGrid.of_dataset(src)
        nodata = src.nodata
        if lazy is None:
            lazy = grid.height * grid.width > EAGER_PIXELS
        band = label_band(src)
        records = instance_records(src, path)
        labels = lazy_labels(path, band=band) if lazy else read_labels(src, None, path, band)
    metadata: dict[str, Any] = {"nodata": nodata}
    told: list[str] = []
    if records is not None:
        metadata["instances"] = records
        if isinstance(labels, np.ndarray):
            told = untabled_warning(labels, records, Path(path).name)
    return Read(
        labels,
        Path(path),
        geometry=grid,
        kind=LABELS,
        name=Path(path).stem,
        schema=schema_of(path),
        metadata=metadata,
        warnings=told,
    )
