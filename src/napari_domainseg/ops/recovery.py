"""Autosave store: labels saved in the background and offered back after a crash.

Each annotation layer is saved under a key derived from its image (series
UID or source file, and grid shape) as ``<key>/<time>.npy`` plus a JSON
with the layer name, geometry metadata and schema. Files are written to a
temporary name and renamed, so a crash mid-save leaves the previous save.
Only the newest few saves of a key are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

KEEP = 3
"""Saves kept per key."""


def default_folder() -> Path:
    """Where autosaves go: ``$NAPARI_DOMAINSEG_RECOVERY``, else a ``recovery`` folder.

    The folder sits in ``$NAPARI_DOMAINSEG_CACHE`` when set (tests set it), else in the
    user cache folder.
    """
    override = os.environ.get("NAPARI_DOMAINSEG_RECOVERY")
    if override:
        return Path(override)
    cache = os.environ.get("NAPARI_DOMAINSEG_CACHE")
    if cache:
        return Path(cache) / "recovery"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("napari-domainseg")) / "recovery"


def recovery_key(metadata: dict[str, Any], shape: tuple[int, ...]) -> str:
    """A stable key for the image a labels layer belongs to."""
    identity = (
        metadata.get("series_instance_uid")
        or metadata.get("source_path")
        or (metadata.get("source_files") or [""])[0]
        or metadata.get("source_image", {}).get("name", "")
    )
    text = json.dumps([identity, list(shape), metadata.get("region")], default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


@dataclass
class Recovered:
    """A saved labels layer."""

    labels: np.ndarray
    name: str
    metadata: dict[str, Any]
    saved_at: float
    path: Path


class RecoveryStore:
    """The folder of autosaved labels."""

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_folder()

    def save(self, key: str, labels: np.ndarray, name: str, metadata: dict[str, Any]) -> Path:
        """Save a copy of ``labels`` (atomically); return the data file."""
        folder = self.folder / key
        folder.mkdir(parents=True, exist_ok=True)
        stamp = f"{time.time():.3f}"
        data = folder / f"{stamp}.npy"
        partial = folder / f".{stamp}.partial.npy"
        with open(partial, "wb") as handle:
            np.save(handle, np.asarray(labels))
            handle.flush()
            os.fsync(handle.fileno())
        info = {"name": name, "metadata": metadata, "saved_at": float(stamp)}
        info_partial = folder / f".{stamp}.partial.json"
        info_partial.write_text(json.dumps(info, default=str), encoding="utf-8")
        os.replace(info_partial, folder / f"{stamp}.json")
        os.replace(partial, data)  # the data file appears last: a listed save is complete
        for old in self._saves(key)[:-KEEP]:
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)
        return data

    def _saves(self, key: str) -> list[Path]:
        folder = self.folder / key
        if not folder.is_dir():
            return []
        return sorted(folder.glob("[0-9]*.npy"), key=lambda p: float(p.stem))

    def latest(self, key: str) -> Recovered | None:
        """The newest complete save of ``key``, or ``None``."""
        for data in reversed(self._saves(key)):
            try:
                info = json.loads(data.with_suffix(".json").read_text(encoding="utf-8"))
                labels = np.load(data)
            except (OSError, ValueError):
                continue
            return Recovered(labels, info["name"], info["metadata"], info["saved_at"], data)
        return None

    def discard(self, key: str) -> None:
        """Forget every save of ``key`` (after a deliberate export or a declined restore)."""
        for data in self._saves(key):
            data.unlink(missing_ok=True)
            data.with_suffix(".json").unlink(missing_ok=True)
