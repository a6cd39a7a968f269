"""The one base class of the errors napari-domainseg raises on purpose.

Every error the plugin raises for a bad input or a refused operation subclasses
:class:`DomainSegError`. Each specific class also keeps its builtin base (``ValueError`` for
most, ``FileExistsError`` for :class:`~napari_domainseg.atomic.OutputExistsError`), so code
that catches the builtin keeps working.

The message is written once, where the problem is found: it names the file, says what is
wrong and what to do. Callers show it as it is (the command line prints it on one line, the
widgets in a notification); they never catch it to raise another error with its text inside.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DomainSegError", "names", "naming"]


class DomainSegError(Exception):
    """A bad input or a refused operation; the message is complete as it stands.

    The message names the file concerned (when there is one), what is wrong with it and what
    to do. Show ``str(error)`` as it is: do not put the path in front again, and do not catch
    it only to raise another error with the same text.
    """


def names(message: str, path: str | os.PathLike[str]) -> bool:
    """True when ``message`` already names ``path``.

    It holds the full path, or starts with the file name (``"x.nii.gz: ..."``); a short name
    like ``CT`` elsewhere in the text does not count.
    """
    path = Path(path)
    return str(path) in message or (bool(path.name) and message.startswith(f"{path.name}:"))


def naming(message: str, path: str | os.PathLike[str] | None) -> str:
    """``message`` with ``path`` in front, unless it already names it: the file is named once."""
    if path is None or names(message, path):
        return message
    return f"{path}: {message}"


class InputError(DomainSegError, ValueError):
    """An input cannot be used; the message is the one-line reason.

    Parameters
    ----------
    message
        What is wrong, naming the file.
    path
        The file or folder concerned, when known; with a chained ``__cause__`` (a library's
        exception) the command line words the reason from the cause.
    """

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)
