"""Small GeoTIFFs generated under ``tmp_path`` (never committed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import rasterio
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS


def gcp_geotiff(path: Path, values: np.ndarray | None = None) -> Path:
    """A 40 x 50 uint8 GeoTIFF placed only by four ground control points in EPSG:32630.

    It has no geotransform: napari opens it in pixel coordinates unless it is warped.

    Parameters
    ----------
    path
        File to write.
    values
        The band, shape (40, 50), uint8; every pixel 7 when not given.

    Returns
    -------
    Path
        ``path``.
    """
    gcps = [
        GroundControlPoint(0, 0, 500000, 4000000), GroundControlPoint(0, 50, 500500, 4000040),
        GroundControlPoint(40, 0, 499970, 3999600), GroundControlPoint(40, 50, 500470, 3999640),
    ]  # fmt: skip
    if values is None:
        values = np.full((40, 50), 7, np.uint8)
    with rasterio.open(path, "w", driver="GTiff", height=40, width=50, count=1, dtype="uint8",
                       gcps=gcps, crs=CRS.from_epsg(32630)) as dst:  # fmt: skip
        dst.write(values, 1)
    return path


def with_gcps_without_crs(plain: Path, path: Path) -> Path:
    """``plain`` given three ground control points but no CRS (``gdal_translate -gcp``).

    Parameters
    ----------
    plain
        A 10 x 10 GeoTIFF without a CRS.
    path
        File to write.

    Returns
    -------
    Path
        ``path``.
    """
    gcps = [arg for r, c in ((0, 0), (0, 10), (10, 0)) for arg in
            ("-gcp", str(c), str(r), str(500000 + 10 * c), str(4000000 - 10 * r))]  # fmt: skip
    subprocess.run(["gdal_translate", "-q", *gcps, str(plain), str(path)], check=True)
    return path
