"""Helpers shared by the napari-level tests."""

from __future__ import annotations

import numpy as np
from napari.layers import Image, Labels

from napari_domainseg._napari._layer_data import labels_layer_data


def labels_for(image: Image, schema=None) -> Labels:
    """An empty labels layer made for ``image`` the way the plugin makes it."""
    state = image._get_state()
    like = {**state, "affine": image.affine.affine_matrix}
    data, kwargs, _ = labels_layer_data(
        np.zeros(image.data.shape, np.uint8), like, "labels", schema
    )
    return Labels(data, **kwargs)
