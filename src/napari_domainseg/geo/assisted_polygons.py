"""How much of each exported polygon an accepted assistant proposal wrote.

Vector files have no sidecar, so assisted-labeling provenance travels per feature: an
``assisted`` column holds the share (0 to 1) of the polygon's pixels that an accepted
proposal wrote. A reviewer in QGIS can then filter the polygons that still need a look
(``"assisted" > 0``). Each polygon is one connected region of one class (the same
connectivity as the polygonize), found by a pixel centre that lies strictly inside it.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
from affine import Affine
from skimage.measure import label as connected_regions

ASSISTED_COLUMN = "assisted"


def assisted_share(
    frame: gpd.GeoDataFrame,
    values: np.ndarray,
    assisted: np.ndarray,
    transform: Affine,
    connectivity: int = 4,
) -> np.ndarray:
    """Share of each polygon's pixels that ``assisted`` marks, in ``frame``'s row order.

    Parameters
    ----------
    frame
        Polygons from :func:`napari_domainseg.geo.vectors.polygonize` of ``values``.
    values
        The polygonized labels (0 and masked pixels unlabeled).
    assisted
        Boolean mask on the same grid: pixels an accepted proposal wrote.
    transform
        The transform the polygons were made with (pixel corners).
    connectivity
        4 or 8, as in the polygonize.

    Returns
    -------
    numpy.ndarray
        float64 shares, rounded to 4 decimals; 0 where a polygon matches no region
        (for example one moved by simplification).
    """
    if assisted.shape != values.shape:
        raise ValueError(
            f"the assisted-pixel mask is {assisted.shape} and the labels {values.shape}; "
            "they must share a grid"
        )
    share = np.zeros(len(frame))
    if not len(frame) or not assisted.any():
        return share
    regions = connected_regions(values, background=0, connectivity=1 if connectivity == 4 else 2)
    flat = regions.ravel()
    pixels = np.bincount(flat)
    marked = np.bincount(flat, weights=assisted.ravel(), minlength=pixels.size)
    ids, first = np.unique(flat, return_index=True)
    keep = ids != 0
    ids, first = ids[keep], first[keep]
    rows, cols = np.unravel_index(first, values.shape)
    a, b, c, d, e, f = transform[:6]
    xs = a * (cols + 0.5) + b * (rows + 0.5) + c
    ys = d * (cols + 0.5) + e * (rows + 0.5) + f
    centres = gpd.GeoDataFrame({"region": ids}, geometry=gpd.points_from_xy(xs, ys), crs=frame.crs)
    polygons = gpd.GeoDataFrame({"row": np.arange(len(frame))}, geometry=frame.geometry.values)
    polygons = polygons.set_crs(frame.crs, allow_override=True) if frame.crs else polygons
    joined = gpd.sjoin(centres, polygons, predicate="within", how="inner")
    joined = joined.drop_duplicates("row")
    region = joined["region"].to_numpy()
    share[joined["row"].to_numpy()] = np.round(marked[region] / pixels[region], 4)
    return share
