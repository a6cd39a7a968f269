"""How much of each exported polygon an accepted assistant proposal wrote.

Vector files have no sidecar, so assisted-labeling provenance travels per feature: an
``assisted`` column holds the share (0 to 1) of the polygon's pixels that an accepted
proposal wrote. A reviewer in QGIS can then filter the polygons that still need a look
(``"assisted" > 0``).

Each polygon is one connected region of one class. The regions are numbered (the same
connectivity as the polygonize) and the region-id raster is polygonized too: GDAL traces the
same partition of the grid in the same order, so the i-th region polygon is the i-th polygon of
:func:`napari_domainseg.geo.vectors.polygonize`, and its value is the region id. The match is
exact, needs no point-in-polygon join, and holds for a simplified coverage too (simplifying
moves vertices, not rows). A frame with rows left out (``min_area``) is matched by exact
geometry (unsimplified), else by a pixel centre strictly inside each polygon.
"""

from __future__ import annotations

from collections.abc import Iterator

import geopandas as gpd
import numpy as np
import rasterio.features
import shapely
from affine import Affine
from skimage.measure import label as connected_regions

ASSISTED_COLUMN = "assisted"


def _region_shapes(regions: np.ndarray, transform: Affine, connectivity: int) -> Iterator:
    """``(geometry, region id)`` of the region-id raster's polygons, in GDAL's order."""
    return rasterio.features.shapes(
        regions, mask=regions != 0, connectivity=connectivity, transform=transform
    )


def _match_rows(
    frame: gpd.GeoDataFrame,
    regions: np.ndarray,
    classes: np.ndarray,
    transform: Affine,
    connectivity: int,
) -> np.ndarray:
    """The region id of each row of ``frame`` (0: no region found)."""
    ids = np.fromiter(
        (int(v) for _, v in _region_shapes(regions, transform, connectivity)), np.int64
    )  # only the ids are kept: the geometries are not needed when the rows line up
    labels = frame["label"].to_numpy() if "label" in frame else None
    if ids.size == len(frame) and (labels is None or np.array_equal(classes[ids], labels)):
        return ids  # the same partition, traced in the same order: row i is region ids[i]
    region_of = np.zeros(len(frame), dtype=np.int64)
    by_wkb = {
        shapely.to_wkb(shapely.normalize(shapely.geometry.shape(g))): int(v)
        for g, v in _region_shapes(regions, transform, connectivity)
    }
    for row, geometry in enumerate(shapely.normalize(frame.geometry.values)):
        region_of[row] = by_wkb.get(shapely.to_wkb(geometry), 0)
    missing = np.flatnonzero(region_of == 0)
    if missing.size:  # simplified and filtered: a pixel centre strictly inside
        flat = regions.ravel()
        present, first = np.unique(flat, return_index=True)
        keep = present != 0
        rows, cols = np.unravel_index(first[keep], regions.shape)
        xs, ys = transform * (cols + 0.5, rows + 0.5)
        centres = gpd.GeoDataFrame(
            {"region": present[keep]}, geometry=gpd.points_from_xy(xs, ys), crs=frame.crs
        )
        polygons = gpd.GeoDataFrame(
            {"row": missing}, geometry=frame.geometry.values[missing], crs=frame.crs
        )
        joined = gpd.sjoin(centres, polygons, predicate="within", how="inner")
        joined = joined.drop_duplicates("row")
        region_of[joined["row"].to_numpy()] = joined["region"].to_numpy()
    return region_of


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
        Polygons from :func:`napari_domainseg.geo.vectors.polygonize` of ``values`` (with a
        ``label`` column), possibly simplified.
    values
        The polygonized labels (0 unlabeled).
    assisted
        Boolean mask on the same grid: pixels an accepted proposal wrote.
    transform
        The transform the polygons were made with (pixel corners).
    connectivity
        4 or 8, as in the polygonize.

    Returns
    -------
    numpy.ndarray
        float64 shares, rounded to 4 decimals; 0 where a polygon matches no region.
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
    count = int(regions.max(initial=0))
    if count >= 2**31:
        raise ValueError(f"{count} regions do not fit 32-bit region ids")
    regions = regions.astype(np.int32, copy=False)  # what GDAL polygonizes; half the memory
    flat = regions.ravel()
    pixels = np.bincount(flat, minlength=count + 1)
    marked = np.bincount(flat[assisted.ravel()], minlength=count + 1)
    classes = np.zeros(count + 1, dtype=np.int64)
    classes[flat] = values.ravel()  # each region's class
    region = _match_rows(frame, regions, classes, transform, connectivity)
    found = region != 0
    share[found] = np.round(marked[region[found]] / pixels[region[found]], 4)
    return share
