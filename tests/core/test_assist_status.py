"""Review status per slice / tile, per-class review, and acceptance provenance (undo, export)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_domainseg.files import load
from napari_domainseg.ops.assist import (
    AssistImage,
    ForestSettings,
    PixelClassifier,
    Proposal,
    default_recipe,
)
from napari_domainseg.ops.assist.accept import (
    RUNS_ENCODING,
    accept_edits,
    acceptance_record,
    add_record,
    clear_redo,
    decode_flat,
    encode_flat,
    export_record,
    is_applied,
    pixel_runs,
    pixels_by_class,
    reconcile,
    runs_to_flat,
)
from napari_domainseg.ops.assist.review import (
    class_summary,
    tally,
    uncertain_slices,
    uncertain_tiles,
)
from napari_domainseg.ops.assist.status import (
    CORRECTED,
    NOT_STARTED,
    PAINTED,
    PRE_LABELED,
    AcceptedUnits,
    Layout,
    StatusBoard,
    status_record,
)

OTHER = 100
FAST = ForestSettings(n_estimators=16, max_depth=10, samples_per_class=800, n_jobs=2)
STROKES = (2, 6)  # slices of the crop painted by hand


@pytest.fixture(scope="module")
def mr(shared_data):
    """The real abdominal MR crop (12x56x72), hand strokes on 2 slices and the model's proposal."""
    folder = shared_data / "medical" / "totalseg_mr"
    image = load(folder / "mr.nii.gz")
    truth = load(folder / "labels.nii.gz", labels=True).array
    crop = (slice(4, 16), slice(20, 76), slice(20, 92))
    truth = truth[crop].astype(np.uint16)
    truth[truth == 0] = OTHER
    volume = AssistImage.from_volume(
        image.array[crop].astype(np.float32), image.spacing, name="mr", unit="mm"
    )
    strokes = np.zeros_like(truth)
    for index in STROKES:
        strokes[index, ::5, ::5] = truth[index, ::5, ::5]
    model = PixelClassifier(default_recipe(volume.spacing, "mm"), FAST)
    model.fit(volume, strokes)
    return model, model.predict(volume), strokes, truth


def accept(labels, proposal, model, records, **options):
    """What the Assist tab does: edits, digests before and after, the record."""
    edits = accept_edits(labels, proposal, **options)
    units = AcceptedUnits(labels, edits, records)
    for indices, value in edits:
        labels[indices] = value
    record = acceptance_record(model, edits, labels, units=units.after(labels), scope="test")
    return edits, record


def test_status_not_started_painted_pre_labeled_corrected(mr):
    model, proposal, strokes, _ = mr
    labels = strokes.copy()
    board = StatusBoard(Layout(labels.shape, axis=0))
    board.refresh(labels)
    assert board.status[0] == NOT_STARTED and board.status[STROKES[0]] == PAINTED
    part = (slice(5, 9), slice(0, 56), slice(0, 72))  # accept slices 5-8 (6 has strokes)
    sub = Proposal(part, proposal.classes, *(a[part] for a in (proposal.labels,
                   proposal.uncertainty, proposal.valid)))  # fmt: skip
    records: list[dict] = []
    _, record = accept(labels, sub, model, records)
    records.append(record)
    board.set_records(records)
    board.refresh(labels)
    assert [board.status[i] for i in range(5, 9)] == [PRE_LABELED] * 4
    assert board.status[STROKES[0]] == PAINTED and board.status[11] == NOT_STARTED
    assert board.summary().startswith("7 not started · 1 painted · 4 pre-labeled · 0 corrected")
    before = labels[7].copy()
    labels[7, 10, 10] = 0 if labels[7, 10, 10] else 1  # the annotator edits one pixel
    board.refresh(labels, [7])
    assert board.status[7] == CORRECTED and board.status[8] == PRE_LABELED
    labels[7] = before  # undone: exactly as accepted again
    board.refresh(labels, [7])
    assert board.status[7] == PRE_LABELED
    labels[7, 10, 10] = 0 if labels[7, 10, 10] else 1
    labels[7, labels[7] == OTHER] = 0  # room for a second acceptance on the corrected slice
    _, second = accept(labels, proposal, model, records)  # everything left
    records.append(second)
    board.set_records(records)
    board.refresh(labels)
    assert board.status[7] == CORRECTED, "corrected stays corrected after a later acceptance"
    assert board.status[0] == PRE_LABELED and board.status[STROKES[0]] == PRE_LABELED
    exported = status_record(labels, records)
    assert exported["units"] == "axis 0" and exported["counts"][CORRECTED] == 1
    assert exported[CORRECTED] == ["7"]


