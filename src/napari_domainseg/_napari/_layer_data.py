"""Turn core objects (volumes, rasters, schemas) into napari layer data tuples.

Every adapter imports this module, so it imports only what a medical volume
needs: dask (with scipy, about 0.2 s) and the raster stack are imported by the
functions that build raster layers, and napari's colormap class on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from napari_domainseg._napari import _layer_state as state
from napari_domainseg.formats.base import IMAGE, Read
from napari_domainseg.labels.annotation import annotation_metadata
from napari_domainseg.labels.schema import LabelSchema
from napari_domainseg.medical.volume import Volume
from napari_domainseg.medical.volume_geometry import VolumeGeometry
from napari_domainseg.medical.windowing import contrast_limits

if TYPE_CHECKING:
    from napari.utils.colormaps import DirectLabelColormap

    from napari_domainseg.geo.scene import Scene

LayerData = tuple[Any, dict[str, Any], str]


def volume_layer_data(volume: Volume, name: str) -> LayerData:
    """Image layer data for a medical volume, placed in LPS (z, y, x) millimetres.

    The layer carries the volume's :class:`VolumeGeometry` and its description (the
    reader's metadata without the entries the geometry took over).
    """
    return image_layer_data(
        volume.array, VolumeGeometry.of_volume(volume), volume.description, name
    )


def image_layer_data(
    array: Any, geometry: VolumeGeometry, description: dict[str, Any], name: str
) -> LayerData:
    """Image layer data for a volume on ``geometry`` with the reader's ``description``."""
    window = description.get("window")
    contrast = contrast_limits(window) if window is not None else None
    kwargs: dict[str, Any] = {
        "name": name,
        "metadata": state.plugin_metadata({"domain": "medical", **description}),
        "axis_labels": ("z (S)", "y (P)", "x (L)"),
        "units": ("mm", "mm", "mm"),
        "colormap": "gray",
        "rgb": False,  # a volume with 3 or 4 columns is not a colour image
        **state.placement(geometry),
    }
    state.set_geometry(kwargs, geometry)
    if contrast is not None:
        kwargs["contrast_limits"] = contrast
    return (array, kwargs, "image")


def labels_layer_data(
    labels: np.ndarray,
    like: dict[str, Any],
    name: str,
    schema: LabelSchema | None = None,
) -> LayerData:
    """Labels layer data placed exactly like an image layer's keyword arguments ``like``.

    The labels share the image's geometry (the same immutable value) and inherit its
    description but for display settings (:func:`annotation_metadata`).
    """
    placement = {k: like[k] for k in ("scale", "translate", "affine") if k in like}
    entry = annotation_metadata(
        state.inherited_info(like), like.get("name", ""), tuple(np.shape(labels))
    )
    kwargs: dict[str, Any] = {
        "name": name,
        "metadata": state.plugin_metadata(entry),
        **placement,
        **{k: like[k] for k in ("axis_labels", "units") if k in like},
    }
    state.set_geometry(kwargs, state.geometry_of(like))
    if schema is not None:
        kwargs["colormap"] = schema_colormap(schema)
        state.set_schema(kwargs, schema)
    return (labels, kwargs, "labels")


def label_volume_layer_data(
    array: np.ndarray, volume: Volume, name: str, schema: LabelSchema | None
) -> LayerData:
    """Labels layer data for a label map read from a file, placed like an image of ``volume``."""
    return labels_layer_data(array, volume_layer_data(volume, name)[1], name, schema)


def layer_data(read: Read) -> list[LayerData]:
    """Napari layer data for what a format read (:mod:`napari_domainseg.formats`).

    A volume becomes an image or labels layer placed by its geometry; a raster image one
    layer per band (lazy pyramids), raster labels one labels layer on its grid. Entries that
    tell the viewer set-up what to do with the layer (a SEG to place, an image opened for a
    SEG) are kept on the layer itself and never inherited.
    """
    marks = {k: v for k, v in read.metadata.items() if k in state.READER_MARKS}
    if read.domain == "geo":
        info = {k: v for k, v in read.metadata.items() if k not in state.READER_MARKS}
        if read.kind == IMAGE:
            layers = scene_layer_data(read.source, read.name, info)
        else:
            layers = [scene_labels_layer_data(read.array, read.source, read.name, read.schema)]
            state.update(layers[0][1], **info)
    elif read.kind == IMAGE:
        layers = [image_layer_data(read.array, read.geometry, read.metadata, read.name)]
    else:
        like = image_layer_data(None, read.geometry, read.metadata, read.image or read.name)[1]
        layers = [labels_layer_data(read.array, like, read.name, read.schema)]
    for _, kwargs, _ in layers:
        state.update(kwargs, **marks)
    records = read.metadata.get("instances")
    if records is not None and read.kind != IMAGE:  # instance ids, with their classes
        from napari_domainseg.labels.instances import InstanceTable

        table = InstanceTable.from_records(records)
        for _, kwargs, _ in layers:
            state.remove(kwargs, "instances")  # the features table holds them from now on
            state.set_instances(kwargs, table, read.schema)
            kwargs["colormap"] = instance_colormap(table, read.schema)
    return layers


