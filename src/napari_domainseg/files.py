"""Read any supported file (label maps and images) with its geometry, for the CLI and the QA tools.

Medical inputs (DICOM folders or files, DICOM SEG, NIfTI, NRRD) come as
world-ordered arrays with an exact voxel-to-LPS affine; geospatial inputs
(GeoTIFF and other rasters) as 2D arrays with their grid (CRS and transform).
A ``.npy`` array has no geometry of its own: it takes the reference's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_domainseg.geo.label_raster import Grid
from napari_domainseg.geo.suffixes import RASTER_SUFFIXES
from napari_domainseg.labels.schema import LabelSchema


class InputError(ValueError):
    """An input cannot be used; the message is the one-line reason.

    Parameters
    ----------
    message
        What is wrong, naming the file.
    path
        The file or folder concerned, when known; with a chained ``__cause__`` (a library's
        exception) the command line words the reason from the cause.
    """

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)


@dataclass
class Loaded:
    """An array with its geometry.

    ``affine`` (4x4, index to LPS z, y, x) for medical data, ``grid`` for rasters.
    """

    array: np.ndarray
    path: Path
    affine: np.ndarray | None = None
    grid: Grid | None = None
    schema: LabelSchema | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def domain(self) -> str:
        """``"medical"``, ``"geo"`` or ``"array"`` (no geometry)."""
        if self.affine is not None:
            return "medical"
        return "geo" if self.grid is not None else "array"

    @property
    def spacing(self) -> tuple[float, ...]:
        """Physical size of a step along each array axis."""
        if self.affine is not None:
            return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))
        if self.grid is not None:
            a, b, _, d, e, _ = tuple(self.grid.transform)[:6]
            return (float(np.hypot(b, e)), float(np.hypot(a, d)))
        return (1.0,) * self.array.ndim

    @property
    def unit(self) -> str:
        """Unit of the spacing."""
        if self.affine is not None:
            return "mm"
        if self.grid is not None and self.grid.crs_wkt:
            import pyproj

            crs = pyproj.CRS.from_wkt(self.grid.crs_wkt)
            return "deg" if crs.is_geographic else (crs.axis_info[0].unit_name or "m")
        return "px"


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".nii.gz", ".seg.nrrd"):
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def load(
    path: str | os.PathLike[str],
    labels: bool = True,
    resample: bool = False,
    reference: Loaded | None = None,
    philips_scaling: str = "display",
    skip_unreadable: bool = False,
) -> Loaded:
    """Read ``path`` (folder or file) with its geometry.

    ``philips_scaling="precise"`` reads Philips MR series in their precise
    floating-point values; ``skip_unreadable=True`` opens the readable slices
    of a DICOM series some of whose files are truncated or inconsistent (named
    in a warning) instead of refusing it (see :func:`.medical.series.read_series`).

    A DICOM SEG is placed on ``reference`` when that is the series it was made
    on, else on the series found beside it, else in its own geometry.

    Raises
    ------
    InputError
        With a one-line reason: missing file, unreadable, not a volume, ...
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder", path)
    try:
        _check_readable(path)
        return _load(path, labels, resample, reference, philips_scaling, skip_unreadable)
    except InputError:
        raise
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


_NPY_MAGIC = b"\x93NUMPY"


def _load_npy(path: Path) -> Loaded:
    """A bare ``.npy`` array; object (pickled) arrays are refused, never unpickled."""
    with open(path, "rb") as handle:
        magic = handle.read(len(_NPY_MAGIC))
    if magic != _NPY_MAGIC:
        raise InputError(f"{path}: not a NumPy .npy file (it does not start with the NUMPY mark)")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" not in str(exc).lower():
            raise
        raise InputError(
            f"{path}: holds Python objects (pickled data), which domainseg never loads; save a "
            "numeric array (numpy.save of an integer array)"
        ) from None
    return Loaded(array, path)


def _load(
    path: Path,
    labels: bool,
    resample: bool,
    reference: Loaded | None,
    philips_scaling: str = "display",
    skip_unreadable: bool = False,
) -> Loaded:
    suffix = _suffix(path)
    if suffix == ".npy":
        return _load_npy(path)
    if suffix in (".nii", ".nii.gz"):
        from napari_domainseg.medical.nifti import volume_from_nifti

        volume = volume_from_nifti(path)
        schema = (
            LabelSchema.from_dict(volume.metadata["schema"])
            if "schema" in volume.metadata
            else None
        )
        return Loaded(
            volume.array,
            path,
            affine=volume.affine,
            schema=schema,
            metadata=volume.metadata,
            warnings=list(volume.metadata.get("warnings", [])),  # unusable geometry, ...
        )
    if suffix in (".nrrd", ".seg.nrrd", ".nhdr"):
        from napari_domainseg.medical.nrrd_files import read_nrrd

        read = read_nrrd(path)
        return Loaded(
            read.layers[0],
            path,
            affine=read.volume.affine,
            schema=read.schemas[0],
            metadata=read.volume.metadata,
            warnings=list(read.volume.metadata.get("warnings", [])),  # unusable geometry, ...
        )
    if suffix in RASTER_SUFFIXES:
        return _load_raster(path, labels)
    return _load_dicom(path, resample, reference, philips_scaling, skip_unreadable)