def test_tile_layout_keys_and_regions():
    layout = Layout((600, 530), tile=256)
    assert layout.keys() == [(r, c) for r in (0, 256, 512) for c in (0, 256, 512)]
    assert layout.region((512, 512)) == (slice(512, 600), slice(512, 530))
    assert layout.keys_in((slice(250, 260), slice(0, 10))) == [(0, 0), (256, 0)]
    indices = (np.array([0, 599, 300]), np.array([529, 0, 300]))
    assert layout.keys_of(indices) == [(0, 512), (256, 256), (512, 0)]
    assert layout.key_of((599.4, 10.0)) == (512, 0)


def test_tally_adds_like_a_recount_and_ranks_per_class(mr):
    _, proposal, _, _ = mr
    layout = Layout(proposal.labels.shape, axis=0)
    whole = tally(proposal, layout)
    # one prediction of slices 0-5, then a second of slices 3-11 replacing 3-5
    first = (slice(0, 6), slice(0, 56), slice(0, 72))
    second = (slice(3, 12), slice(0, 56), slice(0, 72))
    part = lambda r: Proposal(  # noqa: E731
        r, proposal.classes, proposal.labels[r], proposal.uncertainty[r], proposal.valid[r]
    )
    running = tally(part(first), layout) + tally(part(second), layout)
    running = running - tally(part((slice(3, 6), slice(0, 56), slice(0, 72))), layout)
    np.testing.assert_array_equal(running.counts, whole.counts)
    np.testing.assert_allclose(running.sums, whole.sums)
    ranked = whole.ranked()
    direct = uncertain_slices(proposal)
    assert [r.index for r in ranked] == [r.index for r in direct]
    assert ranked[0].uncertainty == pytest.approx(direct[0].uncertainty)
    liver = 5
    per_class = whole.ranked(liver)
    brute = uncertain_slices(proposal, class_id=liver)
    assert [r.index for r in per_class] == [r.index for r in brute] and per_class
    worst = per_class[0].index
    mask = proposal.labels[worst] == liver
    assert per_class[0].uncertainty == pytest.approx(proposal.uncertainty[worst][mask].mean())
    summary = {s.value: s for s in whole.summary()}
    assert summary == {s.value: s for s in class_summary(proposal)}
    assert sum(s.pixels for s in summary.values()) == int(proposal.valid.sum())
    rare = [s.value for s in summary.values() if s.rare]
    assert rare and all(summary[v].pixels < 500 or summary[v].fraction < 0.01 for v in rare)
    assert not summary[OTHER].rare


def test_tiles_tally_matches_uncertain_tiles_on_a_real_scene(shared_data):
    import rasterio

    with rasterio.open(shared_data / "geo/landsat_rgb/RGB.byte.tif") as src:
        bands = src.read().astype(np.float32)
    uncertainty = (bands[0] / 255.0).astype(np.float32)  # a real image as an uncertainty map
    labels = np.select([bands[2] > bands[0] + 15, bands[0] > 120], [1, 7], 2).astype(np.uint16)
    valid = bands.max(axis=0) > 0
    labels[~valid] = 0
    region = (slice(0, labels.shape[0]), slice(0, labels.shape[1]))
    proposal = Proposal(region, (1, 2, 7), labels, uncertainty, valid)
    layout = Layout(labels.shape, tile=256)
    whole = tally(proposal, layout)
    for class_id in (None, 7):
        brute = uncertain_tiles(proposal, 256, class_id=class_id)
        ranked = whole.ranked(class_id)
        assert [r.index for r in ranked] == [r.index for r in brute]
        assert [r.pixels for r in ranked] == [r.pixels for r in brute]
    # a window not on tile boundaries adds into the scene's tiles
    window = (slice(100, 420), slice(300, 700))
    part = Proposal(window, (1, 2, 7), labels[window], uncertainty[window], valid[window])
    rest = proposal.valid.copy()
    rest[window] = False
    others = Proposal(region, (1, 2, 7), labels, uncertainty, rest)
    combined = tally(part, layout) + tally(others, layout)
    np.testing.assert_array_equal(combined.counts, whole.counts)


