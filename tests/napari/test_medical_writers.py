"""Labels layers through the npe2 writers, and back through the npe2 readers."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import npe2
import numpy as np
import pytest
from napari.layers import Image, Labels

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._writers import write_labels
from napari_domainseg.labels import load_preset
from napari_domainseg.medical.nifti import volume_from_nifti

from .layer_helpers import labels_for
from .test_medical_reader import CASES, canonical_reference, read_layer

PLUGIN = "napari-domainseg"


@pytest.fixture(autouse=True, scope="module")
def _discover_plugins():
    npe2.PluginManager.instance().discover()


def save(layer: Labels, path: Path) -> list[str]:
    return npe2.write(str(path), [layer.as_layer_data_tuple()], plugin_name=PLUGIN)


@pytest.mark.parametrize("source, reference", CASES, ids=[c[0] for c in CASES])
def test_labels_saved_by_napari_land_on_dcm2niix_voxels(shared_data, tmp_path, source, reference):
    image = read_layer(shared_data / "medical" / source)
    labels = labels_for(image)
    first, last = (0, 1, 1), tuple(np.array(image.data.shape) - [1, 2, 2])
    labels.data[first] = 1
    labels.data[last] = 2
    (written, *_) = save(labels, tmp_path / "labels.nii.gz")
    exported = nib.as_closest_canonical(nib.load(written))
    theirs = canonical_reference(shared_data, reference)
    np.testing.assert_allclose(exported.affine, theirs.affine, atol=1e-3)
    # The dcm2niix voxel under each label holds the intensity napari showed under it.
    their_data = np.asarray(theirs.dataobj).reshape(exported.shape)
    for value, index in ((1, first), (2, last)):
        (voxel,) = np.argwhere(np.asarray(exported.dataobj) == value)
        assert their_data[tuple(voxel)] == image.data[index]


@pytest.mark.parametrize("extension", [".nii.gz", ".nrrd", ".seg.nrrd"])
@pytest.mark.parametrize("source", ["mr_sagittal", "bad_input/gantry_tilt", "enhanced_ct"])
def test_round_trip_through_writer_and_reader(shared_data, tmp_path, source, extension):
    image = read_layer(shared_data / "medical" / source)
    labels = labels_for(image, load_preset("ct_abdomen_head"))
    labels.data[0, :3, :4] = 1
    labels.data[-1, -3:, -2:] = 5
    save(labels, tmp_path / f"mask{extension}")
    ((data, kwargs, kind),) = npe2.read(
        [str(tmp_path / f"mask{extension}")], stack=False, plugin_name=PLUGIN
    )
    assert kind == "labels"
    again = Labels(data, **kwargs)
    np.testing.assert_array_equal(again.data, labels.data)
    for index in ([0, 0, 0], np.array(labels.data.shape) - 1):
        np.testing.assert_allclose(
            again.data_to_world(index), labels.data_to_world(index), atol=1e-4
        )
    np.testing.assert_allclose(
        state.volume_geometry_of(again).affine, state.volume_geometry_of(image).affine, atol=1e-4
    )
    assert state.schema_of(again).classes[0].name == "liver"


def test_dicom_seg_reopens_on_its_series_found_beside_it(shared_data, tmp_path):
    study = tmp_path / "study"
    shutil.copytree(shared_data / "medical/bad_input/gantry_tilt", study / "ct")
    image = read_layer(study / "ct")
    labels = labels_for(image, load_preset("ct_abdomen_head"))
    labels.data[1, 100:120, 200:230] = 2
    (study / "seg").mkdir()
    save(labels, study / "seg" / "spleen.dcm")
    layers = npe2.read([str(study / "seg" / "spleen.dcm")], stack=False, plugin_name=PLUGIN)
    assert [kind for _, _, kind in layers] == ["image", "labels"]
    reopened_image = Image(layers[0][0], **layers[0][1])
    reopened_labels = Labels(layers[1][0], **layers[1][1])
    np.testing.assert_array_equal(reopened_labels.data, labels.data)
    for index in ([1, 100, 200], [1, 119, 229]):
        np.testing.assert_allclose(
            reopened_labels.data_to_world(index), reopened_image.data_to_world(index), atol=1e-6
        )
    # Opening the study folder brings the SEG along, on the series.
    layers = npe2.read([str(study)], stack=False, plugin_name=PLUGIN)
    assert [kind for _, _, kind in layers] == ["image", "labels"]
    np.testing.assert_array_equal(layers[1][0], labels.data)


def test_napari_save_replaces_whole_what_its_dialog_confirmed(shared_data, tmp_path):
    image = read_layer(shared_data / "medical/seg_dcmqi/ct-3slice")
    labels = labels_for(image)
    labels.data[1, 2, 3] = 4
    target = tmp_path / "mask.nii.gz"
    target.write_bytes(b"yesterday's mask")
    (tmp_path / "mask.labels.json").write_text("{}")
    write_labels(str(target), labels.data, labels._get_state())
    np.testing.assert_array_equal(volume_from_nifti(target).array, labels.data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.labels.json", "mask.nii.gz"]
    assert "classes" in (tmp_path / "mask.labels.json").read_text(), "the sidecar replaced too"


def test_seg_from_a_plain_labels_layer_says_what_to_do(shared_data, tmp_path):
    labels = Labels(np.ones((3, 40, 40), np.uint8), scale=(2, 1, 1))
    with pytest.raises(ValueError, match=r"Cannot write .*mask\.dcm.*New annotation layer"):
        write_labels(str(tmp_path / "mask.dcm"), labels.data, labels._get_state())
    assert not list(tmp_path.iterdir())


def test_plain_labels_layer_exports_with_its_own_transform(tmp_path):
    labels = Labels(np.zeros((3, 4, 5), np.uint8), scale=(2.5, 0.5, 0.75), translate=(10, -20, 30))
    labels.data[2, 3, 4] = 7
    (path, *_) = write_labels(str(tmp_path / "plain.nii"), labels.data, labels._get_state())
    image = nib.load(path)
    (voxel,) = np.argwhere(np.asarray(image.dataobj) == 7)
    ras = image.affine @ [*voxel, 1]
    z, y, x = labels.data_to_world([2, 3, 4])
    np.testing.assert_allclose(ras[:3], [-x, -y, z], atol=1e-6)  # LPS (z, y, x) -> RAS


def test_a_moved_layer_exports_where_napari_shows_it(shared_data, tmp_path):
    image = read_layer(shared_data / "medical/seg_dcmqi/ct-3slice")
    labels = labels_for(image)
    labels.translate = np.asarray(labels.translate) + np.array([0.0, 10.0, 0.0])
    labels.data[1, 5, 6] = 1
    (path, *_) = write_labels(str(tmp_path / "moved.nii"), labels.data, labels._get_state())
    exported = nib.load(path)
    (voxel,) = np.argwhere(np.asarray(exported.dataobj) == 1)
    z, y, x = labels.data_to_world([1, 5, 6])
    np.testing.assert_allclose((exported.affine @ [*voxel, 1])[:3], [-x, -y, z], atol=1e-4)
