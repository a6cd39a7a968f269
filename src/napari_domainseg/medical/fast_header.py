"""A fast header pass for classic single-frame DICOM images (the hot path of opening a series).

Opening a 300-slice CT means reading 300 headers before any pixel. pydicom's
``dcmread`` builds every element, sequences and all (about 0.45 ms a file
on a Philips CT header); this scanner only walks the element headers of the
file's leading bytes, hands pydicom the raw elements it finds (pydicom still
decodes every value, lazily, exactly as it would), skips sequences, and
stops at the pixel data, whose offset it records so the pixels can be read
straight into the volume.

Anything unusual (big endian or deflated syntaxes, no preamble, multi-frame
or SEG objects, odd lengths) returns ``None`` and the caller uses pydicom.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import BaseTag, Tag

EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
IMPLICIT_LITTLE = "1.2.840.10008.1.2"
NATIVE_SYNTAXES = {EXPLICIT_LITTLE, IMPLICIT_LITTLE}
_UNSUPPORTED_SYNTAXES = {"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}  # big endian, deflate
_LONG_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"SV",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"UV",
}
_PIXEL_DATA = 0x7FE00010
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_FIRST_READ = 16384
_MAX_HEADER = 4 * 1024 * 1024
"""Header bytes the fast scan reads at most; longer headers (or none) go to pydicom."""
KEPT_PRIVATE_TAGS = frozenset({0x20050010, 0x2005100D, 0x2005100E})
"""Private elements kept in the fast header: Philips MR's creator and scale intercept/slope."""
_VR_NAMES = {
    vr.encode(): vr
    for vr in "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM "
    "UC UI UL UN UR US UT UV".split()
}
_TAG_VR_LEN = struct.Struct("<HH2sH")
_TAG_LEN = struct.Struct("<HHI")
_UINT32 = struct.Struct("<I")
_UINT16 = struct.Struct("<H")


class _Unsupported(Exception):
    """The file needs pydicom's full reader."""


@dataclass(frozen=True)
class PixelLocation:
    """Where uncompressed pixel data sits in a file."""

    offset: int
    length: int


def _sequence_end(buffer: bytes, position: int, implicit: bool) -> int:
    """Position after an undefined-length sequence starting at ``position`` (its first item)."""
    while True:
        if position + 8 > len(buffer):
            raise _Unsupported
        group, element, length = _TAG_LEN.unpack_from(buffer, position)
        tag = (group << 16) | element
        position += 8
        if tag == _SEQUENCE_END:
            return position
        if tag != _ITEM:
            raise _Unsupported
        if length != _UNDEFINED:
            position += length
            continue
        # An undefined-length item: walk its elements until the item delimiter.
        while True:
            if position + 8 > len(buffer):
                raise _Unsupported
            group, element = struct.unpack_from("<HH", buffer, position)
            if (group << 16) | element == _ITEM_END:
                position += 8
                break
            position, tag, _, _, _ = _next_element(buffer, position, implicit)
            if tag == _PIXEL_DATA:  # pixel data inside an item (an icon): leave it to pydicom
                raise _Unsupported


def _next_element(
    buffer: bytes, position: int, implicit: bool
) -> tuple[int, int, bytes | None, int, int]:
    """Parse the element at ``position``: (next position, tag, VR, value offset, length).

    Sequences and undefined lengths are skipped whole; their value offset is -1.
    """
    if position + 8 > len(buffer):
        raise _Unsupported
    if implicit:
        group, element, length = _TAG_LEN.unpack_from(buffer, position)
        vr, start = None, position + 8
    else:
        group, element, vr, length = _TAG_VR_LEN.unpack_from(buffer, position)
        if vr in _LONG_VRS:
            if position + 12 > len(buffer):
                raise _Unsupported
            (length,) = _UINT32.unpack_from(buffer, position + 8)
            start = position + 12
        else:
            start = position + 8
    tag = (group << 16) | element
    if tag == _PIXEL_DATA:
        return start, tag, vr, start, length
    if length == _UNDEFINED:
        if vr not in (b"SQ", b"UN", None):
            raise _Unsupported
        # An undefined-length UN holds implicit VR content (PS3.5 6.2.2).
        return _sequence_end(buffer, start, implicit or vr == b"UN"), tag, vr, -1, length
    if length % 2:
        raise _Unsupported  # odd lengths are invalid DICOM: let pydicom judge
    if vr == b"SQ" or (implicit and _is_sequence(tag)):
        return start + length, tag, vr, -1, length
    return start + length, tag, vr, start, length


