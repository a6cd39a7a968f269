"""Every failure of ``domainseg`` as one line per problem on stderr, and its exit code.

:func:`report` is the only place that turns exceptions into what the user reads. Each line is
``domainseg: PATH: what is wrong; what to do`` and at most :data:`MAX_LINE` characters, so a
hostile input can never flood the terminal. A :class:`~napari_domainseg.errors.DomainSegError`
is printed as its message, which already names the file (the command's file is put in front
only when it names none). Exit codes (documented in ``docs/cli.md``):

- :data:`EXIT_OK` (0): success;
- :data:`EXIT_INPUT` (1): an input or output failed (unreadable, damaged or unsupported file,
  output exists, permission denied, disk full, out of memory, ...);
- :data:`EXIT_USAGE` (2): the command line itself is wrong (argparse);
- :data:`EXIT_INTERNAL` (3): a bug in domainseg (an unexpected exception; please report it);
- :data:`EXIT_INTERRUPTED` (130): interrupted with Ctrl-C.

Set ``DOMAINSEG_TRACEBACK=1`` to see the traceback of a failure as well.
"""

from __future__ import annotations

import errno
import os
import re
import zlib
from collections.abc import Iterable
from pathlib import Path

from napari_domainseg.atomic import OutputExistsError
from napari_domainseg.errors import DomainSegError, naming
from napari_domainseg.files import InputError

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
MAX_LINE = 400
"""Longest line printed for one problem (longer ones are cut with "...")."""
MAX_LINES = 25
"""Most lines printed for one failure (a schema with many problems)."""

_PREFIX = "domainseg: "
_TELLING_ERRNOS = frozenset(
    (errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EISDIR)
)
"""System errors worth telling even when a library wrapped them in its own exception."""
_BUGS = (TypeError, AttributeError, NameError, AssertionError, NotImplementedError)
_LEADING_PATH = re.compile(r"^([^:]+): ")


def _cut(text: str, limit: int = MAX_LINE) -> str:
    text = " ".join(text.split())  # one line, whatever the library put in it
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _os_reason(exc: OSError) -> str:
    """What an operating-system error means for the user, and what to do."""
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on the device (disk full or quota reached); free some space or "\
            "write elsewhere: nothing was written"  # fmt: skip
    if code == errno.EROFS:
        return "the file system is read-only; write somewhere else"
    if isinstance(exc, PermissionError) or code in (errno.EACCES, errno.EPERM):
        return "permission denied; check the file's and its folder's permissions, or choose "\
            "another place"  # fmt: skip
    if isinstance(exc, IsADirectoryError):
        return "is a folder; give a file name"
    if isinstance(exc, NotADirectoryError):
        return "a part of this path is a file, not a folder"
    if isinstance(exc, FileNotFoundError):
        return "no such file or folder"
    if isinstance(exc, FileExistsError):
        return "already exists; choose another name or pass --overwrite"
    if code == errno.ENAMETOOLONG:
        return "the file name is too long"
    if code == errno.EIO:
        return "input/output error reading or writing the device; check the disk or network share"
    return exc.strerror or str(exc) or type(exc).__name__


def explain(exc: BaseException) -> str:
    """A plain reason for an exception raised by a library while reading or writing a file.

    The reason does not name the file: the caller puts it in front.
    """
    if isinstance(exc, InputError | _schema_error()):
        return str(exc)
    system = _system_error(exc)
    if system is not None:
        return _os_reason(system)
    if isinstance(exc, DomainSegError):  # written once, where the problem was found
        return str(exc)
    if isinstance(exc, EOFError | zlib.error) or "gzip" in type(exc).__name__.lower():
        return "the file is truncated or its compressed data is damaged (it ends early or does "\
            "not decompress); copy or export it again"  # fmt: skip
    if isinstance(exc, MemoryError):
        return "not enough memory to read or write it (check that its header does not declare a "\
            "size the data does not have; rasters: --tiled works strip by strip)"  # fmt: skip
    if isinstance(exc, RecursionError):
        return "the file is nested too deeply (a recursive or hostile structure); it cannot be "\
            "read"  # fmt: skip
    if isinstance(exc, OverflowError):
        return f"a value in the file is too large to use ({_cut(str(exc), 120)})"
    library = _library_reason(exc)
    if library is not None:
        return library
    if isinstance(exc, OSError):
        return _cut(str(exc)) or type(exc).__name__
    return ""


