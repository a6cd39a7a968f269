"""Labels to polygons and polygons to labels, in the raster's map coordinates.

Polygonize: one feature per connected region of one class (4-connected by
default, so every polygon is a valid OGC polygon), holes kept, properties
``label``, ``name`` and ``area_m2``. Polygon edges follow pixel edges, so
rasterizing the polygons back onto the same grid (a pixel belongs to a
polygon when its centre does) reproduces the labels exactly. Optional:
drop small regions, and simplify the whole coverage at once
(``shapely.coverage_simplify``) so neighbours keep sharing their edges.

Export: GeoJSON as RFC 7946 (EPSG:4326 longitude/latitude, counter-clockwise
exteriors, 7 decimals); GeoPackage and FlatGeobuf in the raster's CRS.

Import: vector files (GeoJSON, GeoPackage, Shapefile, FlatGeobuf) are
reprojected to the raster's CRS (densified first, so long edges follow the
projection) and burnt onto its grid by pixel centre.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable
from itertools import chain, islice
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import rasterio.features
import shapely
from affine import Affine
from rasterio.crs import CRS

from napari_domainseg.atomic import atomic_write
from napari_domainseg.errors import DomainSegError
from napari_domainseg.geo.grid import RasterGrid
from napari_domainseg.geo.label_raster import check_class_ids
from napari_domainseg.geo.suffixes import POLYGON_EXPORTS
from napari_domainseg.labels.schema import LabelSchema, covering_schema

VECTOR_EXTENSIONS = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GPKG",
    ".fgb": "FlatGeobuf",
    ".shp": "ESRI Shapefile",
}
_SHAPES_DTYPES = {"int16", "int32", "uint8", "uint16", "float32"}


class VectorError(DomainSegError, ValueError):
    """A vector file cannot be used as asked; the message says why and what to do."""


class VectorWarning(UserWarning):
    """Something in a vector file was repaired or left out; the message says what and how many."""


def _polygonizable(labels: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``labels`` in a dtype GDAL's polygonize accepts (uint32/int64 after a range check).

    Raises
    ------
    LabelValueError
        If a pixel polygonized (in ``mask``, else non-zero) holds a negative value.
    """
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    if labels.dtype.kind == "i" and labels.size:
        check_class_ids(labels, where=mask)
    if labels.dtype.name in _SHAPES_DTYPES:
        return labels
    high = int(labels.max(initial=0))
    if high >= 2**31:
        raise ValueError(f"label values up to {high} do not fit 32-bit integers")
    return labels.astype(np.int32)


def polygonize(
    labels: np.ndarray,
    transform: Affine,
    crs: CRS | str | None = None,
    schema: LabelSchema | None = None,
    connectivity: int = 4,
    mask: np.ndarray | None = None,
    min_area: float = 0.0,
    simplify_tolerance: float | None = None,
) -> gpd.GeoDataFrame:
    """Polygons of every labelled region.

    Parameters
    ----------
    labels
        Label array (rows, columns); 0 is unlabeled unless ``mask`` says otherwise.
    transform
        GDAL/rasterio transform of ``labels`` (pixel corners).
    crs
        CRS of the transform (a rasterio CRS, WKT, or anything pyproj reads).
    schema
        Class names (values it lacks are named ``label N``).
    connectivity
        4 (default: valid OGC polygons) or 8.
    mask
        Pixels to polygonize (default: ``labels != 0``); pixels outside it
        (nodata, masked) are unlabeled whatever their value.
    min_area
        Drop regions smaller than this, in square metres (CRS units without a CRS).
    simplify_tolerance
        Simplify the coverage by this distance (CRS units), keeping shared edges.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``label``, ``name``, ``area_m2``, ``geometry``, in the raster's CRS.
    """
    labels = np.asarray(labels)
    if mask is not None:
        mask = np.logical_and(mask, labels != 0)  # 0 stays unlabeled inside the mask too
    values = _polygonizable(labels, mask)
    if mask is None:
        mask = values != 0
    polygons, classes = _polygons_of_shapes(
        rasterio.features.shapes(values, mask=mask, connectivity=connectivity, transform=transform)
    )
    frame = gpd.GeoDataFrame(
        {"label": classes},
        geometry=gpd.GeoSeries(polygons, crs=crs),
        crs=crs,
    )
    if simplify_tolerance:
        frame["geometry"] = shapely.coverage_simplify(
            frame.geometry.values, simplify_tolerance, simplify_boundary=True
        )
    frame["area_m2"] = areas_m2(frame)
    if min_area > 0:
        frame = frame[frame["area_m2"] >= min_area].reset_index(drop=True)
    full = covering_schema(frame["label"].unique(), schema)
    names = {c.id: c.name for c in full.classes}
    frame.insert(1, "name", [names[v] for v in frame["label"]])
    return frame


