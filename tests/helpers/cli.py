"""``domainseg`` run in this process, for tests that cannot ask pytest's ``capsys``."""

from __future__ import annotations

import contextlib
import io

from napari_domainseg.cli import main


def cli(*arguments: object) -> tuple[int, str, str]:
    """Run ``domainseg`` in this process; return (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in arguments])
    return code, out.getvalue(), err.getvalue()
