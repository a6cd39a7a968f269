"""The one place that reads and writes the plugin's state on napari layers.

A layer the plugin made carries ``layer.metadata["domainseg"]``: the layer's geometry as a
typed, immutable value (:class:`~napari_domainseg.medical.volume_geometry.VolumeGeometry`
or :class:`~napari_domainseg.geo.grid.RasterGrid`, under ``"geometry"``), and descriptive
entries (domain, schema, band, source path, nodata, assist provenance, ...). No other module
touches that dict: they call the functions here, so a renamed entry breaks here, loudly,
and nowhere else (``tests/napari/test_layer_state.py`` checks that no other module does).

A *source* below is a live layer (anything with ``.metadata``), the attributes dict napari
passes to writers, or the keyword arguments of layer data being built (both with a
``"metadata"`` entry).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from napari_domainseg.geo.grid import RasterGrid
    from napari_domainseg.labels.schema import LabelSchema
    from napari_domainseg.medical.volume_geometry import VolumeGeometry

    Geometry = VolumeGeometry | RasterGrid

from napari_domainseg.formats.dicom_seg import (
    OPENED_FOR_SEG,
    SEG_FILE,
    SEG_INDEX,
    SEG_SERIES,
)

PLUGIN_KEY = "domainseg"
"""Key of the plugin's own entry in ``layer.metadata``."""
GEOMETRY = "geometry"
SCHEMA = "schema"
ASSIST = "assist"
VECTOR_FILE = "vector_file"
"""A Shapes layer read from a vector file (reprojected into an open raster's map)."""
READER_MARKS = frozenset(
    {SEG_FILE, SEG_SERIES, SEG_INDEX, OPENED_FOR_SEG, VECTOR_FILE, "instance_layer"}
)
"""Entries about one layer only, never inherited by a layer made from it: what the viewer set-up
does with a layer a reader made, and whether its values are instance ids."""


# --------------------------------------------------------------------------- the entry


def _metadata(source: Any) -> Mapping[str, Any]:
    if hasattr(source, "metadata"):
        return source.metadata
    if isinstance(source, Mapping):
        return source.get("metadata") or {}
    return {}


def _entry(source: Any) -> Mapping[str, Any]:
    entry = _metadata(source).get(PLUGIN_KEY)
    return entry if isinstance(entry, Mapping) else {}


def _writable_entry(layer: Any) -> dict[str, Any]:
    """The plugin entry of a live layer (or layer kwargs), created when missing."""
    metadata = layer.metadata if hasattr(layer, "metadata") else layer.setdefault("metadata", {})
    return metadata.setdefault(PLUGIN_KEY, {})


def is_plugin_layer(source: Any) -> bool:
    """True for a layer the plugin made or read (it carries the plugin entry)."""
    return PLUGIN_KEY in _metadata(source)


