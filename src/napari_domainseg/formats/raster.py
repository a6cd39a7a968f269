"""Rasters GDAL reads (GeoTIFF, COG, JPEG 2000, VRT, ...); label rasters read as labels.

An instance label GeoTIFF (class band, instance band, and the table in the
``DOMAINSEG_INSTANCES`` tag: :mod:`napari_domainseg.geo.label_raster`) reads as its instance
map, with the table's records in ``Read.metadata["instances"]``
(:meth:`~napari_domainseg.labels.instances.InstanceTable.from_records`); painted ids the
table lacks are named in ``Read.warnings``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_domainseg.formats.base import IMAGE, LABELS, Format, Read


class RasterFormat(Format):
    """A raster file with at least one band, in its map coordinates (pixel centres)."""

    name = "raster"
    description = "Raster (GeoTIFF, COG, JPEG 2000, VRT, ...)"

    @property
    def suffixes(self) -> tuple[str, ...]:  # type: ignore[override]
        """The raster extensions (:data:`napari_domainseg.geo.suffixes.RASTER_SUFFIXES`)."""
        from napari_domainseg.geo.suffixes import RASTER_SUFFIXES

        return tuple(RASTER_SUFFIXES)

    def claims(self, path: Path) -> bool:
        """True for a file with a raster extension (GDAL then says what is wrong with it)."""
        try:
            return not isinstance(path, (list, tuple)) and self.claims_name(path)
        except Exception:  # claims never raises
            return False

    def has_bands(self, path: Path) -> bool:
        """True when GDAL opens ``path`` and finds at least one band (never raises)."""
        try:
            import rasterio

            with rasterio.open(path) as src:
                return src.count > 0
        except Exception:
            return False

    def read(self, path: Path, **options: Any) -> list[Read]:
        """Read a raster as an image (its bands) or as labels.

        Options
        -------
        as_labels
            ``True``: read band 1 as labels (band 2, the instance map, of an instance label
            raster); ``False``: as an image; ``None`` (default): labels when the file is a
            label raster (one integer band with a schema or a colour table, or an instance
            label raster).
        gcps
            ``"pixels"`` (default) or ``"warp"`` for a raster georeferenced only by ground
            control points (:func:`~napari_domainseg.geo.scene.open_scene`).
        in_memory
            Read the pixels now, with rasterio alone (NumPy; the command line). Otherwise an
            image keeps them in its scene's lazy pyramid (``array`` is ``None``, ``source``
            the scene) and labels above
            :data:`~napari_domainseg.geo.label_raster.EAGER_PIXELS` stay on disk.
        """
        path = Path(path)
        if options.get("in_memory") and options.get("gcps", "pixels") == "pixels":
            return [_read_in_memory(path, options.get("as_labels"))]
        from napari_domainseg.geo.label_raster import (  # the lazy path: dask, pyramids
            instance_records,
            is_label_raster,
            label_band,
            read_label_raster,
            read_labels,
            schema_of,
            untabled_warning,
        )
        from napari_domainseg.geo.scene import open_scene

        scene = open_scene(path, gcps=options.get("gcps", "pixels"))
        as_labels = options.get("as_labels")
        if as_labels is None:
            as_labels = is_label_raster(path)
        metadata = scene.description()
        common = {"geometry": scene.grid, "name": path.stem, "warnings": list(scene.warnings)}
        if not as_labels:
            return [Read(None, path, kind=IMAGE, metadata=metadata, source=scene, **common)]
        if scene.warp is not None:  # the labels on the warped grid
            import rasterio

            with rasterio.open(path) as file:
                band, records = label_band(file), instance_records(file, path)
            with scene.open() as src:
                labels, schema = read_labels(src, None, path, band), schema_of(path)
            if records is not None:
                metadata["instances"] = records
                common["warnings"] += untabled_warning(labels, records, path.name)
        else:
            read = read_label_raster(path)
            labels, schema = read.array, read.schema
            if "instances" in read.metadata:
                metadata["instances"] = read.metadata["instances"]
            common["warnings"] += read.warnings
        if not isinstance(labels, np.ndarray):
            common["warnings"].append(
                f"{path.name}: {scene.height} x {scene.width} labels are too large to hold in "
                "memory; shown read-only, read window by window. Paint a region instead "
                "('New annotation layer for region')."
            )
        return [
            Read(
                labels, path, kind=LABELS, schema=schema, metadata=metadata, source=scene, **common
            )
        ]


def _read_in_memory(path: Path, as_labels: bool | None) -> Read:
    """The pixels now, with rasterio alone (no pyramid, no dask: the command line's read)."""
    import rasterio

    from napari_domainseg.geo.grid import RasterGrid
    from napari_domainseg.geo.label_raster import (
        instance_records,
        is_label_raster,
        label_band,
        read_labels,
        schema_of,
        untabled_warning,
    )

    if as_labels is None:
        as_labels = is_label_raster(path)
    records = None
    with rasterio.open(path) as src:  # labels: nodata and masked pixels read as 0 (unlabeled)
        if as_labels:
            records = instance_records(src, path)
            array = read_labels(src, None, None, label_band(src))
        else:
            array = src.read(1) if src.count == 1 else src.read()
        grid = RasterGrid.of_dataset(src)
        nodata = src.nodata
    metadata = {"domain": "geo", "nodata": nodata, "source_path": str(path)}
    warnings = [] if grid.crs is not None else [f"{path.name}: no CRS"]
    if records is not None:
        metadata["instances"] = records
        warnings += untabled_warning(array, records, path.name)
    return Read(
        array,
        path,
        geometry=grid,
        kind=LABELS if as_labels else IMAGE,
        name=path.stem,
        schema=schema_of(path),
        metadata=metadata,
        warnings=warnings,
    )
