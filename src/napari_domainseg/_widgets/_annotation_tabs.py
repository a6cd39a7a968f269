"""The tabs of the annotation panel, by domain concern (re-exported here for old imports).

- :mod:`._tab_display`: the Display tab, made of :mod:`._tab_display_ct` (CT windows),
  :mod:`._tab_display_bands` (composites, stretch, gamma) and :mod:`._tab_indices` (NDVI, NDWI);
- :mod:`._tab_slices`: annotated slices, navigation, fill between slices, copy a slice;
- :mod:`._tab_tools`: threshold, region growing, magic wand, clean-up;
- :mod:`._tab_statistics`: per-class statistics and the image's valid pixels.

Each tab only wires controls to :mod:`napari_domainseg.ops` and
:mod:`napari_domainseg.medical.windowing`; edits go through
:func:`~napari_domainseg._napari._edits.apply_edits`, so Ctrl+Z undoes them.
The panel gives each tab its context through ``panel.image()``,
``panel.labels()`` and ``panel.class_id()``.
"""

from __future__ import annotations

from napari_domainseg._widgets._tab_controls import full_resolution
from napari_domainseg._widgets._tab_display import DisplayTab
from napari_domainseg._widgets._tab_display_bands import COMPOSITES
from napari_domainseg._widgets._tab_slices import FOLLOW_IMAGE, SHAPE_ONLY, SlicesTab
from napari_domainseg._widgets._tab_statistics import StatisticsTab, image_validity
from napari_domainseg._widgets._tab_tools import ANYWHERE, CONFIDENCE, ToolsTab

__all__ = [
    "ANYWHERE",
    "COMPOSITES",
    "CONFIDENCE",
    "FOLLOW_IMAGE",
    "SHAPE_ONLY",
    "DisplayTab",
    "SlicesTab",
    "StatisticsTab",
    "ToolsTab",
    "full_resolution",
    "image_validity",
]
