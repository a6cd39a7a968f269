"""Find DICOM image series in folders and files, and choose the one to load.

Files are grouped by SeriesInstanceUID and, within a series, split into
stacks whose orientation, matrix size, echo, complex component (magnitude,
phase, ...) or b-value differ (localizers, multi-echo, mixed
reconstructions). Per-slice RescaleSlope/Intercept do *not* split a stack:
they are applied per slice when the volume is read.

Nothing is silent: every file is looked at inside its own guard, and a
file that is not a regular file, not DICOM, carries no pixel data or has a
malformed header value is skipped with its reason (named in
:meth:`Discovery.skipped_summary`). A file whose header is fine but whose
pixel data is truncated or inconsistent with its pixel module stays with
its stack as *unreadable*: the series is refused, naming the file, unless
the user asks to open the readable slices only. Only regular files are
opened (never FIFOs, sockets or devices), and only their header bytes are read.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import struct
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from napari_domainseg.medical.fast_header import (
    NATIVE_SYNTAXES,
    PixelLocation,
    read_fast_header,
)
from napari_domainseg.medical.header_values import (
    float_values,
    text_value,
    text_values,
    uint_value,
)
from napari_domainseg.medical.sniff import SkipFile as _Skip
from napari_domainseg.medical.sniff import regular_file_size
from napari_domainseg.medical.sniff import walk_files as _walk

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
DEFER_SIZE = 64 * 1024
"""pydicom's fallback reader leaves values larger than this on disk (never reads a file whole)."""
_COMPLEX_PARTS = {
    "M": "M",
    "MAGNITUDE": "M",
    "P": "P",
    "PHASE": "P",
    "R": "R",
    "REAL": "R",
    "I": "I",
    "IMAGINARY": "I",
}
_INTEGER_KEYWORDS = (
    "NumberOfFrames",
    "SeriesNumber",
    "InstanceNumber",
    "AcquisitionNumber",
    "EchoNumbers",
)
_DECIMAL_KEYWORDS = (
    "ImageOrientationPatient",
    "ImagePositionPatient",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "RescaleSlope",
    "RescaleIntercept",
    "WindowCenter",
    "WindowWidth",
    "EchoTime",
)
_PIXEL_KEYWORDS = (
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "SamplesPerPixel",
)


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
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    """Files of this stack whose pixel data cannot be read (truncated, inconsistent), and why."""
    distinction: str = ""
    """What tells this stack apart from others that would otherwise have the same label."""

    @property
    def n_images(self) -> int:
        """Number of readable 2D images (frames of a multi-frame object count one each)."""
        return sum(int(h.get("NumberOfFrames", 1) or 1) for h in self.headers)

    @property
    def is_volume_capable(self) -> bool:
        """True for stacks that can form a 3D volume."""
        return self.kind in ("volume", "enhanced")

    def label(self) -> str:
        """Number, description and distinction: ``"#501 (no description) | ImageType P"``."""
        number = f"#{self.series_number} " if self.series_number is not None else ""
        description = self.description or "(no description)"
        distinction = f" | {self.distinction}" if self.distinction else ""
        return f"{number}{description}{distinction}"

    def summary(self) -> str:
        """One line naming the series for messages and pickers."""
        unreadable = f", {len(self.unreadable)} unreadable" if self.unreadable else ""
        return f"{self.label()} [{self.modality} {self.kind}, {self.n_images} images{unreadable}]"


@dataclass
class Discovery:
    """What a folder holds: candidate stacks and the files that were skipped."""

    candidates: list[SeriesCandidate]
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def skipped_summary(self, max_names: int = 2) -> str:
        """Say how many files were skipped and why, naming a few of each reason.

        For example ``"3 files skipped (2 not DICOM: a.txt, b.png; 1 malformed
        header (NumberOfFrames '1A' is not an integer): IM0007)"``.
        """
        if not self.skipped:
            return "no files skipped"
        reasons: dict[str, list[Path]] = defaultdict(list)
        for path, reason in self.skipped:
            reasons[reason].append(path)
        details = []
        for reason, paths in sorted(reasons.items()):
            names = ", ".join(p.name for p in paths[:max_names])
            more = ", ..." if len(paths) > max_names else ""
            details.append(f"{len(paths)} {reason}: {names}{more}")
        files = "file" if len(self.skipped) == 1 else "files"
        return f"{len(self.skipped)} {files} skipped ({'; '.join(details)})"


