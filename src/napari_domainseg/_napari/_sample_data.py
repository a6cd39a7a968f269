"""npe2 sample data: a CT phantom DICOM series and a 4-band GeoTIFF scene.

Both are generated once into the user cache folder and then opened through
the plugin's own readers, so the samples exercise the real code path.
"""

from __future__ import annotations

from napari_domainseg._napari._layer_data import (
    LayerData,
    labels_layer_data,
    scene_layer_data,
    volume_layer_data,
)
from napari_domainseg._napari._viewer_setup import watch_current_viewer
from napari_domainseg.geo.scene import open_scene
from napari_domainseg.geo.synthetic import synthetic_scene_labels
from napari_domainseg.labels.presets import load_preset
from napari_domainseg.medical.phantom import phantom_labels
from napari_domainseg.medical.series import read_dicom_series
from napari_domainseg.sample_files import ct_phantom_folder, synthetic_scene_file

__all__ = ["make_ct_phantom", "make_synthetic_scene"]


def make_ct_phantom() -> list[LayerData]:
    """CT abdomen phantom (DICOM series, HU) with its reference organ labels."""
    volume = read_dicom_series(ct_phantom_folder())
    image = volume_layer_data(volume, "CT phantom")
    labels = labels_layer_data(
        phantom_labels(),
        image[1],
        "CT phantom organs (reference)",
        schema=load_preset("ct_abdomen_head"),
    )
    labels[1]["opacity"] = 0.4
    watch_current_viewer()
    return [image, labels]


def make_synthetic_scene() -> list[LayerData]:
    """Synthetic Sentinel-2-like scene (UTM 33N, 4 bands) with reference land cover."""
    bands = scene_layer_data(open_scene(synthetic_scene_file()), "scene")
    labels = labels_layer_data(
        synthetic_scene_labels(),
        bands[0][1],
        "scene land cover (reference)",
        schema=load_preset("land_cover"),
    )
    labels[1]["opacity"] = 0.35
    labels[1]["visible"] = False
    watch_current_viewer()
    return [*bands, labels]
