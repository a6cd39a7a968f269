"""Autosave and recovery: labels survive a session killed mid-annotation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._autosave import Autosaver, layer_recovery_key
from napari_domainseg._widgets._annotation_panel import AnnotationPanel
from napari_domainseg.ops.recovery import RecoveryStore
from napari_domainseg.privacy import pseudonym

PLUGIN = "napari-domainseg"
SERIES = "medical/seg_dcmqi/ct-3slice"


def test_edited_layers_are_saved_and_unedited_ones_are_not(
    make_napari_viewer, shared_data, tmp_path
):
    viewer = make_napari_viewer()
    viewer.open(str(shared_data / SERIES), plugin=PLUGIN)
    autosaver = Autosaver(viewer, RecoveryStore(tmp_path), interval_s=0)
    panel = AnnotationPanel(viewer)
    labels = panel.new_annotation_layer()
    assert autosaver.save_dirty(blocking=True) == 0, "nothing edited yet"
    labels.data_setitem((np.array([1]), np.array([2]), np.array([3])), 7)
    assert autosaver.save_dirty(blocking=True) == 1
    saved = autosaver.store.latest(layer_recovery_key(labels))
    np.testing.assert_array_equal(saved.labels, labels.data)
    assert saved.metadata["series_instance_uid"] == pseudonym(
        state.volume_geometry_of(panel.image()).source.series_instance_uid
    ), "the store keeps a pseudonym of the series, never its UID"
    assert autosaver.save_dirty(blocking=True) == 0, "saved layers are clean again"


def test_labels_come_back_after_the_session_is_killed(
    make_napari_viewer, shared_data, tmp_path, monkeypatch
):
    monkeypatch.setenv("NAPARI_DOMAINSEG_RECOVERY", str(tmp_path / "recovery"))
    script = Path(__file__).with_name("crashing_session.py")
    env = {**os.environ, "NAPARI_DOMAINSEG_RECOVERY": str(tmp_path / "recovery")}
    result = subprocess.run(
        [sys.executable, str(script), str(shared_data / SERIES)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert "SAVED" in result.stdout

    viewer = make_napari_viewer()
    viewer.open(str(shared_data / SERIES), plugin=PLUGIN)
    panel = AnnotationPanel(viewer)
    assert panel.recovery.check()
    assert "Recovered labels" in panel.recovery.status.text()
    (restored,) = panel.recovery.restore()
    expected = np.zeros(restored.data.shape, np.uint8)
    expected[2, np.arange(50), np.arange(50)] = 4
    np.testing.assert_array_equal(restored.data, expected)
    np.testing.assert_allclose(restored.affine.affine_matrix, panel.image().affine.affine_matrix)
    assert restored.name.endswith("(recovered)")


def test_opening_an_image_with_autosaved_labels_says_so(
    make_napari_viewer, shared_data, tmp_path, monkeypatch
):
    from napari_domainseg._napari._autosave import offer_recovery
    from napari_domainseg._napari._medical_reader import read_dicom

    monkeypatch.setenv("NAPARI_DOMAINSEG_RECOVERY", str(tmp_path))
    ((data, kwargs, _),) = read_dicom(str(shared_data / SERIES))
    assert offer_recovery(kwargs, data.shape) is None
    RecoveryStore(tmp_path).save(
        state.recovery_key_of(kwargs, data.shape),
        np.ones(data.shape, np.uint8),
        "liver",
        state.recovery_metadata(kwargs),
    )
    assert "Labels 'liver' for this image were autosaved" in offer_recovery(kwargs, data.shape)


def test_an_instance_layer_comes_back_with_its_objects(
    make_napari_viewer, shared_data, tmp_path, monkeypatch
):
    from napari_domainseg.labels.instances import Instance, InstanceTable
    from napari_domainseg.labels.presets import load_preset

    monkeypatch.setenv("NAPARI_DOMAINSEG_RECOVERY", str(tmp_path))
    viewer = make_napari_viewer()
    viewer.open(str(shared_data / SERIES), plugin=PLUGIN)
    panel = AnnotationPanel(viewer)
    labels = panel.new_annotation_layer()
    schema = load_preset("ct_lesions")
    lesion = schema.by_path("liver/lesion").id
    table = InstanceTable((Instance(4, lesion, {"confidence": "high"}), Instance(5, lesion)))
    labels.data = np.zeros(labels.data.shape, np.uint16)
    state.set_schema(labels, schema)
    state.set_instances(labels, table, schema)
    labels.data_setitem((np.array([1, 1]), np.array([2, 2]), np.array([3, 4])), 4)
    labels.data_setitem((np.array([1]), np.array([2]), np.array([5])), 5)  # touching
    autosaver = Autosaver(viewer, RecoveryStore(tmp_path), interval_s=0)
    autosaver.watch(labels)
    labels.data_setitem((np.array([0]), np.array([0]), np.array([0])), 5)
    assert autosaver.save_dirty(blocking=True) == 1
    (restored,) = panel.recovery.restore()
    assert state.is_instance_layer(restored)
    assert state.instances_of(restored) == table
    np.testing.assert_array_equal(restored.data, labels.data)
