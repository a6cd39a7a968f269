"""The bad-input corpus: generated hostile inputs and what the user must be told.

Every format joins by adding :class:`BadInput` cases to a ``test_*.py`` module in this folder and
checking each with :func:`check`. A case *generates* its input under ``tmp_path`` (never a committed
file) and names the entry point as the user meets it (a reader, a writer, the CLI). The check fails
when the entry point crashes with an unexplained exception (``KeyError``, ``IndexError``, a reshape
error, ...), returns without the promised warning, or says something that does not name the file
and the problem.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

#: Exceptions that mean "crashed", never "refused with a message".
CRASHES: tuple[type[BaseException], ...] = (
    KeyError,
    IndexError,
    AttributeError,
    TypeError,
    ZeroDivisionError,
    MemoryError,
    RecursionError,
    UnboundLocalError,
    NotImplementedError,
    AssertionError,
)


@dataclass(frozen=True)
class BadInput:
    """One hostile input and the outcome a user must see.

    Parameters
    ----------
    name
        Test id, e.g. ``"dicom-truncated-slice"``.
    make
        Writes the bad input under the given folder and returns the path to open.
    open
        The entry point as the user meets it; called with the path from ``make``.
    message
        Regular expression (searched, case-insensitive) the error or warning text must match.
    outcome
        ``"error"``: ``open`` must raise a clear, non-crash exception. ``"warning"``: ``open`` must
        return and emit a warning (``warnings.warn``) matching ``message``. ``"exit"``: ``open``
        returns a CLI ``(code, stdout, stderr)`` triple; the code must be non-zero and stderr one
        clear line per failure, no traceback.
    names_file
        The message must contain the file's (or folder's) name.
    """

    name: str
    make: Callable[[Path], Path]
    open: Callable[[Path], Any]
    message: str
    outcome: Literal["error", "warning", "exit"] = "error"
    names_file: bool = True


def _assert_names(case: BadInput, text: str, path: Path) -> None:
    assert re.search(case.message, text, re.IGNORECASE | re.DOTALL), (
        f"{case.name}: message {text!r} does not match {case.message!r}"
    )
    if case.names_file:
        assert path.name in text, f"{case.name}: message {text!r} does not name {path.name}"
    assert len(text) < 2000, f"{case.name}: message is {len(text)} characters long"


def check(case: BadInput, tmp_path: Path) -> Any:
    """Generate ``case``'s input, open it, and assert the user is told what is wrong."""
    path = case.make(tmp_path)
    if case.outcome == "error":
        with pytest.raises(Exception) as info:  # any non-crash exception will do
            case.open(path)
        assert not isinstance(info.value, CRASHES), (
            f"{case.name}: crashed with {type(info.value).__name__}: {info.value}"
        )
        _assert_names(case, str(info.value), path)
        return info.value
    if case.outcome == "warning":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = case.open(path)
        texts = [str(w.message) for w in caught]
        assert any(re.search(case.message, t, re.IGNORECASE | re.DOTALL) for t in texts), (
            f"{case.name}: no warning matching {case.message!r}; got {texts}"
        )
        if case.names_file:
            assert any(path.name in t for t in texts), f"{case.name}: no warning names {path.name}"
        return result
    code, out, err = case.open(path)
    assert code != 0, f"{case.name}: exit code 0; stdout {out!r}"
    assert "Traceback" not in err, f"{case.name}: traceback on stderr:\n{err}"
    assert err.strip(), f"{case.name}: nothing on stderr"
    _assert_names(case, err, path)
    return code, out, err


def ids(cases: list[BadInput]) -> list[str]:
    """Test ids for ``pytest.mark.parametrize``."""
    return [case.name for case in cases]
