"""A simulated annotator for measuring assisted labeling against a reference segmentation.

It paints like a person correcting a pre-labeling: first one stroke per class (in the plane
of the last two axes, at the point deepest inside the class), then, each round, one stroke
of the right class at the deepest point of the largest wrong region of what it is shown. A
stroke is a disc of ``radius`` pixels, or (``length`` > 0) a brush stroke: a line of such
discs along the class's region in that plane, as a person drags the brush along an organ.
Each stroke is clipped to the reference class, so the robot never paints a wrong label.
With ``strokes_stand`` the robot scores (and looks at) the annotation it would end with: its
strokes, and the proposal accepted into the unlabeled pixels. Used by
``benchmarks/bench_assist.py`` and the tests.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from napari_domainseg.ops.assist.classifier import PixelClassifier, Proposal
from napari_domainseg.ops.assist.features import AssistImage


@dataclass
class Round:
    """One round: strokes so far, pixels painted, Dice, seconds to train and predict."""

    strokes: int
    painted: int
    mean_dice: float
    weighted_dice: float
    per_class: dict[int, float]
    seconds: float
    extra: dict[str, float] = field(default_factory=dict)


def dice_scores(
    predicted: np.ndarray, truth: np.ndarray, classes: Sequence[int], valid: np.ndarray
) -> tuple[dict[int, float], float]:
    """Per-class Dice over ``valid`` pixels, and the volume-weighted Dice of ``classes``."""
    per_class, overlap, total = {}, 0, 0
    p, t = predicted[valid], truth[valid]
    for c in classes:
        a, b = p == c, t == c
        both, size = int(np.count_nonzero(a & b)), int(a.sum() + b.sum())
        per_class[int(c)] = 2 * both / size if size else 1.0
        overlap, total = overlap + 2 * both, total + size
    return per_class, (overlap / total if total else 1.0)


def sparse_annotation(truth: np.ndarray, step: int, axis: int = 0) -> np.ndarray:
    """Every structure of ``truth`` drawn on 1 slice in ``step``, and on its first and last.

    The slices along ``axis`` whose index is a multiple of ``step``: the sparse input of fill
    between slices, as an annotator who draws 1 slice in ``step`` leaves it.
    """
    moved = np.moveaxis(truth, axis, 0)
    sparse = np.zeros_like(moved)
    others = tuple(range(1, moved.ndim))
    for value in np.unique(moved[moved != 0]):
        present = np.flatnonzero((moved == value).any(axis=others))
        drawn = set(present[present % step == 0].tolist()) | {present[0], present[-1]}
        for k in sorted(drawn):
            sparse[k][moved[k] == value] = value
    return np.moveaxis(sparse, 0, axis)


def _deepest(mask: np.ndarray, spacing: Sequence[float]) -> tuple[int, ...]:
    """The point of ``mask`` farthest from its border (physical distances), in its bbox."""
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    padded = np.pad(mask[box], 1)
    depth = ndimage.distance_transform_edt(padded, sampling=spacing)
    local = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return tuple(int(i - 1 + s.start) for i, s in zip(local, box, strict=True))


def paint_stroke(
    scribbles: np.ndarray,
    truth: np.ndarray,
    point: Sequence[int],
    radius: int,
    length: int = 0,
) -> int:
    """Paint a brush stroke of the true class at ``point``, in the plane of the last two axes.

    With ``length`` 0 the stroke is one disc of ``radius`` pixels; otherwise it is a line of
    such discs, ``length`` pixels long, centred on ``point`` along the long axis of the
    class's region in that plane (the connected part holding ``point``), as a person drags a
    brush along an organ. The stroke is clipped to that region, so the robot never paints a
    wrong label. Returns the number of pixels newly painted.
    """
    point = tuple(int(i) for i in point)
    value = truth[point]
    lead = point[:-2]
    plane = truth[lead] == value
    parts, _ = ndimage.label(plane)
    region = parts == parts[point[-2:]]
    r0, c0 = point[-2:]
    centres = [(float(r0), float(c0))]
    if length > 0:
        direction = _long_axis(region)
        steps = np.arange(-(length // 2), length - length // 2)
        centres = [(r0 + t * direction[0], c0 + t * direction[1]) for t in steps]
    rows, cols = plane.shape
    rr, cc = np.ogrid[:rows, :cols]
    brush = np.zeros(plane.shape, dtype=bool)
    for r, c in centres:
        top, bottom = max(0, int(r) - radius - 1), min(rows, int(r) + radius + 2)
        left, right = max(0, int(c) - radius - 1), min(cols, int(c) + radius + 2)
        if top >= bottom or left >= right:
            continue
        window = (slice(top, bottom), slice(left, right))
        brush[window] |= (rr[window[0]] - round(r)) ** 2 + (cc[:, window[1]] - round(c)) ** 2 <= (
            radius**2
        )
    target = brush & region & (scribbles[lead] != value)
    scribbles[lead][target] = value
    return int(target.sum())


def _long_axis(region: np.ndarray) -> tuple[float, float]:
    """Unit vector (rows, cols) along the principal axis of a 2-D mask's pixels."""
    coords = np.argwhere(region).astype(np.float64)
    if len(coords) < 2:
        return (0.0, 1.0)
    values, vectors = np.linalg.eigh(np.cov(coords.T))
    axis = vectors[:, int(np.argmax(values))]
    return (float(axis[0]), float(axis[1]))


