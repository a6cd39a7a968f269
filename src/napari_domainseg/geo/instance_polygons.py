"""Instances to polygons and back: one feature per object, touching objects kept apart.

An instance map (values = instance ids) is polygonized on its ids, not on its classes, so two
touching buildings stay two features, and the edge they share is traced once by GDAL and
given to both: the polygons of a map are a *coverage* (no gaps, no overlaps, shared edges
identical). An instance with several 4-connected parts is one MultiPolygon; holes are kept.

Columns: ``instance_id``, ``class_id``, ``class_path`` (the schema's path, ``vehicle/car``;
the class name for flat schemas), ``name`` (the class name), one column per instance
attribute, ``provenance`` and ``area_m2`` (and ``assisted`` for assisted exports). Painted
ids the table lacks are exported all the same (``class_id`` 0, empty name), with an
:class:`~napari_domainseg.geo.label_raster.InstanceWarning` naming them and the repair.

Read back with :func:`read_instance_vectors`: the polygons are burnt by pixel centre onto
the grid on their ``instance_id`` and the table is rebuilt from the columns.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely
from affine import Affine
from rasterio.crs import CRS

from napari_domainseg.geo.grid import RasterGrid
from napari_domainseg.geo.label_raster import InstanceWarning, warn_untabled
from napari_domainseg.geo.suffixes import POLYGON_EXPORTS
from napari_domainseg.geo.vectors import (
    VectorError,
    _driver,
    _polygonizable,
    _polygons_of_shapes,
    areas_m2,
    rasterize_vectors,
    read_vectors,
    write_frame,
)
from napari_domainseg.labels.instances import (
    Instance,
    InstanceTable,
    check_instances,
    instance_dtype,
    plain_value,
)
from napari_domainseg.labels.schema import RESERVED_ATTRIBUTE_NAMES, LabelSchema, covering_schema

INSTANCE_COLUMNS = ("instance_id", "class_id", "class_path", "name", "provenance", "area_m2")
"""The fixed columns of an instance polygon export (attribute columns come between)."""
_NOT_ATTRIBUTES = {*INSTANCE_COLUMNS, *RESERVED_ATTRIBUTE_NAMES}


def polygonize_instances(
    instance_map: np.ndarray,
    table: InstanceTable,
    transform: Affine,
    crs: CRS | str | None = None,
    schema: LabelSchema | None = None,
    min_area: float = 0.0,
    simplify_tolerance: float | None = None,
) -> gpd.GeoDataFrame:
    """One polygon (or MultiPolygon) per instance of ``instance_map``, in instance id order.

    Parameters
    ----------
    instance_map
        Instance ids (0 unlabeled), ids below 2**31.
    table
        Class, attributes and provenance of each id.
    transform, crs
        Pixel-corner transform of the map and its CRS.
    schema
        Class names and paths (classes it lacks are named ``label N``).
    min_area
        Leave out instances smaller than this, in square metres (CRS units without a CRS).
    simplify_tolerance
        Simplify the coverage by this distance (``shapely.coverage_simplify``: neighbours
        keep sharing their edges).

    Returns
    -------
    geopandas.GeoDataFrame
        The columns of the module docstring and ``geometry``, in the map's CRS.
    """
    values = _polygonizable(np.asarray(instance_map))
    shapes = rasterio.features.shapes(values, mask=values != 0, connectivity=4, transform=transform)
    polygons, ids = _polygons_of_shapes(shapes)
    ids, geometries = _by_instance(polygons, ids)
    frame = gpd.GeoDataFrame(
        _columns(ids, table, schema), geometry=gpd.GeoSeries(geometries, crs=crs), crs=crs
    )
    if simplify_tolerance:
        frame["geometry"] = shapely.coverage_simplify(
            frame.geometry.values, simplify_tolerance, simplify_boundary=True
        )
    frame["area_m2"] = areas_m2(frame)
    if min_area > 0:
        frame = frame[frame["area_m2"] >= min_area].reset_index(drop=True)
    return frame


def _by_instance(polygons: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group GDAL's parts by id: a Polygon for one part, a MultiPolygon for several."""
    order = np.argsort(ids, kind="stable")
    ids, polygons = ids[order], polygons[order]
    unique, start, counts = np.unique(ids, return_index=True, return_counts=True)
    geometries = np.array(polygons[start], dtype=object)
    several = counts > 1
    if several.any():
        parts = np.repeat(several, counts)
        _, group = np.unique(ids[parts], return_inverse=True)
        geometries[several] = shapely.multipolygons(polygons[parts], indices=group)
    return unique, geometries


