"""Turn core objects (volumes, rasters, schemas) into napari layer data tuples."""

from __future__ import annotations

from typing import Any

import numpy as np
from napari.utils.colormaps import DirectLabelColormap

from napari_domainseg.geo.raster import Raster
from napari_domainseg.labels.annotation import annotation_metadata
from napari_domainseg.labels.schema import LabelSchema
from napari_domainseg.medical.geometry import display_affine
from napari_domainseg.medical.volume import Volume
from napari_domainseg.medical.windowing import contrast_limits

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
    return DirectLabelColormap(color_dict=schema.colormap())


def raster_layer_data(
    raster: Raster, name: str, rgb_bands: tuple[int, int, int]
) -> list[LayerData]:
    """Image layers for a raster: an additive R/G/B composite plus the remaining bands, hidden.

    Each band keeps its own contrast limits (a 2-98 % stretch over valid pixels),
    so the composite is stretched per band; nodata pixels are excluded from the
    stretch and shown black (transparent under additive blending).
    """
    placement = _placement(raster.world_affine)
    base_metadata = {
        "domain": "geo",
        "crs_wkt": raster.crs_wkt,
        "transform": tuple(raster.transform)[:6],
        "nodata": raster.nodata,
        "band_names": list(raster.band_names),
    }
    layers: list[LayerData] = []
    colormaps = {rgb_bands[0]: "red", rgb_bands[1]: "green", rgb_bands[2]: "blue"}
    for band in range(raster.array.shape[0]):
        data = raster.array[band]
        valid = data if raster.nodata is None else data[data != raster.nodata]
        if valid.size:
            low, high = (float(v) for v in np.percentile(valid, (2, 98)))
        else:
            low, high = 0.0, 1.0
        kwargs = {
            "name": f"{name} {raster.band_names[band]}",
            "metadata": {METADATA_KEY: {**base_metadata, "band": band}},
            "colormap": colormaps.get(band, "gray"),
            "blending": "additive",
            "contrast_limits": (low, max(high, low + 1e-6)),
            "visible": band in colormaps,
            "axis_labels": ("northing", "easting"),
            **placement,
        }
        layers.append((data, kwargs, "image"))
    return layers
