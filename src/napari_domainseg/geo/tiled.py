"""Polygonize and rasterize label rasters larger than memory, strip by strip, in parallel (dask).

Polygonize: each horizontal strip is read from the file and polygonized in
pixel coordinates (integers, exact in floating point) by a dask task. Regions
cut by a seam between strips are rejoined: pieces of one class that share a
stretch of the seam (not just a corner: 4-connectivity) are unioned, which is
exact because their seam vertices are identical. The result equals the
whole-raster polygonize, polygon for polygon, after normalisation.

Rasterize: each strip is burnt with its own window transform and written to
its window of the output; the pixel-centre rule is local, so strips are exact.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import dask
import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.windows import Window

from napari_domainseg.labels.schema import LabelSchema

DEFAULT_STRIP_ROWS = 2048


def check_strip_rows(strip_rows: int) -> int:
    """Refuse a strip height that is not a positive number of rows (nothing would be read)."""
    if isinstance(strip_rows, bool) or not isinstance(strip_rows, (int, np.integer)):
        raise ValueError(f"strips are a whole number of rows; got {strip_rows!r}")
    if strip_rows <= 0:
        raise ValueError(
            f"strips of {strip_rows} rows cover nothing; give a positive number of rows "
            f"(for example --tiled {DEFAULT_STRIP_ROWS})"
        )
    return int(strip_rows)


def _strip_polygons(path: str, top: int, rows: int) -> tuple[bytes, np.ndarray]:
    """WKB polygons (pixel coordinates, rows offset by ``top``) and classes of one strip."""
    from napari_domainseg.geo.label_raster import read_labels
    from napari_domainseg.geo.vectors import _polygonizable, _polygons_of_shapes

    with rasterio.open(path) as src:  # nodata and masked pixels read as 0 (unlabeled)
        values = read_labels(src, Window(0, top, src.width, rows), source=path)
        values = _polygonizable(values)
    shapes = rasterio.features.shapes(
        values, mask=values != 0, connectivity=4, transform=Affine(1, 0, 0, 0, 1, top)
    )
    polygons, classes = _polygons_of_shapes(shapes)
    return shapely.to_wkb(polygons), classes


def _seam_segments(polygon: shapely.Polygon, seam: float, width: int) -> list[tuple[float, float]]:
    """Stretches ``[x0, x1]`` of the line ``y = seam`` along the polygon's boundary."""
    line = shapely.LineString([(0, seam), (width, seam)])
    shared = polygon.boundary.intersection(line)
    parts = shapely.get_parts(shared)
    return [
        (min(p.coords[0][0], p.coords[-1][0]), max(p.coords[0][0], p.coords[-1][0]))
        for p in parts
        if p.geom_type == "LineString" and p.length > 0
    ]