def _columns(ids: np.ndarray, table: InstanceTable, schema: LabelSchema | None) -> dict[str, Any]:
    """The attribute table of the features ``ids`` (untabled ids: class 0, empty names)."""
    known = [table[i] if i in table else None for i in ids.tolist()]
    class_ids = [0 if i is None else i.class_id for i in known]
    full = covering_schema([c for c in set(class_ids) if c], schema)

    def class_path(class_id: int) -> str:
        if not class_id:
            return ""
        if schema is not None and class_id in schema:
            return schema.path(class_id)
        return full[class_id].name

    names = sorted({name for i in known if i is not None for name in i.attributes})
    reserved = sorted(n for n in names if n.casefold() in _NOT_ATTRIBUTES)
    if reserved:
        raise VectorError(
            f"instance attributes {', '.join(reserved)} have the names of export columns; "
            "rename them in the schema"
        )
    columns: dict[str, Any] = {
        "instance_id": ids.astype(np.int64),
        "class_id": np.asarray(class_ids, dtype=np.int64),
        "class_path": [class_path(c) for c in class_ids],
        "name": [full[c].name if c else "" for c in class_ids],
    }
    for name in names:
        columns[name] = _attribute_column(
            [None if i is None else i.attributes.get(name) for i in known]
        )
    columns["provenance"] = ["" if i is None else i.provenance for i in known]
    return columns


def _attribute_column(values: list[Any]) -> pd.Series:
    """A column GDAL stores with its type: bool, integer, real, else text (missing: null)."""
    present = [v for v in values if v is not None]
    complete = len(present) == len(values)
    if present and all(isinstance(v, (bool, np.bool_)) for v in present):
        return pd.Series(values, dtype="bool" if complete else "boolean")
    numbers = [v for v in present if isinstance(v, (int, float, np.number))]
    if present and len(numbers) == len(present) and not any(isinstance(v, bool) for v in present):
        if all(isinstance(v, (int, np.integer)) for v in present):
            return pd.Series(values, dtype="int64" if complete else "Int64")
        return pd.Series([np.nan if v is None else float(v) for v in values], dtype="float64")
    return pd.Series([None if v is None else str(v) for v in values], dtype=object)


def export_instance_polygons(
    path: str | os.PathLike[str],
    instance_map: np.ndarray,
    grid: RasterGrid,
    table: InstanceTable,
    schema: LabelSchema | None = None,
    min_area: float = 0.0,
    simplify_tolerance: float | None = None,
    overwrite: bool = False,
    assisted: np.ndarray | None = None,
) -> list[Path]:
    """Write one feature per instance as GeoJSON, GeoPackage or FlatGeobuf, atomically.

    ``instance_map`` has ``grid.array_shape`` (the grid's window places it). ``assisted``
    (a boolean mask on the same array: pixels an accepted proposal wrote) adds the
    ``assisted`` column, each instance's share of such pixels. GeoPackage and FlatGeobuf
    hold one geometry type per layer: when an instance has several parts, every feature
    is written as a MultiPolygon.
    """
    path = Path(path)
    _driver(path, POLYGON_EXPORTS)  # an unknown extension fails before the work
    instance_map = np.asarray(instance_map)
    if instance_map.shape != grid.array_shape:
        raise ValueError(
            f"{path}: labels of shape {instance_map.shape} do not match the grid "
            f"({grid.array_shape}); make them with 'New annotation layer for image'"
        )
    warn_untabled(instance_map, table, path.name)
    frame = polygonize_instances(
        instance_map, table, grid.array_transform, grid.crs, schema, min_area, simplify_tolerance
    )
    if assisted is not None:
        frame["assisted"] = _assisted_share(frame, instance_map, np.asarray(assisted, bool))
    if path.suffix.lower() in (".geojson", ".json"):  # nullable columns as JSON null
        frame = _nulls_as_none(frame)
    return write_frame(path, frame, overwrite)


def _assisted_share(
    frame: gpd.GeoDataFrame, instance_map: np.ndarray, assisted: np.ndarray
) -> np.ndarray:
    """Share of each instance's pixels that ``assisted`` marks (4 decimals)."""
    if assisted.shape != instance_map.shape:
        raise ValueError(
            f"the assisted-pixel mask is {assisted.shape} and the labels {instance_map.shape}"
        )
    ids, index = np.unique(instance_map, return_inverse=True)
    total = np.bincount(index.ravel(), minlength=len(ids))
    marked = np.bincount(index.ravel(), weights=assisted.ravel(), minlength=len(ids))
    rows = np.searchsorted(ids, frame["instance_id"].to_numpy())
    return np.round(marked[rows] / np.maximum(total[rows], 1), 4)


