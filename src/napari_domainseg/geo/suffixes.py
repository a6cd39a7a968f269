"""File suffixes of the rasters DomainSeg opens (through GDAL) and writes (GeoTIFF).

A module of constants only, so a reader's ``get_reader`` can check a path without importing
rasterio.
"""

RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".vrt", ".img", ".grd")
"""Rasters opened through GDAL: GeoTIFF/COG, JPEG 2000, VRT, ERDAS Imagine, Surfer grids."""

GEOTIFF_SUFFIXES = (".tif", ".tiff")
"""Raster outputs: GeoTIFF (or Cloud-Optimized GeoTIFF)."""

POLYGON_EXPORTS = {".geojson": "GeoJSON", ".gpkg": "GPKG", ".fgb": "FlatGeobuf"}
"""Polygon outputs and their OGR drivers: GeoJSON (RFC 7946), GeoPackage, FlatGeobuf."""
