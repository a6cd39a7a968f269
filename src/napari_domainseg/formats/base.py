"""The reader protocol: a format claims a path and reads it into :class:`Read` values.

Every supported file type is one :class:`Format` in :mod:`napari_domainseg.formats` (one
module each). ``claims`` is cheap and never raises: it looks at the name and at most a few
bytes, so napari can ask it about every file it opens. ``read`` returns one :class:`Read`
per image or label map the file holds, each with its geometry as a typed value, pixels lazy
where the format allows it. The command line (``files.load``), the napari readers and the
conformance tests all read through the same formats.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from napari_domainseg.geo.grid import RasterGrid
    from napari_domainseg.labels.schema import LabelSchema
    from napari_domainseg.medical.volume_geometry import VolumeGeometry

IMAGE = "image"
LABELS = "labels"


@dataclass
class Read:
    """One image or label map read from a file, with its geometry.

    Attributes
    ----------
    array
        The pixels: a NumPy array, or a lazy (dask) one for rasters too big to hold.
        World-ordered (z, y, x) for volumes, (rows, columns) or (bands, rows, columns) for
        rasters. ``None`` for a raster image shown from its pyramid (see ``source``).
    path
        The file or folder read.
    geometry
        A :class:`~napari_domainseg.medical.volume_geometry.VolumeGeometry` (volumes), a
        :class:`~napari_domainseg.geo.grid.RasterGrid` (rasters), or ``None`` (a bare array).
    kind
        ``"image"`` or ``"labels"``.
    name
        What to call it (a layer name): series description, file stem, segment name, ...
    schema
        The label classes a label map carries (``None`` for images or unnamed labels).
    metadata
        The description beside the geometry: modality, window, scaling record, nodata,
        band names, ... (never patient data unless asked).
    warnings
        What the user must be told (unusable geometry, no CRS, skipped slices, ...).
    notes
        What the user should know (other series in the folder, how a SEG was placed).
    source
        The opened object the array comes from when a viewer shows more than the array
        (a raster :class:`~napari_domainseg.geo.scene.Scene`: its pyramid and stretch).
    image
        For a label map: the name of the image it was drawn on, when that image was read too.
    """

    array: Any
    path: Path
    geometry: VolumeGeometry | RasterGrid | None = None
    kind: str = IMAGE
    name: str = ""
    schema: LabelSchema | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    source: Any = None
    image: str = ""

    @property
    def affine(self) -> np.ndarray | None:
        """The exact voxel-to-LPS affine of a volume (``None`` for rasters and arrays)."""
        geometry = self.volume_geometry_or_none
        return None if geometry is None else np.array(geometry.affine)

    @property
    def volume_geometry_or_none(self) -> VolumeGeometry | None:
        """The volume geometry, or ``None`` for rasters and bare arrays."""
        from napari_domainseg.medical.volume_geometry import VolumeGeometry

        return self.geometry if isinstance(self.geometry, VolumeGeometry) else None

    @property
    def volume_geometry(self) -> VolumeGeometry:
        """The volume geometry of a medical input.

        Raises
        ------
        InputError
            For an input without a voxel-to-patient geometry (a raster or an array).
        """
        geometry = self.volume_geometry_or_none
        if geometry is None:
            from napari_domainseg.errors import InputError

            raise InputError(f"{self.path}: not a medical volume (no voxel-to-patient geometry)")
        return geometry

    @property
    def grid(self) -> RasterGrid | None:
        """The raster grid (``None`` for volumes and bare arrays)."""
        return None if self.geometry is None or self.affine is not None else self.geometry

    @property
    def domain(self) -> str:
        """``"medical"``, ``"geo"`` or ``"array"`` (no geometry)."""
        if self.geometry is None:
            return "array"
        return "medical" if self.affine is not None else "geo"

    @property
    def spacing(self) -> tuple[float, ...]:
        """Physical size of a step along each array axis."""
        volume = self.volume_geometry_or_none
        if volume is not None:
            return tuple(float(v) for v in volume.spacing)
        if self.grid is not None:
            a, b, _, d, e, _ = tuple(self.grid.transform)[:6]
            return (float(np.hypot(b, e)), float(np.hypot(a, d)))
        return (1.0,) * np.ndim(self.array)

    @property
    def unit(self) -> str:
        """Unit of the spacing: ``mm``, the CRS's unit, ``deg``, or ``px``."""
        if self.affine is not None:
            return "mm"
        if self.grid is not None and self.grid.crs is not None:
            import pyproj

            crs = pyproj.CRS.from_user_input(self.grid.crs)
            return "deg" if crs.is_geographic else (crs.axis_info[0].unit_name or "m")
        return "px"


class Format(ABC):
    """A file type the plugin reads: how to recognise it and how to read it.

    Subclasses set :attr:`name` (the registry key), :attr:`description` and
    :attr:`suffixes`, and implement :meth:`claims` and :meth:`read`.
    """

    name: str = ""
    description: str = ""
    suffixes: tuple[str, ...] = ()

    def claims_name(self, path: str | Path) -> bool:
        """True when the file name ends with one of :attr:`suffixes` (case-insensitive)."""
        return str(path).lower().endswith(self.suffixes)

    @abstractmethod
    def claims(self, path: Path) -> bool:
        """True when this format reads ``path``; cheap (no heavy imports) and never raises."""

    @abstractmethod
    def read(self, path: Path, **options: Any) -> list[Read]:
        """Read ``path``: one :class:`Read` per image or label map.

        Raises
        ------
        DomainSegError
            A specific subclass whose message names the file, what is wrong and what to do.
        """