def instance_colormap(table: Any, schema: LabelSchema | None) -> DirectLabelColormap:
    """Napari colormap of an instance layer: each object in its class's colour, varied by object.

    Ids without a class (not in the table) show grey; 0 is transparent.
    """
    from napari.utils.colormaps import DirectLabelColormap

    from napari_domainseg.labels.colors import to_float_rgba

    colors: dict[int | None, tuple[float, float, float, float]] = {
        None: (0.5, 0.5, 0.5, 1.0),
        0: (0.0, 0.0, 0.0, 0.0),
    }
    numbers = table.numbers_in_class()
    for instance in table:
        if schema is not None and instance.class_id in schema:
            rgba = schema.instance_color(instance.class_id, numbers[instance.id])
            colors[instance.id] = to_float_rgba(rgba)
    return DirectLabelColormap(color_dict=colors)


def schema_colormap(schema: LabelSchema) -> DirectLabelColormap:
    """Napari colormap showing each class in its schema colour (0 transparent)."""
    from napari.utils.colormaps import DirectLabelColormap

    return DirectLabelColormap(color_dict=schema.colormap())


def scene_info(scene: Scene) -> dict[str, Any]:
    """The description a raster's layers carry beside its grid: nodata, bands, source file."""
    return scene.description()


def _display_band(scene: Scene, band: int) -> Any:
    """The band's pyramid, with nodata shown as the darkest value (transparent when added)."""
    import dask.array as da

    levels = scene.band_pyramid(band)
    nodata = scene.nodata
    if nodata is not None:
        if scene.dtype.kind == "f":
            if not np.isnan(nodata):
                levels = [da.where(level == nodata, np.nan, level) for level in levels]
        else:
            lowest = np.iinfo(scene.dtype).min
            if nodata != lowest:
                levels = [da.where(level == nodata, lowest, level) for level in levels]
    return levels if len(levels) > 1 else levels[0]


def scene_layer_data(
    scene: Scene, name: str, info: dict[str, Any] | None = None
) -> list[LayerData]:
    """Image layers for a raster: the composite's bands in additive R/G/B, other bands hidden.

    Each band is a lazy multiscale pyramid with its own 2-98 % stretch
    (from a decimated read, nodata excluded); nodata shows black, which is
    transparent under additive blending. World coordinates are map (y, x) at
    pixel centres.
    """
    grid = scene.grid
    placement = state.placement(grid)
    composite = scene.composite()
    colormaps = (
        {composite[0]: "red", composite[1]: "green", composite[2]: "blue"} if composite else {}
    )
    layers: list[LayerData] = []
    for band in range(scene.count):
        shown = band in colormaps or (composite is None and band == 0)
        kwargs = {
            "name": f"{name} {scene.band_names[band]}" if scene.count > 1 else name,
            "metadata": state.plugin_metadata({**(info or scene_info(scene)), "band": band}),
            "colormap": colormaps.get(band, "gray"),
            "blending": "additive",
            "contrast_limits": scene.stretch(band),
            "visible": shown,
            "axis_labels": ("northing", "easting"),
            **placement,
        }
        state.set_geometry(kwargs, grid)
        data = _display_band(scene, band)
        kwargs["multiscale"] = isinstance(data, list)
        layers.append((data, kwargs, "image"))
    return layers


def scene_labels_layer_data(
    labels: np.ndarray,
    scene: Scene,
    name: str,
    schema: LabelSchema | None,
    window: tuple[int, int, int, int] | None = None,
) -> LayerData:
    """Labels on a raster's grid (or on the window ``(row, col, height, width)`` of it)."""
    grid = scene.grid.with_window(window)
    like: dict[str, Any] = {
        "name": name,
        "metadata": state.plugin_metadata(scene_info(scene)),
        "axis_labels": ("northing", "easting"),
        **state.placement(grid),
    }
    state.set_geometry(like, grid)
    return labels_layer_data(labels, like, name, schema)
