"""Export 2D labels on a raster's grid by file extension: GeoTIFF/COG, GeoJSON, GPKG, FlatGeobuf.

One entry point for the napari writer and the command line (as :mod:`.medical.export` is for
volumes). Every format is written atomically and refuses to replace an existing file unless
``overwrite`` is set.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from napari_domainseg.geo.grid import RasterGrid
from napari_domainseg.geo.label_raster import write_label_geotiff
from napari_domainseg.geo.suffixes import GEOTIFF_SUFFIXES, POLYGON_EXPORTS
from napari_domainseg.labels.instances import InstanceTable
from napari_domainseg.labels.schema import LabelSchema

RASTER_EXTENSIONS = dict.fromkeys(GEOTIFF_SUFFIXES, "GeoTIFF (or Cloud-Optimized GeoTIFF)")
LABEL_EXTENSIONS = {**RASTER_EXTENSIONS, **POLYGON_EXPORTS}


def extension_of(path: str | os.PathLike[str]) -> str:
    """The label-export extension of ``path`` (lower case).

    Raises
    ------
    ValueError
        If it is none of :data:`LABEL_EXTENSIONS`.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in LABEL_EXTENSIONS:
        raise ValueError(
            f"{path}: unknown extension for raster labels; use one of "
            f"{', '.join(LABEL_EXTENSIONS)} "
            f"({', '.join(f'{k} = {v}' for k, v in LABEL_EXTENSIONS.items())})"
        )
    return suffix


def export_labels(
    path: str | os.PathLike[str],
    labels: np.ndarray,
    grid: RasterGrid,
    schema: LabelSchema | None = None,
    overwrite: bool = False,
    assist: dict | None = None,
    cog: bool | None = None,
    instances: InstanceTable | None = None,
) -> list[Path]:
    """Write 2D labels on ``grid`` in the format the extension of ``path`` names.

    Parameters
    ----------
    path
        Output file: ``.tif``/``.tiff`` (label GeoTIFF) or ``.geojson`` (RFC 7946),
        ``.gpkg``, ``.fgb`` (polygons).
    labels
        Integer label array of ``grid.array_shape``: the whole grid, or its window.
    grid
        The scene's grid (size, transform, CRS), with the window ``labels`` cover, if any.
    schema
        Class names and colours; painted values it lacks become ``label N``.
    overwrite
        Replace an existing file.
    assist
        Provenance of assisted labeling (:func:`napari_domainseg.ops.assist.accept.export_record`):
        a GeoTIFF stores it as a tag, polygons gain the ``assisted`` share column.
    cog
        GeoTIFF only: write a Cloud-Optimized GeoTIFF (``None``/``False``: a plain one).
    instances
        The instance table when ``labels`` is an instance map (values = instance ids): a
        GeoTIFF gets a class band and an instance band with the table in a tag
        (:func:`~napari_domainseg.geo.label_raster.write_label_geotiff`), polygons one
        feature per instance, touching instances apart
        (:mod:`napari_domainseg.geo.instance_polygons`).

    Returns
    -------
    list of Path
        The file written.

    Raises
    ------
    ValueError
        An unknown extension, a COG asked of a polygon format, or labels that do not fit.
    OutputExistsError
        If the file exists and ``overwrite`` is false.
    """
    extension = extension_of(path)
    labels = np.asarray(labels)
    if instances is not None:
        from napari_domainseg.labels.instances import warn_attribute_problems

        warn_attribute_problems(path, instances, schema)
    if extension in RASTER_EXTENSIONS:
        return write_label_geotiff(
            path, labels, grid, schema, cog=bool(cog), overwrite=overwrite, assist=assist,
            instances=instances,
        )  # fmt: skip
    if cog:
        raise ValueError(
            f"{path}: a Cloud-Optimized GeoTIFF is a raster; name the file .tif, or export "
            f"polygons ({', '.join(POLYGON_EXPORTS)}) without the COG option"
        )
    from napari_domainseg.geo.vectors import export_polygons

    assisted = None
    if assist:  # scikit-learn and friends only for assisted exports
        from napari_domainseg.ops.assist.accept import assisted_mask

        assisted = assisted_mask(assist, labels)
    if instances is not None:
        from napari_domainseg.geo.instance_polygons import export_instance_polygons

        return export_instance_polygons(
            path, labels, grid, instances, schema, overwrite=overwrite, assisted=assisted
        )
    return export_polygons(path, labels, grid, schema, overwrite=overwrite, assisted=assisted)
