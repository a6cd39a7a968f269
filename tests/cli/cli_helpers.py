"""Helpers shared by the command-line tests."""

from __future__ import annotations

from napari_domainseg.cli import main


def run(capsys, *arguments: object) -> tuple[int, str, str]:
    """``domainseg ARGUMENTS`` in process: exit code, stdout and stderr (captured by pytest)."""
    code = main([str(a) for a in arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err
