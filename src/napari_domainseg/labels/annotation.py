"""Label arrays made for an image: same grid, same placement, a reference to the source.

Shared by both domains. A labels layer made with :func:`new_label_array` and
:func:`annotation_metadata` has the image's shape and geometry exactly, so it
exports aligned with the image by construction.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

from napari_domainseg.labels.schema import LabelSchema

NOT_INHERITED = frozenset({"window", "warnings", "patient", "band", "schema", "annotation_id"})
"""Image description that is about its display or the patient, not about the labels."""


def new_label_array(
    shape: tuple[int, ...], schema: LabelSchema | None = None, instances: bool = False
) -> np.ndarray:
    """An empty (all 0, unlabeled) label array.

    uint8, or uint16 when the schema's ids exceed 255; int32 for instance
    labels (one id per object rather than per class).
    """
    if instances:
        return np.zeros(shape, dtype=np.int32)
    dtype = schema.label_dtype if schema is not None else np.dtype(np.uint8)
    return np.zeros(shape, dtype=dtype)


def annotation_metadata(
    image_metadata: dict[str, Any], image_name: str, image_shape: tuple[int, ...]
) -> dict[str, Any]:
    """The description of a label layer made for an image.

    The image's description is inherited (modality, scaling and geometry-unknown records,
    nodata, band names, source path, ...) but for display settings, warnings and patient
    data; the geometry itself travels beside it as a typed value (the napari adapter shares
    the image's). ``source_image`` names the image and its shape;
    ``annotation_id`` is new for every labels layer.
    """
    inherited = {k: v for k, v in image_metadata.items() if k not in NOT_INHERITED}
    inherited["source_image"] = {"name": image_name, "shape": list(image_shape)}
    inherited["annotation_id"] = uuid.uuid4().hex  # tells this layer's autosaves apart
    return inherited
