"""A medical volume's geometry as one immutable value.

:class:`VolumeGeometry` is everything that places a world-ordered (z, y, x) voxel array in
the patient and ties it to its DICOM source: the exact voxel-to-LPS affine (tilt and
obliquity included), the affine napari shows (the exact one, or the straightened one on the
volume's own grid), the lossless reorientation from the acquired (k, j, i) order, the frame
of reference, and the source references a DICOM SEG must point at.

It is made once, from a reader's volume (:meth:`VolumeGeometry.of_volume`), validated on
construction, travels with every layer (the napari adapter stores the object itself) and is
what every exporter takes. :meth:`to_dict`/:meth:`from_dict` serialise it exactly (autosave).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_domainseg.errors import DomainSegError
from napari_domainseg.medical.geometry import display_affine as shown_affine

IDENTITY_PERMUTATION = (0, 1, 2)
NO_FLIPS = (False, False, False)
GEOMETRY_KEYS = frozenset(
    {
        "affine",
        "display_affine",
        "straightened",
        "reorientation",
        "frame_of_reference_uid",
        "study_instance_uid",
        "series_instance_uid",
        "sop_instance_uids",
        "frame_order",
        "source_files",
    }
)
"""Volume-metadata entries a reader writes that :meth:`VolumeGeometry.of_volume` takes over."""


class VolumeGeometryError(DomainSegError, ValueError):
    """A volume geometry that cannot be: not a 4x4 affine, not invertible, a bad reorientation."""


def _affine(value: Any, name: str) -> np.ndarray:
    matrix = np.array(value, dtype=float)
    if matrix.shape != (4, 4):
        raise VolumeGeometryError(f"the {name} must be 4x4, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise VolumeGeometryError(f"the {name} is not finite (NaN or infinite entries)")
    if not np.allclose(matrix[3], (0.0, 0.0, 0.0, 1.0)):
        raise VolumeGeometryError(f"the {name}'s last row must be (0, 0, 0, 1), got {matrix[3]}")
    if abs(np.linalg.det(matrix[:3, :3])) < 1e-12:
        raise VolumeGeometryError(f"the {name} is singular (a voxel axis of length 0?)")
    matrix.setflags(write=False)
    return matrix


@dataclass(frozen=True)
class SourceReferences:
    """Where the voxels came from: the DICOM identifiers a SEG references, and the files.

    Attributes
    ----------
    study_instance_uid, series_instance_uid
        The source series' UIDs (empty when not DICOM).
    sop_instance_uids
        One per acquired slice (or the one enhanced object), in acquired order.
    frame_order
        For an enhanced object, the 0-based frame of each acquired slice; else ``None``.
    source_files
        The files read, in acquired order (a SEG reads their headers again).
    """

    study_instance_uid: str = ""
    series_instance_uid: str = ""
    sop_instance_uids: tuple[str, ...] = ()
    frame_order: tuple[int, ...] | None = None
    source_files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "study_instance_uid", str(self.study_instance_uid or ""))
        object.__setattr__(self, "series_instance_uid", str(self.series_instance_uid or ""))
        object.__setattr__(self, "sop_instance_uids", tuple(str(u) for u in self.sop_instance_uids))
        if self.frame_order is not None:
            object.__setattr__(self, "frame_order", tuple(int(i) for i in self.frame_order))
        object.__setattr__(self, "source_files", tuple(str(f) for f in self.source_files))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (lists for tuples)."""
        return {
            "study_instance_uid": self.study_instance_uid,
            "series_instance_uid": self.series_instance_uid,
            "sop_instance_uids": list(self.sop_instance_uids),
            "frame_order": None if self.frame_order is None else list(self.frame_order),
            "source_files": list(self.source_files),
        }


