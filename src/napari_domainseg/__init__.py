"""napari-domainseg: pixel-accurate annotation of medical volumes and satellite imagery.

Importing the package imports nothing heavy: the core lives in
:mod:`napari_domainseg.labels`, :mod:`napari_domainseg.medical`,
:mod:`napari_domainseg.geo` and :mod:`napari_domainseg.ops`; the napari
adapters (``_napari``) and widgets (``_widgets``) are loaded by napari
through the ``napari.yaml`` manifest only when used.
"""

__version__ = "0.1.0"
