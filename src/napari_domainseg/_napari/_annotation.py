"""The "New annotation layer for image" command: labels on the image's exact grid."""

from __future__ import annotations

from typing import Any

from napari_domainseg._napari._layer_data import METADATA_KEY, schema_colormap

__all__ = ["add_annotation_layer", "new_annotation_layer"]


def _target_image(viewer: Any) -> Any:
    import napari

    active = viewer.layers.selection.active
    if isinstance(active, napari.layers.Image):
        return active
    images = [layer for layer in viewer.layers if isinstance(layer, napari.layers.Image)]
    plugin_images = [layer for layer in images if METADATA_KEY in layer.metadata]
    candidates = plugin_images or images
    return candidates[-1] if candidates else None


def add_annotation_layer(viewer: Any, image: Any, schema: Any = None) -> Any:
    """Add a labels layer with ``image``'s shape, transform and geometry reference.

    The labels are uint8 (uint16 when the schema has ids above 255), all 0;
    they inherit the image's exact affine, reorientation and source
    references from its metadata, so every export lines up with the image.
    """
    from napari_domainseg.labels.annotation import annotation_metadata, new_label_array
    from napari_domainseg.labels.schema import LabelSchema

    entry = dict(image.metadata.get(METADATA_KEY, {}))
    if schema is None and entry.get("schema"):
        schema = LabelSchema.from_dict(entry["schema"])
    shape = image.data.shape[:-1] if image.rgb else image.data.shape
    metadata = annotation_metadata(entry, image.name, tuple(shape))
    if schema is not None:
        metadata["schema"] = schema.to_dict()
    labels = viewer.add_labels(
        new_label_array(tuple(shape), schema),
        name=f"{image.name} labels",
        metadata={METADATA_KEY: metadata},
        scale=image.scale,
        translate=image.translate,
        rotate=image.rotate,
        shear=image.shear,
        affine=image.affine,
        axis_labels=image.axis_labels,
        units=image.units,
    )
    if schema is not None:
        labels.colormap = schema_colormap(schema)
    return labels


def new_annotation_layer() -> None:
    """npe2 command: add a labels layer for the selected (or last) image layer."""
    from napari.utils.notifications import show_info, show_warning

    from napari import current_viewer

    viewer = current_viewer()
    if viewer is None:
        return
    image = _target_image(viewer)
    if image is None:
        show_warning("New annotation layer: open an image first (no image layer in the viewer).")
        return
    labels = add_annotation_layer(viewer, image)
    show_info(f"Added '{labels.name}' on the grid of '{image.name}' ({labels.data.dtype}).")
