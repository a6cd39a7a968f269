"""DICOM SEGs through the napari reader: what the user is told when something is off."""

from __future__ import annotations

import shutil
from pathlib import Path

import npe2
import numpy as np
import pydicom
import pytest

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._writers import write_labels
from napari_domainseg.medical.export import export_labels
from napari_domainseg.medical.series import read_series

PLUGIN = "napari-domainseg"


@pytest.fixture(autouse=True, scope="module")
def _discover_plugins():
    npe2.PluginManager.instance().discover()


def seg_of_ct(shared_data: Path, folder: Path) -> tuple[Path, np.ndarray]:
    volume = read_series(shared_data / "medical/seg_dcmqi/ct-3slice").volume
    labels = np.zeros(volume.shape, np.uint8)
    labels[0, 10:20, 10:20] = 1
    labels[2, 30:40, 30:40] = 2
    folder.mkdir(parents=True)
    (path,) = export_labels(folder / "seg.dcm", labels, volume.geometry, None, volume.metadata)
    return path, labels


def test_seg_far_from_its_series_says_where_it_looked(shared_data, tmp_path, shown):
    seg, labels = seg_of_ct(shared_data, tmp_path / "a" / "b" / "seg")
    layers = npe2.read([str(seg)], stack=False, plugin_name=PLUGIN)
    assert [kind for *_, kind in layers] == ["labels"]
    assert (layers[0][0] > 0).sum() == (labels > 0).sum()
    (message,) = shown
    assert "seg.dcm" in message and "not beside the file" in message
    assert f"searched 0 files in {seg.parent}" in message


def test_frame_of_an_undefined_segment_is_shown_once(shared_data, tmp_path, shown):
    seg, labels = seg_of_ct(shared_data, tmp_path / "study" / "seg")
    ds = pydicom.dcmread(seg)
    ds.PerFrameFunctionalGroupsSequence[1].SegmentIdentificationSequence[
        0
    ].ReferencedSegmentNumber = 42
    ds.save_as(seg)
    shutil.copytree(shared_data / "medical/seg_dcmqi/ct-3slice", tmp_path / "study" / "ct")
    layers = npe2.read([str(seg)], stack=False, plugin_name=PLUGIN)
    assert [kind for *_, kind in layers] == ["image", "labels"]
    np.testing.assert_array_equal(layers[1][0], np.where(labels == 2, 0, labels))
    assert shown == [m for m in shown if "frame 2 references segment 42" in m] and len(shown) == 1


def test_seg_names_the_scanner_site_only_when_its_image_shows_patient_data(
    shared_data, tmp_path, monkeypatch
):
    from napari.layers import Image

    import napari
    from napari_domainseg.labels import load_preset

    from .layer_helpers import labels_for
    from .test_medical_reader import read_layer

    image = read_layer(shared_data / "medical/ct_head_study")
    labels = labels_for(image, load_preset("ct_abdomen_head"))
    labels.data[3, 10:20, 10:20] = 1
    assert isinstance(image, Image) and not state.has(labels, "patient")

    from types import SimpleNamespace

    monkeypatch.setattr(napari, "current_viewer", lambda: SimpleNamespace(layers=[image]))
    (hidden,) = write_labels(str(tmp_path / "hidden.dcm"), labels.data, labels._get_state())
    state.update(image, patient={"PatientName": "HEAD"})  # Show patient data
    (shown,) = write_labels(str(tmp_path / "shown.dcm"), labels.data, labels._get_state())

    def institutions(path: str) -> list[str]:
        items = pydicom.dcmread(path).ContributingEquipmentSequence
        return [str(item.InstitutionName) for item in items if "InstitutionName" in item]

    assert institutions(hidden) == [] and institutions(shown) == ["QMC"]
