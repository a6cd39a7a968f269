"""Find DICOM image series in folders and files, and choose the one to load.

Files are grouped by SeriesInstanceUID and, within a series, split into
stacks whose orientation, matrix size or per-slice scaling differ
(localizers, multi-echo, mixed reconstructions). Files that are not DICOM or
carry no pixel data are skipped, each with its reason.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from napari_domainseg.medical.fast_header import PixelLocation, read_fast_header
from napari_domainseg.medical.header_values import float_values, text_value, text_values

SECONDARY_CAPTURE_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.7.1",
    "1.2.840.10008.5.1.4.1.1.7.2",
    "1.2.840.10008.5.1.4.1.1.7.3",
    "1.2.840.10008.5.1.4.1.1.7.4",
}
SEGMENTATION_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation Storage
    "1.2.840.10008.5.1.4.1.1.66.7",  # Label Map Segmentation Storage
}


@dataclass
class SeriesCandidate:
    """One stack of images that may become a volume.

    ``kind`` is ``"volume"`` (a 3D-capable stack), ``"enhanced"`` (one
    multi-frame object), ``"localizer"``, ``"secondary"`` (secondary capture,
    screenshots, exam summaries) or ``"segmentation"`` (DICOM SEG).
    """

    series_uid: str
    files: list[Path]
    headers: list[pydicom.Dataset]
    kind: str
    description: str = ""
    modality: str = ""
    series_number: int | None = None
    pixel_locations: list[PixelLocation | None] = field(default_factory=list)
    """Where each file's uncompressed pixels sit (``None``: decode with pydicom)."""

    @property
    def n_images(self) -> int:
        """Number of 2D images (frames of a multi-frame object count one each)."""
        return sum(int(h.get("NumberOfFrames", 1) or 1) for h in self.headers)

    @property
    def is_volume_capable(self) -> bool:
        """True for stacks that can form a 3D volume."""
        return self.kind in ("volume", "enhanced")

    def summary(self) -> str:
        """One line naming the series for messages and pickers."""
        number = f"#{self.series_number} " if self.series_number is not None else ""
        description = self.description or "(no description)"
        return f"{number}{description} [{self.modality} {self.kind}, {self.n_images} images]"


@dataclass
class Discovery:
    """What a folder holds: candidate stacks and the files that were skipped."""

    candidates: list[SeriesCandidate]
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def skipped_summary(self) -> str:
        """Say how many files were skipped and why, e.g. ``"3 skipped: 2 not DICOM, 1 ..."``."""
        if not self.skipped:
            return "no files skipped"
        reasons: dict[str, int] = defaultdict(int)
        for _, reason in self.skipped:
            reasons[reason] += 1
        details = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
        return f"{len(self.skipped)} files skipped ({details})"


