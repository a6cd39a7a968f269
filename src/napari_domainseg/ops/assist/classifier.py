"""A random forest trained on the annotator's strokes, predicting block by block.

The strokes are the painted pixels of a labels array on the image's grid: every
non-zero value present is a class (a background / "other" class is one the annotator
paints like any other); 0 is unlabeled and never a class. Pixels without data (NaN or
nodata in every band) are never trained on and are never given a class: their label is 0.

Training draws at most ``samples_per_class`` pixels of each class (a stratified
subsample with a fixed seed), so a long stroke does not slow training nor drown a
rare class, and weighs the classes inversely to their sample counts
(``class_weight="balanced"``). Prediction walks the requested region block by block,
computing the features of each block with a halo (:mod:`.features`), so a slice, a tile
or a whole volume costs memory in proportion to one block and equals a whole-image
prediction pixel for pixel.
"""

from __future__ import annotations

import math
import os
import pickle
import platform
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_domainseg.errors import DomainSegError
from napari_domainseg.ops.assist.features import (
    AssistImage,
    FeatureCache,
    FeatureError,
    FeatureRecipe,
    auto_chunk,
    block_features,
    blocks,
    check_recipe_fits,
    feature_count,
)

MODEL_FORMAT = "napari-domainseg assist model"
MODEL_FORMAT_VERSION = 1
CHECKED_LIBRARIES = ("sklearn", "numpy")
"""Libraries whose major.minor version must match for a saved forest to load."""


class AssistError(DomainSegError, ValueError):
    """The classifier cannot train or predict on this input; the message says what to do."""


class AssistCancelled(AssistError):
    """A prediction was cancelled; nothing was written."""


@dataclass(frozen=True)
class ForestSettings:
    """Caps on the random forest, so training and prediction stay interactive.

    Parameters
    ----------
    n_estimators
        Number of trees.
    max_depth
        Depth limit of each tree.
    samples_per_class
        At most this many painted pixels of each class are trained on.
    min_samples_leaf
        Smallest leaf.
    n_jobs
        Threads for training and prediction (-1: all cores).
    random_state
        Seed of the subsampling and of the forest.
    block_bytes
        Memory budget of one block's features during prediction.
    """

    n_estimators: int = 32
    max_depth: int = 14
    samples_per_class: int = 3000
    min_samples_leaf: int = 1
    n_jobs: int | None = -1
    random_state: int = 0
    block_bytes: int = 192 * 2**20


@dataclass
class Proposal:
    """A prediction over ``region``: never written into an annotation until accepted.

    Attributes
    ----------
    region
        The slices of the image the arrays cover.
    classes
        Class ids, in the order of the probability axis.
    labels
        Most probable class per pixel; 0 where the image has no data.
    uncertainty
        ``1 - (p_best - p_second)`` (the margin's complement): 0 when the model is sure,
        1 when two classes tie; 0 where the image has no data.
    valid
        Where the image has data.
    probabilities
        ``(n_classes, *shape)`` float32 class probabilities (0 where there is no data), or
        ``None`` when not requested.
    """

    region: tuple[slice, ...]
    classes: tuple[int, ...]
    labels: np.ndarray
    uncertainty: np.ndarray
    valid: np.ndarray
    probabilities: np.ndarray | None = None

    def entropy(self) -> np.ndarray:
        """Normalised Shannon entropy of the probabilities (0 sure .. 1 uniform)."""
        if self.probabilities is None:
            raise AssistError("entropy needs the probabilities: predict with probabilities=True")
        p = np.clip(self.probabilities, 1e-12, 1.0)
        value = -(p * np.log(p)).sum(axis=0) / math.log(max(2, len(self.classes)))
        return np.where(self.valid, value, 0.0).astype(np.float32)


@dataclass
class TrainingSummary:
    """What a training round used: painted pixels and samples per class."""

    painted: dict[int, int]
    samples: dict[int, int]
    ignored_nodata: int = 0
    features: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


def _label_dtype(classes: Sequence[int]) -> np.dtype:
    return np.dtype(np.uint8 if max(classes) <= 255 else np.uint16)


