"""Generate the sample data sets once and keep them in the user cache folder.

The samples are real files (a DICOM series and a GeoTIFF), so opening a
sample goes through the same readers as a user's own data. They are written
to ``<user cache>/napari-domainseg/samples`` (or ``$NAPARI_DOMAINSEG_CACHE``)
the first time they are asked for, atomically: a half-written sample never
stays behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import platformdirs

SAMPLES_VERSION = "v1"
CACHE_ENVIRONMENT_VARIABLE = "NAPARI_DOMAINSEG_CACHE"


def cache_folder() -> Path:
    """The folder that holds generated sample data (created if missing)."""
    root = os.environ.get(CACHE_ENVIRONMENT_VARIABLE) or platformdirs.user_cache_dir(
        "napari-domainseg"
    )
    folder = Path(root) / "samples" / SAMPLES_VERSION
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _ensure(name: str, build: Callable[[Path], None]) -> Path:
    """Return ``cache_folder()/name``, building it in a temporary folder first if missing."""
    target = cache_folder() / name
    if target.exists():
        return target
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    try:
        build(staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished first
            if not target.exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def ct_phantom_folder() -> Path:
    """Folder of the synthetic CT phantom DICOM series."""
    from napari_domainseg.medical.phantom import write_phantom_series

    return _ensure("ct_phantom", write_phantom_series)


def synthetic_scene_file() -> Path:
    """Path of the synthetic 4-band GeoTIFF scene."""
    from napari_domainseg.geo.synthetic import write_synthetic_scene

    folder = _ensure("synthetic_scene", lambda f: write_synthetic_scene(f / "scene.tif"))
    return folder / "scene.tif"
