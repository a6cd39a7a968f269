"""npe2 readers for rasters (GeoTIFF, COG, JPEG 2000, VRT, ...) and vector files.

``get_*_reader`` never raises. A raster opens lazily as a multiscale pyramid
in its map coordinates (y = northing, x = easting, pixel centres); a label
raster written by the plugin (or any one-band integer raster with a colour
table) opens as a Labels layer, its nodata and masked pixels as 0 (unlabeled).
A raster georeferenced only by ground control points opens in pixel
coordinates with a warning; the command Layers > Register > "Warp raster by
its ground control points" (:mod:`._gcp_warp`) warps it onto a map grid with
GDAL's GCP transformer (lazily).
A vector file opens as a Shapes layer in the map of an open raster
(reprojected to its CRS when they differ).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._layer_data import LayerData
from napari_domainseg._napari._reading import cannot_open, layers_of
from napari_domainseg._napari._viewer_setup import watch_current_viewer

__all__ = ["get_raster_reader", "get_vector_reader", "read_raster_warped"]

VECTOR_SUFFIXES = (".geojson", ".gpkg", ".shp", ".fgb")


def _single_path(path: str | list[str]) -> str | None:
    if isinstance(path, (list, tuple)):
        return path[0] if len(path) == 1 else None
    return str(path)


def get_raster_reader(path: str | list[str]):
    """Return a reader for one raster file GDAL can open (with a band), else ``None``."""
    try:
        from napari_domainseg import formats

        single = _single_path(path)
        raster = formats.named("raster")
        if single is None or not raster.claims(Path(single)) or not Path(single).is_file():
            return None
        return read_raster if raster.has_bands(Path(single)) else None
    except Exception:  # a reader lookup must never raise
        return None


def read_raster_warped(path: str | list[str]) -> list[LayerData]:
    """Open a GCP-georeferenced raster warped onto a map grid (GDAL's GCP transformer)."""
    return _read_raster(path, gcps="warp")


def read_raster(path: str | list[str]) -> list[LayerData]:
    """Open a raster lazily in map coordinates; label rasters open as Labels."""
    return _read_raster(path, gcps="pixels")


def _read_raster(path: str | list[str], gcps: str) -> list[LayerData]:
    from napari_domainseg import formats
    from napari_domainseg.geo.label_raster import LabelValueError
    from napari_domainseg.geo.scene import RasterOpenError

    single = str(_single_path(path))
    try:
        reads = formats.named("raster").read(Path(single), gcps=gcps)
    except (RasterOpenError, LabelValueError) as exc:
        raise cannot_open(single, exc) from None
    return layers_of(reads)


def get_vector_reader(path: str | list[str]):
    """Return a reader for one vector file (GeoJSON, GeoPackage, Shapefile, FlatGeobuf)."""
    single = _single_path(path)
    if single is None or not single.lower().endswith(VECTOR_SUFFIXES):
        return None
    return read_vector


def vector_polygons(path: str, grid: Any = None) -> tuple[list[np.ndarray], dict, Any, list[str]]:
    """A vector file's polygons as napari Shapes data in world (y, x), and their attributes.

    In the map of ``grid`` (a :class:`~napari_domainseg.geo.grid.RasterGrid`, reprojected to its
    CRS when they differ), or in the file's own CRS when ``grid`` is ``None``. Returns the
    vertex arrays, the attribute columns (one value per array), the file's CRS and what
    reading left out or repaired (one line each).

    Raises
    ------
    VectorError
        A file that cannot be read, holds no polygons, or cannot be placed on ``grid``.
    """
    from napari_domainseg.geo.vectors import VectorError, napari_polygons, read_vectors, to_grid_crs

    with warnings.catch_warnings():  # told once, as notifications, by the reader
        warnings.simplefilter("ignore")
        frame = read_vectors(path)
    original = frame.crs
    if grid is not None:
        frame = to_grid_crs(frame, grid)
    # Map (x, y) -> world (y, x): the world is the map coordinates.
    swap = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    polygons, rows = napari_polygons(frame, swap)
    if not polygons:
        raise VectorError(f"{path}: it holds no polygons")
    features = {
        column: frame[column].to_numpy()[rows]
        for column in frame.columns
        if column != frame.geometry.name and frame[column].dtype.kind in "iufbO"
    }
    return polygons, features, original, list(frame.attrs.get("domainseg_report", []))


def read_vector(path: str | list[str]) -> list[LayerData]:
    """Open vectors as a Shapes layer (holes kept), in their own CRS's map coordinates.

    The viewer's set-up (:mod:`._viewer_setup`) reprojects them into the map of the raster
    open where they land.
    """
    from napari.utils.notifications import show_warning

    from napari_domainseg.geo.vectors import VectorError

    single = str(_single_path(path))
    watch_current_viewer()
    try:
        polygons, features, crs, report = vector_polygons(single)
    except VectorError as exc:
        raise cannot_open(single, exc) from None
    for line in report:
        show_warning(line)
    kwargs = {
        "name": Path(single).stem,
        "shape_type": "polygon",
        "features": features,
        "edge_color": "yellow",
        "face_color": [1.0, 1.0, 0.0, 0.15],
        "edge_width": 0,
        "metadata": state.plugin_metadata(
            {
                "domain": "geo",
                "crs_wkt": crs.to_wkt() if crs is not None else None,
                "source_path": single,
                state.VECTOR_FILE: single,
            }
        ),
    }
    return [(polygons, kwargs, "shapes")]