def _system_error(exc: BaseException) -> OSError | None:
    """The operating-system error behind ``exc`` (itself, or what a library wrapped), if any."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc
    for _ in range(5):  # what a library caught and replaced by its own error
        exc = exc.__cause__ or exc.__context__
        if exc is None:
            return None
        if isinstance(exc, OSError) and exc.errno in _TELLING_ERRNOS:
            return exc
    return None


def _schema_error() -> type[Exception]:
    from napari_domainseg.labels.schema import SchemaError

    return SchemaError


def _library_reason(exc: BaseException) -> str | None:
    """Reasons for the errors of the format libraries, by their module (imported lazily)."""
    module = type(exc).__module__ or ""
    text = str(exc)
    if "previous exception" in text and exc.__cause__ is not None:  # rasterio's wrapper
        text = str(exc.__cause__)
    text = _cut(text, 200)
    if module.startswith("nibabel"):
        return f"not a readable NIfTI/NRRD image ({text}); check that the file is complete"
    if module.startswith("nrrd"):
        return f"not a readable NRRD file ({text})"
    if module.startswith("rasterio"):
        return f"not a raster GDAL can read or write ({text})"
    if module.startswith("pydicom"):
        return f"not a readable DICOM file ({text})"
    if module.startswith("yaml"):
        return f"not a plain YAML/JSON file ({text})"
    if module.startswith(("pyogrio", "fiona", "shapely")):
        return f"not a vector file that can be read or written ({text})"
    if module.startswith("json"):
        return f"not valid JSON ({text})"
    return None


def _subject(exc: BaseException, fallback: Path | None) -> str:
    """The file to name in front of the reason."""
    filename = getattr(exc, "filename", None)
    if isinstance(exc, OSError) and filename:
        return os.fsdecode(filename)
    path = getattr(exc, "path", None)
    if path is not None:
        return str(path)
    return str(fallback) if fallback is not None else "domainseg"


def disk_full(output: Path | None, reserve: int = 1 << 20) -> bool:
    """True when the file system ``output`` goes to has less than ``reserve`` bytes free.

    Libraries (GDAL, SQLite) often report a full disk as their own write error, without errno.
    """
    if output is None:
        return False
    folder = Path(output)
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    try:
        status = os.statvfs(folder)
    except (OSError, AttributeError):
        return False
    return status.f_bavail * status.f_frsize < reserve


def report(
    exc: BaseException, subject: Path | None = None, output: Path | None = None
) -> tuple[list[str], int]:
    """The lines to print on stderr for ``exc`` and the exit code.

    Parameters
    ----------
    exc
        What was raised.
    subject
        The file the command was working on, named when the exception does not say which.
    output
        The command's output; a failure while its file system is full is reported as a full
        disk on it, whatever the library called it.

    Returns
    -------
    lines, code
        Each line starts with ``domainseg: `` and names the file.
    """
    if isinstance(exc, KeyboardInterrupt):
        return [f"{_PREFIX}interrupted; outputs not finished were not written"], EXIT_INTERRUPTED
    named = isinstance(exc, DomainSegError) or _system_error(exc) is not None
    if not named and disk_full(output):  # a library's own words for a full disk
        return _lines(f"{output}: {_os_reason(OSError(errno.ENOSPC, 'full'))}"), EXIT_INPUT
    cause = exc.__cause__ if isinstance(exc, InputError) else None
    if cause is not None and exc.path is not None:
        reason = explain(cause)
        if reason:
            return _lines(f"{exc.path}: {reason}"), EXIT_INPUT
        if isinstance(cause, _BUGS):
            return _internal(cause, exc.path), EXIT_INTERNAL
    if isinstance(exc, InputError | OutputExistsError | _schema_error()):
        return _lines(str(exc)), EXIT_INPUT
    if isinstance(exc, DomainSegError):
        reason = explain(exc)
        where = None if reason == str(exc) and _names_a_file(reason) else _subject(exc, subject)
        return _lines(naming(reason, None if where == "domainseg" else where)), EXIT_INPUT
    reason = explain(exc)
    if reason:
        return _lines(f"{_subject(exc, subject)}: {reason}"), EXIT_INPUT
    if isinstance(exc, ValueError):  # a reader's refusal that did not go through InputError
        return _lines(f"{_subject(exc, subject)}: {exc}"), EXIT_INPUT
    return _internal(exc, _subject(exc, subject)), EXIT_INTERNAL


def _names_a_file(message: str) -> bool:
    """True when ``message`` starts with a file's name or path (``PATH: ...``)."""
    match = _LEADING_PATH.match(message)
    return match is not None and any(mark in match.group(1) for mark in (os.sep, "."))


def _internal(exc: BaseException, subject: object) -> list[str]:
    return [
        _PREFIX
        + _cut(
            f"{subject}: internal error ({type(exc).__name__}: {exc}); this is a bug in "
            "domainseg: please report it with the command you ran (DOMAINSEG_TRACEBACK=1 "
            "shows where it happened)"
        )
    ]


def _lines(message: str) -> list[str]:
    """``message`` as prefixed lines: the first names the failure, the others its problems."""
    raw = [line for line in message.splitlines() if line.strip()] or ["failed"]
    if len(raw) > MAX_LINES:
        raw = [*raw[: MAX_LINES - 1], f"  ... and {len(raw) - MAX_LINES + 1} more lines"]
    first, rest = _without_repeated_path(raw[0]), raw[1:]
    return [_PREFIX + _cut(first)] + [_PREFIX + "  " + _cut(line.strip()) for line in rest]


def _without_repeated_path(line: str) -> str:
    """``PATH: ... PATH ...`` as ``PATH: ... NAME ...``: the file is named once in full."""
    match = _LEADING_PATH.match(line)
    if match is None or os.sep not in match.group(1):
        return line
    path = match.group(1)
    rest = line[match.end() :]
    while rest.startswith(path + ": "):
        rest = rest[len(path) + 2 :]
    return f"{path}: " + rest.replace(path, Path(path).name)


def print_lines(lines: Iterable[str], stream) -> None:
    """Print each line to ``stream`` (stderr)."""
    for line in lines:
        print(line, file=stream)