@dataclass
class _FileHeader:
    """One readable image header with what discovery learnt from it."""

    file: Path
    dataset: pydicom.Dataset
    location: PixelLocation | None
    key: tuple
    pixel_problem: str | None


def list_files(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Files to consider: a folder recursively, a single file's folder, or an explicit list.

    Every non-folder entry is listed (FIFOs and sockets too, so that
    :func:`read_headers` can say why it skips them); DICOMDIR files are left out.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        folder = path if path.is_dir() else path.parent
        return sorted(_walk(folder))
    return [Path(p) for p in source]


def image_type(ds: pydicom.Dataset) -> list[str]:
    """ImageType values, upper-cased (``["ORIGINAL", "PRIMARY", "AXIAL"]``)."""
    return [v.upper() for v in text_values(ds, "ImageType")]


def complex_component(ds: pydicom.Dataset, image_types: list[str] | None = None) -> str:
    """``"M"``, ``"P"``, ``"R"`` or ``"I"`` (magnitude, phase, real, imaginary), or ``""``."""
    component = text_value(ds, "ComplexImageComponent").upper()
    if component in _COMPLEX_PARTS:
        return _COMPLEX_PARTS[component]
    for value in (image_types if image_types is not None else image_type(ds))[2:]:
        if value in _COMPLEX_PARTS:
            return _COMPLEX_PARTS[value]
    return ""


def _kind(ds: pydicom.Dataset, image_types: list[str]) -> str:
    sop_class = text_value(ds, "SOPClassUID")
    if sop_class in SEGMENTATION_CLASSES:
        return "segmentation"
    if sop_class in SECONDARY_CAPTURE_CLASSES or "SECONDARY" in image_types[:1]:
        return "secondary"
    if "LOCALIZER" in image_types:
        return "localizer"
    if _integer(ds, "NumberOfFrames", 1) > 1 and "PerFrameFunctionalGroupsSequence" in ds:
        return "enhanced"
    return "volume"


def _stack_key(ds: pydicom.Dataset, image_types: list[str]) -> tuple:
    orientation = float_values(ds, "ImageOrientationPatient")
    if all(math.isfinite(v) for v in orientation):
        orientation_key: tuple = tuple(round(v, 3) for v in orientation)
    else:  # NaN never equals itself: keep such files together for the geometry check
        orientation_key = ("not finite",)
    echo_time = float_values(ds, "EchoTime")
    b_values = float_values(ds, "DiffusionBValue")
    return (
        orientation_key,
        uint_value(ds, "Rows", 0),
        uint_value(ds, "Columns", 0),
        text_value(ds, "EchoNumbers"),
        round(echo_time[0], 3) if echo_time and math.isfinite(echo_time[0]) else None,
        complex_component(ds, image_types),
        round(b_values[0], 1) if b_values and math.isfinite(b_values[0]) else None,
        text_value(ds, "AcquisitionNumber") if "LOCALIZER" in image_types else "",
    )


def _integer(ds: pydicom.Dataset, keyword: str, default: int) -> int:
    values = text_values(ds, keyword)
    return int(float(values[0])) if values and values[0] else default


def header_problem(ds: pydicom.Dataset) -> str | None:
    """The first header value the reader needs that cannot be parsed, described; else ``None``.

    Parses every integer and decimal string the series reader uses (from the
    raw bytes, fast) and the binary pixel-module values, so a malformed value
    is met here, inside the file's own guard, and never later while a whole
    folder is being read.
    """
    for keyword in _INTEGER_KEYWORDS:
        for value in text_values(ds, keyword):
            try:
                number = float(value)
            except ValueError:
                return f"{keyword} {value[:20]!r} is not an integer"
            if not number.is_integer():
                return f"{keyword} {value[:20]!r} is not an integer"
    for keyword in _DECIMAL_KEYWORDS:
        for value in text_values(ds, keyword):
            try:
                float(value)
            except ValueError:
                return f"{keyword} {value[:20]!r} is not a number"
    for keyword in _PIXEL_KEYWORDS:
        try:
            uint_value(ds, keyword)
        except (ValueError, TypeError, struct.error):
            return f"{keyword} cannot be read"
    if _integer(ds, "NumberOfFrames", 1) < 1:
        return f"NumberOfFrames {text_value(ds, 'NumberOfFrames')!r} is not a positive count"
    return None


def expected_pixel_bytes(ds: pydicom.Dataset) -> int | None:
    """Bytes of native pixel data the pixel module describes, or ``None`` if it is incomplete.

    Rows x Columns x SamplesPerPixel x BitsAllocated / 8 x NumberOfFrames,
    rounded up to whole bytes (``YBR_FULL_422`` holds two samples a pixel).
    """
    rows, columns = uint_value(ds, "Rows", 0) or 0, uint_value(ds, "Columns", 0) or 0
    bits = uint_value(ds, "BitsAllocated", 0) or 0
    samples = uint_value(ds, "SamplesPerPixel", 1) or 1
    if text_value(ds, "PhotometricInterpretation").upper() == "YBR_FULL_422":
        samples = 2
    frames = _integer(ds, "NumberOfFrames", 1)
    if rows <= 0 or columns <= 0 or bits <= 0:
        return None
    return (rows * columns * samples * frames * bits + 7) // 8


def pixel_module_problem(ds: pydicom.Dataset) -> str | None:
    """Why the pixel module (size, bit depth, samples) is inconsistent, or ``None``."""
    rows, columns = uint_value(ds, "Rows", 0) or 0, uint_value(ds, "Columns", 0) or 0
    bits_allocated = uint_value(ds, "BitsAllocated", 0) or 0
    bits_stored = uint_value(ds, "BitsStored", 0) or bits_allocated
    high_bit = uint_value(ds, "HighBit")
    samples = uint_value(ds, "SamplesPerPixel", 1) or 1
    if rows <= 0 or columns <= 0:
        return f"Rows x Columns is {rows} x {columns}"
    if bits_allocated not in (1, 8, 16, 32, 64):
        return f"BitsAllocated is {bits_allocated} (must be 1, 8, 16, 32 or 64)"
    if not 1 <= bits_stored <= bits_allocated:
        return f"BitsStored {bits_stored} does not fit BitsAllocated {bits_allocated}"
    if high_bit is not None and not bits_stored - 1 <= high_bit < bits_allocated:
        return f"HighBit {high_bit} does not fit BitsStored {bits_stored}"
    if samples not in (1, 3, 4):
        return f"SamplesPerPixel is {samples}"
    return None


def pixel_data_problem(
    ds: pydicom.Dataset, location: PixelLocation | None, file_size: int
) -> str | None:
    """Why a file's native pixel data cannot be read as its header says, or ``None``.

    Checks the pixel module, then (for uncompressed data whose place is known)
    that the file holds the whole pixel data element and that its length
    matches Rows x Columns x SamplesPerPixel x BitsAllocated / 8 x frames
    (plus one byte of even-length padding). Compressed data is checked when decoded.
    """
    problem = pixel_module_problem(ds)
    if problem is not None:
        return f"inconsistent pixel module: {problem}"
    if location is None:
        return None
    expected = expected_pixel_bytes(ds)
    available = file_size - location.offset
    if available < min(location.length, expected or location.length):
        return (
            f"pixel data truncated: the file ends {max(available, 0)} bytes into "
            f"{expected or location.length} bytes of pixel data"
        )
    if expected is not None and location.length not in (expected, expected + 1):
        rows, columns = uint_value(ds, "Rows", 0) or 1, uint_value(ds, "Columns", 0) or 1
        samples = uint_value(ds, "SamplesPerPixel", 1) or 1
        bits = uint_value(ds, "BitsAllocated", 0)
        frames = _integer(ds, "NumberOfFrames", 1)
        implied = location.length * 8 / (rows * columns * samples * frames)
        return (
            f"inconsistent pixel module: pixel data holds {location.length} bytes but "
            f"Rows x Columns x SamplesPerPixel x BitsAllocated/8 x frames = {rows} x {columns} "
            f"x {samples} x {bits}/8 x {frames} = {expected} bytes (about {implied:.3g} bits "
            f"per sample, not {bits})"
        )
    return None


def _pydicom_header(file: Path, file_size: int) -> tuple[pydicom.Dataset, PixelLocation | None]:
    """Header through pydicom (values over :data:`DEFER_SIZE` left on disk) and native pixels."""
    try:
        with open(file, "rb") as handle:
            start = handle.read(140)
            if start[128:132] != b"DICM" or start[132:134] != b"\x02\x00":
                raise _Skip("not DICOM")  # pydicom would walk a file of zeros to its end
            handle.seek(0)
            ds = pydicom.dcmread(handle, stop_before_pixels=True, defer_size=DEFER_SIZE)
            return ds, _native_location(handle, ds, file_size)
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, struct.error):
        raise _Skip("not DICOM") from None


