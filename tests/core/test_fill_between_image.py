"""Fill between slices following the image, on the real abdominal MR and on small cases."""

from __future__ import annotations

import numpy as np
import pytest

from napari_domainseg.files import load
from napari_domainseg.ops.assist.robot import dice_scores, sparse_annotation
from napari_domainseg.ops.interpolate import fill_between, fill_between_classes
from napari_domainseg.ops.interpolate_image import (
    FillCancelled,
    FillError,
    ImageFillSettings,
    fill_between_image,
)

SETTINGS = ImageFillSettings(n_jobs=1)
# Measured on totalseg_mr at 1 slice in 5 (benchmarks/bench_fill_between.py): 0.957 weighted
# (shape only 0.934, ITK MorphologicalContourInterpolator 0.896), 0.925 mean (0.877, 0.781).
WEIGHTED_AT_5 = 0.95
MEAN_AT_5 = 0.915


@pytest.fixture(scope="module")
def mr(shared_data):
    folder = shared_data / "medical" / "totalseg_mr"
    image = load(folder / "mr.nii.gz")
    truth = np.asarray(load(folder / "labels.nii.gz", labels=True).array)
    return np.asarray(image.array), truth, tuple(image.spacing)


@pytest.fixture(scope="module")
def filled_at_5(mr):
    image, truth, spacing = mr
    sparse = sparse_annotation(truth, 5)
    return sparse, fill_between_image(sparse, image, 0, spacing, settings=SETTINGS)