def _nulls_as_none(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    frame = frame.copy()
    for column in frame.columns:
        if column != frame.geometry.name and isinstance(
            frame[column].dtype, pd.api.extensions.ExtensionDtype
        ):
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def instance_table_of(frame: pd.DataFrame, schema: LabelSchema | None = None) -> InstanceTable:
    """The instance table the columns of an instance polygon export describe.

    Rows with class 0 (painted ids that had no class when exported) are not instances;
    the map keeps their pixels and :func:`~napari_domainseg.labels.instances.check_instances`
    names them. Attribute values take the types of ``schema``'s attribute specs when it has
    them (a GeoPackage reads a boolean column with nulls as 0/1); a missing
    ``provenance`` column reads as ``"imported"``.

    Raises
    ------
    VectorError
        Without an ``instance_id`` or ``class_id`` column.
    """
    missing = [c for c in ("instance_id", "class_id") if c not in frame.columns]
    if missing:
        raise VectorError(
            f"no {' or '.join(missing)} column: not an instance export; the file has "
            f"{', '.join(map(str, frame.columns))} (burn it by class with --attribute)"
        )
    rows = frame[pd.to_numeric(frame["class_id"], errors="coerce").fillna(0) > 0]
    geometry = getattr(frame, "_geometry_column_name", None)
    attributes = [c for c in frame.columns if c not in _NOT_ATTRIBUTES and c != geometry]
    provenance = rows["provenance"].tolist() if "provenance" in rows else None
    values = {name: rows[name].tolist() for name in attributes}
    instances = [
        Instance(
            instance_id,
            class_id,
            {n: plain_value(v[row]) for n, v in values.items() if not _missing(v[row])},
            "imported" if provenance is None or _missing(provenance[row]) else str(provenance[row]),
        )
        for row, (instance_id, class_id) in enumerate(
            zip(
                rows["instance_id"].astype(np.int64).tolist(),
                rows["class_id"].astype(np.int64).tolist(),
                strict=True,
            )
        )
    ]
    table = InstanceTable(tuple(instances))
    return _typed(table, schema)


def _missing(value: Any) -> bool:
    """None, NaN or pandas' NA: a value the file does not have."""
    return value is None or bool(pd.isna(value))


def _typed(table: InstanceTable, schema: LabelSchema | None) -> InstanceTable:
    """Attribute values cast to the types the schema's specs give (bool, int, float, text)."""
    specs_of = getattr(schema, "attribute_specs", None)
    if specs_of is None:
        return table
    from dataclasses import replace

    casts = {"bool": bool, "int": int, "float": float, "text": str, "choice": str}
    instances = []
    for instance in table:
        if schema is None or instance.class_id not in schema:
            instances.append(instance)
            continue
        types = {s.name: casts.get(s.type) for s in specs_of(instance.class_id)}
        attributes: Mapping[str, Any] = {
            k: (types[k](v) if types.get(k) is not None else v)
            for k, v in instance.attributes.items()
        }
        instances.append(replace(instance, attributes=attributes))
    return InstanceTable(tuple(instances))


def read_instance_vectors(
    path: str | os.PathLike[str], grid: RasterGrid, schema: LabelSchema | None = None
) -> tuple[np.ndarray, InstanceTable]:
    """An instance polygon export burnt back onto ``grid``: (instance map, table).

    Pixels take the ``instance_id`` of the polygon their centre lies in (uint16, or uint32
    beyond 65535). Ids burnt that the table lacks are kept, with an
    :class:`~napari_domainseg.geo.label_raster.InstanceWarning` naming them and the repair.

    Raises
    ------
    VectorError
        An unreadable file, no CRS, no polygon, or no instance columns.
    """
    path = Path(path)
    frame = read_vectors(path)
    table = instance_table_of(frame, schema)
    largest = int(pd.to_numeric(frame["instance_id"]).max())
    instance_map = rasterize_vectors(
        frame, grid, attribute="instance_id", dtype=instance_dtype(largest)
    )
    message = check_instances(instance_map, table).message(path.name)
    if message:
        warnings.warn(message, InstanceWarning, stacklevel=2)
    return instance_map, table
