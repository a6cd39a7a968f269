"""Is this a DICOM file, does this folder hold one: cheap checks with the standard library only.

napari asks every reader about every path it opens, so the DICOM reader's ``get_reader`` must
not import pydicom (or anything heavy) just to say no to a README or a GeoTIFF. Only regular
files are opened (FIFOs, sockets and devices would block), and only their first 132 bytes.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

SCAN_MAX_FILES = 20_000
""":func:`folder_has_dicom` looks at no more files than this..."""
SCAN_MAX_SECONDS = 1.0
"""... and stops after this long (a reader lookup must stay fast)."""


class SkipFile(Exception):
    """A file that is not part of any series; the message is the reason."""


def walk_files(folder: Path) -> Iterator[Path]:
    """Every non-folder entry below ``folder`` (symbolic links to folders are not followed)."""
    try:
        with os.scandir(folder) as entries:
            listed = list(entries)
    except OSError:
        return
    for entry in listed:
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir:
            yield from walk_files(Path(entry.path))
        elif entry.name.upper() != "DICOMDIR":
            yield Path(entry.path)


def regular_file_size(path: str | os.PathLike[str]) -> int:
    """Size of a regular file, found with ``os.stat`` alone (the file is not opened).

    Raises
    ------
    SkipFile
        If ``path`` is not a regular file (a FIFO, socket or device would
        block or never end) or cannot be looked at.
    """
    try:
        status = os.stat(path)
    except OSError as exc:
        raise SkipFile(f"cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(status.st_mode):
        raise SkipFile(f"not a regular file ({_file_type(status.st_mode)})")
    return status.st_size


def _file_type(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a file"


def has_dicm_marker(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a regular file with the ``DICM`` marker after its 128-byte preamble.

    Reads 132 bytes at most; FIFOs, sockets and devices are never opened.
    """
    try:
        regular_file_size(path)
        with open(path, "rb") as handle:
            return handle.read(132)[128:132] == b"DICM"
    except (SkipFile, OSError):
        return False


def is_dicom_file(path: str | os.PathLike[str]) -> bool:
    """Cheap check: a regular file with the DICM preamble marker.

    Only regular files are opened, and only their first 132 bytes read.
    (pydicom itself refuses files without the marker unless forced, so every
    file this reader can open passes.)
    """
    return has_dicm_marker(path)


def folder_has_dicom(
    folder: str | os.PathLike[str],
    max_files: int = SCAN_MAX_FILES,
    max_seconds: float = SCAN_MAX_SECONDS,
) -> bool:
    """True when a regular file under ``folder`` has the DICM marker; a bounded scan.

    Looks at regular files only (132 bytes each), walking subfolders, until
    a DICOM file is found or ``max_files`` files or ``max_seconds`` have gone
    by. Never raises.
    """
    deadline = time.monotonic() + max_seconds
    checked = 0
    try:
        for path in walk_files(Path(folder)):
            if has_dicm_marker(path):
                return True
            checked += 1
            if checked >= max_files or time.monotonic() > deadline:
                return False
    except Exception:  # a reader lookup must never raise
        return False
    return False