def _native_location(handle, ds: pydicom.Dataset, file_size: int) -> PixelLocation | None:
    """Where native pixel data sits, read from the element header pydicom stopped before."""
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if syntax not in NATIVE_SYNTAXES | {"1.2.840.10008.1.2.2"}:
        return None
    start = handle.tell()
    header = handle.read(12)
    if len(header) < 8:
        return None
    order = ">" if syntax == "1.2.840.10008.1.2.2" else "<"
    group, element = struct.unpack(f"{order}HH", header[:4])
    if (group, element) != (0x7FE0, 0x0010):
        return None
    if syntax == "1.2.840.10008.1.2":  # implicit VR: 4-byte length
        (length,) = struct.unpack("<I", header[4:8])
        offset = start + 8
    elif header[4:6] in (b"OB", b"OW", b"UN", b"OV", b"OD", b"OF", b"OL") and len(header) == 12:
        (length,) = struct.unpack(f"{order}I", header[8:12])
        offset = start + 12
    else:
        return None
    if length == 0xFFFFFFFF:
        return None
    return PixelLocation(offset=offset, length=length)


def _read_one(file: Path) -> _FileHeader:
    """Read one file's header inside its own guard; raise :class:`_Skip` with the reason."""
    size = regular_file_size(file)
    fast = read_fast_header(file)
    if fast is not None:
        ds, location = fast
        pixel_location = location
    else:
        ds, pixel_location = _pydicom_header(file, size)
        location = None  # pixels decoded by pydicom (big endian, compressed, multi-frame)
    if "SOPClassUID" not in ds and "Rows" not in ds:
        raise _Skip("not DICOM images (directory or private files)")
    if "Rows" not in ds or "SeriesInstanceUID" not in ds:
        raise _Skip("no pixel data")
    problem = header_problem(ds)
    if problem is not None:
        raise _Skip(f"malformed header ({problem})")
    image_types = image_type(ds)
    key = (
        text_value(ds, "SeriesInstanceUID"),
        text_value(ds, "SeriesNumber"),
        _kind(ds, image_types),
        _stack_key(ds, image_types),
    )
    return _FileHeader(file, ds, location, key, pixel_data_problem(ds, pixel_location, size))


