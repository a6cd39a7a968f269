"""The series picker's *Skip unreadable slices* and *Philips precise values* check boxes.

A copy of the real sagittal MR with its last slice truncated: the picker refuses it (naming
the file) with the box off, and opens the three readable slices with it on, showing the
warning. A Philips-like copy opens in precise values only with the Philips box on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._widgets import _series_picker
from napari_domainseg._widgets._series_picker import SeriesPicker

from ..helpers.dicom_copies import philips_like, with_last_slice_truncated


@pytest.fixture
def shown(monkeypatch) -> dict[str, list[str]]:
    """The notifications the picker shows, by kind."""
    messages: dict[str, list[str]] = {"error": [], "warning": [], "info": []}
    for kind in messages:
        monkeypatch.setattr(_series_picker, f"show_{kind}", messages[kind].append)
    return messages


def scanned(viewer, qtbot, folder: Path) -> SeriesPicker:
    picker = SeriesPicker(viewer)
    picker.scan(folder)
    qtbot.waitUntil(lambda: picker.discovery is not None, timeout=20000)
    return picker


def test_unreadable_slice_refused_then_skipped_when_asked(
    make_napari_viewer, qtbot, shared_data, tmp_path, shown
):
    victim = with_last_slice_truncated(shared_data / "medical" / "mr_sagittal", tmp_path / "series")
    viewer = make_napari_viewer()
    picker = scanned(viewer, qtbot, tmp_path / "series")
    row = picker.series_list.currentItem()
    assert "1 unreadable" in row.text() and victim.name in row.toolTip()
    assert not picker.skip_unreadable_box.isChecked(), "never skipped by default"

    picker.open_selected()
    qtbot.waitUntil(lambda: bool(shown["error"]), timeout=20000)
    assert victim.name in shown["error"][0] and "Skip unreadable slices" in shown["error"][0]
    assert victim.name in picker.status.text()
    assert len(viewer.layers) == 0

    picker.skip_unreadable_box.setChecked(True)
    picker.open_selected()
    qtbot.waitUntil(lambda: len(viewer.layers) == 1, timeout=20000)
    layer = viewer.layers[0]
    assert sorted(layer.data.shape) == [3, 256, 256]  # 4 slices, the truncated one left out
    assert any(victim.name in w and "opened without them" in w for w in shown["warning"])
    assert state.get(layer, "skipped_unreadable") == [str(victim)]


def test_philips_precise_values_only_when_asked(
    make_napari_viewer, qtbot, shared_data, tmp_path, shown
):
    folder = philips_like(shared_data / "medical" / "mr_sagittal", tmp_path / "philips")
    viewer = make_napari_viewer()
    picker = scanned(viewer, qtbot, folder)
    picker.open_selected()
    qtbot.waitUntil(lambda: len(viewer.layers) == 1, timeout=20000)
    display = viewer.layers[0]
    assert state.get(display, "rescale")["mode"] == "display"
    picker.philips_box.setChecked(True)
    picker.open_selected()
    qtbot.waitUntil(lambda: len(viewer.layers) == 2, timeout=20000)
    precise = viewer.layers[1]
    assert state.get(precise, "rescale")["mode"] == "philips_precise"
    ratio = float(precise.data.max()) / float(display.data.max())
    assert ratio == pytest.approx(1 / (2.5 * 0.0731), rel=1e-4)
    assert not shown["error"]
