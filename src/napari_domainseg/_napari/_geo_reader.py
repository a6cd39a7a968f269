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

from napari_domainseg._napari._autosave import offer_recovery
from napari_domainseg._napari._layer_data import (
    METADATA_KEY,
    LayerData,
    scene_labels_layer_data,
    scene_layer_data,
)
from napari_domainseg._napari._map_cursor import show_map_coordinates
from napari_domainseg._napari._orientation import follow_in_current_viewer
from napari_domainseg.geo.suffixes import RASTER_SUFFIXES

__all__ = ["get_raster_reader", "get_vector_reader", "read_raster_warped"]

VECTOR_SUFFIXES = (".geojson", ".gpkg", ".shp", ".fgb")


def _single_path(path: str | list[str]) -> str | None:
    if isinstance(path, (list, tuple)):
        return path[0] if len(path) == 1 else None
    return str(path)


def get_raster_reader(path: str | list[str]):
    """Return a reader for one raster file GDAL can open, else ``None``."""
    try:
        single = _single_path(path)
        if single is None or not single.lower().endswith(RASTER_SUFFIXES):
            return None
        if not Path(single).is_file():
            return None
        import rasterio

        with rasterio.open(single) as src:
            if src.count == 0:
                return None
        return read_raster
    except Exception:  # a reader lookup must never raise
        return None


def read_raster_warped(path: str | list[str]) -> list[LayerData]:
    """Open a GCP-georeferenced raster warped onto a map grid (GDAL's GCP transformer)."""
    return _read_raster(path, gcps="warp")


def read_raster(path: str | list[str]) -> list[LayerData]:
    """Open a raster lazily in map coordinates; label rasters open as Labels."""
    return _read_raster(path, gcps="pixels")


def _read_raster(path: str | list[str], gcps: str) -> list[LayerData]:
    from napari.utils.notifications import show_warning

    from napari_domainseg.geo.label_raster import (
        LabelValueError,
        is_label_raster,
        read_label_raster,
        read_labels,
        schema_of,
    )
    from napari_domainseg.geo.scene import RasterOpenError, open_scene

    single = str(_single_path(path))
    try:
        scene = open_scene(single, gcps=gcps)
    except RasterOpenError as exc:
        raise ValueError(f"Cannot open {single}: {exc}") from None
    for warning in scene.warnings:
        show_warning(warning)
    name = Path(single).stem
    follow_in_current_viewer()
    show_map_coordinates()
    if is_label_raster(single):
        try:
            if scene.warp is not None:  # the labels on the warped grid
                with scene.open() as src:
                    labels, schema = read_labels(src, source=single), schema_of(single)
            else:
                read = read_label_raster(single)
                labels, schema = read.labels, read.schema
        except LabelValueError as exc:
            raise ValueError(f"Cannot open {single}: {exc}") from None
        if not isinstance(labels, np.ndarray):
            show_warning(
                f"{Path(single).name}: {scene.height} x {scene.width} labels are too large to "
                "hold in memory; shown read-only, read window by window. Paint a region instead "
                "('New annotation layer for region')."
            )
        return _mark_warped([scene_labels_layer_data(labels, scene, name, schema)], scene)
    layers = _mark_warped(scene_layer_data(scene, name), scene)
    offer_recovery(layers[0])
    return layers


def _mark_warped(layers: list[LayerData], scene: Any) -> list[LayerData]:
    """Record ``"gcps": "warp"`` in warped layers' metadata (to reopen them warped)."""
    if scene.warp is not None:
        for _, kwargs, _ in layers:
            kwargs["metadata"][METADATA_KEY]["gcps"] = "warp"
    return layers


def get_vector_reader(path: str | list[str]):
    """Return a reader for one vector file (GeoJSON, GeoPackage, Shapefile, FlatGeobuf)."""
    single = _single_path(path)
    if single is None or not single.lower().endswith(VECTOR_SUFFIXES):
        return None
    return read_vector


def _open_raster_layer() -> Any | None:
    import napari

    viewer = napari.current_viewer()
    if viewer is None:
        return None
    layers = [
        layer
        for layer in viewer.layers
        if layer.metadata.get(METADATA_KEY, {}).get("domain") == "geo"
        and layer.metadata[METADATA_KEY].get("crs_wkt")
    ]
    active = viewer.layers.selection.active
    if active in layers:
        return active
    return layers[-1] if layers else None


def read_vector(path: str | list[str]) -> list[LayerData]:
    """Open vectors as a Shapes layer in the map of the open raster (holes kept)."""
    from napari.utils.notifications import show_info, show_warning

    from napari_domainseg.geo.label_raster import Grid
    from napari_domainseg.geo.vectors import VectorError, napari_polygons, read_vectors, to_grid_crs

    single = str(_single_path(path))
    try:
        with warnings.catch_warnings():  # told once, as notifications, below
            warnings.simplefilter("ignore")
            frame = read_vectors(single)
        for line in frame.attrs.get("domainseg_report", []):
            show_warning(line)
        raster = _open_raster_layer()
        if raster is None:
            raise VectorError(
                f"open a raster first: vectors are shown in a raster's map, and this file is in "
                f"{frame.crs.to_string()}"
            )
        entry = raster.metadata[METADATA_KEY]
        grid = Grid.from_metadata(entry)
        original_crs = frame.crs
        frame = to_grid_crs(frame, grid)
    except VectorError as exc:
        raise ValueError(f"Cannot open {single}: {exc}") from None
    if not frame.crs.equals(original_crs):
        show_info(
            f"{Path(single).name}: reprojected from {original_crs.to_string()} to the raster's CRS."
        )
    # Map (x, y) -> world (y, x): the world is the raster's map coordinates.
    swap = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    polygons, rows = napari_polygons(frame, swap)
    if not polygons:
        raise ValueError(f"Cannot open {single}: it holds no polygons")
    features = {
        column: frame[column].to_numpy()[rows]
        for column in frame.columns
        if column != frame.geometry.name and frame[column].dtype.kind in "iufbO"
    }
    kwargs = {
        "name": Path(single).stem,
        "shape_type": "polygon",
        "features": features,
        "edge_color": "yellow",
        "face_color": [1.0, 1.0, 0.0, 0.15],
        "edge_width": 0,
        "metadata": {
            METADATA_KEY: {
                "domain": "geo",
                "crs_wkt": grid.crs_wkt,
                "source_path": single,
            }
        },
    }
    return [(polygons, kwargs, "shapes")]