def _with(sparse: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = sparse.copy()
    out[values != 0] = values[values != 0]
    return out


def test_following_the_image_beats_the_shape_on_real_anatomy(mr, filled_at_5):
    _, truth, spacing = mr
    sparse, result = filled_at_5
    classes = [int(c) for c in np.unique(truth) if c]
    everywhere = np.ones(truth.shape, bool)
    plain, plain_weighted = dice_scores(
        fill_between_classes(sparse, 0, spacing[1:]), truth, classes, everywhere
    )
    aware, aware_weighted = dice_scores(_with(sparse, result.values), truth, classes, everywhere)
    assert aware_weighted >= WEIGHTED_AT_5 > plain_weighted
    assert np.mean(list(aware.values())) >= MEAN_AT_5 > np.mean(list(plain.values()))
    worse = {c: aware[c] - plain[c] for c in classes if aware[c] < plain[c] - 0.005}
    assert not worse, f"classes worse than the shape interpolation: {worse}"
    checked = [r for r in result.reports.values() if r.validated]
    assert len(checked) >= 15 and all(r.dice_image >= r.dice_shape for r in checked)
    assert "image weight" in result.summary()


def test_only_unlabeled_voxels_of_intermediate_slices_are_filled(filled_at_5):
    sparse, result = filled_at_5
    values = result.values
    assert values.shape == sparse.shape and values.dtype == sparse.dtype
    assert not values[sparse != 0].any(), "a labeled voxel was changed"
    for class_id, report in result.reports.items():
        slices = np.flatnonzero((values == class_id).any(axis=(1, 2)))
        if not len(slices):
            continue
        assert report.annotated[0] < slices.min() and slices.max() < report.annotated[-1]
        assert not set(slices.tolist()) & set(report.annotated), "an annotated slice was filled"
        assert report.filled == int(np.count_nonzero(values == class_id))


def test_same_result_with_the_slice_axis_elsewhere(mr, filled_at_5):
    image, _, spacing = mr
    sparse, _ = filled_at_5
    classes = [2, 5, 19]
    order = (1, 2, 0)  # slices last: spacing follows the axes
    moved = fill_between_image(
        sparse.transpose(order),
        image.transpose(order),
        2,
        tuple(spacing[a] for a in order),
        classes=classes,
        settings=SETTINGS,
    )
    only = fill_between_image(sparse, image, 0, spacing, classes=classes, settings=SETTINGS)
    np.testing.assert_array_equal(moved.values, only.values.transpose(order))
    assert set(np.unique(only.values)) == {0, *classes}


def test_validity_mask_is_never_filled(mr):
    image, truth, spacing = mr
    sparse = sparse_annotation(truth, 5)
    valid = np.ones(truth.shape, bool)
    valid[:, :, 30:] = False  # the liver is cut in two
    result = fill_between_image(
        sparse, image, 0, spacing, classes=[5], valid=valid, settings=SETTINGS
    )
    assert result.reports[5].filled > 1000
    assert not result.values[~valid].any()
    assert result.reports[5].dice_image >= result.reports[5].dice_shape > 0.8


def test_without_image_evidence_it_is_the_shape_interpolation_with_the_spacing():
    labels = np.zeros((9, 40, 40), np.uint8)
    rows, cols = np.indices((40, 40))
    labels[0][(rows - 20) ** 2 + (cols - 20) ** 2 <= 5**2] = 3
    labels[8][(rows - 20) ** 2 + (cols - 20) ** 2 <= 12**2] = 3
    labels[3][(rows - 20) ** 2 + ((cols - 20) / 2) ** 2 <= 8**2] = 3
    flat = np.full(labels.shape, 100.0, np.float32)  # nothing to learn from
    results = {}
    for spacing in ((2.0, 1.0, 1.0), (2.0, 1.0, 3.0)):
        result = fill_between_image(labels, flat, 0, spacing, settings=SETTINGS)
        plain = fill_between(labels, 3, 0, spacing[1:])
        np.testing.assert_array_equal(result.values == 3, plain)
        assert result.reports[3].weight == 0 and "shape only" in result.reports[3].note
        results[spacing] = result.values
    assert (results[(2.0, 1.0, 1.0)] != results[(2.0, 1.0, 3.0)]).any(), "spacing ignored"


def test_classes_compete_so_no_voxel_gets_two():
    labels = np.zeros((9, 40, 60), np.uint8)
    labels[[0, 8], 10:30, 5:36] = 1
    labels[[2, 6], 10:30, 25:56] = 2
    flat = np.full(labels.shape, 7.0)
    plain_1 = fill_between(labels, 1, 0, (1.0, 1.0))
    plain_2 = fill_between(labels, 2, 0, (1.0, 1.0))
    contested = plain_1 & plain_2
    assert contested.any(), "the two shape fills claim the same voxels"
    result = fill_between_image(labels, flat, 0, (1.0, 1.0, 1.0), settings=SETTINGS)
    values = result.values
    assert set(np.unique(values[contested])) == {1, 2}, "each takes the voxels nearer its own"
    assert (values[4, 20, 27] == 1) and (values[4, 20, 34] == 2)
    assert not values[labels != 0].any()
    assert ((values == 1) == (plain_1 & (values != 2))).all()


def test_bad_input_gives_clear_messages(mr):
    image, truth, spacing = mr
    sparse = sparse_annotation(truth, 5)
    with pytest.raises(FillError, match=r"image \(20x91x100\) and the labels \(20x91x117\)"):
        fill_between_image(sparse, image[:, :, :100], 0, spacing)
    with pytest.raises(FillError, match="one positive physical step per axis"):
        fill_between_image(sparse, image, 0, (3.0, 3.0))
    with pytest.raises(FillError, match="needs a 3D labels volume"):
        fill_between_image(sparse[0], image[0], 0, spacing)
    with pytest.raises(FillError, match="validity mask"):
        fill_between_image(sparse, image, 0, spacing, valid=np.ones((2, 2), bool))
    with pytest.raises(FillError, match="slice axis 3"):
        fill_between_image(sparse, image, 3, spacing)
    with pytest.raises(FillError, match="weights"):
        ImageFillSettings(weights=(-1.0,))
    with pytest.raises(FillCancelled, match="nothing was written"):
        fill_between_image(sparse, image, 0, spacing, should_stop=lambda: True)


def test_progress_counts_classes_and_single_slice_classes_are_left(mr):
    image, truth, spacing = mr
    sparse = sparse_annotation(truth, 5)
    calls = []
    result = fill_between_image(
        sparse,
        image,
        0,
        spacing,
        classes=[11, 48],
        settings=SETTINGS,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(1, 2), (2, 2)]
    assert result.reports[11].filled == 0 and "two annotated slices" in result.reports[11].note
    assert result.reports[48].filled > 0
