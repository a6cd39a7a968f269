"""Region growing from a seed (SimpleITK) and a magic-wand fill, in physical units."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage


def _image(array: np.ndarray, spacing: Sequence[float]) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.float32))
    image.SetSpacing(tuple(float(s) for s in spacing[::-1]))  # ITK spacing is (x, y, z)
    return image


def grow_region(
    image: np.ndarray,
    seed: Sequence[int],
    lower: float | None = None,
    upper: float | None = None,
    spacing: Sequence[float] | None = None,
    multiplier: float = 2.5,
    iterations: int = 4,
    neighbourhood_mm: float = 2.0,
) -> np.ndarray:
    """Connected region around ``seed``.

    With ``lower``/``upper``: voxels in that value range connected to the seed
    (SimpleITK ConnectedThreshold). Without: confidence-connected growing
    (mean +- ``multiplier`` SD of a neighbourhood of ``neighbourhood_mm``
    around the seed, re-estimated ``iterations`` times). 2D or 3D, ``seed`` in
    array index order.
    """
    image = np.asarray(image)
    spacing = tuple(spacing) if spacing is not None else (1.0,) * image.ndim
    itk = _image(image, spacing)
    itk_seed = [int(v) for v in seed[::-1]]
    if lower is not None or upper is not None:
        low = float(lower) if lower is not None else float(np.nanmin(image))
        high = float(upper) if upper is not None else float(np.nanmax(image))
        grown = sitk.ConnectedThreshold(itk, seedList=[itk_seed], lower=low, upper=high)
    else:
        radius = [max(1, round(neighbourhood_mm / s)) for s in spacing[::-1]]
        grown = sitk.ConfidenceConnected(
            itk,
            seedList=[itk_seed],
            numberOfIterations=iterations,
            multiplier=multiplier,
            initialNeighborhoodRadius=min(radius),
            replaceValue=1,
        )
    return sitk.GetArrayFromImage(grown).astype(bool)


def magic_wand(image: np.ndarray, seed: Sequence[int], tolerance: float) -> np.ndarray:
    """2D flood fill: pixels within ``tolerance`` of the seed value, 4-connected to it."""
    image = np.asarray(image, dtype=float)
    value = image[tuple(seed)]
    with np.errstate(invalid="ignore"):
        similar = np.abs(image - value) <= tolerance
    components, _ = ndimage.label(similar)
    return components == components[tuple(seed)]
