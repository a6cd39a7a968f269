"""Annotation operations on label arrays (thresholds, region growing, clean-up, statistics).

Pure core: numpy arrays and geometry in, arrays out; no napari, Qt or magicgui.
"""
