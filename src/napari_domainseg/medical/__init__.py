"""Medical volumes: DICOM series, their patient geometry, and medical exports.

Pure core: no napari, Qt or magicgui. World coordinates are DICOM patient
coordinates (LPS, mm), axes ordered (z, y, x).
"""
