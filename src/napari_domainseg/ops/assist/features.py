"""Pixel features for the scribble-trained classifier, in physical units, block by block.

A :class:`FeatureRecipe` names the filter families and their scales in the image's
physical unit (millimetres for volumes, metres for projected scenes); the voxel sigmas
come from each image's spacing, so one recipe fits images of the same kind whatever
their resolution. Features are computed per block with a halo wide enough for every
filter (:func:`block_features`), so a block's features equal those of the whole image
on the same pixels and memory is bounded by the block size, never by the image.

Families (per channel, per scale ``s``; the sigma along each axis is ``s / spacing``):

- ``gaussian``: Gaussian smoothing.
- ``gradient``: gradient magnitude of the smoothed image (per unit length).
- ``log``: Laplacian of Gaussian (trace of the Hessian).
- ``dog``: difference of Gaussians, previous scale (or the raw intensity) minus this one.
- ``hessian``: Hessian eigenvalues, ascending.
- ``structure``: structure-tensor eigenvalues (outer scale ``structure_outer * s``), ascending.

Plus the raw (normalised) intensity of each channel and, for multispectral scenes whose
band roles are known, NDVI and NDWI (:mod:`napari_domainseg.ops.indices`) with their
Gaussian smoothings.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from napari_domainseg.errors import DomainSegError
from napari_domainseg.ops.indices import ndvi, ndwi

FAMILIES = ("gaussian", "gradient", "log", "dog", "hessian", "structure")
INTENSITY_MODES = ("raw", "hu", "percentile")
TEXTURE = ("hessian", "structure")
TEXTURE_MODES = ("each", "mean")
INDICES = {"ndvi": ("nir", "red"), "ndwi": ("green", "nir")}
TRUNCATE = 3.0
"""Gaussian kernels are cut at this many sigmas (scipy's ``truncate``)."""
HU_RANGE = (-1024.0, 3071.0)
SAMPLE_PIXELS = 200_000
"""At most this many pixels (a regular stride) give the percentile normalisation."""


class FeatureError(DomainSegError, ValueError):
    """An image or recipe cannot give features; the message says what to do."""


UNIT_SPELLINGS = {"metre": "m", "meter": "m", "metres": "m", "meters": "m", "px": "pixel"}
"""Other spellings of the units images and recipes carry (a CRS says "metre", the tab "m")."""


def canonical_unit(unit: str) -> str:
    """One spelling per unit, so a model made in napari applies to the same image from a file."""
    return UNIT_SPELLINGS.get(str(unit).lower(), str(unit))


@dataclass(frozen=True)
class FeatureRecipe:
    """Which features to compute, with scales in physical units.

    Parameters
    ----------
    scales
        Gaussian sigmas in ``unit`` (e.g. ``(3.0, 6.0, 12.0)`` mm), ascending.
    unit
        Unit of the scales and of the image spacing (``"mm"``, ``"m"``, ``"pixel"``).
    families
        Filter families (see the module docstring), a subset of :data:`FAMILIES`.
    spatial_dims
        Number of trailing spatial axes filtered: 3 for volume features, 2 for per-slice
        (or per-scene) features.
    intensity
        ``"raw"`` (values as they are, e.g. reflectance), ``"hu"`` (CT Hounsfield units,
        clipped to [-1024, 3071]) or ``"percentile"`` (per image, 1st-99th percentile of
        valid pixels mapped to 0-1: MR and other uncalibrated intensities).
    channel_names
        The band names the recipe was made for (for multispectral scenes); an image
        with other bands is refused.
    indices
        Spectral indices added as channels: ``"ndvi"``, ``"ndwi"``.
    structure_outer
        Outer (integration) scale of the structure tensor, as a multiple of the scale.
    texture
        ``"each"``: Hessian and structure-tensor eigenvalues of every channel; ``"mean"``:
        of the mean of the (normalised) bands only, which keeps multispectral scenes fast
        (the other families stay per band).
    position
        Add each pixel's physical position along every spatial axis. It helps within one
        image (organs sit where they sit) but ties the model to that image's field of view:
        leave it off for models applied to other images.
    """

    scales: tuple[float, ...]
    unit: str = "mm"
    families: tuple[str, ...] = FAMILIES
    spatial_dims: int = 3
    intensity: str = "percentile"
    channel_names: tuple[str, ...] = ()
    indices: tuple[str, ...] = ()
    structure_outer: float = 1.0
    position: bool = False
    texture: str = "each"

    def __post_init__(self) -> None:
        object.__setattr__(self, "unit", canonical_unit(self.unit))
        if not self.scales or any(not (s > 0 and math.isfinite(s)) for s in self.scales):
            raise FeatureError(f"feature scales must be positive lengths, got {self.scales}")
        if list(self.scales) != sorted(self.scales):
            raise FeatureError(f"feature scales must be ascending, got {self.scales}")
        unknown = set(self.families) - set(FAMILIES)
        if unknown:
            raise FeatureError(f"unknown feature families {sorted(unknown)}; use {FAMILIES}")
        if self.spatial_dims not in (2, 3):
            raise FeatureError(f"spatial_dims must be 2 or 3, got {self.spatial_dims}")
        if self.intensity not in INTENSITY_MODES:
            raise FeatureError(f"intensity must be one of {INTENSITY_MODES}, got {self.intensity}")
        if self.texture not in TEXTURE_MODES:
            raise FeatureError(f"texture must be one of {TEXTURE_MODES}, got {self.texture}")
        if set(self.indices) - set(INDICES):
            raise FeatureError(f"unknown indices {self.indices}; use {tuple(INDICES)}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description."""
        return {key: list(v) if isinstance(v, tuple) else v for key, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FeatureRecipe:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    def feature_names(self, channel_names: Sequence[str], ndim: int | None = None) -> list[str]:
        """One name per feature, in the order :func:`block_features` stacks them.

        ``ndim`` is the image's number of spatial axes (default ``spatial_dims``).
        """
        names = []
        for channel, families in self.channel_plan(len(channel_names), list(channel_names)):
            names.append(f"{channel} intensity")
            for scale in self.scales:
                at = f"{channel} {scale:g} {self.unit}"
                for family in families:
                    if family in TEXTURE:
                        names += [f"{at} {family} eigenvalue {i}" for i in range(self.spatial_dims)]
                    else:
                        names.append(f"{at} {family}")
        if self.position:
            names += [f"position axis {i}" for i in range(ndim or self.spatial_dims)]
        return names

    def channel_plan(
        self, bands: int, names: Sequence[str] | None = None
    ) -> list[tuple[str, tuple[str, ...]]]:
        """Each filtered channel's name and families, in the order features are stacked.

        The bands come first, then the indices, then (``texture="mean"`` with several bands)
        the mean of the bands with the texture families only.
        """
        names = list(names) if names is not None else [f"channel {i + 1}" for i in range(bands)]
        families = tuple(f for f in FAMILIES if f in self.families)
        split = self.texture == "mean" and bands > 1
        own = tuple(f for f in families if f not in TEXTURE) if split else families
        plan = [(name, own) for name in [*names, *self.indices]]
        texture = tuple(f for f in families if f in TEXTURE)
        if split and texture:
            plan.append(("mean of bands", texture))
        return plan

    def halo(self, spacing: Sequence[float]) -> tuple[int, ...]:
        """Voxels of context each filtered axis needs (the widest kernel plus derivatives)."""
        widest = self.scales[-1] * (1.0 + (self.structure_outer if self.needs_structure else 0))
        return tuple(math.ceil(TRUNCATE * widest / step) + 3 for step in spacing)

    @property
    def needs_structure(self) -> bool:
        """Whether the structure tensor is computed."""
        return "structure" in self.families


def default_recipe(
    spacing: Sequence[float],
    unit: str,
    *,
    spatial_dims: int | None = None,
    intensity: str = "percentile",
    channel_names: Sequence[str] = (),
    steps: Sequence[float] = (1.0, 2.0, 4.0),
) -> FeatureRecipe:
    """A recipe whose scales are ``steps`` times the finest spacing, in physical units.

    With NIR, red and green bands among ``channel_names``, NDVI and NDWI are added; with
    several bands, the Hessian and structure tensor are taken of their mean
    (``texture="mean"``), which makes a 4-band scene's features 4-5 times faster.
    """
    finest = float(min(spacing))
    indices = tuple(
        name for name, roles in INDICES.items() if all(_band(channel_names, r) for r in roles)
    )
    return FeatureRecipe(
        scales=tuple(round(finest * s, 6) for s in steps),
        unit=unit,
        spatial_dims=spatial_dims or min(3, len(spacing)),
        intensity=intensity,
        channel_names=tuple(channel_names),
        indices=indices,
        texture="mean" if len(channel_names) > 1 else "each",
    )


def _band(names: Sequence[str], role: str) -> int | None:
    from napari_domainseg.geo.scene import find_band

    return find_band(list(names), role) if names else None


@dataclass
class AssistImage:
    """An image as the classifier sees it: channels first, spatial axes after.

    Parameters
    ----------
    data
        ``(channels, *spatial)`` array-like (numpy, dask, or any object that reads a
        block on ``data[slices]``); nothing is read until a block is needed.
    spacing
        Physical size of a step along each spatial axis.
    unit
        Unit of ``spacing``.
    name
        What the image is called in messages (usually its file name).
    channel_names
        One name per channel (band names give NDVI/NDWI roles).
    nodata
        Pixel value meaning "no data" (per channel); NaN is always invalid.
    valid
        Optional boolean array-like of the spatial shape, True where the image has data;
        combined with ``nodata`` and NaN.
    preview
        Optional decimated copy ``(channels, ...)`` (e.g. a GeoTIFF overview) that gives the
        intensity statistics without reading the full resolution; by default a strided
        sample of ``data``.
    """

    data: Any
    spacing: tuple[float, ...]
    unit: str = "mm"
    name: str = "image"
    channel_names: tuple[str, ...] = ()
    nodata: float | None = None
    valid: Any = None
    preview: Any = None
    _stats: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)
    token: str = field(default_factory=lambda: uuid.uuid4().hex, init=False, repr=False)

    def __post_init__(self) -> None:
        self.unit = canonical_unit(self.unit)
        ndim = len(self.data.shape) - 1
        if ndim not in (2, 3):
            raise FeatureError(
                f"{self.name}: image must be (channels, rows, cols) or (channels, slices, rows, "
                f"cols); got shape {tuple(self.data.shape)}"
            )
        self.spacing = tuple(float(s) for s in self.spacing)
        if len(self.spacing) != ndim or not all(s > 0 and math.isfinite(s) for s in self.spacing):
            raise FeatureError(
                f"{self.name}: spacing {self.spacing} must give one positive step per spatial "
                f"axis of shape {self.shape}"
            )
        if not self.channel_names:
            self.channel_names = tuple(f"channel {i + 1}" for i in range(self.data.shape[0]))
        if len(self.channel_names) != self.data.shape[0]:
            raise FeatureError(
                f"{self.name}: {len(self.channel_names)} channel names for "
                f"{self.data.shape[0]} channels"
            )
        if self.valid is not None and tuple(self.valid.shape) != self.shape:
            raise FeatureError(
                f"{self.name}: validity mask shape {tuple(self.valid.shape)} differs from the "
                f"image's {self.shape}"
            )

    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape."""
        return tuple(int(n) for n in self.data.shape[1:])

    @classmethod
    def from_volume(
        cls, volume: Any, spacing: Sequence[float], name: str = "volume", **kwargs: Any
    ) -> AssistImage:
        """A single-channel volume (slices, rows, cols) or image (rows, cols)."""
        return cls(_add_channel_axis(volume), tuple(spacing), name=name, **kwargs)

    @classmethod
    def from_loaded(cls, loaded: Any, name: str | None = None) -> AssistImage:
        """From :class:`napari_domainseg.formats.base.Read` (a volume, or a raster's bands)."""
        array = loaded.array
        spacing = loaded.spacing
        if loaded.domain == "geo" and array.ndim == 3:
            spacing = spacing[-2:]
            names = tuple(loaded.metadata.get("band_names") or ())
            return cls(
                array,
                spacing,
                unit=loaded.unit,
                name=name or loaded.path.name,
                channel_names=names if len(names) == array.shape[0] else (),
                nodata=loaded.metadata.get("nodata"),
            )
        unit = loaded.unit if loaded.domain != "array" else "pixel"
        return cls(
            _add_channel_axis(array), tuple(spacing), unit=unit, name=name or loaded.path.name
        )

    def read(self, region: tuple[slice, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Pixels of ``region`` as float32 ``(channels, *shape)`` and the validity mask."""
        pixels = np.array(self.data[(slice(None), *region)], dtype=np.float32)  # a copy
        invalid = ~np.isfinite(pixels)
        if self.nodata is not None and math.isfinite(self.nodata):
            invalid |= pixels == np.float32(self.nodata)
        valid = ~invalid.all(axis=0)  # GDAL's dataset mask: valid where any band is
        if self.valid is not None:
            valid &= np.asarray(self.valid[region], dtype=bool)
        pixels[invalid] = np.nan
        pixels[:, ~valid] = np.nan
        return pixels, valid

    def statistics(self) -> dict[str, np.ndarray]:
        """Per-channel 1st, 50th and 99th percentiles of valid pixels (preview or a sample)."""
        if not self._stats:
            stride = max(
                1, math.ceil((math.prod(self.shape) / SAMPLE_PIXELS) ** (1 / len(self.shape)))
            )
            if self.preview is not None:  # a decimated copy (overview): no full-resolution read
                sample = np.array(self.preview, dtype=np.float32)
                invalid = ~np.isfinite(sample)
                if self.nodata is not None and math.isfinite(self.nodata):
                    invalid |= sample == np.float32(self.nodata)
                valid = ~invalid.all(axis=0)
                sample[invalid] = np.nan
            else:
                region = tuple(slice(None, None, stride) for _ in self.shape)
                sample, valid = self.read(region)
            if not valid.any():
                raise FeatureError(
                    f"{self.name}: no valid pixels (every pixel is NaN or nodata); "
                    "nothing can be learned or predicted"
                )
            values = sample[:, valid]
            with np.errstate(all="ignore"):
                low, mid, high = np.nanpercentile(values, [1, 50, 99], axis=1)
            mid = np.where(np.isfinite(mid), mid, 0.0)
            self._stats = {"low": low, "mid": mid, "high": high}
        return self._stats


def _add_channel_axis(array: Any) -> Any:
    return array[None] if len(array.shape) in (2, 3) else array


def _normalise(values: np.ndarray, image: AssistImage, recipe: FeatureRecipe) -> np.ndarray:
    """Apply the recipe's intensity mode to ``(channels, ...)`` values (global statistics)."""
    if recipe.intensity == "hu":
        np.clip(values, *HU_RANGE, out=values)
    elif recipe.intensity == "percentile":
        stats = image.statistics()
        low, high = stats["low"], stats["high"]
        span = np.where(np.isfinite(high - low) & (high > low), high - low, 1.0)
        low = np.where(np.isfinite(low), low, 0.0)
        shape = (-1, *([1] * (values.ndim - 1)))
        values -= low.reshape(shape).astype(np.float32)
        values /= span.reshape(shape).astype(np.float32)
    return values


def _channels(
    pixels: np.ndarray, image: AssistImage, recipe: FeatureRecipe
) -> tuple[np.ndarray, list[float]]:
    """Bands plus the recipe's indices, each with the value that fills its invalid pixels."""
    extra = []
    for index in recipe.indices:
        first, second = (_band(image.channel_names, role) for role in INDICES[index])
        if first is None or second is None:
            raise FeatureError(f"{image.name}: no {'/'.join(INDICES[index])} bands for {index}")
        function = ndvi if index == "ndvi" else ndwi
        with np.errstate(all="ignore"):
            extra.append(function(pixels[first], pixels[second]))
    mids = image.statistics()["mid"].astype(np.float32).reshape(-1, 1)
    fills = [float(v) for v in _normalise(mids, image, recipe)[:, 0]]
    channels = _normalise(pixels, image, recipe)
    if extra:
        channels = np.concatenate([channels, np.stack(extra)])
        fills += [0.0] * len(extra)
    return channels, fills


def _eigenvalues(tensor: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Ascending eigenvalues of a symmetric 2x2 or 3x3 tensor field, in closed form.

    3x3: the trigonometric solution of the characteristic cubic (Smith 1961), computed in
    float64 per pixel, many times faster than a batched ``numpy.linalg.eigvalsh``.
    """
    if len(tensor) == 2:
        a, b, c = tensor[0][0], tensor[0][1], tensor[1][1]
        half_trace = (a + c) / 2
        root = np.sqrt(((a - c) / 2) ** 2 + b**2)
        return [half_trace - root, half_trace + root]
    a00, a11, a22 = (tensor[i][i].astype(np.float64) for i in range(3))
    a01, a02, a12 = (tensor[i][j].astype(np.float64) for i, j in ((0, 1), (0, 2), (1, 2)))
    q = (a00 + a11 + a22) / 3
    b00, b11, b22 = a00 - q, a11 - q, a22 - q
    off = a01**2 + a02**2 + a12**2
    p = np.sqrt((b00**2 + b11**2 + b22**2 + 2 * off) / 6)
    safe = np.where(p > 0, p, 1.0)
    det = b00 * (b11 * b22 - a12**2) - a01 * (a01 * b22 - a12 * a02) + a02 * (a01 * a12 - b11 * a02)
    r = np.clip(det / (2 * safe**3), -1.0, 1.0)
    phi = np.arccos(r) / 3
    largest = q + 2 * p * np.cos(phi)
    smallest = q + 2 * p * np.cos(phi + 2 * np.pi / 3)
    middle = 3 * q - largest - smallest
    return [v.astype(np.float32) for v in (smallest, middle, largest)]


def _channel_features(
    channel: np.ndarray,
    spacing: Sequence[float],
    recipe: FeatureRecipe,
    families: Sequence[str],
    inner: tuple[slice, ...],
) -> list[np.ndarray]:
    """The ``families`` of one filled, normalised channel, cropped to ``inner``.

    ``channel`` is the block with its halo; filters run on all of it, and everything
    computed per pixel (magnitudes, eigenvalues) only on the ``inner`` pixels.
    """
    ndim = channel.ndim
    filtered = list(range(ndim - recipe.spatial_dims, ndim))
    steps = [spacing[axis] for axis in filtered]
    out = [channel[inner]]
    previous = channel[inner]
    want = set(families)
    n = len(filtered)
    for scale in recipe.scales:
        sigma = [scale / spacing[a] if a in filtered else 0.0 for a in range(ndim)]
        smooth = ndimage.gaussian_filter(channel, sigma, mode="reflect", truncate=TRUNCATE)
        grads: list[np.ndarray] = []
        if want & {"gradient", "log", "hessian", "structure"}:
            grads = _gradient(smooth, filtered, steps)
        hessian: list[list[np.ndarray]] = [[None] * n for _ in range(n)]  # type: ignore[list-item]
        if want & {"log", "hessian"}:
            for i in range(n):
                for j in range(i, n):
                    second = _derivative_inner(grads[i], steps[j], filtered[j], inner)
                    hessian[i][j] = hessian[j][i] = second
        smooth_inner = smooth[inner]
        for family in families:
            if family == "gaussian":
                out.append(smooth_inner)
            elif family == "gradient":
                out.append(np.sqrt(sum(g[inner] ** 2 for g in grads)))
            elif family == "log":
                out.append(sum(hessian[i][i] for i in range(n)))
            elif family == "dog":
                out.append(previous - smooth_inner)
            elif family == "hessian":
                out += _eigenvalues(hessian)
            else:
                out += _structure_eigenvalues(grads, scale, spacing, filtered, recipe, inner)
        previous = smooth_inner
    return out


def _derivative_inner(
    array: np.ndarray, step: float, axis: int, inner: tuple[slice, ...]
) -> np.ndarray:
    """``np.gradient(array, step, axis=axis)[inner]``, from the inner pixels and one more."""
    near = list(inner)
    start, stop = inner[axis].start, inner[axis].stop
    low, high = max(0, start - 1), min(array.shape[axis], stop + 1)
    near[axis] = slice(low, high)
    derivative = np.gradient(array[tuple(near)], step, axis=axis)
    crop = [slice(None)] * array.ndim
    crop[axis] = slice(start - low, stop - low)
    return derivative[tuple(crop)]


def _gradient(smooth: np.ndarray, axes: list[int], steps: list[float]) -> list[np.ndarray]:
    grads = np.gradient(smooth, *steps, axis=axes)
    return list(grads) if isinstance(grads, (list, tuple)) else [grads]


def _structure_eigenvalues(
    grads: list[np.ndarray],
    scale: float,
    spacing: Sequence[float],
    filtered: list[int],
    recipe: FeatureRecipe,
    inner: tuple[slice, ...],
) -> list[np.ndarray]:
    outer = recipe.structure_outer * scale
    sigma = [outer / spacing[a] if a in filtered else 0.0 for a in range(grads[0].ndim)]
    n = len(grads)
    tensor = [[None] * n for _ in range(n)]
    for i in range(n):
        for j in range(i, n):
            tensor[i][j] = tensor[j][i] = _gaussian_inner(grads[i] * grads[j], sigma, inner)
    return _eigenvalues(tensor)  # type: ignore[arg-type]


def _gaussian_inner(
    array: np.ndarray, sigma: Sequence[float], inner: tuple[slice, ...]
) -> np.ndarray:
    """``gaussian_filter(array, sigma)[inner]``, each axis cropped as soon as it is filtered.

    The separable filter runs axis by axis (as scipy's ``gaussian_filter`` does); once an
    axis is filtered only its ``inner`` range is kept, so the next axes filter fewer lines.
    The kept values are the same; a thin block (one slice of a volume and its halo of
    slices) costs a fraction of the whole filter.
    """
    out = array
    for axis, s in enumerate(sigma):
        if s > 1e-15:  # scipy's own cut-off for "no filtering along this axis"
            out = ndimage.gaussian_filter1d(out, s, axis=axis, mode="reflect", truncate=TRUNCATE)
        out = out[(slice(None),) * axis + (inner[axis],)]
    return out


def feature_count(recipe: FeatureRecipe, bands: int, ndim: int | None = None) -> int:
    """Number of features per pixel of an image with ``bands`` bands and ``ndim`` axes."""
    return len(recipe.feature_names([f"b{i}" for i in range(bands)], ndim))


def check_recipe_fits(image: AssistImage, recipe: FeatureRecipe) -> None:
    """Raise :class:`FeatureError` when ``recipe`` cannot run on ``image``."""
    if recipe.spatial_dims > len(image.shape):
        raise FeatureError(
            f"{image.name}: the features filter {recipe.spatial_dims} spatial axes but the image "
            f"has {len(image.shape)} ({'x'.join(map(str, image.shape))}); use a model made for "
            "this kind of image"
        )
    if recipe.unit != image.unit and "pixel" not in (recipe.unit, image.unit):
        raise FeatureError(
            f"{image.name}: spacing is in {image.unit} but the recipe's scales are in "
            f"{recipe.unit}; use a model made for this kind of image"
        )
    if recipe.channel_names and tuple(image.channel_names) != recipe.channel_names:
        raise FeatureError(
            f"{image.name}: bands {list(image.channel_names)} differ from the model's bands "
            f"{list(recipe.channel_names)}"
        )


def block_features(
    image: AssistImage, recipe: FeatureRecipe, block: tuple[slice, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Features of the pixels in ``block`` (``(n_features, *block_shape)``) and their validity.

    The block is read with a halo (clipped at the image border, where filters reflect), so
    the result equals the whole image's features on the same pixels.
    """
    halo = (0,) * (len(image.shape) - recipe.spatial_dims) + recipe.halo(
        image.spacing[-recipe.spatial_dims :]
    )
    outer, inner = [], []
    for s, h, n in zip(block, halo, image.shape, strict=True):
        start, stop = max(0, s.start - h), min(n, s.stop + h)
        outer.append(slice(start, stop))
        inner.append(slice(s.start - start, s.stop - start))
    check_recipe_fits(image, recipe)
    pixels, valid = image.read(tuple(outer))
    channels, fills = _channels(pixels, image, recipe)
    filled = [
        np.where(np.isfinite(c), c, np.float32(f)).astype(np.float32)
        for c, f in zip(channels, fills, strict=True)
    ]
    plan = recipe.channel_plan(len(image.channel_names), image.channel_names)
    if len(plan) > len(filled):  # the mean of the bands, for texture="mean"
        filled.append(np.mean(filled[: len(image.channel_names)], axis=0, dtype=np.float32))
    features = []
    for channel, (_, families) in zip(filled, plan, strict=True):
        features += _channel_features(channel, image.spacing, recipe, families, tuple(inner))
    if recipe.position:
        grid = np.meshgrid(
            *[
                (np.arange(s.start, s.stop) + 0.5) * step
                for s, step in zip(block, image.spacing, strict=True)
            ],
            indexing="ij",
            sparse=True,
        )
        features += [np.broadcast_to(g, valid[tuple(inner)].shape) for g in grid]
    return np.stack(features).astype(np.float32, copy=False), valid[tuple(inner)]


def blocks(
    shape: Sequence[int], chunk: Sequence[int], region: tuple[slice, ...] | None = None
) -> Iterator[tuple[slice, ...]]:
    """Blocks of at most ``chunk`` pixels tiling ``region`` (default: the whole shape)."""
    region = region or tuple(slice(0, n) for n in shape)
    ranges = []
    for s, size in zip(region, chunk, strict=True):
        ranges.append([slice(a, min(a + size, s.stop)) for a in range(s.start, s.stop, size)])
    yield from _product(ranges)


def _product(ranges: list[list[slice]]) -> Iterator[tuple[slice, ...]]:
    if not ranges:
        yield ()
        return
    for first in ranges[0]:
        for rest in _product(ranges[1:]):
            yield (first, *rest)


def auto_chunk(shape: Sequence[int], n_features: int, budget_bytes: int) -> tuple[int, ...]:
    """A block shape whose features (and the filters' temporaries, x3) fit ``budget_bytes``."""
    voxels = max(4096, budget_bytes // (4 * 3 * max(1, n_features)))
    if math.prod(shape) <= voxels:
        return tuple(shape)
    side = int(voxels ** (1 / len(shape)))
    chunk = [min(n, side) for n in shape]
    # Give unused budget (thin axes) to the other axes, largest first.
    for axis in np.argsort(shape)[::-1]:
        rest = math.prod(c for i, c in enumerate(chunk) if i != axis)
        chunk[axis] = int(min(shape[axis], max(chunk[axis], voxels // max(1, rest))))
    return tuple(chunk)


class FeatureCache:
    """Features of recently used blocks, least recently used dropped past ``budget_bytes``."""

    def __init__(self, budget_bytes: int = 512 * 2**20) -> None:
        self.budget_bytes = budget_bytes
        self._items: OrderedDict[Any, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # training and prediction may run in other threads

    def get(
        self, image: AssistImage, recipe: FeatureRecipe, block: tuple[slice, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        """:func:`block_features`, from the cache when the same block was computed before."""
        key = (image.token, recipe, tuple((s.start, s.stop) for s in block))
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = block_features(image, recipe, block)  # outside the lock: the slow part
        size = value[0].nbytes + value[1].nbytes
        with self._lock:
            if size <= self.budget_bytes and key not in self._items:
                self._items[key] = value
                self._bytes += size
                while self._bytes > self.budget_bytes:
                    _, (f, v) = self._items.popitem(last=False)
                    self._bytes -= f.nbytes + v.nbytes
        return value

    def clear(self) -> None:
        """Forget every block (call it when the image's pixels change)."""
        with self._lock:
            self._items.clear()
            self._bytes = 0
