"""Autosave store: labels saved in the background and offered back after a crash.

Saves are grouped by image: a key derived from the image (series UID or
source file, and grid shape) names a folder, and each annotation layer of
that image (its ``annotation_id``) saves there as ``<time>_<id>.npy`` plus a
JSON with the layer name, the schema and the annotation id. Files are written to a
temporary name and renamed, so a crash mid-save leaves the previous save.
The newest few saves of each layer are kept.

The store holds no patient identifiers: the folder name is a hash, the JSON keeps only
:data:`KEPT_METADATA` (the restore takes the geometry from the image being opened) and the
series UID as a pseudonym. Folders are created ``0o700`` and files ``0o600`` (user only).
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

from napari_domainseg.privacy import open_private, private_folder, pseudonym

KEEP = 3
"""Saves kept per key."""

KEPT_METADATA = ("domain", "schema", "annotation_id", "instances")
"""The layer metadata a save keeps: what a restore needs, nothing that identifies a patient."""


def stored_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """What a save records of a layer's metadata: :data:`KEPT_METADATA` and a series pseudonym."""
    kept = {key: metadata[key] for key in KEPT_METADATA if key in metadata}
    if metadata.get("series_instance_uid"):
        kept["series_instance_uid"] = pseudonym(str(metadata["series_instance_uid"]))
    return kept


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


def recovery_key(identity: str, shape: tuple[int, ...]) -> str:
    """A stable key for the image a labels layer belongs to.

    ``identity`` names the image (its series UID, raster file, first DICOM file or name;
    the napari adapter's ``recovery_identity``), ``shape`` its grid.
    """
    text = json.dumps([str(identity), list(shape)], default=str)
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
        private_folder(self.folder)
        folder = private_folder(self.folder / key)
        annotation = str(metadata.get("annotation_id") or "layer")
        stamp = f"{time.time_ns()}_{annotation}"
        data = folder / f"{stamp}.npy"
        partial = folder / f".{stamp}.partial.npy"
        try:
            with open_private(partial) as handle:
                np.save(handle, np.asarray(labels))
                handle.flush()
                os.fsync(handle.fileno())
            info = {"name": name, "metadata": stored_metadata(metadata), "saved_at": time.time()}
            info_partial = folder / f".{stamp}.partial.json"
            with open_private(info_partial) as handle:
                handle.write(json.dumps(info, default=str).encode("utf-8"))
            os.replace(info_partial, folder / f"{stamp}.json")
        except BaseException:
            partial.unlink(missing_ok=True)
            (folder / f".{stamp}.partial.json").unlink(missing_ok=True)
            raise
        os.replace(partial, data)  # the data file appears last: a listed save is complete
        for old in self._saves(key, annotation)[:-KEEP]:
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)
        return data

    def _saves(self, key: str, annotation: str | None = None) -> list[Path]:
        """Saves of an image, oldest first (of one annotation layer when given)."""
        folder = self.folder / key
        if not folder.is_dir():
            return []
        pattern = f"[0-9]*_{annotation}.npy" if annotation else "[0-9]*.npy"
        return sorted(folder.glob(pattern), key=lambda p: int(p.stem.split("_")[0]))

    def _read(self, data: Path) -> Recovered | None:
        try:
            info = json.loads(data.with_suffix(".json").read_text(encoding="utf-8"))
            labels = np.load(data)
        except (OSError, ValueError, KeyError):
            return None
        return Recovered(labels, info["name"], info["metadata"], info["saved_at"], data)

    def latest(self, key: str) -> Recovered | None:
        """The newest complete save of any annotation layer of the image ``key``, or ``None``."""
        for data in reversed(self._saves(key)):
            recovered = self._read(data)
            if recovered is not None:
                return recovered
        return None

    def latest_each(self, key: str) -> list[Recovered]:
        """The newest complete save of every annotation layer of the image ``key``."""
        newest: dict[str, Recovered] = {}
        for data in reversed(self._saves(key)):
            annotation = data.stem.split("_", 1)[1] if "_" in data.stem else ""
            if annotation not in newest:
                recovered = self._read(data)
                if recovered is not None:
                    newest[annotation] = recovered
        return sorted(newest.values(), key=lambda r: r.saved_at)

    def discard(self, key: str) -> None:
        """Forget every save of ``key`` (after a deliberate export or a declined restore)."""
        for data in self._saves(key):
            data.unlink(missing_ok=True)
            data.with_suffix(".json").unlink(missing_ok=True)