def plugin_metadata(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The ``metadata=`` keyword of a new layer carrying the plugin ``entry``."""
    return {PLUGIN_KEY: dict(entry)}


def info(source: Any) -> dict[str, Any]:
    """A copy of the descriptive entries (everything but the geometry) of ``source``.

    What core exporters take as ``image_metadata``: modality, rescale, patient data (when
    shown), resampling and geometry-unknown records, the assist provenance, ...
    """
    return {k: v for k, v in _entry(source).items() if k != GEOMETRY}


def inherited_info(source: Any) -> dict[str, Any]:
    """The descriptive entries a layer made from ``source`` starts from (no reader marks)."""
    return {k: v for k, v in info(source).items() if k not in READER_MARKS}


def get(source: Any, name: str, default: Any = None) -> Any:
    """One descriptive entry of ``source`` (e.g. ``"modality"``, ``"nodata"``), or ``default``."""
    if name == GEOMETRY:
        raise KeyError("the geometry is read with geometry_of(), not by key")
    return _entry(source).get(name, default)


def has(source: Any, name: str) -> bool:
    """True when ``source`` carries the descriptive entry ``name``."""
    return name in _entry(source)


def update(layer: Any, **entries: Any) -> None:
    """Set descriptive entries of a live layer (or of layer kwargs being built)."""
    if GEOMETRY in entries:
        raise KeyError("set the geometry with set_geometry()")
    _writable_entry(layer).update(entries)


def remove(layer: Any, name: str) -> None:
    """Drop one descriptive entry of a live layer, if present."""
    _writable_entry(layer).pop(name, None)


# --------------------------------------------------------------------------- geometry


def _is_raster_grid(value: Any) -> bool:
    """True for a :class:`RasterGrid`, without importing the raster stack to find out.

    Medical layers must not load rasterio: if :mod:`napari_domainseg.geo.grid` was never
    imported, ``value`` cannot be one.
    """
    module = sys.modules.get("napari_domainseg.geo.grid")
    return module is not None and isinstance(value, module.RasterGrid)


def geometry_of(source: Any) -> Geometry | None:
    """The layer's geometry (a volume's or a raster grid's), or ``None`` for a layer without.

    A geometry given as its dict form (a restored autosave, a saved project) is turned back
    into the value.
    """
    from napari_domainseg.medical.volume_geometry import VolumeGeometry

    value = _entry(source).get(GEOMETRY)
    if value is None or isinstance(value, VolumeGeometry) or _is_raster_grid(value):
        return value
    if isinstance(value, Mapping):
        if value.get("kind") == "raster_grid":
            from napari_domainseg.geo.grid import RasterGrid

            return RasterGrid.from_dict(value)
        return VolumeGeometry.from_dict(value)
    return None


def volume_geometry_of(source: Any) -> VolumeGeometry | None:
    """The layer's medical geometry, or ``None`` when it has none (or a raster grid)."""
    from napari_domainseg.medical.volume_geometry import VolumeGeometry

    value = geometry_of(source)
    return value if isinstance(value, VolumeGeometry) else None


def raster_grid_of(source: Any) -> RasterGrid | None:
    """The layer's raster grid, or ``None`` when it has none (or a volume geometry)."""
    value = geometry_of(source)
    return value if _is_raster_grid(value) else None


def set_geometry(layer: Any, geometry: Geometry | None) -> None:
    """Attach ``geometry`` to a live layer or to layer kwargs (``None`` removes it)."""
    entry = _writable_entry(layer)
    if geometry is None:
        entry.pop(GEOMETRY, None)
    else:
        entry[GEOMETRY] = geometry


def placement(geometry: Geometry) -> dict[str, Any]:
    """Napari ``scale``/``translate`` (or ``affine`` when rotated or sheared) of ``geometry``.

    A volume is shown by its display affine (straightened when oblique or tilted), a raster
    array by its grid's pixel-centre affine (rows, columns to northing, easting).
    """
    if _is_raster_grid(geometry):
        affine = geometry.world_affine
    else:
        affine = np.array(geometry.display_affine)
    ndim = affine.shape[0] - 1
    linear = affine[:ndim, :ndim]
    if np.allclose(linear, np.diag(np.diag(linear)), atol=1e-9 * np.abs(linear).max()):
        return {"scale": tuple(np.diag(linear)), "translate": tuple(affine[:ndim, ndim])}
    return {"affine": affine}


def data_to_world(attributes: Mapping[str, Any], ndim: int) -> np.ndarray:
    """A layer's data-to-world matrix from its attributes (napari's composition)."""
    from napari.utils.transforms import Affine

    base = Affine(
        scale=attributes.get("scale", np.ones(ndim)),
        translate=attributes.get("translate", np.zeros(ndim)),
        rotate=attributes.get("rotate"),
        shear=attributes.get("shear"),
        ndim=ndim,
    ).affine_matrix
    extra = np.asarray(attributes.get("affine", np.eye(ndim + 1)), dtype=float)
    if extra.shape != base.shape:
        extra = np.eye(ndim + 1)
    return extra @ base


def layer_data_to_world(layer: Any) -> np.ndarray:
    """A live layer's data-to-world matrix (the same composition as :func:`data_to_world`)."""
    attributes = {
        "scale": layer.scale,
        "translate": layer.translate,
        "rotate": layer.rotate,
        "shear": layer.shear,
        "affine": layer.affine.affine_matrix,
    }
    return data_to_world(attributes, layer.ndim)


def export_volume_geometry(attributes: Mapping[str, Any], shape: tuple[int, ...]) -> VolumeGeometry:
    """The volume geometry to export a layer with: its own, unless the layer was moved since.

    A layer still where the plugin placed it exports on its exact geometry (tilt and
    obliquity included). A moved one exports where napari shows it (with a warning when
    that drops an oblique geometry); a layer without geometry, on its napari placement.
    """
    from napari_domainseg.medical.volume_geometry import SourceReferences, VolumeGeometry

    current = data_to_world(attributes, len(shape))
    geometry = volume_geometry_of(attributes)
    if geometry is not None and tuple(geometry.shape) == tuple(shape) and geometry.placed(current):
        return geometry
    if geometry is not None:
        if geometry.straightened:
            warnings.warn(
                "the layer was moved after opening; it is exported where napari shows it, "
                "not on the acquired (oblique or tilted) geometry",
                stacklevel=2,
            )
        if tuple(geometry.shape) == tuple(shape):
            return geometry.with_affine(current)
        # another grid: the source's slices are not these voxels, so no SEG may reference them
        return VolumeGeometry(current, shape, current, source=SourceReferences())  # type: ignore[arg-type]
    return VolumeGeometry(current, shape, current, source=SourceReferences())  # type: ignore[arg-type]


def export_raster_grid(attributes: Mapping[str, Any], shape: tuple[int, int]) -> RasterGrid:
    """The raster grid to export 2D labels on: the source raster's, unless the layer moved.

    The grid may describe a window of the raster (labels drawn on part of a big scene).
    """
    from napari_domainseg.geo.grid import RasterGrid

    current = data_to_world(attributes, 2)
    grid = raster_grid_of(attributes)
    if grid is not None:
        # compared in pixels: identity when the labels still sit on their grid's pixels
        relative = np.linalg.solve(grid.world_affine, current)
        on_grid = np.allclose(relative, np.eye(3), rtol=0.0, atol=1e-6)
        if on_grid and tuple(shape) == grid.array_shape:
            if grid.crs is None:
                warnings.warn(
                    "these labels' raster has no CRS: exported without one, in its own units",
                    stacklevel=2,
                )
            return grid
        warnings.warn(
            "the labels no longer sit on their raster's grid (moved or resized); they are "
            "exported on their own grid, where napari shows them",
            stacklevel=2,
        )
        return RasterGrid.of_world_affine(current, shape, grid.crs)
    warnings.warn(
        "these labels were not made for a georeferenced raster: exported without CRS, "
        "in napari's world units",
        stacklevel=2,
    )
    return RasterGrid.of_world_affine(current, shape, None)


# --------------------------------------------------------------------------- typed entries


def domain_of(source: Any) -> str | None:
    """``"medical"``, ``"geo"`` or ``None`` (not a plugin layer)."""
    return _entry(source).get("domain")


def schema_of(source: Any) -> LabelSchema | None:
    """The label schema the layer carries, or ``None``."""
    from napari_domainseg.labels.schema import LabelSchema

    document = _entry(source).get(SCHEMA)
    return LabelSchema.from_dict(document) if document else None


def schema_document_of(source: Any) -> dict[str, Any] | None:
    """The schema's dict form as the layer carries it (no validation), or ``None``."""
    return _entry(source).get(SCHEMA) or None


def set_schema(layer: Any, schema: LabelSchema | None) -> None:
    """Attach ``schema`` to a layer (``None`` removes it)."""
    entry = _writable_entry(layer)
    if schema is None:
        entry.pop(SCHEMA, None)
    else:
        entry[SCHEMA] = schema.to_dict()


def assist_of(source: Any) -> dict[str, Any] | None:
    """The layer's assisted-labeling provenance (a live, mutable record), or ``None``."""
    return _entry(source).get(ASSIST) or None


def assist_record(layer: Any) -> dict[str, Any]:
    """The layer's provenance record, created (empty) when missing."""
    return _writable_entry(layer).setdefault(ASSIST, {})


def band_of(source: Any) -> int | None:
    """The band a raster image layer shows (0-based), or ``None``."""
    return _entry(source).get("band")


def band_names_of(source: Any) -> list[str]:
    """The band names of the raster a layer comes from (empty when none)."""
    return list(_entry(source).get("band_names") or [])


def source_path_of(source: Any) -> str | None:
    """The file a raster layer was read from, or ``None``."""
    return _entry(source).get("source_path")


def nodata_of(source: Any) -> float | None:
    """The raster's nodata value, or ``None``."""
    return _entry(source).get("nodata")


def modality_of(source: Any) -> str:
    """The DICOM modality (``"CT"``, ``"MR"``, ...), or ``""``."""
    return str(_entry(source).get("modality") or "")


def bands_of_scene(layers: Any, source: Any) -> list[Any]:
    """The band layers of the raster ``source`` comes from, ordered by band."""
    path = source_path_of(source)
    found = [
        layer
        for layer in layers
        if path is not None and source_path_of(layer) == path and band_of(layer) is not None
    ]
    return sorted(found, key=band_of)


def recovery_key_of(source: Any, shape: tuple[int, ...]) -> str:
    """The autosave key of the image ``source`` belongs to, on a grid of ``shape``."""
    from napari_domainseg.ops.recovery import recovery_key

    return recovery_key(recovery_identity(source), tuple(shape))


def recovery_metadata(source: Any) -> dict[str, Any]:
    """What an autosave is given of a layer: its description and its series UID.

    The store keeps only what a restore needs and the UID as a pseudonym
    (:func:`napari_domainseg.ops.recovery.stored_metadata`).
    """
    record = info(source)
    geometry = volume_geometry_of(source)
    if geometry is not None and geometry.source.series_instance_uid:
        record["series_instance_uid"] = geometry.source.series_instance_uid
    table = instances_of(source)
    if table is not None:  # an instance layer: its objects' classes come back with it
        record["instances"] = table.to_records()
    return record


def recovery_identity(source: Any) -> str:
    """What names the image a labels layer belongs to, for autosave keys.

    The series UID, else the raster file, else the first DICOM file, else the image name.
    """
    entry = _entry(source)
    geometry = volume_geometry_of(source)
    files = geometry.source.source_files if geometry is not None else ()
    return str(
        (geometry.source.series_instance_uid if geometry is not None else "")
        or entry.get("source_path")
        or (files[0] if files else "")
        or (entry.get("source_image") or {}).get("name", "")
    )


# --------------------------------------------------------------------------- instances

INSTANCE_LAYER = "instance_layer"
"""Entry of a labels layer whose values are instance ids (its features table is the classes)."""


def is_instance_layer(source: Any) -> bool:
    """True for a labels layer holding instance ids (objects), not class ids."""
    return bool(_entry(source).get(INSTANCE_LAYER))


def instances_of(source: Any) -> Any:
    """The layer's :class:`~napari_domainseg.labels.instances.InstanceTable`, or ``None``.

    Read from napari's per-label ``features`` (a live layer's, or the ``features`` napari
    passes a writer); ``None`` for a class-id layer.
    """
    if not is_instance_layer(source):
        return None
    from napari_domainseg.labels.instances import InstanceTable

    features = (
        source.features
        if hasattr(source, "features")
        else (source.get("features") if isinstance(source, Mapping) else None)
    )
    if features is None:
        return InstanceTable()
    return InstanceTable.from_features(features)


def set_instances(layer: Any, table: Any, schema: LabelSchema | None = None) -> None:
    """Make ``layer`` (a live labels layer or layer kwargs) an instance layer with ``table``."""
    import pandas as pd

    features = pd.DataFrame(table.to_features(schema))
    _writable_entry(layer)[INSTANCE_LAYER] = True
    if hasattr(layer, "features"):
        layer.features = features
    else:
        layer["features"] = features
