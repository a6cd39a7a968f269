"""``domainseg chips``: write training tiles (image + mask) with a manifest.

Rasters give GeoTIFF pairs that keep their georeferencing (the window's
transform, the CRS); volumes give one ``.npz`` per tile of a slice (arrays
``image`` and ``mask``, the slice index and the slice's position in LPS mm).
Every file is written atomically; an existing set of chips is replaced only with
``--overwrite``.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from napari_domainseg.atomic import OutputExistsError, atomic_write
from napari_domainseg.cli import progress
from napari_domainseg.files import InputError
from napari_domainseg.formats.base import Read
from napari_domainseg.geo.nodata import image_validity
from napari_domainseg.labels.schema import LabelSchema
from napari_domainseg.ops.chips import Chip, plan_chips

MANIFEST = "manifest.csv"
_CHIP_FILE = re.compile(r"^chip_\d{5,}(_image|_mask)?\.(tif|npz)$")


def write_chips(
    image: Read,
    labels: np.ndarray,
    folder: Path,
    size: int,
    overlap: int,
    min_labelled: float,
    balance: bool,
    overwrite: bool = False,
    schema: LabelSchema | None = None,
) -> dict[str, Any]:
    """Write the chips and ``manifest.csv``; return a summary with class counts.

    Every file is written atomically (:func:`~napari_domainseg.atomic.atomic_write`) and the
    manifest last, so a listed chip is complete. A folder that already holds chips is refused
    unless ``overwrite``; then chips of the previous run the new manifest does not list are
    removed. When writing fails (a full disk), the chips this run wrote are removed again.

    Raises
    ------
    InputError
        The folder already holds chips and ``overwrite`` is false, or no chip can be planned.
    """
    if not 0.0 <= min_labelled <= 1.0:
        raise InputError(f"--min-labelled {min_labelled}: give a fraction from 0 to 1")
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: is a file; chips are written into a folder", folder)
    valid = image_validity(image.path, image.array) if image.domain == "geo" else None
    try:  # chips where the image is all nodata are skipped
        chips = plan_chips(labels, size, overlap, min_labelled, balance, valid=valid)
    except ValueError as exc:
        raise InputError(f"{image.path}: {exc}") from None
    previous = _existing_chips(folder)
    if previous and not overwrite:
        shown = ", ".join(sorted(previous)[:3]) + (", ..." if len(previous) > 3 else "")
        raise OutputExistsError(
            f"{folder} already holds chips ({len(previous)} files: {shown}); choose another "
            "folder or pass --overwrite to replace them"
        )
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        rows = _write_all(image, labels, chips, folder, schema, overwrite, written)
        manifest = folder / MANIFEST
        with atomic_write(manifest, overwrite=overwrite) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["chip"])
                writer.writeheader()
                writer.writerows(rows)
    except BaseException:
        for path in written:
            if path.name not in previous:
                path.unlink(missing_ok=True)
        raise
    for name in previous - {p.name for p in written} - {MANIFEST}:
        (folder / name).unlink(missing_ok=True)  # a chip of the previous run, not listed now
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


def _existing_chips(folder: Path) -> set[str]:
    """Names of the chip files and manifest already in ``folder``."""
    if not folder.is_dir():
        return set()
    return {
        entry.name
        for entry in folder.iterdir()
        if entry.name == MANIFEST or _CHIP_FILE.match(entry.name)
    }


def _write_all(
    image: Read,
    labels: np.ndarray,
    chips: list[Chip],
    folder: Path,
    schema: LabelSchema | None,
    overwrite: bool,
    written: list[Path],
) -> list[dict[str, Any]]:
    """Write every chip (appending each file to ``written``); return the manifest rows."""
    rows = []
    image_nodata = _nodata(image) if image.domain == "geo" else None
    for number, chip in enumerate(progress.bar(chips, "chips", total=len(chips), unit="chip")):
        stem = f"chip_{number:05d}"
        if image.domain == "geo":
            paths = _write_geotiff_pair(
                image, labels, chip, folder, stem, schema, image_nodata, overwrite, written
            )
        else:
            paths = _write_npz(image, labels, chip, folder, stem, overwrite, written)
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
    return rows


def _nodata(image: Read) -> float | None:
    import rasterio

    with rasterio.open(image.path) as src:
        return src.nodata


def _write_geotiff_pair(
    image: Read,
    labels: np.ndarray,
    chip: Chip,
    folder: Path,
    stem: str,
    schema: LabelSchema | None,
    nodata: float | None,
    overwrite: bool,
    written: list[Path],
) -> dict:
    """The image chip (every band, the image's nodata) and the mask chip (a label GeoTIFF).

    Both go through the one GeoTIFF writer (:func:`~napari_domainseg.geo.label_raster.open_geotiff`:
    atomic, tiled, DEFLATE) on the chip's window of the image's grid.
    """
    from napari_domainseg.geo.grid import RasterGrid
    from napari_domainseg.geo.label_raster import open_geotiff, write_label_geotiff

    window = (slice(chip.row, chip.row + chip.size), slice(chip.col, chip.col + chip.size))
    on_image = image.grid.with_window((chip.row, chip.col, chip.size, chip.size))
    grid = RasterGrid(chip.size, chip.size, on_image.array_transform, image.grid.crs)  # the chip
    pixels = image.array if image.array.ndim == 3 else image.array[None]
    data = pixels[(slice(None), *window)]
    image_path = folder / f"{stem}_image.tif"
    with open_geotiff(
        image_path, grid, data.dtype, count=data.shape[0], nodata=nodata, overwrite=overwrite
    ) as dst:
        dst.write(data)
    written.append(image_path)
    mask_path = folder / f"{stem}_mask.tif"
    write_label_geotiff(mask_path, labels[window], grid, schema, overwrite=overwrite)
    written.append(mask_path)
    return {"image": image_path.name, "mask": mask_path.name}


def _write_npz(
    image: Read,
    labels: np.ndarray,
    chip: Chip,
    folder: Path,
    stem: str,
    overwrite: bool,
    written: list[Path],
) -> dict:
    index = chip.slice_index or 0
    window = (index, slice(chip.row, chip.row + chip.size), slice(chip.col, chip.col + chip.size))
    position = None
    if image.affine is not None:
        position = (image.affine @ np.array([index, chip.row, chip.col, 1.0]))[:3]
    path = folder / f"{stem}.npz"
    with atomic_write(path, overwrite=overwrite) as tmp:
        np.savez_compressed(
            tmp,
            image=image.array[window],
            mask=labels[window],
            slice_index=index,
            origin_lps_zyx=np.asarray(position if position is not None else [np.nan] * 3),
            spacing=np.asarray(image.spacing),
        )
    written.append(path)
    return {"image": path.name, "mask": path.name}
