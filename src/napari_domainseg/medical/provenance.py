"""What an export records about its source: which values (scaling) and how sure its geometry is.

A reader of an exported file must be able to tell display values from
Philips precise values, and patient millimetres from a stand-in grid. Every
medical export therefore carries a *source record* (:func:`source_record`)
in its sidecar: the NIfTI ``.labels.json`` (labels) or ``.json`` (images,
beside dcm2niix's ``UsePhilipsFloatNotDisplayScaling``), the NRRD header
field :data:`SOURCE_FIELD`. Readers put it back into the volume metadata
(:func:`restore_source_record`), so a file exported with unknown geometry is
still marked *geometry unknown* when it is opened again.

Volumes whose geometry is unknown are not exported unless the caller asks
(:func:`check_geometry_known`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from napari_domainseg.errors import DomainSegError
from napari_domainseg.medical.geometry_checks import (
    GEOMETRY_UNKNOWN_KEY,
    geometry_unknown,
    mark_geometry_unknown,
)

SOURCE_FIELD = "DomainSeg_Source"
"""NRRD header field holding the source record (JSON)."""
SIDECAR_KEY = "source"
"""Key of the source record in the NIfTI JSON sidecars."""
PHILIPS_FLOAT_KEY = "UsePhilipsFloatNotDisplayScaling"
"""dcm2niix's BIDS sidecar field: 1 for Philips precise values, 0 for display values."""


class UnknownGeometryError(DomainSegError, ValueError):
    """An export of a volume whose geometry is unknown, without ``allow_unknown_geometry``."""


def source_record(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """What an export of a volume with plugin ``metadata`` records about its source.

    Returns
    -------
    dict
        ``"scaling"``: the volume's ``"rescale"`` entry (``mode`` is ``"display"``,
        RescaleSlope/Intercept, or ``"philips_precise"``, 2005,100E);
        ``"geometry_unknown"``: why the positions are not patient millimetres;
        ``"skipped_unreadable"``: names of the slices left out on request;
        ``"resampled"``: what was resampled on request. Only the entries that apply
        (empty for a volume with nothing to record).
    """
    metadata = metadata or {}
    record: dict[str, Any] = {}
    if metadata.get("rescale"):
        record["scaling"] = dict(metadata["rescale"])
    if geometry_unknown(metadata):
        record["geometry_unknown"] = [str(r) for r in metadata[GEOMETRY_UNKNOWN_KEY]]
    if metadata.get("skipped_unreadable"):
        record["skipped_unreadable"] = [Path(f).name for f in metadata["skipped_unreadable"]]
    if metadata.get("resampled"):
        record["resampled"] = list(metadata["resampled"])
    return record


def image_sidecar(record: dict[str, Any]) -> dict[str, Any]:
    """The JSON written beside an exported NIfTI image: the record and dcm2niix's scaling flag."""
    sidecar: dict[str, Any] = {SIDECAR_KEY: record}
    scaling = record.get("scaling")
    if scaling:
        sidecar[PHILIPS_FLOAT_KEY] = int(scaling.get("mode") == "philips_precise")
    return sidecar


def restore_source_record(metadata: dict[str, Any], record: Any, file_name: str) -> str | None:
    """Put a record read from an exported file back into volume ``metadata`` (in place).

    A damaged record is ignored (it must not hide the volume).

    Returns
    -------
    str or None
        The warning to give when the record says the geometry was unknown.
    """
    if not isinstance(record, dict):
        return None
    scaling = record.get("scaling")
    if isinstance(scaling, dict):
        metadata.setdefault("rescale", scaling)
    reasons = record.get("geometry_unknown")
    if not isinstance(reasons, list) or not reasons:
        return None
    shown = "; ".join(str(r) for r in reasons[:3])[:300]
    reason = f"exported with unknown geometry ({shown})"
    mark_geometry_unknown(metadata, reason)
    return (
        f"{file_name}: geometry unknown: it was {reason}, on a stand-in grid; positions are not "
        "in patient millimetres."
    )


def check_geometry_known(
    path: str | os.PathLike[str], metadata: dict[str, Any] | None, allow: bool
) -> None:
    """Refuse to export a volume whose geometry is unknown unless ``allow`` is set.

    Raises
    ------
    UnknownGeometryError
        Naming the output file, saying the geometry is unknown and why, and how to
        export anyway.
    """
    if allow or not geometry_unknown(metadata or {}):
        return
    reasons = [str(r) for r in (metadata or {})[GEOMETRY_UNKNOWN_KEY]]
    shown = "; ".join(reasons)
    shown = shown if len(shown) <= 100 else shown[:97] + "..."
    raise UnknownGeometryError(  # short: the command line prints at most 400 characters
        f"{path}: not written: the geometry of this volume is unknown ({shown}); its positions "
        "would not be patient mm. To export on the stand-in grid (recorded in the file): "
        "--allow-unknown-geometry (Python: allow_unknown_geometry=True; napari: the "
        "'geometry unknown' file type)."
    )
