"""What leaves the program about a patient or a file system: pseudonyms, shown paths, private files.

Outputs meant to be shared or kept (``domainseg info --json``, batch result tables) carry
pseudonyms instead of DICOM UIDs and paths relative to the current folder (or only the file name)
instead of absolute paths, unless the user asks for the identifiers (``--show-patient-data``).
Caches (the autosave store) are created readable by the user only. ``docs/privacy.md`` lists what
each output contains.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PRIVATE_FILE_MODE = 0o600
PRIVATE_FOLDER_MODE = 0o700

UID_KEYS = (
    "series_instance_uid",
    "study_instance_uid",
    "frame_of_reference_uid",
    "sop_instance_uid",
    "sop_instance_uids",
)
"""Metadata entries holding DICOM UIDs (pseudonymised unless identifiers are shown)."""

PATH_KEYS = ("path", "source_path", "source_files", "input")
"""Metadata entries holding file paths (shown relative to the current folder)."""


def pseudonym(identifier: str, prefix: str = "uid") -> str:
    """A short, stable pseudonym of ``identifier`` (the same UID gives the same pseudonym).

    It lets outputs be matched with each other without carrying the UID. It is a pseudonym, not
    anonymisation: whoever holds the UID can compute it.
    """
    digest = hashlib.sha256(f"napari-domainseg:{identifier}".encode()).hexdigest()
    return f"{prefix}-{digest[:12]}"


def shown_path(path: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None) -> str:
    """``path`` as an output shows it: relative to the current folder when inside it, else its name.

    A relative path the user typed is kept as typed; an absolute one outside the current folder
    is reduced to its last component, so folder names (often patient names or study numbers)
    do not travel with the output.
    """
    text = os.fspath(path)
    if not text:
        return text
    given = Path(text)
    if not given.is_absolute() and ".." not in given.parts:
        return text
    base = Path(cwd) if cwd is not None else Path.cwd()
    try:
        return str(Path(os.path.abspath(text)).relative_to(base.resolve()))
    except ValueError:
        return given.name or text


def pseudonymise(value: Any, key: str = "") -> Any:
    """``value`` with UIDs replaced by pseudonyms and paths by :func:`shown_path`, recursively."""
    if isinstance(value, Mapping):
        return {k: pseudonymise(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [pseudonymise(v, key) for v in value]
    if isinstance(value, str) and value:
        if key in UID_KEYS:
            return pseudonym(value)
        if key in PATH_KEYS:
            return shown_path(value)
    return value


def hide_folders(text: str, paths: list[str | os.PathLike[str]]) -> str:
    """``text`` (a message) with every absolute form of ``paths`` replaced by its shown form."""
    for path in paths:
        absolute = os.path.abspath(os.fspath(path))
        shown = shown_path(path)
        for form in sorted({absolute, os.fspath(path)}, key=len, reverse=True):
            if os.path.isabs(form) and form != shown:
                text = text.replace(form, shown)
    return text


def private_folder(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and missing parents) readable by the user only; return it.

    An existing folder the user owns is narrowed to ``0o700`` as well.
    """
    path = Path(path)
    path.mkdir(mode=PRIVATE_FOLDER_MODE, parents=True, exist_ok=True)
    status = path.stat()
    if hasattr(os, "getuid") and status.st_uid == os.getuid() and status.st_mode & 0o077:
        path.chmod(PRIVATE_FOLDER_MODE)
    return path


def open_private(path: str | os.PathLike[str], mode: str = "wb"):
    """Open a new file readable and writable by the user only (``0o600``), failing if it exists."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(path, flags, PRIVATE_FILE_MODE)
    return os.fdopen(descriptor, mode)