@dataclass(frozen=True, eq=False)
class VolumeGeometry:
    """Where a world-ordered (z, y, x) volume lies in the patient, and what it came from.

    Parameters
    ----------
    affine
        Exact 4x4 map from voxel ``(k, j, i, 1)`` of the world-ordered array to LPS
        ``(z, y, x, 1)`` in mm (tilt and obliquity included).
    shape
        The world-ordered array's shape.
    display_affine
        What napari shows; ``None``: the exact affine when axis-aligned, else the
        straightened one (:func:`~napari_domainseg.medical.geometry.display_affine`).
    permutation, flips
        The lossless reorientation that made the world order from the acquired (k, j, i):
        ``permutation[w]`` is the acquired axis that became world axis ``w``, flipped when
        ``flips[w]``.
    frame_of_reference_uid
        The DICOM frame of reference (empty when unknown).
    source
        The source references (:class:`SourceReferences`).

    Raises
    ------
    VolumeGeometryError
        An affine that is not a finite, invertible 4x4 homogeneous matrix, a shape that is
        not three positive sizes, or a reorientation that is not a permutation of the axes.
    """

    affine: np.ndarray
    shape: tuple[int, int, int]
    display_affine: np.ndarray | None = None
    permutation: tuple[int, int, int] = IDENTITY_PERMUTATION
    flips: tuple[bool, bool, bool] = NO_FLIPS
    frame_of_reference_uid: str = ""
    source: SourceReferences = field(default_factory=SourceReferences)

    def __post_init__(self) -> None:
        shape = tuple(int(n) for n in self.shape)
        if len(shape) != 3 or min(shape) < 1:
            raise VolumeGeometryError(f"a volume has three positive sizes, got {self.shape}")
        object.__setattr__(self, "shape", shape)
        exact = _affine(self.affine, "affine")
        object.__setattr__(self, "affine", exact)
        shown = shown_affine(exact, shape) if self.display_affine is None else self.display_affine
        object.__setattr__(self, "display_affine", _affine(shown, "display affine"))
        permutation = tuple(int(a) for a in self.permutation)
        if sorted(permutation) != [0, 1, 2]:
            raise VolumeGeometryError(f"not a permutation of the axes (0, 1, 2): {permutation}")
        flips = tuple(bool(f) for f in self.flips)
        if len(flips) != 3:
            raise VolumeGeometryError(f"one flip per axis, got {self.flips}")
        object.__setattr__(self, "permutation", permutation)
        object.__setattr__(self, "flips", flips)
        object.__setattr__(self, "frame_of_reference_uid", str(self.frame_of_reference_uid or ""))
        if not isinstance(self.source, SourceReferences):
            raise VolumeGeometryError(f"source must be SourceReferences, got {type(self.source)}")

    # ------------------------------------------------------------------ views

    @property
    def straightened(self) -> bool:
        """True when napari shows the volume on a grid other than its exact one (oblique)."""
        return not np.allclose(self.display_affine, self.affine)

    @property
    def spacing(self) -> np.ndarray:
        """Distance in mm between neighbouring voxels along each array axis."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def sheared(self) -> bool:
        """True when the voxel axes are not perpendicular (a gantry-tilted stack)."""
        axes = self.affine[:3, :3]
        unit = axes / np.maximum(np.linalg.norm(axes, axis=0), 1e-12)
        return float(np.abs(unit.T @ unit - np.eye(3)).max()) > 1e-4

    def placed(self, data_to_world: np.ndarray, tolerance: float = 1e-6) -> bool:
        """True when a layer's data-to-world matrix is still where this geometry shows it.

        Compared in voxels of the shown grid (``tolerance`` voxels), so a small rescale of a
        fine grid far from the origin is not mistaken for "unmoved".
        """
        current = np.asarray(data_to_world, dtype=float)
        if current.shape != (4, 4) or not np.all(np.isfinite(current)):
            return False
        relative = np.linalg.solve(self.display_affine, current)  # identity when unmoved
        return bool(np.allclose(relative, np.eye(4), rtol=0.0, atol=tolerance))

    # ------------------------------------------------------------------ construction

    @classmethod
    def of_volume(cls, volume: Any) -> VolumeGeometry:
        """The geometry of a reader's :class:`~napari_domainseg.medical.volume.Volume`.

        The reader's metadata may say how it reoriented and what it read
        (:data:`GEOMETRY_KEYS`); the exact affine is ``volume.affine``.
        """
        return cls.from_parts(volume.affine, volume.shape, volume.metadata)

    @classmethod
    def from_parts(
        cls, affine: np.ndarray, shape: Sequence[int], metadata: Mapping[str, Any] | None
    ) -> VolumeGeometry:
        """The geometry of an array of ``shape`` with ``affine`` and reader ``metadata``."""
        metadata = metadata or {}
        reorientation = metadata.get("reorientation") or {}
        return cls(
            affine=affine,
            shape=tuple(shape),  # type: ignore[arg-type]
            display_affine=metadata.get("display_affine"),
            permutation=tuple(reorientation.get("permutation", IDENTITY_PERMUTATION)),  # type: ignore[arg-type]
            flips=tuple(reorientation.get("flips", NO_FLIPS)),  # type: ignore[arg-type]
            frame_of_reference_uid=metadata.get("frame_of_reference_uid") or "",
            source=SourceReferences(
                study_instance_uid=metadata.get("study_instance_uid") or "",
                series_instance_uid=metadata.get("series_instance_uid") or "",
                sop_instance_uids=tuple(metadata.get("sop_instance_uids") or ()),
                frame_order=metadata.get("frame_order"),
                source_files=tuple(metadata.get("source_files") or ()),
            ),
        )

    def with_affine(self, affine: np.ndarray) -> VolumeGeometry:
        """The same volume placed by ``affine`` instead (shown as it is; no source change)."""
        return VolumeGeometry(
            affine=affine,
            shape=self.shape,
            display_affine=affine,
            permutation=self.permutation,
            flips=self.flips,
            frame_of_reference_uid=self.frame_of_reference_uid,
            source=self.source,
        )

    # ------------------------------------------------------------------ serialisation

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; floats are kept exactly (``repr`` round trip)."""
        return {
            "kind": "volume_geometry",
            "affine": self.affine.tolist(),
            "shape": list(self.shape),
            "display_affine": self.display_affine.tolist(),
            "reorientation": {"permutation": list(self.permutation), "flips": list(self.flips)},
            "frame_of_reference_uid": self.frame_of_reference_uid,
            "source": self.source.to_dict(),
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> VolumeGeometry:
        """The geometry :meth:`to_dict` describes.

        Raises
        ------
        VolumeGeometryError
            A document that lacks a field or holds an impossible geometry.
        """
        try:
            source = document.get("source") or {}
            reorientation = document.get("reorientation") or {}
            return cls(
                affine=document["affine"],
                shape=tuple(document["shape"]),  # type: ignore[arg-type]
                display_affine=document.get("display_affine"),
                permutation=tuple(reorientation.get("permutation", IDENTITY_PERMUTATION)),  # type: ignore[arg-type]
                flips=tuple(reorientation.get("flips", NO_FLIPS)),  # type: ignore[arg-type]
                frame_of_reference_uid=document.get("frame_of_reference_uid", ""),
                source=SourceReferences(**source),
            )
        except VolumeGeometryError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise VolumeGeometryError(f"not a volume geometry description ({exc!r})") from exc

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VolumeGeometry):
            return NotImplemented
        return (
            self.shape == other.shape
            and np.array_equal(self.affine, other.affine)
            and np.array_equal(self.display_affine, other.display_affine)
            and self.permutation == other.permutation
            and self.flips == other.flips
            and self.frame_of_reference_uid == other.frame_of_reference_uid
            and self.source == other.source
        )

    __hash__ = None  # type: ignore[assignment]
