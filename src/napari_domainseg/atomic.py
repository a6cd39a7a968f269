"""Atomic file output: write to a temporary file, then move it into place.

Every exporter uses :func:`atomic_write`, so a crash, a full disk or an
exception half-way through never leaves a half-written mask behind, and an
existing file is never replaced unless the caller says so.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from napari_domainseg.errors import DomainSegError


class OutputExistsError(DomainSegError, FileExistsError):
    """The output file exists and overwriting was not requested."""


def check_writable(path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Check that ``path`` may be written; return it as a ``Path``.

    Raises
    ------
    OutputExistsError
        If the file exists and ``overwrite`` is false.
    FileNotFoundError
        If the parent folder does not exist.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"{path} already exists; choose another name or allow overwriting "
            "(napari asks before replacing a file; on the command line pass --overwrite)"
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    return path


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], overwrite: bool = False, mode: int | None = None
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place on success.

    The temporary file keeps the final suffix(es), so libraries that choose
    the format or compression by extension (``.nii.gz``, ``.tif``) behave as
    for the real name. On any exception the temporary file is removed and
    ``path`` is left untouched.

    Parameters
    ----------
    path
        Final file name.
    overwrite
        Replace an existing file. When false, an existing file raises
        :class:`OutputExistsError`, both before writing and at the final
        move (which uses a hard link, so a file created meanwhile is not
        clobbered either).
    mode
        Permissions of the written file (``0o600`` for caches: user only); by default those
        the writer gave it (the umask's).

    Raises
    ------
    OSError
        A failure while writing (a full disk, ``ENOSPC``) names ``path``, not the temporary file.
    """
    path = check_writable(path, overwrite)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".gz") else path.suffix
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{path.stem}.", suffix=f".partial{suffix}", dir=path.parent
        )
    except OSError as exc:  # a read-only or full folder: name the file asked for
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # let the writer create it (some libraries refuse to open an existing file)
    try:
        try:
            yield tmp
        except OSError as exc:
            named = exc.filename is not None and os.fspath(exc.filename) != os.fspath(tmp)
            if exc.errno is None or named:
                raise
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        if not tmp.exists():
            raise RuntimeError(f"writing {path} produced no file")
        try:
            _move_into_place(tmp, path, overwrite, mode)
        except OutputExistsError:
            raise
        except OSError as exc:  # name the file the user asked for, not the temporary one
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _move_into_place(tmp: Path, path: Path, overwrite: bool, mode: int | None) -> None:
    """Give ``tmp`` its permissions and its final name ``path``."""
    if mode is not None:
        tmp.chmod(mode)
    if overwrite:
        os.replace(tmp, path)
    else:
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise OutputExistsError(
                f"{path} appeared while it was being written; nothing was replaced"
            ) from None
        except OSError:  # file systems without hard links
            if path.exists():
                raise OutputExistsError(f"{path} already exists; nothing was replaced") from None
            os.replace(tmp, path)
