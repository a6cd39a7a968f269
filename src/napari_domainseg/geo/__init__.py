"""Georeferenced rasters and vectors: GeoTIFF/COG, CRS and transforms, GIS exports.

Pure core: no napari, Qt or magicgui. World coordinates are map coordinates
of the raster's CRS, axes ordered (y = northing, x = easting), at pixel centres.
"""
