"""DICOM image series: a study folder, one file of a series, or a list of files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from napari_domainseg.formats.base import IMAGE, Format, Read

NOT_DICOM_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".npy")


class DicomFormat(Format):
    """The best image series at a path (folders searched recursively, as dcm2niix does)."""

    name = "dicom"
    description = "DICOM series (folder, file or files)"

    def claims(self, path: Path | Sequence[Path]) -> bool:
        """True for the files this format reads (cheap; never raises)."""
        try:
            from napari_domainseg.medical.sniff import folder_has_dicom, is_dicom_file

            if isinstance(path, (list, tuple)):
                return len(path) > 0 and all(is_dicom_file(p) for p in path)
            path = Path(path)
            if path.is_dir():
                return folder_has_dicom(path)
            if path.name.lower().endswith(NOT_DICOM_SUFFIXES):
                return False
            return path.is_file() and is_dicom_file(path)
        except Exception:  # claims never raises
            return False

    def read(self, path: Path | Sequence[Path], **options: Any) -> list[Read]:
        """Read the best series (or ``series_uid``) at ``path``.

        Options: ``resample``, ``philips_scaling``, ``skip_unreadable``, ``series_uid``,
        ``discovery`` (as :func:`~napari_domainseg.medical.series.read_series` takes them), and
        ``with_segs``: also read the DICOM SEG objects found with the series that reference
        it, as label maps on its grid.
        """
        from napari_domainseg.medical.discovery import discover
        from napari_domainseg.medical.geometry_checks import layer_name
        from napari_domainseg.medical.series import read_series

        source = [str(p) for p in path] if isinstance(path, (list, tuple)) else str(path)
        discovery = options.get("discovery") or discover(source)
        loaded = read_series(
            source,
            options.get("series_uid"),
            discovery=discovery,
            resample=options.get("resample", False),
            skip_unreadable=options.get("skip_unreadable", False),
            philips_scaling=options.get("philips_scaling", "display"),
        )
        volume = loaded.volume
        shown = Path(source[0] if isinstance(source, list) else source)
        name = volume.metadata.get("series_description") or shown.name
        notes = []
        if loaded.others:
            listed = "; ".join(c.summary() for c in loaded.others)
            picker = any(c.is_volume_capable for c in loaded.others)
            notes.append(
                f"Opened {loaded.candidate.summary()}. Also in this folder: {listed}. "
                f"({loaded.skipped})"
                + (" Use the DICOM series picker to open another." if picker else "")
            )
        image = Read(
            volume.array,
            shown,
            geometry=volume.geometry,
            kind=IMAGE,
            name=layer_name(name, volume.metadata),
            metadata=volume.description,
            warnings=list(loaded.warnings),
            notes=notes,
        )
        if not options.get("with_segs"):
            return [image]
        return [image, *segs_of_series(discovery, image)]


def segs_of_series(discovery: Any, image: Read) -> list[Read]:
    """The label maps of the SEG objects in ``discovery`` that reference ``image``'s series.

    A SEG that cannot be placed is told in the image's warnings.
    """
    if not any(candidate.kind == "segmentation" for candidate in discovery.candidates):
        return []  # no SEG in the folder: highdicom (0.3 s to import) is not needed
    from napari_domainseg.formats.dicom_seg import seg_on_image
    from napari_domainseg.medical.dicom_seg import DicomSegError, segs_referencing

    reads: list[Read] = []
    series = image.volume_geometry.source.series_instance_uid
    for seg_file in segs_referencing(discovery, series):
        try:
            reads += seg_on_image(Path(seg_file), image)
        except DicomSegError as exc:
            image.warnings.append(str(exc))
    return reads