def read_headers(files: Iterable[Path]) -> tuple[list[_FileHeader], list[tuple[Path, str]]]:
    """Read each file's header (no pixel data); return readable image headers and skips.

    Classic images go through :func:`~.fast_header.read_fast_header`, which
    also says where uncompressed pixels sit; anything else through pydicom.
    Every file is read inside its own guard: one bad file never blocks the others.
    """
    readable: list[_FileHeader] = []
    skipped: list[tuple[Path, str]] = []
    for file in files:
        try:
            readable.append(_read_one(Path(file)))
        except _Skip as reason:
            skipped.append((Path(file), str(reason)))
        except Exception as exc:  # any surprise in one file skips that file only
            skipped.append((Path(file), f"unreadable header ({type(exc).__name__}: {exc})"[:200]))
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
    groups: dict[tuple, list[_FileHeader]] = defaultdict(list)
    for header in readable:
        groups[header.key].append(header)
    candidates = []
    for (series_uid, _, kind, _), members in groups.items():
        good = [m for m in members if m.pixel_problem is None]
        bad = [(m.file, str(m.pixel_problem)) for m in members if m.pixel_problem is not None]
        if not good:  # nothing readable: not a candidate, but never silently dropped
            skipped += bad
            continue
        first = good[0].dataset
        number = text_value(first, "SeriesNumber")
        candidates.append(
            SeriesCandidate(
                series_uid=series_uid,
                files=[m.file for m in good],
                headers=[m.dataset for m in good],
                pixel_locations=[m.location for m in good],
                kind=kind,
                description=str(first.get("SeriesDescription", "")),
                modality=str(first.get("Modality", "")),
                series_number=int(float(number)) if number else None,
                unreadable=bad,
            )
        )
    name_distinctions(candidates)
    candidates.sort(key=_rank, reverse=True)
    return Discovery(candidates=candidates, skipped=skipped)