def list_files(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Files to consider: a folder recursively, a single file's folder, or an explicit list."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        folder = path if path.is_dir() else path.parent
        return sorted(p for p in folder.rglob("*") if p.is_file() and p.name.upper() != "DICOMDIR")
    return [Path(p) for p in source]


def image_type(ds: pydicom.Dataset) -> list[str]:
    """ImageType values, upper-cased (``["ORIGINAL", "PRIMARY", "AXIAL"]``)."""
    return [v.upper() for v in text_values(ds, "ImageType")]


def _kind(ds: pydicom.Dataset, image_types: list[str]) -> str:
    sop_class = text_value(ds, "SOPClassUID")
    if sop_class in SEGMENTATION_CLASSES:
        return "segmentation"
    if sop_class in SECONDARY_CAPTURE_CLASSES or "SECONDARY" in image_types[:1]:
        return "secondary"
    if "LOCALIZER" in image_types:
        return "localizer"
    if int(ds.get("NumberOfFrames", 1) or 1) > 1 and "PerFrameFunctionalGroupsSequence" in ds:
        return "enhanced"
    return "volume"


def _stack_key(ds: pydicom.Dataset, image_types: list[str]) -> tuple:
    orientation = tuple(round(v, 3) for v in float_values(ds, "ImageOrientationPatient"))
    slope = float_values(ds, "RescaleSlope")
    intercept = float_values(ds, "RescaleIntercept")
    return (
        orientation,
        int(ds.get("Rows", 0)),
        int(ds.get("Columns", 0)),
        slope[0] if slope and slope[0] else 1.0,
        intercept[0] if intercept else 0.0,
        text_value(ds, "EchoNumbers"),
        text_value(ds, "AcquisitionNumber") if "LOCALIZER" in image_types else "",
    )


def read_headers(
    files: Iterable[Path],
) -> tuple[list[tuple[Path, pydicom.Dataset, PixelLocation | None]], list[tuple[Path, str]]]:
    """Read each file's header (no pixel data); return readable image headers and skips.

    Classic images go through :func:`~.fast_header.read_fast_header`, which
    also says where uncompressed pixels sit; anything else through pydicom.
    """
    readable: list[tuple[Path, pydicom.Dataset, PixelLocation | None]] = []
    skipped: list[tuple[Path, str]] = []
    for file in files:
        fast = read_fast_header(file)
        if fast is not None:
            ds, location = fast
        else:
            location = None
            try:
                ds = pydicom.dcmread(file, stop_before_pixels=True)
            except (InvalidDicomError, OSError, EOFError, ValueError, TypeError):
                skipped.append((file, "not DICOM"))
                continue
        if "SOPClassUID" not in ds and "Rows" not in ds:
            skipped.append((file, "not DICOM images (directory or private files)"))
            continue
        if "Rows" not in ds or "SeriesInstanceUID" not in ds:
            skipped.append((file, "no pixel data"))
            continue
        readable.append((file, ds, location))
    return readable, skipped


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while thousands of header objects are made.

    Reading 300 headers creates some 100,000 short-lived objects, which
    triggers full collections that cost about 20 % of the read; none of the
    objects form cycles that need the collector.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def discover(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> Discovery:
    """Group the DICOM images at ``source`` into candidate stacks.

    Candidates are sorted best first (see :func:`choose_series`).
    """
    with gc_paused():
        return _discover(source)


def _discover(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> Discovery:
    readable, skipped = read_headers(list_files(source))
    groups: dict[tuple, list[tuple[Path, pydicom.Dataset, PixelLocation | None]]] = defaultdict(
        list
    )
    for file, ds, location in readable:
        image_types = image_type(ds)
        key = (
            text_value(ds, "SeriesInstanceUID"),
            text_value(ds, "SeriesNumber"),
            _kind(ds, image_types),
            _stack_key(ds, image_types),
        )
        groups[key].append((file, ds, location))
    candidates = []
    for (series_uid, _, kind, _), members in groups.items():
        first = members[0][1]
        number = first.get("SeriesNumber")
        candidates.append(
            SeriesCandidate(
                series_uid=series_uid,
                files=[f for f, _, _ in members],
                headers=[d for _, d, _ in members],
                pixel_locations=[location for _, _, location in members],
                kind=kind,
                description=str(first.get("SeriesDescription", "")),
                modality=str(first.get("Modality", "")),
                series_number=int(number) if number not in (None, "") else None,
            )
        )
    candidates.sort(key=_rank, reverse=True)
    return Discovery(candidates=candidates, skipped=skipped)


def _rank(candidate: SeriesCandidate) -> tuple[int, int]:
    return (1 if candidate.is_volume_capable else 0, candidate.n_images)


def choose_series(discovery: Discovery, series_uid: str | None = None) -> SeriesCandidate:
    """The candidate to load: the given series, else the volume stack with most images.

    Raises
    ------
    LookupError
        If there is no image series, or only localizers / secondary captures, or
        ``series_uid`` is not among the candidates.
    """
    if series_uid is not None:
        for candidate in discovery.candidates:
            if candidate.series_uid == series_uid or str(candidate.series_number) == series_uid:
                return candidate
        raise LookupError(
            f"series {series_uid} not found; available: "
            + "; ".join(c.summary() for c in discovery.candidates)
        )
    volumes = [c for c in discovery.candidates if c.is_volume_capable]
    if not volumes:
        found = "; ".join(c.summary() for c in discovery.candidates) or "no DICOM images"
        raise LookupError(f"no volume series found ({found}; {discovery.skipped_summary()})")
    return volumes[0]


def is_dicom_file(path: str | os.PathLike[str]) -> bool:
    """Cheap check: the DICM preamble marker, or a readable DICOM header with an SOP class."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            handle.seek(128)
            if handle.read(4) == b"DICM":
                return True
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
        return bool(ds.get("SOPClassUID"))
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError):
        return False
