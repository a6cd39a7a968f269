"""A synthetic 4-band satellite scene, written as a georeferenced GeoTIFF.

The scene imitates a Sentinel-2 L2A subset (bands B2 blue, B3 green, B4 red,
B8 near-infrared; surface reflectance x 10000 as uint16; 10 m pixels) in
WGS 84 / UTM zone 33N (EPSG:32633). Land cover is drawn from smooth random
fields (a lake and a river, forest, fields, a town, bare soil, a cloud with
its shadow), and a diagonal no-data border (value 0) imitates the edge of
the satellite's swath. :func:`synthetic_scene_labels` gives the ground truth,
numbered like the ``land_cover`` preset schema.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from scipy import ndimage

BAND_NAMES = ("B2 blue", "B3 green", "B4 red", "B8 near-infrared")
NODATA = 0
EPSG = 32633

# Typical surface reflectance (x 10000) of each land-cover class in B2, B3, B4, B8.
_REFLECTANCE = {
    1: (600, 700, 400, 250),  # water
    2: (250, 450, 250, 3200),  # tree cover
    3: (450, 800, 600, 3800),  # grassland and crops
    4: (1200, 1300, 1400, 2000),  # built-up
    5: (1400, 1700, 2100, 2600),  # bare soil
    7: (6500, 6600, 6700, 6900),  # cloud
    8: (250, 300, 300, 700),  # cloud shadow
}


@dataclass(frozen=True)
class SceneGeometry:
    """Size and placement of the synthetic scene (upper-left corner in UTM 33N)."""

    height: int = 512
    width: int = 512
    pixel_size: float = 10.0
    west: float = 399960.0
    north: float = 5800020.0


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    return (field - field.mean()) / (field.std() + 1e-12)


def synthetic_scene_labels(geometry: SceneGeometry | None = None, seed: int = 11) -> np.ndarray:
    """Return the ground-truth land cover (uint8, rows x cols; 0 = no data)."""
    geometry = geometry or SceneGeometry()
    shape = (geometry.height, geometry.width)
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    vegetation = _smooth_field(rng, shape, 18.0)
    labels = np.where(vegetation > 0.2, 2, 3).astype(np.uint8)  # forest vs fields
    labels[_smooth_field(rng, shape, 10.0) > 1.4] = 5  # bare soil patches
    town = ((rows - 0.3 * shape[0]) / 55) ** 2 + ((cols - 0.7 * shape[1]) / 70) ** 2
    labels[(town + 0.25 * _smooth_field(rng, shape, 4.0)) < 1.0] = 4
    lake = ((rows - 0.7 * shape[0]) / 45) ** 2 + ((cols - 0.3 * shape[1]) / 65) ** 2
    labels[(lake + 0.2 * _smooth_field(rng, shape, 6.0)) < 1.0] = 1
    river_centre = 0.5 * shape[1] + 40 * np.sin(rows / 45.0)
    labels[np.abs(cols - river_centre) < 4 + 1.5 * np.sin(rows / 13.0)] = 1
    cloud = ((rows - 0.2 * shape[0]) / 30) ** 2 + ((cols - 0.25 * shape[1]) / 40) ** 2
    shadow = ((rows - 0.2 * shape[0] - 35) / 30) ** 2 + ((cols - 0.25 * shape[1] - 45) / 40) ** 2
    cloud_noise = 0.3 * _smooth_field(rng, shape, 5.0)
    labels[(shadow + cloud_noise) < 1.0] = 8
    labels[(cloud + cloud_noise) < 1.0] = 7
    labels[rows + 0.6 * cols > 1.35 * shape[0]] = 0  # swath edge: no data
    return labels


def synthetic_scene_bands(geometry: SceneGeometry | None = None, seed: int = 11) -> np.ndarray:
    """Return the 4 bands (uint16, band x rows x cols) matching :func:`synthetic_scene_labels`."""
    geometry = geometry or SceneGeometry()
    labels = synthetic_scene_labels(geometry, seed)
    rng = np.random.default_rng(seed + 1)
    shape = labels.shape
    bands = np.zeros((4, *shape), dtype=np.float32)
    texture = 1.0 + 0.12 * _smooth_field(rng, shape, 2.0)
    for label, reflectance in _REFLECTANCE.items():
        mask = labels == label
        for band, value in enumerate(reflectance):
            bands[band][mask] = value
    bands *= texture
    bands += rng.normal(0.0, 30.0, size=bands.shape).astype(np.float32)
    bands = np.clip(bands, 1, 10000)
    bands[:, labels == 0] = NODATA
    return np.rint(bands).astype(np.uint16)


def write_synthetic_scene(
    path: str | os.PathLike[str], geometry: SceneGeometry | None = None
) -> Path:
    """Write the scene as a tiled, DEFLATE-compressed GeoTIFF with overviews.

    Returns
    -------
    Path
        The written file.
    """
    geometry = geometry or SceneGeometry()
    path = Path(path)
    bands = synthetic_scene_bands(geometry)
    profile = {
        "driver": "GTiff",
        "width": geometry.width,
        "height": geometry.height,
        "count": bands.shape[0],
        "dtype": "uint16",
        "crs": f"EPSG:{EPSG}",
        "transform": from_origin(
            geometry.west, geometry.north, geometry.pixel_size, geometry.pixel_size
        ),
        "nodata": NODATA,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "interleave": "band",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
        for index, name in enumerate(BAND_NAMES, start=1):
            dst.set_band_description(index, name)
        dst.update_tags(
            SENSOR="synthetic Sentinel-2 MSI",
            PROCESSING_LEVEL="L2A-like surface reflectance x 10000",
            GENERATOR="napari_domainseg.geo.synthetic",
        )
        dst.build_overviews([2, 4], Resampling.average)
        dst.update_tags(ns="rio_overview", resampling="average")
    return path
