"""Read any supported file (label maps and images) with its geometry, for the CLI and the QA tools.

One call, :func:`load`, on the format registry (:mod:`napari_domainseg.formats`): it picks
the input the command line means (the first label map, a raster as labels or as an image)
and words every failure as one line naming the file (:class:`InputError`).

Medical inputs (DICOM folders or files, DICOM SEG, NIfTI, NRRD) come as
world-ordered arrays with an exact voxel-to-LPS affine; geospatial inputs
(GeoTIFF and other rasters) as 2D arrays with their grid (CRS and transform).
A ``.npy`` array has no geometry of its own: it takes the reference's.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from napari_domainseg.errors import DomainSegError, InputError, names, naming
from napari_domainseg.formats.base import Read


def load(
    path: str | os.PathLike[str],
    labels: bool = True,
    resample: bool = False,
    reference: Read | None = None,
    philips_scaling: str = "display",
    skip_unreadable: bool = False,
) -> Read:
    """Read ``path`` (folder or file) with its geometry, through :mod:`napari_domainseg.formats`.

    ``labels`` reads a raster's band 1 as labels (else its bands as an image).

    ``philips_scaling="precise"`` reads Philips MR series in their precise
    floating-point values; ``skip_unreadable=True`` opens the readable slices
    of a DICOM series some of whose files are truncated or inconsistent (named
    in a warning) instead of refusing it (see :func:`.medical.series.read_series`).

    A DICOM SEG is placed on ``reference`` when that is the series it was made
    on, else on the series found beside it, else in its own geometry.

    Raises
    ------
    DomainSegError
        With a one-line reason naming the file: missing file, unreadable, not a volume, ...
        A reader's own error (``NrrdError``, ...) as it is when it names the file, else an
        :class:`InputError` that does.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder", path)
    try:
        _check_readable(path)
        return _load(path, labels, resample, reference, philips_scaling, skip_unreadable)
    except DomainSegError as exc:  # already says what is wrong: named once, not rewrapped
        if isinstance(exc, InputError) or names(str(exc), path):
            raise
        raise InputError(f"{path}: {exc}", path) from None
    except Exception as exc:  # any library's failure on this file, named with the file
        text = " ".join(str(exc).split())
        if len(text) > 300:
            text = text[:297] + "..."
        raise InputError(f"{path}: {text or type(exc).__name__}", path) from exc


def _check_readable(path: Path) -> None:
    """Raise the system's error (``PermissionError``, ...) when ``path`` cannot be opened.

    Libraries often replace it by a vaguer one ("could not read file").
    """
    if path.is_dir():
        with os.scandir(path):
            pass
    elif path.is_file():
        with open(path, "rb"):
            pass
    else:  # opening a pipe blocks, a device may never end
        raise InputError(
            f"{path}: not a regular file or folder (a device, pipe or socket); give a file or a "
            "study folder",
            path,
        )


def _load(
    path: Path,
    labels: bool,
    resample: bool,
    reference: Read | None,
    philips_scaling: str = "display",
    skip_unreadable: bool = False,
) -> Read:
    from napari_domainseg import formats

    fmt = formats.format_for(path)
    if fmt is None and path.is_dir():  # the series reader says why it finds no volume
        fmt = formats.named("dicom")
    if fmt is None:
        raise InputError(
            f"{path}: not a file format domainseg reads (DICOM, NIfTI, NRRD, raster, .npy)"
        )
    if fmt.name == "raster":
        (read,) = fmt.read(path, as_labels=labels, in_memory=True)
        return read
    if fmt.name == "dicom_seg":
        reads = fmt.read(path, on=_seg_reference(reference))
        reads = [r for r in reads if r.kind == formats.LABELS]
        if len(reads) > 1:
            raise InputError(f"{path}: its segments overlap; one label map cannot hold them")
        return reads[0]
    if fmt.name == "dicom":
        from napari_domainseg.medical.series import DicomSeriesError

        try:
            (read,) = fmt.read(
                path,
                resample=resample,
                philips_scaling=philips_scaling,
                skip_unreadable=skip_unreadable,
            )
        except DicomSeriesError as exc:
            raise InputError(naming(" ".join(str(exc).split()), path), path) from None  # one line
        return read
    if fmt.name == "nifti":
        return fmt.read(path, strict_schema=True)[0]
    return fmt.read(path)[0]  # NRRD: the first segmentation layer; .npy: the array


def _seg_reference(reference: Read | None) -> Read | None:
    """``reference`` when a DICOM SEG can land on it: a DICOM series read without resampling.

    Otherwise (a NIfTI, a raster, a resampled series) the SEG is placed on the series found
    beside it, or keeps its own geometry.
    """
    geometry = reference.volume_geometry_or_none if reference is not None else None
    if geometry is None or not geometry.source.sop_instance_uids:
        return None
    return None if reference.metadata.get("resampled") else reference


def same_grid(a: Read, b: Read, tolerance: float = 1e-3) -> bool:
    """True when two inputs cover the same voxels in world space.

    ``tolerance``: on the affines' entries (medical), or in pixels on the transforms with the
    same CRS (rasters, :meth:`~napari_domainseg.geo.grid.RasterGrid.same_as`).
    """
    if a.array.shape[-b.array.ndim :] != b.array.shape or a.domain != b.domain:
        return False
    if a.domain == "medical":
        return bool(np.allclose(a.affine, b.affine, atol=tolerance))
    if a.domain == "geo":
        return a.grid.same_as(b.grid, tolerance)
    return True


def resample_onto(moving: Read, target: Read) -> np.ndarray:
    """``moving``'s labels on ``target``'s grid, nearest neighbour."""
    if moving.domain == "medical" and target.domain == "medical":
        from scipy import ndimage

        matrix = np.linalg.solve(moving.affine, target.affine)  # target index -> moving index
        return ndimage.affine_transform(
            moving.array, matrix[:3, :3], offset=matrix[:3, 3], output_shape=target.array.shape,
            order=0, mode="constant", cval=0,
        )  # fmt: skip
    if moving.domain == "geo" and target.domain == "geo":
        from rasterio.warp import Resampling, reproject

        out = np.zeros(target.array.shape[-2:], dtype=moving.array.dtype)
        reproject(
            moving.array, out,
            src_transform=moving.grid.transform, src_crs=moving.grid.crs,
            dst_transform=target.grid.transform, dst_crs=target.grid.crs,
            resampling=Resampling.nearest,
        )  # fmt: skip
        return out
    raise InputError(
        f"{moving.path} and {target.path}: cannot resample between {moving.domain} "
        f"and {target.domain} data"
    )
