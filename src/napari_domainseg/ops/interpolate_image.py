"""Fill between annotated slices, following the image: the shape interpolation refined by it.

:func:`~napari_domainseg.ops.interpolate.fill_between` blends signed distance maps and never
looks at the image. :func:`fill_between_image` keeps that blend as a prior and lets the image
move the boundary near it. Per class, with the slice axis first:

1. **Prior.** Between two annotated slices the blended signed distance ``d`` (physical units)
   gives the prior logit ``-d / tau``. ``tau`` (``prior_scale``) grows where the two annotated
   shapes disagree: ``tau + spread * w (1 - w) |d_a - d_b|`` at blend weight ``w``.
2. **Image evidence.** A random forest on the physical-unit features of
   :mod:`napari_domainseg.ops.assist.features` learns "this class or not" from the class's own
   annotated slices: every pixel within ``band`` of the drawn boundary (inside it is the class,
   outside is not: a drawn slice is drawn completely). On the intermediate slices it is asked
   only within ``band`` of the prior's boundary; its logit, times a weight, is added to the
   prior's (the product of the two probabilities). Where the forest is unsure, and outside the
   band, the prior decides.
3. **Safeguard.** The weight is chosen per class on the annotated slices themselves: two
   forests are trained on alternate annotated slices, and every annotated slice with annotated
   neighbours on both sides is predicted from them (the prior from the two neighbours, the image
   from the forest that did not see it). The weight among ``weights`` with the best pooled Dice
   wins, ties going to the smaller one, if it beats the shape interpolation alone (weight 0)
   by ``min_gain``. A class with fewer than three annotated slices cannot be checked and gets
   ``unvalidated_weight``.
4. **No overlaps.** Classes compete voxel by voxel: an unlabeled voxel of an intermediate slice
   takes the class whose logit is the highest and positive, so each voxel gets at most one
   class. Labeled voxels, annotated slices of the class, voxels outside ``valid`` and image
   pixels without data (NaN, ``nodata``) are never changed.

The two checking forests have half the trees of the final one, which is trained on every
annotated slice of the class. Features are computed block by block with the feature
cache of the scribble classifier, only for the blocks that hold pixels to train on or to decide,
so memory follows the block size, not the volume.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from napari_domainseg.errors import DomainSegError
from napari_domainseg.ops.assist.features import (
    AssistImage,
    FeatureCache,
    FeatureError,
    FeatureRecipe,
    auto_chunk,
    default_recipe,
    feature_count,
)
from napari_domainseg.ops.interpolate import signed_distance
from napari_domainseg.ops.slices import annotated_slices

LOGIT_CLIP = 20.0
"""Prior logits are clipped to this magnitude (far from the boundary the prior is certain)."""
PROBABILITY_FLOOR = 1e-3
"""The forest's probabilities are kept this far from 0 and 1 before taking their logit."""
DISTANCE_CAP = 1e6
"""Signed distances are clipped to this (an all-class slice gives -inf)."""


class FillError(DomainSegError, ValueError):
    """Fill between slices cannot run on this input; the message says what to do."""


class FillCancelled(FillError):
    """The fill was cancelled; nothing was written."""


