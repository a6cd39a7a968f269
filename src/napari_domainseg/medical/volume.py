"""The medical volume: a voxel array with its exact place in the patient.

World coordinates are DICOM patient coordinates (LPS, millimetres) with the
world axes ordered (z, y, x) as napari orders them: z = superior,
y = posterior, x = patient left. ``Volume.affine`` maps a homogeneous voxel
index ``(k, j, i, 1)`` of ``Volume.array`` to ``(z, y, x, 1)`` in that world.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_domainseg.medical.geometry import is_axis_aligned
from napari_domainseg.medical.volume_geometry import GEOMETRY_KEYS, VolumeGeometry


@dataclass
class Volume:
    """A 3D image with its voxel-to-patient geometry.

    Parameters
    ----------
    array
        Voxel values, axes (k, j, i): slice, row, column.
    affine
        4x4 matrix mapping ``(k, j, i, 1)`` to LPS ``(z, y, x, 1)`` in mm.
    metadata
        Non-identifying description (modality, series description, window, ...).
    """

    array: np.ndarray
    affine: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.affine = np.asarray(self.affine, dtype=float)
        if self.affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got {self.affine.shape}")
        if not np.all(np.isfinite(self.affine)):  # never a NaN affine: readers validate first
            raise ValueError(f"affine is not finite (NaN or infinite entries): {self.affine[:3]}")
        if self.array.ndim != 3:
            raise ValueError(f"a volume has 3 axes, got array of shape {self.array.shape}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape (k, j, i)."""
        return tuple(self.array.shape)  # type: ignore[return-value]

    @property
    def geometry(self) -> VolumeGeometry:
        """The volume's geometry as a value: exact and display affine, reorientation, sources."""
        return VolumeGeometry.of_volume(self)

    @property
    def description(self) -> dict[str, Any]:
        """The metadata beside the geometry: modality, window, scaling, warnings, ..."""
        return {k: v for k, v in self.metadata.items() if k not in GEOMETRY_KEYS}

    @property
    def spacing(self) -> np.ndarray:
        """Distance in mm between neighbouring voxels along each array axis."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def origin(self) -> np.ndarray:
        """LPS position (z, y, x) of voxel (0, 0, 0), in mm."""
        return self.affine[:3, 3].copy()

    @property
    def is_axis_aligned(self) -> bool:
        """True when every array axis runs along a patient axis."""
        return is_axis_aligned(self.affine)

    def index_to_world(self, index: np.ndarray) -> np.ndarray:
        """Map voxel indices ``(..., 3)`` to LPS ``(z, y, x)`` positions."""
        index = np.asarray(index, dtype=float)
        return index @ self.affine[:3, :3].T + self.affine[:3, 3]
