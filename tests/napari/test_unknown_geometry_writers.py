"""napari's writers refuse a volume whose geometry is unknown; a named file type exports it anyway.

The image is a real series copied without PixelSpacing and opened through the plugin's reader
(layer name "... (geometry unknown)"); its labels inherit the mark. The default writers refuse,
naming the file; the Save dialog's "geometry unknown (export anyway)" writers write and record it.
"""

from __future__ import annotations

import json

import npe2
import pytest
from napari.layers import Image
from napari.plugins._npe2 import file_extensions_string_for_layers
from napari.plugins.io import save_layers

from napari_domainseg.medical.geometry_checks import geometry_unknown
from napari_domainseg.medical.nifti import volume_from_nifti

from ..helpers.dicom_copies import without_pixel_spacing
from .layer_helpers import labels_for

PLUGIN = "napari-domainseg"


@pytest.fixture(autouse=True, scope="module")
def _discover_plugins():
    npe2.PluginManager.instance().discover()


@pytest.fixture
def image(shared_data, tmp_path) -> Image:
    folder = without_pixel_spacing(shared_data / "medical" / "mr_sagittal", tmp_path / "series")
    ((data, kwargs, _),) = npe2.read([str(folder)], stack=False, plugin_name=PLUGIN)
    layer = Image(data, **kwargs)
    assert layer.name.endswith("(geometry unknown)")
    return layer


def writer_named(layer, display_name: str):
    filters, writers = file_extensions_string_for_layers([layer])
    names = [w.display_name for w in writers]
    assert display_name in names, filters
    return writers[names.index(display_name)]


@pytest.mark.parametrize("name", ["m.nii.gz", "m.nrrd", "m.dcm"])
def test_labels_writer_refuses_naming_the_file(image, tmp_path, name):
    labels = labels_for(image)
    labels.data[1, 10:20, 10:20] = 1
    with pytest.raises(ValueError, match=f"{name}: not written: the geometry.*unknown"):
        npe2.write(str(tmp_path / name), [labels.as_layer_data_tuple()], plugin_name=PLUGIN)
    assert not (tmp_path / name).exists()


def test_image_writer_refuses_naming_the_file(image, tmp_path):
    with pytest.raises(ValueError, match=r"v\.nii\.gz: not written: the geometry.*unknown"):
        npe2.write(str(tmp_path / "v.nii.gz"), [image.as_layer_data_tuple()], plugin_name=PLUGIN)


def test_export_anyway_file_types_write_and_record_it(image, tmp_path):
    labels = labels_for(image)
    labels.data[1, 10:20, 10:20] = 1
    writer = writer_named(labels, "Medical label map, geometry unknown (export anyway)")
    written = save_layers(str(tmp_path / "m.nii.gz"), [labels], _writer=writer)
    assert written == [str(tmp_path / "m.nii.gz"), str(tmp_path / "m.labels.json")]
    sidecar = json.loads((tmp_path / "m.labels.json").read_text())
    assert any("PixelSpacing" in r for r in sidecar["source"]["geometry_unknown"])
    writer = writer_named(image, "Medical volume, geometry unknown (export anyway)")
    save_layers(str(tmp_path / "v.nii.gz"), [image], _writer=writer)
    assert json.loads((tmp_path / "v.json").read_text())["source"]["geometry_unknown"]
    with pytest.warns(UserWarning, match="geometry unknown"):
        assert geometry_unknown(volume_from_nifti(tmp_path / "v.nii.gz").metadata)
