"""NIfTI-1/2 volumes and label maps (RAS on disk, LPS z-y-x here; ``.labels.json`` classes)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from napari_domainseg.formats.base import IMAGE, LABELS, Format, Read


class NiftiFormat(Format):
    """``.nii`` / ``.nii.gz``: an image, or a label map (label intent, sidecar, few values)."""

    name = "nifti"
    description = "NIfTI (.nii, .nii.gz)"
    suffixes = (".nii", ".nii.gz")

    def claims(self, path: Path) -> bool:
        """True for the files this format reads (cheap; never raises)."""
        return self.claims_name(path)

    def read(self, path: Path, **options: Any) -> list[Read]:
        """Read ``path`` (see :meth:`Format.read`).

        Option ``strict_schema``: refuse a damaged ``.labels.json`` (:class:`SchemaError`)
        instead of reading the labels without class names and saying so.

        An instance map (its ``.labels.json`` lists ``"instances"``) reads as the map, the
        class schema, and the instance records in ``metadata["instances"]``
        (:meth:`~napari_domainseg.labels.instances.InstanceTable.from_records` rebuilds the
        table).
        """
        from napari_domainseg.labels.schema import LabelSchema, SchemaError
        from napari_domainseg.medical.geometry_checks import GeometryWarning, layer_name
        from napari_domainseg.medical.instance_segments import restore_instances
        from napari_domainseg.medical.nifti import nifti_stem, volume_from_nifti

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GeometryWarning)  # in Read.warnings instead
            volume = volume_from_nifti(path)
        name = layer_name(nifti_stem(path), volume.metadata)
        labels = bool(volume.metadata.get("is_labels"))
        found = list(volume.metadata.get("warnings", []))  # unusable geometry, ...
        schema, document = None, volume.metadata.get("schema")
        if document:
            sidecar = f"{nifti_stem(path)}.labels.json"
            try:
                schema = LabelSchema.from_dict(document, source=sidecar)
            except (SchemaError, TypeError, ValueError, KeyError) as exc:
                if options.get("strict_schema"):
                    raise
                found.append(f"{sidecar}: not a valid label schema ({exc}); classes unnamed.")
        metadata = volume.description
        found += restore_instances(metadata, volume.array, Path(path).name)
        return [
            Read(
                volume.array,
                path,
                geometry=volume.geometry,
                kind=LABELS if labels else IMAGE,
                name=name,
                schema=schema,
                metadata=metadata,
                warnings=found,
            )
        ]