def test_undo_and_redo_move_the_record_and_export_is_compact(mr):
    model, proposal, strokes, _ = mr
    labels = strokes.copy()
    assist: dict = {"accepted": []}
    _, record = accept(labels, proposal, model, assist["accepted"])
    add_record(assist, record)
    accepted = labels.copy()
    flat = runs_to_flat(record["pixels"])
    assert flat.size == sum(record["pixels_per_class"].values())
    changed = np.flatnonzero((accepted != strokes).ravel())
    np.testing.assert_array_equal(flat, changed)
    assert record["pixels_encoding"] == RUNS_ENCODING
    by_class = pixels_by_class(record["pixels"])
    assert sorted(by_class) == sorted(int(k) for k in record["pixels_per_class"])
    for class_id, indices in by_class.items():  # each class's pixels hold that class
        assert (accepted.ravel()[indices] == class_id).all()
        assert indices.size == record["pixels_per_class"][str(class_id)]
    assert 0 < len(record["probe"]["index"]) <= 1024
    assert not reconcile(labels, assist) and is_applied(labels, record)
    undone = strokes.copy()  # what Ctrl+Z gives back
    assert reconcile(undone, assist)
    assert assist["accepted"] == [] and assist["undone"] == [record]
    assert export_record(assist, undone) is None
    assert reconcile(accepted, assist), "a redo puts it back"
    assert assist["accepted"] == [record] and assist["undone"] == []
    corrected = accepted.copy()
    corrected[corrected == 5] = OTHER  # most of the liver corrected by hand: still applied
    assert is_applied(corrected, record)
    out = export_record(assist, accepted)
    text = json.dumps(out)
    assert out["assisted_pixels"] == flat.size and out["accepted"][0]["pixels"] == record["pixels"]
    assert "probe" not in text and "digests" not in text, "internal bookkeeping stays out"
    assert out["status"]["counts"][PRE_LABELED] == labels.shape[0]
    model_id = out["accepted"][0]["model_id"]
    assert out["models"][model_id]["classes"] == list(model.classes)


def test_an_undone_acceptance_is_not_revived_by_a_new_edit(mr):
    model, proposal, strokes, _ = mr
    labels = strokes.copy()
    assist: dict = {"accepted": []}
    _, first = accept(labels, proposal, model, assist["accepted"])
    add_record(assist, first)
    total = export_record(assist, labels)["assisted_pixels"]
    labels[...] = strokes  # Ctrl+Z
    assert reconcile(labels, assist) and assist["undone"] == [first]
    _, again = accept(labels, proposal, model, assist["accepted"])  # the same pixels again
    add_record(assist, again)
    assert assist["undone"] == [], "a new acceptance clears the redo steps, as napari does"
    reconcile(labels, assist)
    assert assist["accepted"] == [again]
    assert export_record(assist, labels)["assisted_pixels"] == total, "counted once"
    # the same by hand: undo, then fill the same pixels with a brush (a paint event)
    labels[...] = strokes
    reconcile(labels, assist)
    assert assist["undone"] == [again]
    assert clear_redo(assist) and not clear_redo(assist)
    labels[...] = np.where(strokes == 0, proposal.labels, strokes)
    reconcile(labels, assist)
    assert assist["accepted"] == [] and export_record(assist, labels) is None


def test_pixels_have_no_run_limit_and_the_older_form_is_read():
    shape = (2, 700, 700)
    labels = np.zeros(shape, np.uint16)
    labels[:, :, ::2] = 3  # 490 000 runs of one pixel, more than the old 200 000 limit
    labels[1, 5, 1] = 4
    edits = [(np.nonzero(labels == 3), 3), (np.nonzero(labels == 4), 4)]
    record = acceptance_record({"id": "test"}, edits, labels, scope="all")
    assert set(record["pixels"]) == {"3", "4"}
    assert len(json.dumps(record["pixels"])) < 20_000, "compact"
    found = pixels_by_class(record["pixels"])
    np.testing.assert_array_equal(found[3], np.flatnonzero(labels == 3))
    np.testing.assert_array_equal(found[4], np.flatnonzero(labels == 4))
    np.testing.assert_array_equal(runs_to_flat(record["pixels"]), np.flatnonzero(labels))
    older = pixel_runs(np.nonzero(labels[0, :4]), (4, 700))  # a list of [start, length]
    assert pixels_by_class(older).keys() == {None}
    np.testing.assert_array_equal(runs_to_flat(older), np.flatnonzero(labels[0, :4]))
    for flat in (np.zeros(0, np.int64), np.array([0, 1, 2, 7, 2**40])):
        np.testing.assert_array_equal(decode_flat(encode_flat(flat)), flat)


def test_export_skips_other_shapes_and_leaves_out_the_image_name(mr):
    model, proposal, strokes, _ = mr
    labels = strokes.copy()
    assist: dict = {"accepted": []}
    _, record = accept(labels, proposal, model, assist["accepted"])
    add_record(assist, record)
    assert record["model"]["trained_on"]["image"] == "mr", "kept in the layer metadata"
    other = dict(record, shape=[1, 2, 3], probe={})  # made for another layer shape
    add_record(assist, other)
    out = export_record(assist, labels)
    assert len(out["accepted"]) == 1
    assert out["assisted_pixels"] == runs_to_flat(record["pixels"]).size
    (model_entry,) = out["models"].values()
    assert "image" not in model_entry["trained_on"] and model_entry["trained_on"]["shape"]
    assert '"mr"' not in json.dumps(out)
    # a prompt backend's description works as the model
    box = acceptance_record({"id": "box prompt: local", "backends": ["local"]}, [], labels)
    assert box["model"] == {"id": "box prompt: local", "backends": ["local"]}