def _is_sequence(tag: int) -> bool:
    try:
        return pydicom.datadict.dictionary_VR(tag) == "SQ"
    except KeyError:  # private or unknown: not a known sequence
        return False


def _file_meta(buffer: bytes) -> tuple[FileMetaDataset, int]:
    if len(buffer) < 144 or buffer[128:132] != b"DICM":
        raise _Unsupported
    meta = FileMetaDataset()
    position = 132
    while position + 8 <= len(buffer):
        (group,) = _UINT16.unpack_from(buffer, position)
        if group != 0x0002:
            break
        position, tag, vr, start, length = _next_element(buffer, position, implicit=False)
        if start >= 0:
            meta[tag] = RawDataElement(
                Tag(tag), vr.decode(), length, buffer[start : start + length], start, False, True
            )
    return meta, position


def read_fast_header(path: str | os.PathLike[str]) -> tuple[Dataset, PixelLocation | None] | None:
    """Header of a classic single-frame image, and where its native pixels are.

    Returns ``None`` when the file needs pydicom's full reader. The dataset
    holds every public non-sequence element before the pixel data as raw
    elements, which pydicom decodes on access exactly as ``dcmread`` would
    (private elements and sequences are left out, but for
    :data:`KEPT_PRIVATE_TAGS`). At most the first few megabytes are read, and
    only of files with the ``DICM`` marker.
    """
    try:
        with open(path, "rb") as handle:
            buffer = handle.read(_FIRST_READ)
            if buffer[128:132] != b"DICM":
                return None  # never read further into a file that is not DICOM
            try:
                return _parse(buffer)
            except _Unsupported:
                if len(buffer) < _FIRST_READ:
                    return None
                buffer += handle.read(_MAX_HEADER - len(buffer))  # a long header, bounded
                return _parse(buffer)
    except (_Unsupported, OSError, struct.error, ValueError, UnicodeDecodeError):
        return None


def _parse(buffer: bytes) -> tuple[Dataset, PixelLocation | None]:
    meta, position = _file_meta(buffer)
    syntax = str(meta.get("TransferSyntaxUID", ""))
    if not syntax or syntax in _UNSUPPORTED_SYNTAXES:
        raise _Unsupported
    implicit = syntax == IMPLICIT_LITTLE
    elements: dict = {}
    location = None
    size = len(buffer)
    unpack_short, unpack_long = _TAG_VR_LEN.unpack_from, _UINT32.unpack_from
    while True:
        if position + 12 > size:
            raise _Unsupported  # no pixel data within what was read
        if implicit:
            position, tag, vr, start, length = _next_element(buffer, position, implicit)
        else:  # the common case, inlined: explicit VR little endian, short or long length
            group, element, vr, length = unpack_short(buffer, position)
            tag = (group << 16) | element
            if vr in _LONG_VRS:
                (length,) = unpack_long(buffer, position + 8)
                start = position + 12
                if length == _UNDEFINED or vr == b"SQ" or tag == _PIXEL_DATA:
                    position, tag, vr, start, length = _next_element(buffer, position, implicit)
                elif length % 2:
                    raise _Unsupported
                else:
                    position = start + length
            else:
                start = position + 8
                position = start + length
                if length % 2 or vr not in _VR_NAMES:
                    raise _Unsupported  # odd length or unknown VR: let pydicom judge
        if tag == _PIXEL_DATA:
            if syntax in NATIVE_SYNTAXES and length != _UNDEFINED:
                location = PixelLocation(offset=start, length=length)
            break
        # Private groups are odd: never needed here, except Philips MR's scale values.
        if start >= 0 and (not (tag >> 16) & 1 or tag in KEPT_PRIVATE_TAGS):
            elements[BaseTag(tag)] = RawDataElement(
                BaseTag(tag),
                None if vr is None else _VR_NAMES.get(vr) or vr.decode(),
                length,
                buffer[start : start + length],
                start,
                implicit,
                True,
            )
    dataset = Dataset(elements)
    dataset.file_meta = meta
    dataset.set_original_encoding(implicit, True)
    if int(dataset.get("NumberOfFrames", 1) or 1) > 1:
        raise _Unsupported  # enhanced multi-frame: its functional groups are sequences
    if str(dataset.get("SOPClassUID", "")).startswith("1.2.840.10008.5.1.4.1.1.66"):
        raise _Unsupported  # segmentations: their references are sequences
    return dataset, location
