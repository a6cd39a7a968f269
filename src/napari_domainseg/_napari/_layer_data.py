"""Turn core objects (volumes, rasters, schemas) into napari layer data tuples.

Every adapter imports this module, so it imports only what a medical volume
needs: dask (with scipy, about 0.2 s) and the raster stack are imported by the
functions that build raster layers, and napari's colormap class on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from napari_domainseg.labels.annotation import annotation_metadata
from napari_domainseg.labels.schema import LabelSchema
from napari_domainseg.medical.geometry import display_affine
from napari_domainseg.medical.volume import Volume
from napari_domainseg.medical.windowing import contrast_limits

if TYPE_CHECKING:
    from napari.utils.colormaps import DirectLabelColormap

    from napari_domainseg.geo.scene import Scene

LayerData = tuple[Any, dict[str, Any], str]

METADATA_KEY = "domainseg"
"""Key of the plugin's own entry in ``layer.metadata``."""


def _placement(affine: np.ndarray) -> dict[str, Any]:
    """Express an affine as napari ``scale``/``translate`` when possible, else ``affine``."""
    ndim = affine.shape[0] - 1
    linear = affine[:ndim, :ndim]
    if np.allclose(linear, np.diag(np.diag(linear)), atol=1e-9 * np.abs(linear).max()):
        return {"scale": tuple(np.diag(linear)), "translate": tuple(affine[:ndim, ndim])}
    return {"affine": affine}


def volume_layer_data(volume: Volume, name: str) -> LayerData:
    """Image layer data for a medical volume, placed in LPS (z, y, x) millimetres."""
    window = volume.metadata.get("window")
    contrast = contrast_limits(window) if window is not None else None
    shown = volume.metadata.get("display_affine")
    shown = display_affine(volume.affine, volume.shape) if shown is None else np.asarray(shown)
    metadata = {
        METADATA_KEY: {
            "domain": "medical",
            **volume.metadata,
            "affine": volume.affine.tolist(),
            "display_affine": shown.tolist(),
            "straightened": not np.allclose(shown, volume.affine),
        }
    }
    kwargs: dict[str, Any] = {
        "name": name,
        "metadata": metadata,
        "axis_labels": ("z (S)", "y (P)", "x (L)"),
        "units": ("mm", "mm", "mm"),
        "colormap": "gray",
        "rgb": False,  # a volume with 3 or 4 columns is not a colour image
        **_placement(shown),
    }
    if contrast is not None:
        kwargs["contrast_limits"] = contrast
    return (volume.array, kwargs, "image")


def labels_layer_data(
    labels: np.ndarray,
    like: dict[str, Any],
    name: str,
    schema: LabelSchema | None = None,
) -> LayerData:
    """Labels layer data placed exactly like an image layer's keyword arguments ``like``."""
    placement = {k: like[k] for k in ("scale", "translate", "affine") if k in like}
    source_entry = annotation_metadata(
        like["metadata"][METADATA_KEY], like.get("name", ""), tuple(np.shape(labels))
    )
    kwargs: dict[str, Any] = {
        "name": name,
        "metadata": {METADATA_KEY: source_entry},
        **placement,
        **{k: like[k] for k in ("axis_labels", "units") if k in like},
    }
    if schema is not None:
        kwargs["colormap"] = schema_colormap(schema)
        kwargs["metadata"][METADATA_KEY]["schema"] = schema.to_dict()
    return (labels, kwargs, "labels")


def label_volume_layer_data(
    array: np.ndarray,
    volume: Volume,
    name: str,
    schema: LabelSchema | None,
    image_metadata: dict[str, Any] | None = None,
) -> LayerData:
    """Labels layer data for a label map read from a file, placed like an image of ``volume``.

    ``image_metadata`` (the plugin metadata of the image it belongs to) is
    inherited when given, so DICOM SEG export can reference that series.
    """
    image_kwargs = volume_layer_data(volume, name)[1]
    if image_metadata is not None:
        image_kwargs["metadata"] = {METADATA_KEY: dict(image_metadata)}
    return labels_layer_data(array, image_kwargs, name, schema)


def schema_colormap(schema: LabelSchema) -> DirectLabelColormap:
    """Napari colormap showing each class in its schema colour (0 transparent)."""
    from napari.utils.colormaps import DirectLabelColormap

    return DirectLabelColormap(color_dict=schema.colormap())


def scene_metadata(scene: Scene) -> dict[str, Any]:
    """The plugin metadata of a raster's layers: CRS, transform, grid and nodata."""
    return {
        "domain": "geo",
        "crs_wkt": scene.crs_wkt,
        "transform": list(scene.transform)[:6],
        "shape": [scene.height, scene.width],
        "nodata": scene.nodata,
        "band_names": list(scene.band_names),
        "source_path": str(scene.path),
        "gcp_only": scene.gcp_only,
    }


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


def scene_layer_data(scene: Scene, name: str) -> list[LayerData]:
    """Image layers for a raster: the composite's bands in additive R/G/B, other bands hidden.

    Each band is a lazy multiscale pyramid with its own 2-98 % stretch
    (from a decimated read, nodata excluded); nodata shows black, which is
    transparent under additive blending. World coordinates are map (y, x) at
    pixel centres.
    """
    placement = _placement(scene.world_affine)
    composite = scene.composite()
    colormaps = (
        {composite[0]: "red", composite[1]: "green", composite[2]: "blue"} if composite else {}
    )
    layers: list[LayerData] = []
    for band in range(scene.count):
        shown = band in colormaps or (composite is None and band == 0)
        kwargs = {
            "name": f"{name} {scene.band_names[band]}" if scene.count > 1 else name,
            "metadata": {METADATA_KEY: {**scene_metadata(scene), "band": band}},
            "colormap": colormaps.get(band, "gray"),
            "blending": "additive",
            "contrast_limits": scene.stretch(band),
            "visible": shown,
            "axis_labels": ("northing", "easting"),
            **placement,
        }
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
    world = scene.world_affine
    if window is not None:
        world = world @ np.array([[1.0, 0.0, window[0]], [0.0, 1.0, window[1]], [0.0, 0.0, 1.0]])
    like = {
        "name": name,
        "metadata": {METADATA_KEY: scene_metadata(scene)},
        "axis_labels": ("northing", "easting"),
        **_placement(world),
    }
    data = labels_layer_data(labels, like, name, schema)
    if window is not None:
        data[1]["metadata"][METADATA_KEY]["region"] = list(window)
    return data
