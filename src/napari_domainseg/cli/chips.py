"""``domainseg chips``: write training tiles (image + mask) with a manifest.

Rasters give GeoTIFF pairs that keep their georeferencing (the window's
transform, the CRS); volumes give one ``.npz`` per tile of a slice (arrays
``image`` and ``mask``, the slice index and the slice's position in LPS mm).
Every file is written atomically; an existing set of chips is replaced only with
``--overwrite``.

With an instance map (``--instances``) each chip also gets its instance mask: a
``uint16``/``uint32`` GeoTIFF ``chip_NNNNN_instances.tif`` (the chip's instance records in the
``DOMAINSEG_INSTANCES`` tag) for rasters, an ``instances`` array in the ``.npz`` for volumes; with
``--coco`` a COCO instance-segmentation file :data:`COCO_FILE` lists every chip and the
instances in it (RLE masks, categories from the schema's hierarchy).
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
from napari_domainseg.labels.coco import CocoImage, write_coco
from napari_domainseg.labels.instances import (
    Instance,
    InstanceError,
    InstanceTable,
    check_instances,
    instance_dtype,
)
from napari_domainseg.labels.schema import LabelSchema, covering_schema
from napari_domainseg.ops.chips import Chip, plan_chips

MANIFEST = "manifest.csv"
COCO_FILE = "coco.json"
"""The COCO instance-segmentation file of the chips (``--coco``)."""
"""GeoTIFF tag of an instance-mask chip: its instances as JSON records (id, class_id, ...)."""
_CHIP_FILE = re.compile(r"^chip_\d{5,}(_image|_mask|_instances)?\.(tif|npz)$")


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
    instances: np.ndarray | None = None,
    table: InstanceTable | None = None,
    coco: bool = False,
) -> dict[str, Any]:
    """Write the chips and ``manifest.csv``; return a summary with class counts.

    With ``instances`` (an instance map on the labels' grid, and its ``table``: see
    :func:`instance_table`), every chip also gets its instance mask; with ``coco`` the chips'
    COCO instance-segmentation file :data:`COCO_FILE` is written too (before the manifest).

    Every file is written atomically (:func:`~napari_domainseg.atomic.atomic_write`) and the
    manifest last, so a listed chip is complete. A folder that already holds chips is refused
    unless ``overwrite``; then chips of the previous run the new manifest does not list are
    removed. When writing fails (a full disk), the chips this run wrote are removed again.

    Raises
    ------
    InputError
        The folder already holds chips and ``overwrite`` is false, or no chip can be planned,
        or ``coco`` without ``instances``.
    """
    if coco and instances is None:
        raise InputError("--coco needs --instances (the instance map the COCO masks come from)")
    if instances is not None and table is None:
        table = instance_table(instances, labels)
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
        rows = _write_all(
            image, labels, chips, folder, schema, overwrite, written, instances, table
        )
        if coco:
            written.append(_write_coco(folder, rows, instances, table, labels, schema, overwrite))
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
    summary: dict[str, Any] = {
        "chips": len(chips),
        "samples": sum(c.repeats for c in chips),
        "manifest": str(manifest),
        "class_pixels": {str(k): v for k, v in sorted(totals.items())},
    }
    if instances is not None:
        summary["instances"] = len(table)
    if coco:
        summary["coco"] = str(folder / COCO_FILE)
    return summary


def _existing_chips(folder: Path) -> set[str]:
    """Names of the chip files and manifest already in ``folder``."""
    if not folder.is_dir():
        return set()
    return {
        entry.name
        for entry in folder.iterdir()
        if entry.name in (MANIFEST, COCO_FILE) or _CHIP_FILE.match(entry.name)
    }


def _write_all(
    image: Read,
    labels: np.ndarray,
    chips: list[Chip],
    folder: Path,
    schema: LabelSchema | None,
    overwrite: bool,
    written: list[Path],
    instances: np.ndarray | None = None,
    table: InstanceTable | None = None,
) -> list[dict[str, Any]]:
    """Write every chip (appending each file to ``written``); return the manifest rows."""
    rows = []
    image_nodata = _nodata(image) if image.domain == "geo" else None
    dtype = None if table is None else instance_dtype(max(table.next_id() - 1, 256))
    for number, chip in enumerate(progress.bar(chips, "chips", total=len(chips), unit="chip")):
        stem = f"chip_{number:05d}"
        if image.domain == "geo":
            paths = _write_geotiff_pair(
                image, labels, chip, folder, stem, schema, image_nodata, overwrite, written
            )
            if instances is not None:
                paths["instances"] = _write_instance_geotiff(
                    image, instances, table, dtype, chip, folder, stem, overwrite, written
                )
        else:
            extra = None if instances is None else _window(instances, chip).astype(dtype)
            paths = _write_npz(image, labels, chip, folder, stem, overwrite, written, extra)
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
    instances: np.ndarray | None = None,
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
            **({} if instances is None else {"instances": instances}),
        )
    written.append(path)
    paths = {"image": path.name, "mask": path.name}
    if instances is not None:
        paths["instances"] = path.name
    return paths


def _window(array: np.ndarray, chip: Chip) -> np.ndarray:
    """The chip's tile of a 2D map, or of its slice of a volume."""
    rows, cols = slice(chip.row, chip.row + chip.size), slice(chip.col, chip.col + chip.size)
    if np.ndim(array) == 2:
        return np.asarray(array[rows, cols])
    return np.asarray(array[chip.slice_index or 0, rows, cols])