@dataclass(frozen=True)
class ImageFillSettings:
    """How far the image may move the interpolated boundary, and how it is checked.

    Parameters
    ----------
    band
        Half-width, in physical units, of the band around the prior's boundary where the image
        is consulted (and around the drawn boundary where the forest trains). Default: three
        in-plane pixels.
    prior_scale
        ``tau``: the prior's logit is ``-distance / tau``. Default: two thirds of the in-plane
        pixel.
    spread
        Growth of ``tau`` with the disagreement of the two annotated shapes (see the module
        docstring); 0 keeps ``tau`` fixed.
    weights
        Weights of the image logit tried per class on the annotated slices (0 = shape only).
    unvalidated_weight
        Weight for classes with fewer than three annotated slices (no slice to check on).
    min_gain
        The image is used for a class only if it raises the pooled Dice of the checked slices
        by at least this much over the shape interpolation alone.
    n_estimators
        Trees of a class's forest (its two checking forests have half as many each).
    max_depth
        Depth limit of the trees.
    min_samples_leaf
        Smallest leaf.
    samples_per_label
        At most this many pixels inside and as many outside each forest's slices are trained on.
    intensity
        Intensity normalisation of the features: ``"percentile"`` (MR and other uncalibrated
        images) or ``"hu"`` (CT).
    spatial_dims
        3: volume features (filters across slices too); 2: per-slice features.
    feature_steps
        Feature scales, as multiples of the finest spacing.
    n_jobs
        Threads of the forests (-1: all cores).
    random_state
        Seed of the subsampling and of the forests.
    block_bytes
        Memory budget of one block's features.
    """

    band: float | None = None
    prior_scale: float | None = None
    spread: float = 1.0
    weights: tuple[float, ...] = (0.0, 0.5, 1.0)
    unvalidated_weight: float = 1.0
    min_gain: float = 0.005
    n_estimators: int = 32
    max_depth: int = 10
    min_samples_leaf: int = 3
    samples_per_label: int = 4000
    intensity: str = "percentile"
    spatial_dims: int = 3
    feature_steps: tuple[float, ...] = (1.0, 2.0, 4.0)
    n_jobs: int = -1
    random_state: int = 0
    block_bytes: int = 256 * 2**20

    def __post_init__(self) -> None:
        for name in ("band", "prior_scale"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise FillError(f"{name} must be a positive length, got {value}")
        if not self.weights or any(not (w >= 0 and math.isfinite(w)) for w in self.weights):
            raise FillError(f"weights must be non-negative numbers, got {self.weights}")
        if not (self.spread >= 0 and math.isfinite(self.spread)):
            raise FillError(f"spread must be a non-negative number, got {self.spread}")
        if self.spatial_dims not in (2, 3):
            raise FillError(f"spatial_dims must be 2 or 3, got {self.spatial_dims}")


@dataclass
class ClassReport:
    """What the fill did for one class.

    Attributes
    ----------
    class_id
        The class.
    annotated
        Its annotated slices (indices along the slice axis).
    weight
        Weight given to the image (0: the shape interpolation alone).
    validated
        Annotated slices the weight was checked on (predicted from their neighbours).
    dice_shape, dice_image
        Pooled Dice on those slices of the shape interpolation alone and with the chosen
        weight (None when nothing was checked).
    filled
        Voxels given to the class.
    note
        Why the class was filled the way it was.
    """

    class_id: int
    annotated: list[int]
    weight: float = 0.0
    validated: list[int] = field(default_factory=list)
    dice_shape: float | None = None
    dice_image: float | None = None
    filled: int = 0
    note: str = ""


@dataclass
class ImageFill:
    """The result of :func:`fill_between_image`.

    Attributes
    ----------
    values
        Array of the labels' shape and dtype: the class to write at each voxel, 0 where nothing
        changes (every non-zero voxel is unlabeled in the input).
    reports
        Per class, what was done (:class:`ClassReport`).
    """

    values: np.ndarray
    reports: dict[int, ClassReport]

    def edits(self) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        """``(indices, values)`` of the voxels to write (as napari's ``data_setitem`` takes)."""
        indices = np.nonzero(self.values)
        return indices, self.values[indices]

    def summary(self) -> str:
        """One line per class: voxels filled and how (image weight, checked Dice)."""
        lines = []
        for report in self.reports.values():
            checked = (
                f", checked on {len(report.validated)} slice(s): Dice shape "
                f"{report.dice_shape:.3f} / with image {report.dice_image:.3f}"
                if report.dice_shape is not None and report.dice_image is not None
                else ""
            )
            lines.append(
                f"class {report.class_id}: {report.filled} voxels, image weight "
                f"{report.weight:g}{checked}; {report.note}"
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------- input checks


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(int(n)) for n in shape)


def _check_inputs(
    labels: np.ndarray, image: Any, axis: int, spacing: Sequence[float], valid: Any
) -> tuple[int, tuple[float, ...]]:
    if labels.ndim != 3:
        raise FillError(
            f"fill between slices needs a 3D labels volume; got {labels.ndim} dimension(s) "
            f"({_shape_text(labels.shape)})"
        )
    if not -3 <= axis < 3:
        raise FillError(f"slice axis {axis} does not exist in a 3D volume; use 0, 1 or 2")
    axis %= 3
    if tuple(image.shape) != labels.shape:
        raise FillError(
            f"the image ({_shape_text(image.shape)}) and the labels "
            f"({_shape_text(labels.shape)}) are not on the same grid; fill between slices "
            "follows the image the labels were drawn on: pick that image (or resample the labels "
            "onto it first)"
        )
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != 3 or not all(s > 0 and math.isfinite(s) for s in spacing):
        raise FillError(
            f"spacing {spacing} must give one positive physical step per axis of the volume "
            f"({_shape_text(labels.shape)})"
        )
    if valid is not None and tuple(np.shape(valid)) != labels.shape:
        raise FillError(
            f"the validity mask ({_shape_text(np.shape(valid))}) and the labels "
            f"({_shape_text(labels.shape)}) differ in shape"
        )
    if labels.dtype.kind not in "iu":
        raise FillError(f"labels must hold integer class ids, got {labels.dtype}")
    return axis, spacing


# --------------------------------------------------------------------------- features


class _Features:
    """Features at given voxels, computed per block of a fixed grid (cached across classes)."""

    def __init__(self, image: AssistImage, recipe: FeatureRecipe, block_bytes: int) -> None:
        self.image, self.recipe = image, recipe
        self.cache = FeatureCache(budget_bytes=max(block_bytes, 512 * 2**20))
        n = feature_count(recipe, image.data.shape[0], len(image.shape))
        self.chunk = np.asarray(auto_chunk(image.shape, n, block_bytes))
        self.n_features = n

    def at(self, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features ``(n, n_features)`` and validity ``(n,)`` of ``(n, 3)`` voxel coordinates."""
        out = np.empty((len(coords), self.n_features), dtype=np.float32)
        valid = np.zeros(len(coords), dtype=bool)
        if not len(coords):
            return out, valid
        keys = coords // self.chunk
        order = np.lexsort(keys.T[::-1])
        unique, starts = np.unique(keys[order], axis=0, return_index=True)
        bounds = [*starts.tolist(), len(order)]
        for key, start, stop in zip(unique, bounds[:-1], bounds[1:], strict=True):
            block = tuple(
                slice(int(o), int(min(o + c, n)))
                for o, c, n in zip(key * self.chunk, self.chunk, self.image.shape, strict=True)
            )
            try:
                features, ok = self.cache.get(self.image, self.recipe, block)
            except FeatureError as exc:
                raise FillError(str(exc)) from None
            members = order[start:stop]
            local = tuple(coords[members, a] - block[a].start for a in range(3))
            out[members] = features[(slice(None), *local)].T
            valid[members] = ok[local]
        return out, valid


# --------------------------------------------------------------------------- one class


@dataclass
class _Context:
    moved: np.ndarray
    valid: np.ndarray | None
    features: _Features
    in_plane: tuple[float, float]
    settings: ImageFillSettings
    band: float
    tau: float


def _distance(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    return np.clip(signed_distance(mask, spacing), -DISTANCE_CAP, DISTANCE_CAP)


def _prior(first: np.ndarray, last: np.ndarray, weight: float, ctx: _Context) -> tuple:
    """Blended distance and the prior's logit at blend ``weight`` between two slices."""
    blended = (1 - weight) * first + weight * last
    tau = ctx.tau + ctx.settings.spread * weight * (1 - weight) * np.abs(first - last)
    logit = np.clip(-blended / tau, -LOGIT_CLIP, LOGIT_CLIP).astype(np.float32)
    return blended, logit


def _train(
    ctx: _Context,
    class_id: int,
    slices: Sequence[int],
    distances: dict[int, np.ndarray],
    n_estimators: int,
) -> Any:
    """A forest telling the class from its surroundings on ``slices`` (None: one side only)."""
    from sklearn.ensemble import RandomForestClassifier

    coords, targets = [], []
    for k in slices:
        near = _band(distances[k], ctx, k)
        rows, cols = np.nonzero(near)
        coords.append(np.stack([np.full(rows.size, k), rows, cols], axis=1))
        targets.append(ctx.moved[k][rows, cols] == class_id)
    coords_all, y = np.concatenate(coords), np.concatenate(targets)
    rng = np.random.default_rng(ctx.settings.random_state + class_id)
    chosen = []
    for side in (True, False):
        members = np.flatnonzero(y == side)
        if members.size > ctx.settings.samples_per_label:
            members = rng.choice(members, ctx.settings.samples_per_label, replace=False)
        chosen.append(members)
    pick = np.sort(np.concatenate(chosen))
    x, ok = ctx.features.at(coords_all[pick])
    x, y = x[ok], y[pick][ok]
    if not y.any() or y.all():
        return None
    forest = RandomForestClassifier(
        n_estimators=n_estimators,
        max_depth=ctx.settings.max_depth,
        min_samples_leaf=ctx.settings.min_samples_leaf,
        class_weight="balanced",
        n_jobs=ctx.settings.n_jobs,
        random_state=ctx.settings.random_state,
    )
    return forest.fit(x, y)


def _image_logits(
    forests: Sequence[Any], ctx: _Context, bands: dict[int, np.ndarray]
) -> dict[int, tuple[tuple[np.ndarray, np.ndarray], np.ndarray]]:
    """The forests' mean logit at the band pixels of each slice, in one prediction.

    Returns, per slice, the band's ``(rows, cols)`` and the logit there (0 where the image
    has no data: the prior decides).
    """
    pixels = {k: np.nonzero(near) for k, near in bands.items()}
    coords = np.concatenate(
        [np.stack([np.full(r.size, k), r, c], axis=1) for k, (r, c) in pixels.items()]
        or [np.empty((0, 3), dtype=np.intp)]
    )
    x, ok = ctx.features.at(coords)
    logit = np.zeros(len(coords), dtype=np.float32)
    if ok.any():
        probability = np.mean([f.predict_proba(x[ok])[:, 1] for f in forests], axis=0)
        probability = np.clip(probability, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
        logit[ok] = np.log(probability / (1 - probability))
    out, start = {}, 0
    for k, (rows, cols) in pixels.items():
        out[k] = ((rows, cols), logit[start : start + rows.size])
        start += rows.size
    return out


def _band(blended: np.ndarray, ctx: _Context, k: int) -> np.ndarray:
    near = np.abs(blended) <= ctx.band
    if ctx.valid is not None:
        near &= ctx.valid[k]
    return near


def _combine(prior_logit: np.ndarray, evidence: tuple, weight: float) -> np.ndarray:
    """The prior's logit plus ``weight`` times the image's, on the band pixels."""
    if weight == 0:
        return prior_logit
    pixels, image_logit = evidence
    combined = prior_logit.copy()
    combined[pixels] += np.float32(weight) * image_logit
    return combined


def _validate(
    ctx: _Context,
    class_id: int,
    slices: Sequence[int],
    distances: dict[int, np.ndarray],
    folds: Sequence[Any],
) -> tuple[float, list[int], float | None, float | None]:
    """Choose the image weight on the annotated slices that have annotated neighbours."""
    weights = sorted(set(ctx.settings.weights) | {0.0})
    overlap, total = dict.fromkeys(weights, 0), dict.fromkeys(weights, 0)
    checked: list[int] = []
    for parity in (0, 1):
        forest = folds[1 - parity]  # the forest that did not see these slices
        held = [i for i in range(1, len(slices) - 1) if i % 2 == parity]
        if forest is None or not held:
            continue
        priors, bands = {}, {}
        for i in held:
            before, k, after = slices[i - 1], slices[i], slices[i + 1]
            priors[k] = _prior(
                distances[before], distances[after], (k - before) / (after - before), ctx
            )
            bands[k] = _band(priors[k][0], ctx, k)
        evidence = _image_logits([forest], ctx, bands)
        for k, (_, prior_logit) in priors.items():
            checked.append(int(k))
            scored = ctx.valid[k] if ctx.valid is not None else True
            truth = (ctx.moved[k] == class_id) & scored
            for weight in weights:
                predicted = (_combine(prior_logit, evidence[k], weight) > 0) & scored
                overlap[weight] += 2 * int(np.count_nonzero(predicted & truth))
                total[weight] += int(np.count_nonzero(predicted)) + int(np.count_nonzero(truth))
    if not checked:
        return ctx.settings.unvalidated_weight, [], None, None

    def dice(weight: float) -> float:
        return overlap[weight] / total[weight] if total[weight] else 1.0

    best = max(weights, key=lambda w: (round(dice(w), 9), -w))
    if dice(best) < dice(0.0) + ctx.settings.min_gain:
        best = 0.0
    return best, sorted(checked), dice(0.0), dice(best)


def _fill_class(
    ctx: _Context,
    class_id: int,
    slices: Sequence[int],
    best_logit: np.ndarray,
    best_class: np.ndarray,
) -> ClassReport:
    report = ClassReport(class_id, [int(k) for k in slices])
    gaps = [(a, b) for a, b in pairwise(slices) if b - a >= 2]
    if not gaps:
        report.note = "no gap between its annotated slices"
        return report
    distances = {int(k): _distance(ctx.moved[k] == class_id, ctx.in_plane) for k in slices}
    final = _train(ctx, class_id, slices, distances, ctx.settings.n_estimators)
    if final is None:
        report.note = "shape only: the image cannot tell it from its surroundings"
    elif len(slices) < 3:
        report.weight = ctx.settings.unvalidated_weight
        report.note = "too few annotated slices to check the image on"
    else:
        half = max(1, ctx.settings.n_estimators // 2)
        folds = [_train(ctx, class_id, slices[start::2], distances, half) for start in (0, 1)]
        weight, checked, dice_shape, dice_image = _validate(ctx, class_id, slices, distances, folds)
        report.weight, report.validated = weight, checked
        report.dice_shape, report.dice_image = dice_shape, dice_image
        report.note = (
            "the image improved the checked slices"
            if weight > 0
            else "shape only: the image did not improve the checked slices"
        )
    priors = {
        k: _prior(distances[a], distances[b], (k - a) / (b - a), ctx)
        for a, b in gaps
        for k in range(a + 1, b)
    }
    evidence = {}
    if report.weight > 0 and final is not None:
        evidence = _image_logits([final], ctx, {k: _band(p[0], ctx, k) for k, p in priors.items()})
    for k, (_, prior_logit) in priors.items():
        logit = _combine(prior_logit, evidence[k], report.weight) if evidence else prior_logit
        better = logit > best_logit[k]
        best_logit[k][better] = logit[better]
        best_class[k][better] = class_id
    return report


# --------------------------------------------------------------------------- entry point


def fill_between_image(
    labels: np.ndarray,
    image: Any,
    axis: int = 0,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    *,
    classes: Sequence[int] | None = None,
    valid: Any = None,
    nodata: float | None = None,
    unit: str = "mm",
    settings: ImageFillSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ImageFill:
    """Interpolate classes between their annotated slices, following the image.

    Parameters
    ----------
    labels
        Label volume (0 = unlabeled); never modified.
    image
        The image the labels were drawn on, same shape (numpy or dask array).
    axis
        The slice axis.
    spacing
        Physical size of a step along each of the three axes (e.g. mm).
    classes
        Classes to fill (default: every class present).
    valid
        Optional boolean volume, True where voxels may be filled and trained on.
    nodata
        Image value meaning "no data" (NaN always is).
    unit
        Unit of ``spacing``.
    settings
        See :class:`ImageFillSettings`.
    progress
        Called with ``(classes done, classes in total)`` after each class.
    should_stop
        Polled before each class; when it returns True, :class:`FillCancelled` is raised.

    Returns
    -------
    ImageFill
        The voxels to write (only unlabeled voxels of intermediate slices) and a report per
        class.

    Raises
    ------
    FillError
        Labels that are not 3D, an image or validity mask on another grid, bad spacing.
    """
    labels = np.asarray(labels)
    axis, spacing = _check_inputs(labels, image, axis, spacing, valid)
    settings = settings or ImageFillSettings()
    order = [axis, *(a for a in range(3) if a != axis)]
    moved_spacing = tuple(spacing[a] for a in order)
    in_plane = (moved_spacing[1], moved_spacing[2])
    moved = np.moveaxis(labels, axis, 0)
    moved_valid = None if valid is None else np.moveaxis(np.asarray(valid, dtype=bool), axis, 0)
    try:
        assist_image = AssistImage.from_volume(
            np.moveaxis(image, axis, 0) if isinstance(image, np.ndarray) else _moved(image, axis),
            moved_spacing,
            name="image",
            unit=unit,
            nodata=nodata,
            valid=moved_valid,
        )
        steps = settings.feature_steps
        recipe = default_recipe(
            moved_spacing[-settings.spatial_dims :],
            assist_image.unit,
            spatial_dims=settings.spatial_dims,
            intensity=settings.intensity,
            steps=steps,
        )
    except FeatureError as exc:
        raise FillError(str(exc)) from None
    pixel = max(in_plane)
    ctx = _Context(
        moved=moved,
        valid=moved_valid,
        features=_Features(assist_image, recipe, settings.block_bytes),
        in_plane=in_plane,
        settings=settings,
        band=settings.band or 3 * pixel,
        tau=settings.prior_scale or 2 * pixel / 3,
    )
    present = annotated_slices(labels, axis)
    wanted = [int(c) for c in (classes if classes is not None else present)]
    best_logit = np.zeros(moved.shape, dtype=np.float32)  # a class needs a positive logit
    best_class = np.zeros(moved.shape, dtype=labels.dtype)
    reports: dict[int, ClassReport] = {}
    for done, class_id in enumerate(wanted):
        if should_stop is not None and should_stop():
            raise FillCancelled(
                f"fill between slices cancelled after {done} of {len(wanted)} classes; "
                "nothing was written"
            )
        slices = [int(k) for k in present.get(class_id, ())]
        if class_id == 0 or len(slices) < 2:
            reports[class_id] = ClassReport(
                class_id, slices, note="needs at least two annotated slices"
            )
        else:
            reports[class_id] = _fill_class(ctx, class_id, slices, best_logit, best_class)
        if progress is not None:
            progress(done + 1, len(wanted))
    writable = moved == 0
    if moved_valid is not None:
        writable &= moved_valid
    values = np.where(writable, best_class, 0).astype(labels.dtype)
    filled = np.bincount(values.ravel().astype(np.int64), minlength=1)
    for class_id, report in reports.items():
        report.filled = int(filled[class_id]) if 0 < class_id < filled.size else 0
    return ImageFill(np.moveaxis(values, 0, axis), reports)


def _moved(image: Any, axis: int) -> Any:
    """``image`` with ``axis`` first, for array-likes that are not numpy (dask moves lazily)."""
    if hasattr(image, "transpose"):
        order = [axis, *(a for a in range(3) if a != axis)]
        return image.transpose(order)
    return np.moveaxis(np.asarray(image), axis, 0)