def _polygons_of_shapes(
    shapes: Iterable[tuple[dict, float]], batch: int = 10_000
) -> tuple[np.ndarray, np.ndarray]:
    """Shapely polygons from rasterio's GeoJSON-like shapes, built in a few vectorized calls.

    Building each polygon from its lists of coordinate tuples costs as much as
    GDAL's polygonize itself; flattening every ring into one array and
    letting shapely assemble rings and polygons by index costs a sixth of that.
    Shapes are taken ``batch`` at a time, so the coordinate tuples of only one
    batch are alive at once.
    """
    shapes = iter(shapes)
    polygons, classes = [], []
    while True:
        chunk = list(islice(shapes, batch))
        if not chunk:
            break
        polygons.append(_assemble([geometry["coordinates"] for geometry, _ in chunk]))
        classes.append(np.fromiter((value for _, value in chunk), np.int64, count=len(chunk)))
    if not polygons:
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    return np.concatenate(polygons), np.concatenate(classes)


def _assemble(polygon_rings: list[list]) -> np.ndarray:
    """Polygons from their rings (lists of coordinate tuples, shell first)."""
    rings_per_polygon = np.fromiter((len(r) for r in polygon_rings), np.int64)
    rings = [ring for rings in polygon_rings for ring in rings]
    ring_sizes = np.fromiter((len(r) for r in rings), np.int64, count=len(rings))
    flat = chain.from_iterable(chain.from_iterable(rings))
    coordinates = np.fromiter(flat, np.float64, count=2 * int(ring_sizes.sum())).reshape(-1, 2)
    linear_rings = shapely.linearrings(
        coordinates, indices=np.repeat(np.arange(len(rings)), ring_sizes)
    )
    polygon_of_ring = np.repeat(np.arange(len(polygon_rings)), rings_per_polygon)
    return shapely.polygons(linear_rings, indices=polygon_of_ring)  # first ring: shell