def _join(
    polygons: np.ndarray, classes: np.ndarray, seams: Sequence[int], width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Union the pieces of regions that seams cut, keeping everything else as it is."""
    bounds = shapely.bounds(polygons)
    seam_set = np.asarray(seams, dtype=float)
    touching = np.isin(bounds[:, 1], seam_set) | np.isin(bounds[:, 3], seam_set)
    if not touching.any():
        return polygons, classes
    indices = np.flatnonzero(touching)
    parent = {int(i): int(i) for i in indices}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for seam in seam_set:
        above = [i for i in indices if bounds[i, 3] == seam]
        below = [i for i in indices if bounds[i, 1] == seam]
        stretches = {i: _seam_segments(polygons[i], seam, width) for i in above + below}
        for i in above:
            for j in below:
                if classes[i] != classes[j]:
                    continue
                if any(
                    min(b1, d1) > max(a0, c0) for a0, b1 in stretches[i] for c0, d1 in stretches[j]
                ):
                    parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in indices:
        groups.setdefault(find(int(i)), []).append(int(i))
    merged, merged_classes = [polygons[~touching]], [classes[~touching]]
    for members in groups.values():
        if len(members) == 1:
            parts = polygons[members]
        else:
            union = shapely.union_all(polygons[members])
            # Seam vertices left on straight edges are dropped, as GDAL would not emit them.
            parts = shapely.get_parts(shapely.simplify(union, 0.0, preserve_topology=True))
        merged.append(parts)
        merged_classes.append(np.full(len(parts), classes[members[0]], dtype=np.int64))
    return np.concatenate(merged), np.concatenate(merged_classes)


def polygonize_file(
    path: str | os.PathLike[str],
    schema: LabelSchema | None = None,
    strip_rows: int = DEFAULT_STRIP_ROWS,
    scheduler: str | None = "processes",
):
    """Polygons of a label raster file, strip by strip in parallel (see the module docstring).

    Returns the same GeoDataFrame as :func:`~napari_domainseg.geo.vectors.polygonize`
    (``label``, ``name``, ``area_m2``, 4-connected, holes kept), in the raster's CRS.
    """
    import geopandas as gpd

    from napari_domainseg.geo.label_raster import read_grid
    from napari_domainseg.geo.vectors import areas_m2
    from napari_domainseg.labels.schema import covering_schema

    strip_rows = check_strip_rows(strip_rows)
    path = str(Path(path))
    grid = read_grid(path)
    height, width, transform = grid.height, grid.width, grid.transform
    tops = list(range(0, height, strip_rows))
    tasks = [
        dask.delayed(_strip_polygons)(path, top, min(strip_rows, height - top)) for top in tops
    ]
    results = dask.compute(*tasks, scheduler=scheduler)
    polygons = np.concatenate(
        [shapely.from_wkb(wkb) for wkb, _ in results] or [np.empty(0, object)]
    )
    classes = np.concatenate([c for _, c in results] or [np.empty(0, np.int64)])
    polygons, classes = _join(polygons, classes, tops[1:], width)
    a, b, c, d, e, f = tuple(transform)[:6]
    polygons = shapely.transform(
        polygons,
        lambda xy: np.column_stack(
            [c + a * xy[:, 0] + b * xy[:, 1], f + d * xy[:, 0] + e * xy[:, 1]]
        ),
    )
    frame = gpd.GeoDataFrame({"label": classes}, geometry=gpd.GeoSeries(polygons, crs=grid.crs))
    frame["area_m2"] = areas_m2(frame)
    names = {cl.id: cl.name for cl in covering_schema(frame["label"].unique(), schema).classes}
    frame.insert(1, "name", [names[v] for v in frame["label"]])
    return frame


def rasterize_file(
    frame,
    reference: str | os.PathLike[str],
    output: str | os.PathLike[str],
    attribute: str | None = None,
    schema: LabelSchema | None = None,
    strip_rows: int = DEFAULT_STRIP_ROWS,
    overwrite: bool = False,
) -> Path:
    """Burn vectors onto a reference raster's grid strip by strip, straight into a GeoTIFF.

    The grid is read from the reference's header; none of its pixels are read.
    """
    from napari_domainseg.geo.label_raster import describe_labels, open_geotiff, read_grid
    from napari_domainseg.geo.vectors import (
        _burn_values,
        check_burn_values,
        ensure_polygonal,
        to_grid_crs,
    )

    strip_rows = check_strip_rows(strip_rows)
    grid = read_grid(reference)
    frame = ensure_polygonal(to_grid_crs(frame, grid))
    values = _burn_values(frame, attribute, schema, 1)
    dtype = np.dtype(schema.label_dtype if schema is not None else np.uint8)
    check_burn_values(values, dtype)
    shapes = list(zip(frame.geometry, values, strict=True))
    output = Path(output)
    with open_geotiff(output, grid, dtype, overwrite=overwrite) as dst:
        for top in range(0, grid.height, strip_rows):
            rows = min(strip_rows, grid.height - top)
            strip_grid = grid.with_window((top, 0, rows, grid.width))
            strip = rasterio.features.rasterize(
                shapes, out_shape=strip_grid.array_shape, transform=strip_grid.array_transform,
                fill=0, dtype=dtype.name,
            )  # fmt: skip
            dst.write(strip, 1, window=strip_grid.window)
        describe_labels(dst, schema, grid)
    return output