def _write_instance_geotiff(
    image: Read,
    instances: np.ndarray,
    table: InstanceTable,
    dtype: np.dtype,
    chip: Chip,
    folder: Path,
    stem: str,
    overwrite: bool,
    written: list[Path],
) -> str:
    """Write the instance-mask chip; return its file name.

    Instance ids (``uint16``/``uint32``, nodata 0) on the chip's grid, through the one GeoTIFF
    writer; the records of the chip's instances in the tag ``DOMAINSEG_INSTANCES``
    (:data:`~napari_domainseg.geo.label_raster.INSTANCES_TAG`).
    """
    from napari_domainseg.geo.grid import RasterGrid
    from napari_domainseg.geo.label_raster import INSTANCES_TAG, open_geotiff

    on_image = image.grid.with_window((chip.row, chip.col, chip.size, chip.size))
    grid = RasterGrid(chip.size, chip.size, on_image.array_transform, image.grid.crs)
    values = _window(instances, chip).astype(dtype)
    present = [int(i) for i in np.unique(values) if i != 0]
    records = [table[i].to_record() for i in present]
    path = folder / f"{stem}_instances.tif"
    with open_geotiff(path, grid, dtype, overwrite=overwrite) as dst:
        dst.write(values, 1)
        dst.set_band_description(1, "instances")
        dst.update_tags(**{INSTANCES_TAG: json.dumps(records, separators=(",", ":"))})
    written.append(path)
    return path.name


def _write_coco(
    folder: Path,
    rows: list[dict[str, Any]],
    instances: np.ndarray,
    table: InstanceTable,
    labels: np.ndarray,
    schema: LabelSchema | None,
    overwrite: bool,
) -> Path:
    """Write :data:`COCO_FILE`: one COCO image per chip, one annotation per instance in it.

    The image entry names the chip's image file (and its mask and instance files); an
    instance cut by the chip's border is annotated with its part inside the chip.
    """
    images = []
    for row in rows:
        chip = Chip(int(row["row"]), int(row["col"]), int(row["size"]))
        if row["slice"] != "":
            chip.slice_index = int(row["slice"])
        keys = ("chip", "mask", "instances", "row", "col", "repeats")
        extra = {k: row[k] for k in keys}
        if chip.slice_index is not None:
            extra["slice_index"] = chip.slice_index
        images.append(CocoImage(row["image"], _window(instances, chip), extra))
    class_ids = {i.class_id for i in table} | {
        int(v) for v in np.unique(np.asarray(labels)) if v != 0
    }
    schema = covering_schema(sorted(class_ids), schema)
    return write_coco(folder / COCO_FILE, images, table, schema, overwrite=overwrite)


def instance_table(
    instances: np.ndarray,
    labels: np.ndarray,
    table: InstanceTable | None = None,
    source: str = "the instance map",
) -> InstanceTable:
    """The instance table of the chips, checked against the class map ``labels``.

    Without ``table``, each instance gets the class most of its pixels have in ``labels``
    (provenance ``"imported"``). With one, every painted id must be in it, and each
    instance's class must be the class ``labels`` holds under it.

    Raises
    ------
    InputError
        Painted ids the table lacks, instances on unlabeled pixels only (no class to give
        them), or a table class that contradicts the labels. Nothing is dropped silently.
    """
    instances, labels = np.asarray(instances), np.asarray(labels)
    if instances.shape != labels.shape:
        raise InputError(
            f"{source}: shape {instances.shape} differs from the labels' {labels.shape}"
        )
    if instances.dtype.kind not in "biu" or (instances.size and int(instances.min()) < 0):
        raise InputError(f"{source}: instance ids are integers, 0 (unlabeled) or positive")
    painted = instances != 0
    ids = instances[painted].astype(np.int64)
    classes = labels[painted].astype(np.int64)
    if table is None:
        pairs, counts = np.unique(np.stack([ids, classes]), axis=1, return_counts=True)
        best: dict[int, tuple[int, int]] = {}  # id -> (pixels, class), labelled classes first
        for (instance_id, class_id), count in zip(pairs.T.tolist(), counts.tolist(), strict=True):
            key = (class_id != 0, count)
            if instance_id not in best or key > best[instance_id][0]:
                best[instance_id] = (key, class_id)
        classless = sorted(i for i, (_, c) in best.items() if c == 0)
        if classless:
            shown = ", ".join(str(i) for i in classless[:10])
            raise InputError(
                f"{source}: instances {shown} lie on unlabeled pixels only, so they have no "
                "class; paint their class in the labels or give --instance-table"
            )
        try:
            return InstanceTable(
                tuple(Instance(i, c, {}, "imported") for i, (_, c) in sorted(best.items()))
            )
        except InstanceError as exc:
            raise InputError(f"{source}: {exc}") from None
    check = check_instances(instances, table)
    if not check.ok:
        raise InputError(check.message(source))
    expected = table.class_lookup(int(ids.max(initial=0)) + 1)[ids]
    wrong = (classes != expected) & (classes != 0)
    if wrong.any():
        bad = sorted({int(i) for i in np.unique(ids[wrong])})
        shown = ", ".join(f"{i} (class {table.class_of(i)})" for i in bad[:5])
        raise InputError(
            f"{source}: the labels hold another class under instances {shown} at "
            f"{int(wrong.sum())} pixels; make the class map and the instance table agree"
        )
    return table


def read_instance_table(path: Path) -> InstanceTable:
    """An instance table from JSON: a list of records, or ``{"instances": [records]}``."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        records = document["instances"] if isinstance(document, dict) else document
        return InstanceTable.from_records(records)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{path}: not an instance table (a JSON list of records with id and class_id): {exc}",
            path,
        ) from None