def check_scribbles(image: AssistImage, scribbles: Any, name: str = "scribbles") -> np.ndarray:
    """The strokes as a non-negative integer array on the image's grid, or a clear error."""
    shape = tuple(int(n) for n in getattr(scribbles, "shape", ()))
    if shape != image.shape:
        raise AssistError(
            f"{name}: scribbles are on a {_grid(shape)} grid but {image.name} is "
            f"{_grid(image.shape)}; paint them on the image's grid (same shape, spacing and "
            "origin) or resample them onto it first"
        )
    array = np.asarray(scribbles)
    if array.dtype.kind == "b":
        array = array.astype(np.uint8)
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        if not finite.all() or not np.array_equal(array[finite], np.round(array[finite])):
            raise AssistError(
                f"{name}: scribbles must be whole class ids (0 = unlabeled); found NaN or "
                "fractional values"
            )
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise AssistError(f"{name}: scribbles must be integer class ids, not {array.dtype}")
    if array.dtype.kind == "i" and array.size and array.min() < 0:
        raise AssistError(f"{name}: negative class id {int(array.min())}; class ids are 1-65535")
    if array.size and int(array.max()) > 65535:
        raise AssistError(f"{name}: class id {int(array.max())} is above 65535")
    return array


def _grid(shape: Sequence[int]) -> str:
    return "x".join(str(n) for n in shape) if shape else "shapeless"


def library_versions() -> dict[str, str]:
    """Versions of the libraries a saved model depends on."""
    import scipy
    import sklearn

    from napari_domainseg import __version__

    return {
        "napari_domainseg": __version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
    }


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


