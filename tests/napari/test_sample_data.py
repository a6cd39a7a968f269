"""Sample data through the npe2 commands, checked as napari layers (no viewer needed)."""

import numpy as np
import pytest
import rasterio
import rasterio.transform
from napari.layers import Image, Labels

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._sample_data import make_ct_phantom, make_synthetic_scene
from napari_domainseg.medical.phantom import PhantomGeometry, phantom_hu
from napari_domainseg.sample_files import synthetic_scene_file


def build(layer_data):
    data, kwargs, kind = layer_data
    return {"image": Image, "labels": Labels}[kind](data, **kwargs)


def test_ct_phantom_layers_sit_at_lps_millimetres():
    image, labels = (build(d) for d in make_ct_phantom())
    geometry = PhantomGeometry()
    np.testing.assert_array_equal(image.data, phantom_hu())
    x0, y0, z0 = geometry.origin_lps
    dz, dy, dx = geometry.spacing
    for index in [(0, 0, 0), (47, 159, 159), (10, 20, 30)]:
        expected = (z0 + dz * index[0], y0 + dy * index[1], x0 + dx * index[2])
        np.testing.assert_allclose(image.data_to_world(index), expected, atol=1e-3)
        np.testing.assert_allclose(labels.data_to_world(index), expected, atol=1e-3)
    assert image.contrast_limits == [-160.0, 240.0], "abdomen window 40/400 from the header"
    assert labels.data.shape == image.data.shape
    assert state.schema_of(labels).name == "CT abdomen and head"
    liver = labels.colormap.map(np.array([1]))[0]
    np.testing.assert_allclose(liver[:3], np.array([0xDD, 0x82, 0x65]) / 255, atol=1e-6)


def test_synthetic_scene_layers_sit_at_pixel_centres():
    *bands, labels = (build(d) for d in make_synthetic_scene())
    assert [b.name for b in bands][:3] == ["scene B2 blue", "scene B3 green", "scene B4 red"]
    with rasterio.open(synthetic_scene_file()) as src:
        transform = src.transform
    for layer in [*bands, labels]:
        for row, col in [(0, 0), (511, 0), (0, 511), (123, 456)]:
            x, y = rasterio.transform.xy(transform, row, col, offset="center")
            np.testing.assert_allclose(layer.data_to_world((row, col)), (y, x), atol=1e-6 * 10)
    assert state.raster_grid_of(bands[0]).crs.to_epsg() == 32633
    low, high = bands[2].contrast_limits
    assert 0 < low < high, "stretch computed over valid pixels, nodata excluded"


@pytest.mark.parametrize("maker", [make_ct_phantom, make_synthetic_scene])
def test_samples_are_cached_and_reproducible(maker):
    first = maker()[0][0]
    second = maker()[0][0]
    if isinstance(first, list):  # a multiscale pyramid: compare full resolution
        first, second = first[0], second[0]
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))
