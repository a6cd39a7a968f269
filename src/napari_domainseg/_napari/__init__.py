"""napari adapters (npe2 contributions): readers, writers and sample data.

These turn core objects into napari layer data and back. Nothing here is
imported until napari calls a command named in ``napari.yaml``.
"""