class PixelClassifier:
    """A scribble-trained random forest over :mod:`.features`.

    Parameters
    ----------
    recipe
        The features.
    settings
        Caps on the forest and the block size.
    cache
        Block features reused between rounds (train on every stroke, predict the same view).
    """

    def __init__(
        self,
        recipe: FeatureRecipe,
        settings: ForestSettings | None = None,
        cache: FeatureCache | None = None,
    ) -> None:
        self.recipe = recipe
        self.settings = settings or ForestSettings()
        self.cache = cache if cache is not None else FeatureCache()
        self.forest: Any = None
        self.classes: tuple[int, ...] = ()
        self.n_channels: int | None = None
        self.trained_on: dict[str, Any] = {}
        self.versions: dict[str, str] = library_versions()

    @property
    def trained(self) -> bool:
        """Whether :meth:`fit` (or :meth:`load`) has given the classifier a forest."""
        return self.forest is not None

    def chunk(self, image: AssistImage, region: tuple[slice, ...] | None = None) -> tuple[int, ...]:
        """Block shape of ``image`` (or of ``region`` of it) under the memory budget.

        A region is cut into its own blocks: a slice of a volume is one block (its halo of
        slices computed once), not the slices of the volume's blocks.
        """
        n_features = feature_count(self.recipe, image.data.shape[0], len(image.shape))
        shape = image.shape if region is None else tuple(s.stop - s.start for s in region)
        return auto_chunk(shape, n_features, self.settings.block_bytes)

    def _check_image(self, image: AssistImage) -> None:
        try:
            check_recipe_fits(image, self.recipe)
        except FeatureError as exc:
            raise AssistError(str(exc)) from None
        if self.n_channels is not None and image.data.shape[0] != self.n_channels:
            raise AssistError(
                f"{image.name}: {image.data.shape[0]} channel(s), but the model was trained on "
                f"{self.n_channels}; use a model made for this kind of image"
            )

    def _block_features(
        self, image: AssistImage, block: tuple[slice, ...], cached: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        try:
            if cached:
                return self.cache.get(image, self.recipe, block)
            return block_features(image, self.recipe, block)
        except FeatureError as exc:
            raise AssistError(str(exc)) from None

    def fit(
        self, image: AssistImage, scribbles: Any, scribbles_name: str = "scribbles"
    ) -> TrainingSummary:
        """Train on the painted pixels of ``scribbles`` (0 = unlabeled).

        Raises
        ------
        AssistError
            No strokes, a single class painted, strokes on another grid or only on nodata,
            an image without valid pixels.
        """
        import time

        from sklearn.ensemble import RandomForestClassifier

        started = time.perf_counter()
        self._check_image(image)
        labels = check_scribbles(image, scribbles, scribbles_name)
        coords, painted = self._sample(labels, scribbles_name)
        x, y, ignored = self._training_set(image, labels, coords)
        samples = dict(zip(*(v.tolist() for v in np.unique(y, return_counts=True)), strict=True))
        lost = sorted(set(painted) - set(samples))
        if len(samples) < 2:
            raise AssistError(
                f"{scribbles_name}: after leaving out {ignored} painted pixels where "
                f"{image.name} has no data, only {len(samples)} class(es) remain; paint at least "
                "two classes where the image has data"
            )
        forest = RandomForestClassifier(
            n_estimators=self.settings.n_estimators,
            max_depth=self.settings.max_depth,
            min_samples_leaf=self.settings.min_samples_leaf,
            class_weight="balanced",
            n_jobs=self.settings.n_jobs,
            random_state=self.settings.random_state,
        )
        forest.fit(x, y)
        self.forest = forest
        self.classes = tuple(int(c) for c in forest.classes_)
        self.n_channels = int(image.data.shape[0])
        self.trained_on = {
            "image": image.name,
            "shape": list(image.shape),
            "spacing": list(image.spacing),
            "unit": image.unit,
            "painted": {str(k): v for k, v in painted.items()},
        }
        warnings = [
            f"class {c} was painted only on pixels without data and is not trained" for c in lost
        ]
        return TrainingSummary(
            painted=painted,
            samples=samples,
            ignored_nodata=ignored,
            features=int(x.shape[1]),
            seconds=time.perf_counter() - started,
            warnings=warnings,
        )

    def _sample(self, labels: np.ndarray, name: str) -> tuple[np.ndarray, dict[int, int]]:
        """Coordinates of at most ``samples_per_class`` painted pixels per class."""
        flat = np.flatnonzero(labels)
        if flat.size == 0:
            raise AssistError(
                f"{name}: no strokes (every pixel is 0 = unlabeled); paint at least two classes, "
                "for example the structure and the 'other' background around it"
            )
        values = labels.reshape(-1)[flat]
        classes, counts = np.unique(values, return_counts=True)
        painted = {int(c): int(n) for c, n in zip(classes, counts, strict=True)}
        if len(classes) < 2:
            raise AssistError(
                f"{name}: only class {int(classes[0])} is painted; paint at least one other "
                "class too (for example an 'other' background class), or there is nothing to "
                "tell apart"
            )
        rng = np.random.default_rng(self.settings.random_state)
        chosen = []
        for value in classes:
            members = flat[values == value]
            if members.size > self.settings.samples_per_class:
                members = rng.choice(members, self.settings.samples_per_class, replace=False)
            chosen.append(np.sort(members))
        return np.concatenate(chosen), painted

    def _training_set(
        self, image: AssistImage, labels: np.ndarray, flat: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Features and classes of the sampled pixels, nodata pixels dropped."""
        coords = np.stack(np.unravel_index(flat, image.shape), axis=1)
        chunk = np.asarray(self.chunk(image))
        block_index = coords // chunk
        order = np.lexsort(block_index.T[::-1])
        coords, block_index = coords[order], block_index[order]
        keys, starts = np.unique(block_index, axis=0, return_index=True)
        bounds = [*starts.tolist(), len(coords)]
        xs, ys, ignored = [], [], 0
        for key, start, stop in zip(keys, bounds[:-1], bounds[1:], strict=True):
            members = coords[start:stop]
            block = self._training_block(image.shape, key * chunk, chunk, members)
            features, valid = self._block_features(image, block)
            local = tuple((members[:, a] - block[a].start) for a in range(members.shape[1]))
            keep = valid[local]
            ignored += int((~keep).sum())
            xs.append(features[(slice(None), *local)][:, keep].T)
            ys.append(labels[tuple(members[keep].T)])
        return np.concatenate(xs), np.concatenate(ys).astype(np.int64), ignored

    @staticmethod
    def _training_block(
        shape: Sequence[int], origin: np.ndarray, chunk: np.ndarray, members: np.ndarray
    ) -> tuple[slice, ...]:
        """The grid block, or the strokes' bounding box in it when that is much smaller.

        The whole block is kept when the box covers a quarter of it, so the features
        cached for training serve the prediction of the same block.
        """
        whole = tuple(
            slice(int(o), int(min(o + c, n))) for o, c, n in zip(origin, chunk, shape, strict=True)
        )
        low, high = members.min(axis=0), members.max(axis=0) + 1
        box = tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))
        box_size = math.prod(s.stop - s.start for s in box)
        if box_size * 4 >= math.prod(s.stop - s.start for s in whole):
            return whole
        return box

    def predict_blocks(
        self,
        image: AssistImage,
        region: tuple[slice, ...] | None = None,
        *,
        chunk: Sequence[int] | None = None,
        probabilities: bool = True,
        progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[Proposal]:
        """Yield one :class:`Proposal` per block of ``region`` (default: the whole image).

        Parameters
        ----------
        image
            The image (the one trained on, or another of the same kind).
        region
            Slices of the image to predict (a slice, a tile, a window).
        chunk
            Block shape; by default the largest within ``settings.block_bytes``
            (:meth:`chunk` of the region).
        probabilities
            Also return the per-class probabilities.
        progress
            Called with ``(blocks done, blocks in total)`` after each block.
        should_stop
            Polled before each block; when it returns True the prediction stops with
            :class:`AssistCancelled`.
        """
        if not self.trained:
            raise AssistError("the classifier is not trained yet: paint strokes and train first")
        self._check_image(image)
        region = self._region(image, region)
        chunk = tuple(chunk) if chunk is not None else self.chunk(image, region)
        if len(chunk) != len(image.shape) or min(chunk) < 1:
            raise AssistError(f"block shape {chunk} must give a positive size per axis")
        todo = list(blocks(image.shape, chunk, region))
        # A region whose features exceed the cache would only churn it: compute and forget.
        n_features = feature_count(self.recipe, image.data.shape[0], len(image.shape))
        size = math.prod(s.stop - s.start for s in region) * n_features * 4
        cached = size <= self.cache.budget_bytes
        # The next block is read and filtered in a second thread while the forest predicts
        # this one (file reads, scipy filters and the trees all release the GIL), so both
        # cores stay busy; memory holds two blocks' features.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="assist-features") as pool:
            ahead = pool.submit(self._block_features, image, todo[0], cached) if todo else None
            for done, block in enumerate(todo):
                if should_stop is not None and should_stop():
                    ahead.cancel()
                    raise AssistCancelled(
                        f"{image.name}: prediction cancelled after {done} of {len(todo)} blocks; "
                        "nothing was written"
                    )
                features = ahead.result()
                if done + 1 < len(todo):
                    ahead = pool.submit(self._block_features, image, todo[done + 1], cached)
                yield self._predict_features(block, *features, probabilities)
                if progress is not None:
                    progress(done + 1, len(todo))

    def _region(self, image: AssistImage, region: tuple[slice, ...] | None) -> tuple[slice, ...]:
        if region is None:
            return tuple(slice(0, n) for n in image.shape)
        if len(region) != len(image.shape):
            raise AssistError(
                f"{image.name}: region {region} must give one slice per axis of {image.shape}"
            )
        checked = []
        for s, n in zip(region, image.shape, strict=True):
            if isinstance(s, (int, np.integer)):
                s = slice(int(s), int(s) + 1)
            start, stop, step = s.indices(n)
            if step != 1 or stop <= start:
                raise AssistError(f"{image.name}: region {region} is empty or strided in {n}")
            checked.append(slice(start, stop))
        return tuple(checked)

    def _predict_features(
        self,
        block: tuple[slice, ...],
        features: np.ndarray,
        valid: np.ndarray,
        probabilities: bool,
    ) -> Proposal:
        shape = valid.shape
        n = len(self.classes)
        labels = np.zeros(shape, dtype=_label_dtype(self.classes))
        uncertainty = np.zeros(shape, dtype=np.float32)
        proba_out = np.zeros((n, *shape), dtype=np.float32) if probabilities else None
        if valid.any():
            everywhere = bool(valid.all())  # no copy of the features then
            x = features.reshape(len(features), -1).T if everywhere else features[:, valid].T
            self.forest.n_jobs = self.settings.n_jobs
            proba = self.forest.predict_proba(x).astype(np.float32)
            best = np.argmax(proba, axis=1)
            labels[valid] = np.asarray(self.classes, dtype=labels.dtype)[best]
            top2 = np.partition(proba, n - 2, axis=1)[:, -2:] if n > 1 else np.ones((len(x), 2))
            uncertainty[valid] = 1.0 - (top2[:, 1] - top2[:, 0])
            if proba_out is not None:
                proba_out[:, valid] = proba.T
        return Proposal(block, self.classes, labels, uncertainty, valid, proba_out)

    def predict(
        self,
        image: AssistImage,
        region: tuple[slice, ...] | None = None,
        *,
        chunk: Sequence[int] | None = None,
        probabilities: bool = True,
        progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Proposal:
        """Predict ``region`` (default: the whole image) block by block into one proposal.

        See :meth:`predict_blocks` for the parameters; for scenes too large to hold the
        probabilities in memory, iterate :meth:`predict_blocks` and write each block.
        """
        if not self.trained:
            raise AssistError("the classifier is not trained yet: paint strokes and train first")
        region = self._region(image, region)
        shape = tuple(s.stop - s.start for s in region)
        n = len(self.classes)
        labels = np.zeros(shape, dtype=_label_dtype(self.classes))
        uncertainty = np.zeros(shape, dtype=np.float32)
        valid = np.zeros(shape, dtype=bool)
        proba = np.zeros((n, *shape), dtype=np.float32) if probabilities else None
        for part in self.predict_blocks(
            image,
            region,
            chunk=chunk,
            probabilities=probabilities,
            progress=progress,
            should_stop=should_stop,
        ):
            local = tuple(
                slice(b.start - r.start, b.stop - r.start)
                for b, r in zip(part.region, region, strict=True)
            )
            labels[local] = part.labels
            uncertainty[local] = part.uncertainty
            valid[local] = part.valid
            if proba is not None:
                proba[(slice(None), *local)] = part.probabilities
        return Proposal(region, self.classes, labels, uncertainty, valid, proba)

    # -- saving and loading ---------------------------------------------------------------

    def header(self) -> dict[str, Any]:
        """The JSON-serialisable description saved beside the forest."""
        return {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "recipe": self.recipe.to_dict(),
            "settings": asdict(self.settings),
            "classes": list(self.classes),
            "n_channels": self.n_channels,
            "feature_names": self.recipe.feature_names(
                list(self.recipe.channel_names)
                or [f"channel {i + 1}" for i in range(self.n_channels or 1)],
                len(self.trained_on.get("shape", ())) or None,
            ),
            "trained_on": self.trained_on,
            "versions": self.versions,
        }

    def save(self, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write the model (forest, feature recipe, library versions) atomically to ``path``.

        Raises
        ------
        AssistError
            When the classifier is not trained.
        OutputExistsError
            When ``path`` exists and ``overwrite`` is false.
        """
        import joblib

        from napari_domainseg.atomic import atomic_write

        if not self.trained:
            raise AssistError(f"{Path(path).name}: nothing to save, the classifier is not trained")
        payload = {"header": self.header(), "forest": pickle.dumps(self.forest, protocol=5)}
        with atomic_write(path, overwrite=overwrite) as tmp:
            joblib.dump(payload, tmp, compress=3)
        return Path(path)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], cache: FeatureCache | None = None
    ) -> PixelClassifier:
        """Read a model written by :meth:`save`; only load files you trust (pickle).

        Raises
        ------
        AssistError
            Not a model file, another format version, or library versions the forest
            cannot be moved between (the message names both versions).
        """
        import joblib

        path = Path(path)
        if not path.is_file():
            raise AssistError(f"{path}: no such model file")
        try:
            payload = joblib.load(path)
        except Exception as exc:
            raise AssistError(
                f"{path.name}: not a napari-domainseg assist model (it cannot be read as one); "
                "give a file written by PixelClassifier.save"
            ) from exc
        header = payload.get("header") if isinstance(payload, dict) else None
        if not isinstance(header, dict) or header.get("format") != MODEL_FORMAT:
            raise AssistError(f"{path.name}: not a napari-domainseg assist model")
        if header.get("format_version") != MODEL_FORMAT_VERSION:
            raise AssistError(
                f"{path.name}: model format version {header.get('format_version')}, this "
                f"napari-domainseg reads version {MODEL_FORMAT_VERSION}; retrain the model"
            )
        _check_versions(path, header.get("versions", {}))
        try:
            model = cls(
                FeatureRecipe.from_dict(header["recipe"]),
                ForestSettings(**header["settings"]),
                cache,
            )
            model.forest = pickle.loads(payload["forest"])
        except Exception as exc:
            raise AssistError(
                f"{path.name}: the model file is damaged ({type(exc).__name__}: {exc})"
            ) from exc
        model.classes = tuple(int(c) for c in header["classes"])
        model.n_channels = header.get("n_channels")
        model.trained_on = header.get("trained_on", {})
        model.versions = header.get("versions", {})
        return model


def _check_versions(path: Path, saved: dict[str, str]) -> None:
    current = library_versions()
    for library in CHECKED_LIBRARIES:
        then, now = saved.get(library), current[library]
        if then is None or _major_minor(then) != _major_minor(now):
            name = "scikit-learn" if library == "sklearn" else library
            raise AssistError(
                f"{path.name}: saved with {name} {then or 'unknown'}, this is {name} {now}; a "
                f"forest cannot move between {name} versions: retrain from the strokes (they "
                f"are in the labels), or install {name}=={then}"
            )