def largest_wrong_region(
    predicted: np.ndarray, truth: np.ndarray, valid: np.ndarray, scribbles: np.ndarray
) -> np.ndarray | None:
    """The largest connected unpainted region where the prediction is wrong (face neighbours)."""
    wrong = (predicted != truth) & valid & (scribbles == 0)
    regions, count = ndimage.label(wrong)
    if count == 0:
        return None
    sizes = np.bincount(regions.ravel())
    sizes[0] = 0
    return regions == int(np.argmax(sizes))


def run_robot(
    image: AssistImage,
    truth: np.ndarray,
    classifier: PixelClassifier,
    *,
    rounds: int = 15,
    radius: int = 2,
    length: int = 0,
    strokes_stand: bool = False,
    scored_classes: Sequence[int] | None = None,
    postprocess: dict[str, Callable[[Proposal, np.ndarray], Proposal]] | None = None,
    on_round: Callable[[Round], None] | None = None,
    follow: str | None = None,
) -> list[Round]:
    """Annotate ``image`` towards ``truth`` (0 = no data, not scored) and score each round.

    Parameters
    ----------
    image
        The image.
    truth
        Reference classes on the image's grid; 0 marks pixels outside the reference.
    classifier
        An untrained classifier (its feature cache is reused between rounds).
    rounds
        Correction strokes after the first stroke per class.
    radius
        Stroke (brush) radius in pixels.
    length
        Stroke length in pixels: 0 paints single discs, more a line of discs along the
        region (see :func:`paint_stroke`).
    strokes_stand
        Score the annotation the annotator ends with (the strokes, and the proposal
        accepted into the unlabeled pixels: the tab's default acceptance) instead of the
        bare proposal. The robot looks at the same thing to choose its next stroke.
    scored_classes
        Classes averaged into the mean Dice (default: every class in ``truth``); an
        "other" background class is usually left out.
    postprocess
        Named clean-ups, called with the proposal and the strokes, scored beside the raw
        prediction each round (``extra``); the robot follows the raw prediction.
    on_round
        Called with each :class:`Round` as it completes.
    follow
        Name of the ``postprocess`` step whose result the robot corrects (what the
        annotator is shown); by default the raw prediction.
    """
    valid = truth != 0
    classes = [int(c) for c in np.unique(truth[valid])]
    scored = list(scored_classes) if scored_classes is not None else classes
    scribbles = np.zeros(truth.shape, dtype=truth.dtype)
    painted = 0
    for c in classes:
        point = _deepest(truth == c, image.spacing)
        painted += paint_stroke(scribbles, truth, point, radius, length)
    strokes = len(classes)
    history: list[Round] = []
    for _ in range(rounds + 1):
        started = time.perf_counter()
        classifier.fit(image, scribbles)
        proposal = classifier.predict(image, probabilities=bool(postprocess))
        seconds = time.perf_counter() - started
        if strokes_stand:
            proposal = _with_strokes(proposal, scribbles)
        per_class, weighted = dice_scores(proposal.labels, truth, scored, valid)
        extra, shown = {}, proposal
        for name, step in (postprocess or {}).items():
            cleaned = step(proposal, scribbles)
            if strokes_stand:
                cleaned = _with_strokes(cleaned, scribbles)
            if name == follow:
                shown = cleaned
            extra_class, extra_weighted = dice_scores(cleaned.labels, truth, scored, valid)
            extra[f"{name} mean_dice"] = float(np.mean(list(extra_class.values())))
            extra[f"{name} weighted_dice"] = extra_weighted
        record = Round(
            strokes,
            painted,
            float(np.mean(list(per_class.values()))),
            weighted,
            per_class,
            seconds,
            extra,
        )
        history.append(record)
        if on_round is not None:
            on_round(record)
        if len(history) > rounds:
            break
        region = largest_wrong_region(shown.labels, truth, valid, scribbles)
        if region is None:
            break
        point = _deepest(region, image.spacing)
        painted += paint_stroke(scribbles, truth, point, radius, length)
        strokes += 1
    return history


def _with_strokes(proposal: Proposal, scribbles: np.ndarray) -> Proposal:
    """The proposal with the painted pixels (where there is data) set to their strokes."""
    labels = proposal.labels.copy()
    painted = (scribbles[proposal.region] != 0) & proposal.valid
    labels[painted] = scribbles[proposal.region][painted]
    return dataclasses.replace(proposal, labels=labels)
