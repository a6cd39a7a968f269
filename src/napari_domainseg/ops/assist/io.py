"""Open an image and its scribbles from files for the classifier, checking they share a grid.

Volumes (NIfTI, NRRD, DICOM) are read with :func:`napari_domainseg.files.load`; rasters
(GeoTIFF, ...) are opened lazily with :func:`napari_domainseg.geo.scene.open_scene`, so a
large scene is read block by block as it is predicted, with its band names (for NDVI/NDWI)
and nodata. Scribbles must lie on the image's grid (same shape, spacing, origin and, for
rasters, CRS): a mismatch is an error naming both files, never a guess.
"""

from __future__ import annotations

import os
from pathlib import Path

import dask.array as da
import numpy as np

from napari_domainseg.errors import DomainSegError, naming
from napari_domainseg.files import load, same_grid
from napari_domainseg.formats.base import Read
from napari_domainseg.geo.suffixes import RASTER_SUFFIXES
from napari_domainseg.ops.assist.classifier import AssistError
from napari_domainseg.ops.assist.features import AssistImage

PREVIEW_SIDE = 1024
"""Long side (pixels) of the overview that gives a large raster's intensity statistics."""


def _is_raster(path: Path) -> bool:
    return path.suffix.lower() in RASTER_SUFFIXES


def open_image(path: str | os.PathLike[str]) -> tuple[AssistImage, Read]:
    """The image as the classifier reads it, and its geometry (for grid checks and output).

    Raises
    ------
    DomainSegError
        The file cannot be read (the reader's error, or an ``AssistError``; it names the file).
    """
    path = Path(path)
    try:
        if _is_raster(path):
            return _open_raster(path)
        loaded = load(path, labels=False)
    except DomainSegError:  # names the file and says what to do: not rewrapped
        raise
    except (OSError, ValueError) as exc:
        raise AssistError(naming(str(exc), path)) from exc
    if loaded.array.ndim not in (2, 3):
        raise AssistError(f"{path}: a {loaded.array.ndim}-D image; give a 2-D or 3-D image")
    return AssistImage.from_loaded(loaded), loaded


def _open_raster(path: Path) -> tuple[AssistImage, Read]:
    from napari_domainseg.geo.scene import open_scene

    if not path.exists():
        raise AssistError(f"{path}: no such file")
    scene = open_scene(path)
    pyramids = [scene.band_pyramid(b) for b in range(scene.count)]
    shape = (scene.count, scene.height, scene.width)
    geometry = Read(
        np.broadcast_to(np.zeros((), dtype=np.uint8), shape),  # no pixels read
        path,
        geometry=scene.grid,
        metadata={"band_names": list(scene.band_names), "nodata": scene.nodata},
    )
    image = bands_image(
        pyramids,
        geometry.spacing,
        unit=geometry.unit,
        name=path.name,
        channel_names=tuple(scene.band_names),
        nodata=scene.nodata,
    )
    return image, geometry


def bands_image(
    pyramids: list[list],
    spacing: tuple[float, float],
    *,
    unit: str,
    name: str,
    channel_names: tuple[str, ...] = (),
    nodata: float | None = None,
) -> AssistImage:
    """A multispectral image from each band's pyramid (full resolution first), read lazily.

    The coarsest level still about :data:`PREVIEW_SIDE` pixels wide is the preview that
    gives the features' statistics, so a large scene is never read whole for them.
    """
    bands = da.stack([da.asarray(levels[0]) for levels in pyramids])
    level = max(
        (i for i, lv in enumerate(pyramids[0]) if max(lv.shape[-2:]) >= PREVIEW_SIDE),
        default=0,
    )
    preview = da.stack([da.asarray(levels[level]) for levels in pyramids]) if level else None
    return AssistImage(
        bands,
        spacing,
        unit=unit,
        name=name,
        channel_names=channel_names,
        nodata=nodata,
        preview=preview,
    )


def open_scribbles(path: str | os.PathLike[str], image: Read) -> np.ndarray:
    """The scribbles of ``path`` (0 = unlabeled), refused unless on ``image``'s grid.

    Raises
    ------
    DomainSegError
        Unreadable file (the reader's error), or a grid other than the image's (``AssistError``).
    """
    path = Path(path)
    try:
        scribbles = load(path, labels=True)
    except DomainSegError:  # names the file and says what to do: not rewrapped
        raise
    except (OSError, ValueError) as exc:
        raise AssistError(naming(str(exc), path)) from exc
    if scribbles.domain == "array":  # a bare .npy takes the image's geometry
        scribbles = Read(scribbles.array, path, geometry=image.geometry)
    spatial_ndim = 2 if image.domain == "geo" else image.array.ndim
    if scribbles.array.ndim != spatial_ndim or not same_grid(image, scribbles):
        raise AssistError(
            f"{path.name}: the scribbles are not on the grid of {image.path.name} "
            f"({_describe(scribbles)} vs {_describe(image)}); paint them on the image itself "
            "or resample them onto its grid first"
        )
    return scribbles.array


def _describe(loaded: Read) -> str:
    shape = loaded.array.shape[-2:] if loaded.domain == "geo" else loaded.array.shape
    spacing = ", ".join(f"{s:g}" for s in loaded.spacing[-len(shape) :])
    if loaded.affine is not None:
        origin = tuple(float(v) for v in np.asarray(loaded.affine)[:3, 3])
    elif loaded.grid is not None:
        origin = (float(loaded.grid.transform.f), float(loaded.grid.transform.c))
    else:
        origin = ()
    where = f", origin ({', '.join(f'{v:g}' for v in origin)})" if origin else ""
    return f"{'x'.join(str(n) for n in shape)} at {spacing} {loaded.unit}{where}"
