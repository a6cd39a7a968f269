"""NRRD volumes and masks, and 3D Slicer segmentations (``.seg.nrrd``, one read per layer)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from napari_domainseg.formats.base import IMAGE, LABELS, Format, Read


class NrrdFormat(Format):
    """``.nrrd`` / ``.nhdr`` / ``.seg.nrrd``."""

    name = "nrrd"
    description = "NRRD (.nrrd, .nhdr) and 3D Slicer segmentation (.seg.nrrd)"
    suffixes = (".nrrd", ".nhdr")

    def claims(self, path: Path) -> bool:
        """True for the files this format reads (cheap; never raises)."""
        return self.claims_name(path)

    def read(self, path: Path, **options: Any) -> list[Read]:
        """Read ``path`` (see :meth:`Format.read`)."""
        from napari_domainseg.medical.geometry_checks import GeometryWarning, layer_name
        from napari_domainseg.medical.nrrd_files import nrrd_stem, read_nrrd

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GeometryWarning)  # in Read.warnings instead
            read = read_nrrd(path)
        volume = read.volume
        name = layer_name(nrrd_stem(path), volume.metadata)
        found = list(volume.metadata.get("warnings", []))
        if not read.is_labels:
            return [
                Read(
                    volume.array,
                    path,
                    geometry=volume.geometry,
                    name=name,
                    metadata=volume.description,
                    warnings=found,
                    kind=IMAGE,
                )
            ]
        several = len(read.layers) > 1
        return [
            Read(
                array,
                path,
                geometry=volume.geometry,
                kind=LABELS,
                name=f"{name} layer {index}" if several else name,
                schema=schema,
                metadata=volume.description,
                warnings=found if index == 0 else [],  # told once, not once per layer
            )
            for index, (array, schema) in enumerate(zip(read.layers, read.schemas, strict=True))
        ]