def areas_m2(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Area of each geometry in square metres (geodesic for geographic CRSs)."""
    if frame.crs is None:
        return frame.geometry.area.to_numpy()
    crs = pyproj.CRS(frame.crs)
    if crs.is_geographic:
        geod = crs.get_geod() or pyproj.Geod(ellps="WGS84")
        return np.array([abs(geod.geometry_area_perimeter(g)[0]) for g in frame.geometry])
    factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return frame.geometry.area.to_numpy() * factor**2


def export_polygons(
    path: str | os.PathLike[str],
    labels: np.ndarray,
    grid: RasterGrid,
    schema: LabelSchema | None = None,
    connectivity: int = 4,
    min_area: float = 0.0,
    simplify_tolerance: float | None = None,
    overwrite: bool = False,
    assisted: np.ndarray | None = None,
) -> list[Path]:
    """Polygonize labels and write them as GeoJSON, GeoPackage or FlatGeobuf, atomically.

    ``labels`` have ``grid.array_shape``; the grid's window places labels that cover part
    of it. ``assisted`` (a boolean mask on the labels' grid: pixels an
    accepted assistant proposal wrote) adds the ``assisted`` column, each polygon's share
    of such pixels (:mod:`napari_domainseg.geo.assisted_polygons`).
    """
    path = Path(path)
    _driver(path, POLYGON_EXPORTS)  # an unknown extension fails before the work
    labels = np.asarray(labels)
    if labels.shape != grid.array_shape:
        raise ValueError(
            f"{path}: labels of shape {labels.shape} do not match the grid "
            f"({grid.array_shape}); make them with 'New annotation layer for image'"
        )
    transform = grid.array_transform
    frame = polygonize(
        labels, transform, grid.crs, schema, connectivity, None, min_area, simplify_tolerance
    )
    if assisted is not None:  # scikit-image (and scipy) only for assisted exports
        from napari_domainseg.geo.assisted_polygons import ASSISTED_COLUMN, assisted_share

        share = assisted_share(frame, np.asarray(labels), assisted, transform, connectivity)
        frame.insert(frame.columns.get_loc("area_m2") + 1, ASSISTED_COLUMN, share)
    return write_frame(path, frame, overwrite)


def write_frame(
    path: str | os.PathLike[str], frame: gpd.GeoDataFrame, overwrite: bool = False
) -> list[Path]:
    """Write polygons as GeoJSON (RFC 7946), GeoPackage or FlatGeobuf by extension, atomically."""
    path = Path(path)
    driver = _driver(path, POLYGON_EXPORTS)
    if driver == "GeoJSON" and frame.crs is None:
        raise VectorError(
            f"{path}: GeoJSON (RFC 7946) is longitude/latitude, and these labels have no CRS; "
            "export GeoPackage or FlatGeobuf, or give the raster a CRS"
        )
    with atomic_write(path, overwrite=overwrite) as tmp:
        if driver == "GeoJSON":
            write_rfc7946(tmp, frame)
        else:
            frame.to_file(tmp, driver=driver, engine="pyogrio", layer=path.stem)
    return [path]


def write_rfc7946(path: str | os.PathLike[str], frame: gpd.GeoDataFrame) -> None:
    """Write ``frame`` as RFC 7946 GeoJSON: EPSG:4326 lon/lat, CCW exteriors, 7 decimals.

    GEOS writes the geometries (vectorized) and the features are assembled
    as text; GDAL's GeoJSON driver takes about ten times longer on large
    label exports, and gives the same document.
    """
    frame = frame.to_crs(4326)
    geometries = shapely.orient_polygons(frame.geometry.values, exterior_cw=False)
    geometries = shapely.transform(geometries, lambda xy: np.round(xy, 7))
    texts = shapely.to_geojson(geometries)
    columns = [c for c in frame.columns if c != frame.geometry.name]
    records = frame[columns].to_dict("records")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write('{"type":"FeatureCollection","features":[\n')
        for index, (record, geometry) in enumerate(zip(records, texts, strict=True)):
            properties = json.dumps({k: _json_value(v) for k, v in record.items()}, default=str)
            separator = ",\n" if index else ""
            handle.write(
                f'{separator}{{"type":"Feature","properties":{properties},"geometry":{geometry}}}'
            )
        handle.write("\n]}\n")


def _json_value(value: object) -> object:
    """A property value JSON can hold: NaN and infinities become null; floats get 3 decimals."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else round(float(value), 3)
    return value


def _driver(path: Path, known: dict[str, str]) -> str:
    suffix = path.suffix.lower()
    if suffix not in known:
        raise VectorError(f"{path}: unknown vector extension; use one of {', '.join(known)}")
    return known[suffix]


def read_vectors(path: str | os.PathLike[str], warn: bool = True) -> gpd.GeoDataFrame:
    """Read a vector file's polygons (GeoJSON, GeoPackage, Shapefile, FlatGeobuf).

    Only polygonal geometries become labels: points, lines and empty
    geometries are left out, and invalid polygons (self-intersecting rings,
    ...) are repaired with ``shapely.make_valid``, keeping their polygonal
    parts. What was left out or repaired is kept in
    ``frame.attrs["domainseg_report"]`` (counts and feature ids, one line
    each) and, with ``warn``, told with a :class:`VectorWarning`. The frame's
    index is the file's feature id (FID).

    Raises
    ------
    VectorError
        If the file cannot be read, has no CRS, or holds no polygon.
    """
    path = Path(path)
    try:
        frame = gpd.read_file(path, engine="pyogrio", fid_as_index=True)
    except Exception as exc:
        raise VectorError(f"{path} is not a vector file GDAL can read: {exc}") from None
    if frame.crs is None:
        raise VectorError(
            f"{path} has no coordinate reference system, so it cannot be placed on a map; "
            "add one (a .prj beside a shapefile, or 'crs' in GeoPackage) and try again"
        )
    frame, report = polygonal_features(frame)
    if frame.empty:
        found = f" ({'; '.join(report)})" if report else ""
        raise VectorError(f"{path} holds no polygons to burn or show{found}")
    for line in report if warn else []:
        warnings.warn(f"{path.name}: {line}", VectorWarning, stacklevel=2)
    frame.attrs["domainseg_report"] = [f"{path.name}: {line}" for line in report]
    return frame


_POINTS, _LINES, _POLYGONS, _COLLECTION = (0, 4), (1, 2, 5), (3, 6), 7


def polygonal_features(frame: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, list[str]]:
    """The polygonal features of ``frame``, invalid ones repaired; and what was done, in words.

    Points, lines and empty geometries are dropped; a geometry collection
    keeps its polygons; an invalid polygon is replaced by the polygonal part
    of ``shapely.make_valid`` (a bow-tie becomes its two triangles), and is
    dropped when nothing with an area remains.
    """
    geometries = np.asarray(frame.geometry.values, dtype=object)
    types = shapely.get_type_id(geometries)
    missing = shapely.is_missing(geometries) | shapely.is_empty(geometries)
    points = np.isin(types, _POINTS) & ~missing
    lines = np.isin(types, _LINES) & ~missing
    keep = np.isin(types, (*_POLYGONS, _COLLECTION)) & ~missing
    fixed = np.array(geometries, dtype=object)
    invalid = keep & ~shapely.is_valid(geometries)
    collections = keep & (types == _COLLECTION)
    redo = invalid | collections
    if redo.any():
        repaired = shapely.make_valid(geometries[invalid]) if invalid.any() else None
        if repaired is not None:
            fixed[invalid] = repaired
        fixed[redo] = [_polygonal_part(g) for g in fixed[redo]]
    collapsed = redo & shapely.is_empty(fixed)
    keep &= ~collapsed
    report = []
    left_out = [
        (points.sum(), "point"), (lines.sum(), "line"), (missing.sum(), "empty geometry"),
        ((collections & collapsed).sum(), "collection without polygons"),
    ]  # fmt: skip
    dropped = [_count(n, what) for n, what in left_out if n]
    if dropped:
        report.append(f"left out {', '.join(dropped)} (only polygons become labels)")
    if invalid.any():
        ids = _feature_ids(frame.index[invalid])
        reasons = sorted({shapely.is_valid_reason(g).split("[")[0] for g in geometries[invalid]})
        report.append(
            f"repaired {_count(int(invalid.sum()), 'invalid polygon')} with shapely.make_valid, "
            f"keeping their polygonal parts ({'; '.join(reasons)}; feature id {ids})"
        )
        gone = invalid & collapsed
        if gone.any():
            report.append(
                f"left out {_count(int(gone.sum()), 'invalid polygon')} with no area once "
                f"repaired (feature id {_feature_ids(frame.index[gone])})"
            )
    result = frame.loc[keep].copy()
    result[frame.geometry.name] = gpd.GeoSeries(fixed[keep], index=result.index, crs=frame.crs)
    return result, report


def _polygonal_part(geometry: shapely.Geometry) -> shapely.Geometry:
    """The polygons of a geometry (a MultiPolygon, a Polygon, or an empty polygon)."""
    if geometry is None:
        return shapely.Polygon()
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    parts = [
        part
        for part in shapely.get_parts(geometry)
        if part.geom_type in ("Polygon", "MultiPolygon") and not part.is_empty
    ]
    if not parts:
        return shapely.Polygon()
    merged = shapely.union_all(parts)
    return merged if merged.geom_type in ("Polygon", "MultiPolygon") else _polygonal_part(merged)


def _count(number: int, what: str) -> str:
    plural = "" if number == 1 else ("ies" if what.endswith("y") else "s")
    return f"{number} {what[:-1] if plural == 'ies' else what}{plural}"


def _feature_ids(index: Iterable, shown: int = 10) -> str:
    ids = [str(i) for i in index]
    more = f", ... ({len(ids) - shown} more)" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more


def ensure_polygonal(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` with only valid polygonal geometries (see :func:`polygonal_features`).

    For frames that did not come from :func:`read_vectors` (or were
    reprojected since): what is dropped or repaired is told with a
    :class:`VectorWarning`. Cheap when everything is already valid.
    """
    geometries = frame.geometry.values
    types = shapely.get_type_id(geometries)
    if np.isin(types, _POLYGONS).all() and shapely.is_valid(geometries).all():
        return frame
    cleaned, report = polygonal_features(frame)
    for line in report:
        warnings.warn(line, VectorWarning, stacklevel=3)
    return cleaned


def to_grid_crs(frame: gpd.GeoDataFrame, grid: RasterGrid) -> gpd.GeoDataFrame:
    """Reproject ``frame`` to the grid's CRS, densifying edges to a pixel's length first."""
    if grid.crs is None:
        raise VectorError("the raster has no CRS, so vectors cannot be placed on it")
    target = pyproj.CRS.from_user_input(grid.crs)
    if pyproj.CRS(frame.crs).equals(target):
        return frame
    # A pixel of the grid, expressed in the vectors' CRS units, bounds the segment length.
    extent = float(np.abs(frame.total_bounds).max())
    step = grid.pixel_size
    transformer = pyproj.Transformer.from_crs(target, frame.crs, always_xy=True)
    x0, y0 = grid.transform * (grid.width / 2, grid.height / 2)
    xa, ya = transformer.transform(x0, y0)
    xb, yb = transformer.transform(x0 + step, y0)
    segment = max(math.hypot(xb - xa, yb - ya), 1e-12 * max(1.0, extent))
    densified = frame.copy()
    densified["geometry"] = shapely.segmentize(frame.geometry.values, segment)
    return densified.to_crs(target)


def rasterize_vectors(
    frame: gpd.GeoDataFrame,
    grid: RasterGrid,
    attribute: str | None = None,
    schema: LabelSchema | None = None,
    default: int = 1,
    dtype: np.dtype | type = np.uint8,
) -> np.ndarray:
    """Burn polygons onto the grid: a pixel takes a polygon's value when its centre is inside.

    Invalid polygons are repaired first (:func:`ensure_polygonal`), so every
    format burns the same pixels.

    Parameters
    ----------
    frame
        Polygons in any CRS (reprojected to the grid's).
    grid
        The target raster grid.
    attribute
        Column holding the value: integers are burnt as they are; text is
        looked up among the schema's class names. ``None``: ``default`` for all.
    schema
        Class names for text attributes.

    Raises
    ------
    VectorError
        If nothing lies on the raster, the attribute is missing, or a class
        name is not in the schema.
    """
    check_in_memory(grid, dtype)
    frame = ensure_polygonal(to_grid_crs(frame, grid))
    west, south, east, north = rasterio.transform.array_bounds(
        grid.height, grid.width, grid.transform
    )
    if not frame.intersects(shapely.box(west, south, east, north)).any():
        raise VectorError(
            f"none of the {len(frame)} shapes overlaps the raster (raster CRS: "
            f"{pyproj.CRS(frame.crs).name}); is it the right file, or is its CRS wrong?"
        )
    values = _burn_values(frame, attribute, schema, default)
    check_burn_values(values, dtype)
    shapes = [
        (geometry, int(value))
        for geometry, value in zip(frame.geometry, values, strict=True)
        if geometry is not None and not geometry.is_empty
    ]
    return rasterio.features.rasterize(
        shapes,
        out_shape=(grid.height, grid.width),
        transform=grid.transform,
        fill=0,
        all_touched=False,
        dtype=np.dtype(dtype).name,
    )


IN_MEMORY_BYTES = 1 << 31
"""Largest label array :func:`rasterize_vectors` makes in memory (2 GiB)."""


def check_in_memory(grid: RasterGrid, dtype: np.dtype | type) -> None:
    """Refuse to burn a grid whose labels would not fit in memory, before allocating anything."""
    size = grid.height * grid.width * np.dtype(dtype).itemsize
    if size > IN_MEMORY_BYTES:
        raise VectorError(
            f"the reference grid is {grid.height} x {grid.width} pixels ({size / 2**30:.0f} GiB "
            "of labels), too large to burn in memory; burn it strip by strip straight into the "
            "GeoTIFF ('domainseg rasterize --tiled ROWS')"
        )


def check_burn_values(values: list[int], dtype: np.dtype | type) -> None:
    """Refuse label values the output type cannot hold (instead of wrapping them silently)."""
    info = np.iinfo(np.dtype(dtype))
    bad = [v for v in values if v < 0 or v > info.max]
    if bad:
        raise VectorError(
            f"attribute values {sorted(set(bad))[:5]} do not fit {np.dtype(dtype).name} labels "
            f"(0 to {info.max}); use a schema with larger ids or other values"
        )


def _burn_values(
    frame: gpd.GeoDataFrame, attribute: str | None, schema: LabelSchema | None, default: int
) -> list[int]:
    if attribute is None:
        return [default] * len(frame)
    if attribute not in frame.columns:
        raise VectorError(
            f"no attribute {attribute!r}; the file has: {', '.join(map(str, frame.columns))}"
        )
    column = frame[attribute]
    if pd.api.types.is_integer_dtype(column.dtype):
        return [int(v) for v in column]
    if pd.api.types.is_float_dtype(column.dtype) and np.all(np.mod(column.dropna(), 1) == 0):
        return [int(v) if np.isfinite(v) else 0 for v in column]
    if schema is None:
        raise VectorError(
            f"attribute {attribute!r} holds text: choose a schema to map names to ids"
        )
    ids = {c.name.lower(): c.id for c in schema.classes}
    unknown = sorted({str(v) for v in column if str(v).lower() not in ids})
    if unknown:
        raise VectorError(
            f"{len(unknown)} class names are not in schema {schema.name!r}: "
            + ", ".join(unknown[:5])
        )
    return [ids[str(v).lower()] for v in column]


def napari_polygons(
    frame: gpd.GeoDataFrame, world_from_map: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray]:
    """Polygons as napari Shapes vertex arrays in world (y, x), holes kept.

    napari (0.6+) draws a polygon with holes from one vertex array in which
    every ring is closed, and drops the edges walked twice: each hole is
    reached from the exterior's first vertex and left the same way back.
    ``world_from_map`` maps map ``(x, y, 1)`` to world ``(y, x, 1)``.

    Returns the vertex arrays and, for each, the row of ``frame`` it comes from
    (a multipolygon gives one array per part).
    """
    result, rows = [], []
    geometries = np.array(frame.geometry.values, dtype=object)
    invalid = ~shapely.is_valid(geometries) & ~shapely.is_missing(geometries)
    if invalid.any():  # shown as the repaired polygons burn, never as a crossing ring
        geometries[invalid] = [_polygonal_part(g) for g in shapely.make_valid(geometries[invalid])]
    for row, geometry in enumerate(geometries):
        if geometry is None or geometry.is_empty:
            continue
        parts = getattr(geometry, "geoms", [geometry])
        for polygon in parts:
            if polygon.geom_type != "Polygon":
                continue
            exterior = np.asarray(polygon.exterior.coords)
            rings = [exterior]
            anchor = exterior[:1]
            for interior in polygon.interiors:
                rings += [np.asarray(interior.coords), anchor]
            xy = np.concatenate(rings)
            world = np.column_stack([xy, np.ones(len(xy))]) @ np.asarray(world_from_map).T
            result.append(world[:, :2])
            rows.append(row)
    return result, np.asarray(rows, dtype=int)
