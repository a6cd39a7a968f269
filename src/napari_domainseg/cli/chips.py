"""``domainseg chips``: write training tiles (image + mask) with a manifest.

Rasters give GeoTIFF pairs that keep their georeferencing (the window's
transform, the CRS); volumes give one ``.npz`` per tile of a slice (arrays
``image`` and ``mask``, the slice index and the slice's position in LPS mm).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from napari_domainseg.atomic import atomic_write
from napari_domainseg.files import InputError, Loaded
from napari_domainseg.ops.chips import Chip, plan_chips


def write_chips(
    image: Loaded,
    labels: np.ndarray,
    folder: Path,
    size: int,
    overlap: int,
    min_labelled: float,
    balance: bool,
) -> dict[str, Any]:
    """Write the chips and ``manifest.csv``; return a summary with class counts."""
    try:
        chips = plan_chips(labels, size, overlap, min_labelled, balance)
    except ValueError as exc:
        raise InputError(f"{image.path}: {exc}") from None
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for number, chip in enumerate(chips):
        stem = f"chip_{number:05d}"
        if image.domain == "geo":
            paths = _write_geotiff_pair(image, labels, chip, folder, stem)
        else:
            paths = _write_npz(image, labels, chip, folder, stem)
        rows.append(
            {
                "chip": stem,
                **paths,
                "slice": "" if chip.slice_index is None else chip.slice_index,
                "row": chip.row,
                "col": chip.col,
                "size": chip.size,
                "labelled": round(chip.labelled, 6),
                "repeats": chip.repeats,
                "class_counts": json.dumps(chip.class_counts),
            }
        )
    manifest = folder / "manifest.csv"
    with atomic_write(manifest, overwrite=True) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["chip"])
        writer.writeheader()
        writer.writerows(rows)
    totals: dict[int, int] = {}
    for chip in chips:
        for value, count in chip.class_counts.items():
            totals[value] = totals.get(value, 0) + count * chip.repeats
    return {
        "chips": len(chips),
        "samples": sum(c.repeats for c in chips),
        "manifest": str(manifest),
        "class_pixels": {str(k): v for k, v in sorted(totals.items())},
    }


def _write_geotiff_pair(
    image: Loaded, labels: np.ndarray, chip: Chip, folder: Path, stem: str
) -> dict:
    import rasterio
    from rasterio.crs import CRS

    window = (slice(chip.row, chip.row + chip.size), slice(chip.col, chip.col + chip.size))
    transform = image.grid.transform * rasterio.Affine.translation(chip.col, chip.row)
    pixels = image.array if image.array.ndim == 3 else image.array[None]
    profile = {
        "driver": "GTiff",
        "height": chip.size,
        "width": chip.size,
        "transform": transform,
        "compress": "deflate",
    }
    if image.grid.crs_wkt:
        profile["crs"] = CRS.from_wkt(image.grid.crs_wkt)
    paths = {}
    for kind, data in (("image", pixels[(slice(None), *window)]), ("mask", labels[window][None])):
        path = folder / f"{stem}_{kind}.tif"
        with rasterio.open(path, "w", count=data.shape[0], dtype=data.dtype, **profile) as dst:
            dst.write(data)
        paths[kind] = path.name
    return paths


def _write_npz(image: Loaded, labels: np.ndarray, chip: Chip, folder: Path, stem: str) -> dict:
    index = chip.slice_index or 0
    window = (index, slice(chip.row, chip.row + chip.size), slice(chip.col, chip.col + chip.size))
    position = None
    if image.affine is not None:
        position = (image.affine @ np.array([index, chip.row, chip.col, 1.0]))[:3]
    path = folder / f"{stem}.npz"
    np.savez_compressed(
        path,
        image=image.array[window],
        mask=labels[window],
        slice_index=index,
        origin_lps_zyx=np.asarray(position if position is not None else [np.nan] * 3),
        spacing=np.asarray(image.spacing),
    )
    return {"image": path.name, "mask": path.name}
