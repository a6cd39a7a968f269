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
        """Read ``path`` (see :meth:`Format.read`).

        An instance map (header field ``DomainSeg_Instances``) reads as the map, the class
        schema, and the instance records in ``metadata["instances"]``.
        """
        from napari_domainseg.medical.geometry_checks import GeometryWarning, layer_name
        from napari_domainseg.medical.instance_segments import restore_instances
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
        metadata = volume.description
        if not several:
            found += restore_instances(metadata, volume.array, Path(path).name)
        elif metadata.pop("instances", None) is not None:  # a layered file is not one map
            found.append(f"{Path(path).name}: its instance table is ignored: it has layers.")
        return [
            Read(
                array,
                path,
                geometry=volume.geometry,
                kind=LABELS,
                name=f"{name} layer {index}" if several else name,
                schema=schema,
                metadata=metadata,
                warnings=found if index == 0 else [],  # told once, not once per layer
            )
            for index, (array, schema) in enumerate(zip(read.layers, read.schemas, strict=True))
        ]
