"""The "Import vectors as labels" widget: burn a vector file onto a raster's grid.

All work is in :mod:`napari_domainseg.geo.vectors` (reading, reprojection with
densification, burning by pixel centre); this widget picks the file, the
raster and the attribute, and adds the result as a labels layer made for the
raster (so it exports on the raster's grid). What the reader left out
(points, lines, empty geometries) or repaired (invalid polygons) is shown as
a warning notification.
"""

import warnings
from pathlib import Path

from magicgui import magic_factory
from napari.layers import Image
from napari.utils.notifications import show_error, show_info, show_warning

import napari
from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._annotation import add_annotation_layer
from napari_domainseg.geo.vectors import VectorError, rasterize_vectors, read_vectors
from napari_domainseg.labels import list_presets, load_preset

_NO_SCHEMA = "(none: integer attribute or 1)"


def import_vectors(
    viewer: napari.Viewer,
    vector_file: Path,
    image: Image,
    attribute: str = "",
    schema_preset: str = _NO_SCHEMA,
) -> None:
    """Rasterize ``vector_file`` onto ``image``'s grid as a new labels layer."""
    grid = state.raster_grid_of(image)
    if state.domain_of(image) != "geo" or grid is None or image.ndim != 2:
        show_error(f"Import vectors: '{image.name}' is not a georeferenced raster.")
        return
    schema = None if schema_preset == _NO_SCHEMA else load_preset(schema_preset)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            frame = read_vectors(vector_file)
            labels = rasterize_vectors(frame, grid, attribute or None, schema, dtype=_dtype(schema))
    except VectorError as exc:
        show_error(f"Import vectors from {Path(vector_file).name}: {exc}")
        return
    for warning in caught:
        show_warning(f"Import vectors: {warning.message}")
    layer = add_annotation_layer(viewer, image, schema)
    layer.data = labels
    layer.name = f"{Path(vector_file).stem} on {image.name}"
    show_info(f"Burnt {len(frame)} shapes onto '{image.name}': {int((labels > 0).sum())} pixels.")


def _dtype(schema: object) -> str:
    return "uint8" if schema is None else str(schema.label_dtype)


def vector_import_widget():
    """npe2 widget factory: the magicgui form of :func:`import_vectors`."""
    return magic_factory(
        import_vectors,
        call_button="Import",
        vector_file={
            "label": "vector file",
            "filter": "Vectors (*.geojson *.gpkg *.shp *.fgb)",
        },
        image={"label": "onto raster"},
        attribute={"tooltip": "column holding class ids or class names; empty: burn 1"},
        schema_preset={"choices": [_NO_SCHEMA, *list_presets()], "label": "class names"},
    )()
