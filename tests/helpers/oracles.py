"""The field's tools as oracles, called the same way from every test folder."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def dciodvfy_errors(path: Path) -> list[str]:
    """The ``Error`` lines dciodvfy (dicom3tools) prints for the DICOM file at ``path``."""
    tool = shutil.which("dciodvfy")
    assert tool, (
        "dciodvfy (Debian package dicom3tools) is required; scripts/bootstrap.sh installs it"
    )
    result = subprocess.run([tool, str(path)], capture_output=True, text=True, check=False)
    return [line for line in (result.stdout + result.stderr).splitlines() if "Error" in line]