def _load_raster(path: Path, labels: bool) -> Loaded:
    import rasterio

    from napari_domainseg.geo.label_raster import read_labels, schema_of

    with rasterio.open(path) as src:  # labels: nodata and masked pixels read as 0 (unlabeled)
        array = read_labels(src) if labels else src.read(1) if src.count == 1 else src.read()
        grid = Grid(src.height, src.width, src.transform, src.crs.to_wkt() if src.crs else None)
    warnings = [] if grid.crs_wkt else [f"{path.name}: no CRS"]
    return Loaded(array, path, grid=grid, schema=schema_of(path), warnings=warnings)


def _load_dicom(
    path: Path,
    resample: bool,
    reference: Loaded | None = None,
    philips_scaling: str = "display",
    skip_unreadable: bool = False,
) -> Loaded:
    from napari_domainseg.medical.dicom_seg import is_dicom_seg
    from napari_domainseg.medical.series import DicomSeriesError, read_series
    from napari_domainseg.medical.sniff import is_dicom_file

    if path.is_file() and not is_dicom_file(path):
        raise InputError(
            f"{path}: not a file format domainseg reads (DICOM, NIfTI, NRRD, raster, .npy)"
        )
    if path.is_file() and is_dicom_seg(path):
        return _load_seg(path, reference)
    try:
        loaded = read_series(
            path,
            resample=resample,
            philips_scaling=philips_scaling,
            skip_unreadable=skip_unreadable,
        )
    except DicomSeriesError as exc:
        raise InputError(str(exc).replace("\n", " ")) from None
    volume = loaded.volume
    return Loaded(
        volume.array, path, affine=volume.affine, metadata=volume.metadata, warnings=loaded.warnings
    )


def _load_seg(path: Path, known: Loaded | None = None) -> Loaded:
    from napari_domainseg.medical.dicom_seg import (
        SegReference,
        find_referenced_series,
        read_dicom_seg,
    )
    from napari_domainseg.medical.series import read_series

    reference = None
    if known is not None and known.metadata.get("sop_instance_uids"):
        reference = SegReference.from_metadata(known.metadata, known.array.shape, known.affine)
    found = None if reference is not None else find_referenced_series(path)
    if found is not None:
        folder, discovery, series_uid = found
        volume = read_series(folder, series_uid, discovery=discovery).volume
        reference = SegReference.from_metadata(volume.metadata, volume.shape, volume.affine)
    seg = read_dicom_seg(path, reference)
    if seg.overlapping:
        raise InputError(f"{path}: its segments overlap; one label map cannot hold them")
    (label_map,) = seg.label_maps
    return Loaded(label_map.array, path, affine=label_map.affine, schema=label_map.schema)


def same_grid(a: Loaded, b: Loaded, tolerance: float = 1e-3) -> bool:
    """True when two inputs cover the same voxels in world space."""
    if a.array.shape[-b.array.ndim :] != b.array.shape or a.domain != b.domain:
        return False
    if a.domain == "medical":
        return bool(np.allclose(a.affine, b.affine, atol=tolerance))
    if a.domain == "geo":
        same_crs = (a.grid.crs_wkt or "") == (b.grid.crs_wkt or "") or _crs_equal(a.grid, b.grid)
        return same_crs and a.grid.transform.almost_equals(b.grid.transform, precision=1e-9)
    return True


def _crs_equal(a: Grid, b: Grid) -> bool:
    import pyproj

    if not a.crs_wkt or not b.crs_wkt:
        return False
    return pyproj.CRS.from_wkt(a.crs_wkt).equals(pyproj.CRS.from_wkt(b.crs_wkt))


def resample_onto(moving: Loaded, target: Loaded) -> np.ndarray:
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
            src_transform=moving.grid.transform, src_crs=moving.grid.crs_wkt,
            dst_transform=target.grid.transform, dst_crs=target.grid.crs_wkt,
            resampling=Resampling.nearest,
        )  # fmt: skip
        return out
    raise InputError(
        f"{moving.path} and {target.path}: cannot resample between {moving.domain} "
        f"and {target.domain} data"
    )