def _rank(candidate: SeriesCandidate) -> tuple[int, int]:
    return (1 if candidate.is_volume_capable else 0, candidate.n_images)


_DISTINGUISHING = (
    ("ImageType", lambda ds: tuple(image_type(ds)), "ImageType {}"),
    ("complex", complex_component, "ImageType {}"),
    ("EchoNumbers", lambda ds: text_value(ds, "EchoNumbers"), "echo {}"),
    ("EchoTime", lambda ds: text_value(ds, "EchoTime"), "TE {} ms"),
    ("DiffusionBValue", lambda ds: text_value(ds, "DiffusionBValue"), "b={}"),
    ("AcquisitionNumber", lambda ds: text_value(ds, "AcquisitionNumber"), "acquisition {}"),
    ("matrix", lambda ds: f"{ds.get('Rows')}x{ds.get('Columns')}", "{}"),
    ("orientation", lambda ds: _plane(ds), "{}"),
)


def name_distinctions(candidates: list[SeriesCandidate]) -> None:
    """Set each candidate's :attr:`~SeriesCandidate.distinction` where labels would collide.

    Among candidates of the same label, kind and modality, attributes whose
    values differ are added in this order until every label is unique:
    ImageType (only its differing values, e.g. ``M`` / ``P`` for magnitude and
    phase), the complex component, echo number and time, b-value, acquisition
    number, matrix, plane; then the SeriesInstanceUID's tail if nothing else differs.
    """
    groups: dict[tuple, list[SeriesCandidate]] = defaultdict(list)
    for candidate in candidates:
        groups[(candidate.label(), candidate.kind, candidate.modality)].append(candidate)
    for members in groups.values():
        if len(members) > 1:
            _distinguish(members)


def _distinguish(members: list[SeriesCandidate]) -> None:
    parts: list[list[str]] = [[] for _ in members]
    for name, value_of, template in _DISTINGUISHING:
        values = [_safe(value_of, c.headers[0]) for c in members]
        if len(set(values)) < 2:
            continue
        if name == "ImageType":
            values = _differing_items(values)
        for part, value in zip(parts, values, strict=True):
            part.append(template.format(value or "none"))
        if len({tuple(p) for p in parts}) == len(members):
            break
    if len({tuple(p) for p in parts}) < len(members):
        for candidate, part in zip(members, parts, strict=True):
            part.append(f"UID ...{candidate.series_uid[-8:]}")
    for candidate, part in zip(members, parts, strict=True):
        candidate.distinction = ", ".join(part)


def _differing_items(values: list) -> list[str]:
    """Of equally long ImageType tuples, only the positions that differ (else the whole)."""
    if len({len(v) for v in values}) > 1:
        return ["\\".join(v) for v in values]
    differing = [i for i in range(len(values[0])) if len({v[i] for v in values}) > 1]
    return ["\\".join(v[i] for i in differing) for v in values]


def _safe(value_of, ds: pydicom.Dataset):
    try:
        return value_of(ds)
    except Exception:  # a label must never fail
        return ""


def _plane(ds: pydicom.Dataset) -> str:
    orientation = float_values(ds, "ImageOrientationPatient")
    if len(orientation) != 6:
        return ""
    row, column = orientation[:3], orientation[3:]
    normal = [
        row[1] * column[2] - row[2] * column[1],
        row[2] * column[0] - row[0] * column[2],
        row[0] * column[1] - row[1] * column[0],
    ]
    axis = max(range(3), key=lambda a: abs(normal[a]))
    return ("sagittal", "coronal", "axial")[axis]


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
