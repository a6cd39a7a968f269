"""COCO export of instance maps: instance segmentation (RLE masks) and panoptic (PNG + JSON).

Each COCO *image* is one 2D instance map (a slice of a volume, a chip of a raster) with a
file name; every instance painted in it becomes one annotation whose ``segmentation`` is a
COCO run-length encoding (column-major, as ``pycocotools`` reads it), with its ``area`` (pixel
count), ``bbox`` ``[x, y, width, height]`` in pixels, ``category_id`` (the class id) and the
instance's ``attributes``. Categories come from the schema: ``id`` the class id, ``name`` the
class name, ``supercategory`` the parent class's name (``""`` for a root class).

Touching instances stay separate annotations (an instance map holds one id per pixel, so they
never overlap either), which is also what COCO *panoptic* needs: :func:`write_coco_panoptic`
writes one PNG per image whose colour encodes the segment id (``R + 256 G + 256**2 B``) and the
``segments_info`` beside it; "objects" classes are *things* (a segment per instance), "stuff"
classes one segment per class and image.

Pure NumPy, ``json`` and ``zlib`` (the PNG writer is the format's minimum: 8-bit RGB, no
filter); every file is written atomically and never replaces one unless ``overwrite``.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_domainseg.atomic import atomic_write, check_writable
from napari_domainseg.errors import DomainSegError
from napari_domainseg.labels.instances import InstanceTable, check_instances, plain_value

if TYPE_CHECKING:
    from napari_domainseg.labels.schema import LabelClass, LabelSchema

RLE_FORMATS = ("compressed", "uncompressed")
"""``"compressed"``: counts as pycocotools' string (``mask.encode``); ``"uncompressed"``: a list."""
MAX_PANOPTIC_SEGMENTS = 256**3 - 1
"""A panoptic PNG holds segment ids up to 24 bits."""


class CocoError(DomainSegError, ValueError):
    """An instance map that cannot be exported to COCO as it stands (the message says why)."""


@dataclass(frozen=True)
class CocoImage:
    """One COCO image: a 2D instance map and the name of the image file it annotates.

    Parameters
    ----------
    file_name
        The image's file name as the dataset lists it (``"chip_00000_image.tif"``).
    instance_map
        2D integer array of instance ids (0 = unlabeled), the image's size.
    extra
        More fields for the image entry (``{"slice_index": 3}``, a chip's window), JSON-ready.
    """

    file_name: str
    instance_map: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = np.asarray(self.instance_map)
        if values.ndim != 2:
            raise CocoError(
                f"{self.file_name}: a COCO image is 2D; got {values.ndim} dimensions "
                "(give one image per slice: slice_images)"
            )
        if values.dtype.kind not in "biu":
            raise CocoError(f"{self.file_name}: instance ids are integers, not {values.dtype}")
        object.__setattr__(self, "instance_map", values)

    @property
    def height(self) -> int:
        """Rows."""
        return int(self.instance_map.shape[0])

    @property
    def width(self) -> int:
        """Columns."""
        return int(self.instance_map.shape[1])


def slice_images(
    stem: str, volume: np.ndarray, axis: int = 0, suffix: str = ".png"
) -> list[CocoImage]:
    """One COCO image per slice of a volume along ``axis`` (the displayed axis).

    File names are ``"<stem>_z0000.png"`` (the slice index along ``axis``, four digits at
    least); each image entry records its ``slice_index`` and ``axis``.
    """
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise CocoError(f"{stem}: slice_images takes a 3D instance map, not {volume.ndim}D")
    planes = np.moveaxis(volume, axis, 0)
    return [
        CocoImage(f"{stem}_z{index:04d}{suffix}", plane, {"slice_index": index, "axis": axis % 3})
        for index, plane in enumerate(planes)
    ]


# ---------------------------------------------------------------------------- RLE


def encode_rle(mask: np.ndarray, rle: str = "compressed") -> dict[str, Any]:
    """COCO run-length encoding of a 2D boolean mask.

    Runs are counted down the columns (column-major, Fortran order), the first run is of
    zeros (0 when the first pixel is set); ``size`` is ``[height, width]``.
    """
    mask = np.asarray(mask, dtype=bool)
    positions = np.flatnonzero(mask.ravel(order="F"))
    return _rle_of_positions(positions, mask.shape, rle)


def decode_rle(segmentation: dict[str, Any]) -> np.ndarray:
    """The boolean mask of a COCO RLE (``counts`` a list or a compressed string)."""
    height, width = (int(v) for v in segmentation["size"])
    counts = segmentation["counts"]
    if isinstance(counts, (str, bytes)):
        counts = string_to_counts(counts.decode() if isinstance(counts, bytes) else counts)
    counts = np.asarray(counts, dtype=np.int64)
    if counts.sum() != height * width:
        raise CocoError(
            f"RLE counts sum to {int(counts.sum())}, not {height}x{width} = {height * width}"
        )
    values = np.zeros(counts.size, dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    return flat.reshape((height, width), order="F")


def counts_to_string(counts: Sequence[int]) -> str:
    """Pycocotools' compressed counts (``rleToString``): 5 bits per character, deltas.

    Each count from the fourth on is stored as its difference to the count two before; every
    value as little-endian groups of 5 bits, ``0x20`` marking "more follows", plus 48.
    """
    characters = []
    for index, count in enumerate(counts):
        value = int(count) - (int(counts[index - 2]) if index > 2 else 0)
        more = True
        while more:
            chunk = value & 0x1F
            value >>= 5
            more = value != -1 if chunk & 0x10 else value != 0
            if more:
                chunk |= 0x20
            characters.append(chr(chunk + 48))
    return "".join(characters)


def string_to_counts(text: str) -> list[int]:
    """The counts of pycocotools' compressed string (``rleFrString``)."""
    counts: list[int] = []
    position = 0
    while position < len(text):
        value = shift = 0
        more = True
        while more:
            chunk = ord(text[position]) - 48
            value |= (chunk & 0x1F) << shift
            more = bool(chunk & 0x20)
            position += 1
            shift += 5
            if not more and chunk & 0x10:
                value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def _rle_of_positions(positions: np.ndarray, shape: tuple[int, int], rle: str) -> dict[str, Any]:
    """The RLE of the pixels at sorted column-major ``positions`` in an image of ``shape``."""
    if rle not in RLE_FORMATS:
        raise CocoError(f"RLE format {rle!r}: choose one of {', '.join(RLE_FORMATS)}")
    height, width = int(shape[0]), int(shape[1])
    total = height * width
    if positions.size == 0:
        counts = [total]
    else:
        breaks = np.flatnonzero(np.diff(positions) != 1)
        starts = np.concatenate(([positions[0]], positions[breaks + 1]))
        ends = np.concatenate((positions[breaks] + 1, [positions[-1] + 1]))
        edges = np.empty(starts.size * 2 + 2, dtype=np.int64)
        edges[0] = 0
        edges[1:-1:2] = starts
        edges[2:-1:2] = ends
        edges[-1] = total
        counts = np.diff(edges).tolist()
        if counts[-1] == 0:
            counts.pop()
    encoded: Any = counts_to_string(counts) if rle == "compressed" else counts
    return {"size": [height, width], "counts": encoded}


# ---------------------------------------------------------------------------- one image's instances


@dataclass(frozen=True)
class _Region:
    """One instance in one image: its pixels as column-major positions, its box and area."""

    instance_id: int
    positions: np.ndarray
    bbox: list[int]

    @property
    def area(self) -> int:
        return int(self.positions.size)


def _regions(instance_map: np.ndarray) -> Iterator[_Region]:
    """Every instance painted in a 2D map, by ascending id (pixels gathered in one pass)."""
    height = instance_map.shape[0]
    flat = instance_map.ravel(order="F")
    positions = np.flatnonzero(flat)
    if positions.size == 0:
        return
    ids = flat[positions]
    order = np.argsort(ids, kind="stable")  # positions stay sorted within one id
    ids, positions = ids[order], positions[order]
    cuts = np.flatnonzero(np.diff(ids)) + 1
    for group in np.split(np.arange(ids.size), cuts):
        own = positions[group]
        columns, rows = own // height, own % height
        x, y = int(columns.min()), int(rows.min())
        bbox = [x, y, int(columns.max()) - x + 1, int(rows.max()) - y + 1]
        yield _Region(int(ids[group[0]]), own, bbox)


def _tables(table: InstanceTable | Sequence[InstanceTable], count: int) -> list[InstanceTable]:
    if isinstance(table, InstanceTable):
        return [table] * count
    tables = list(table)
    if len(tables) != count:
        raise CocoError(f"{len(tables)} instance tables for {count} images; give one per image")
    return tables


def _checked(image: CocoImage, table: InstanceTable) -> None:
    """Refuse painted ids the table lacks: they would be dropped, and nothing is dropped."""
    check = check_instances(image.instance_map, table)
    if not check.ok:
        raise CocoError(check.message(image.file_name))


def _image_entry(image_id: int, image: CocoImage) -> dict[str, Any]:
    return {
        "id": image_id,
        "file_name": image.file_name,
        "width": image.width,
        "height": image.height,
        **image.extra,
    }


# ---------------------------------------------------------------------------- categories


def _parent_name(schema: LabelSchema, label_class: LabelClass) -> str:
    parent = getattr(label_class, "parent", None)
    if parent is None or parent not in schema:
        return ""
    return schema[parent].name


def is_thing(label_class: LabelClass) -> bool:
    """True for an "objects" class (countable instances), false for "stuff"."""
    return getattr(label_class, "kind", "stuff") == "objects"


def categories(schema: LabelSchema, panoptic: bool = False) -> list[dict[str, Any]]:
    """The COCO categories of ``schema``: every class, ordered by id.

    ``supercategory`` is the parent class's name (``""`` for a root); ``path`` the class's
    full path (``"vehicle/car"``). Panoptic categories add ``isthing`` (1 for "objects"
    classes) and ``color`` (the class colour's RGB).
    """
    entries = []
    for label_class in sorted(schema.classes, key=lambda c: c.id):
        entry: dict[str, Any] = {
            "id": label_class.id,
            "name": label_class.name,
            "supercategory": _parent_name(schema, label_class),
            "path": schema.path(label_class.id),
        }
        if panoptic:
            entry["isthing"] = int(is_thing(label_class))
            entry["color"] = [int(v) for v in label_class.color[:3]]
        entries.append(entry)
    return entries


def _check_classes(tables: Iterable[InstanceTable], schema: LabelSchema) -> None:
    unknown = sorted({i.class_id for t in tables for i in t if i.class_id not in schema})
    if unknown:
        shown = ", ".join(str(c) for c in unknown[:10])
        raise CocoError(
            f"instances of class ids {shown} that schema {schema.name!r} does not have; "
            "add the classes to the schema or relabel the instances"
        )


# ---------------------------------------------------------------------------- instance segmentation


def coco_dataset(
    images: Sequence[CocoImage],
    table: InstanceTable | Sequence[InstanceTable],
    schema: LabelSchema,
    rle: str = "compressed",
    info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The COCO instance-segmentation document of ``images`` (not written).

    Parameters
    ----------
    images
        The images (image ids 1, 2, ... in this order).
    table
        The instance table of every image, or one table per image.
    schema
        The classes (the categories).
    rle
        ``"compressed"`` (pycocotools' string counts) or ``"uncompressed"`` (a list).
    info
        The document's ``info`` (description, version, ...).

    Raises
    ------
    CocoError
        An id painted but not in its table, an instance of a class the schema lacks, a
        non-2D image.
    """
    tables = _tables(table, len(images))
    _check_classes(tables, schema)
    image_entries, annotations = [], []
    for image_id, (image, image_table) in enumerate(zip(images, tables, strict=True), start=1):
        _checked(image, image_table)
        image_entries.append(_image_entry(image_id, image))
        for region in _regions(image.instance_map):
            instance = image_table[region.instance_id]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": instance.class_id,
                    "segmentation": _rle_of_positions(
                        region.positions, image.instance_map.shape, rle
                    ),
                    "area": region.area,
                    "bbox": region.bbox,
                    "iscrowd": 0,
                    "instance_id": instance.id,
                    "attributes": {k: plain_value(v) for k, v in instance.attributes.items()},
                    "provenance": instance.provenance,
                }
            )
    return {
        "info": dict(info or {"description": f"napari-domainseg export ({schema.name})"}),
        "images": image_entries,
        "annotations": annotations,
        "categories": categories(schema),
    }


def write_coco(
    path: str | os.PathLike[str],
    images: Sequence[CocoImage],
    table: InstanceTable | Sequence[InstanceTable],
    schema: LabelSchema,
    overwrite: bool = False,
    rle: str = "compressed",
    info: dict[str, Any] | None = None,
) -> Path:
    """Write the COCO instance-segmentation JSON of ``images`` (:func:`coco_dataset`).

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is false (checked before any work).
    CocoError
        As :func:`coco_dataset`.
    """
    path = check_writable(path, overwrite)
    document = coco_dataset(images, table, schema, rle, info)
    _write_json(path, document, overwrite)
    return path


# ---------------------------------------------------------------------------- panoptic


def panoptic_dataset(
    images: Sequence[CocoImage],
    table: InstanceTable | Sequence[InstanceTable],
    schema: LabelSchema,
    info: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The COCO panoptic document and each image's segment-id map (not written).

    Segments are numbered 1, 2, ... in each image: one per instance of an "objects" class
    (with its ``instance_id``), one per "stuff" class present (with the ``instance_ids`` it
    joins). Annotation ``file_name`` is the image's file name with ``.png``.

    Returns
    -------
    document, segment_maps
        The JSON document and, per image, a 2D ``uint32`` array of segment ids (0: void).
    """
    tables = _tables(table, len(images))
    _check_classes(tables, schema)
    image_entries, annotations, maps = [], [], []
    for image_id, (image, image_table) in enumerate(zip(images, tables, strict=True), start=1):
        _checked(image, image_table)
        image_entries.append(_image_entry(image_id, image))
        segments, segment_map = _segments(image, image_table, schema)
        annotations.append(
            {
                "image_id": image_id,
                "file_name": panoptic_png_name(image.file_name),
                "segments_info": segments,
            }
        )
        maps.append(segment_map)
    document = {
        "info": dict(info or {"description": f"napari-domainseg panoptic export ({schema.name})"}),
        "images": image_entries,
        "annotations": annotations,
        "categories": categories(schema, panoptic=True),
    }
    return document, maps


def _segments(
    image: CocoImage, table: InstanceTable, schema: LabelSchema
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """The segments_info of one image and its segment-id map."""
    shape = image.instance_map.shape
    flat = np.zeros(shape[0] * shape[1], dtype=np.uint32)  # column-major, as the regions
    stuff: dict[int, list[_Region]] = {}
    segments: list[dict[str, Any]] = []

    def add(class_id: int, positions: np.ndarray, extra: dict[str, Any]) -> None:
        segment_id = len(segments) + 1
        if segment_id > MAX_PANOPTIC_SEGMENTS:
            raise CocoError(
                f"{image.file_name}: more than {MAX_PANOPTIC_SEGMENTS} segments do not fit "
                "a panoptic PNG"
            )
        flat[positions] = segment_id
        columns, rows = positions // shape[0], positions % shape[0]
        x, y = int(columns.min()), int(rows.min())
        segments.append(
            {
                "id": segment_id,
                "category_id": class_id,
                "iscrowd": 0,
                "bbox": [x, y, int(columns.max()) - x + 1, int(rows.max()) - y + 1],
                "area": int(positions.size),
                **extra,
            }
        )

    for region in _regions(image.instance_map):
        instance = table[region.instance_id]
        if is_thing(schema[instance.class_id]):
            add(instance.class_id, region.positions, {"instance_id": instance.id})
        else:
            stuff.setdefault(instance.class_id, []).append(region)
    for class_id, regions in sorted(stuff.items()):
        positions = np.sort(np.concatenate([r.positions for r in regions]))
        add(class_id, positions, {"instance_ids": [r.instance_id for r in regions]})
    return segments, flat.reshape(shape, order="F")


def panoptic_png_name(file_name: str) -> str:
    """The panoptic PNG of an image: its file name with the suffix ``.png``."""
    return f"{Path(file_name).stem}.png" if Path(file_name).suffix else f"{file_name}.png"


def ids_to_rgb(segment_map: np.ndarray) -> np.ndarray:
    """Segment ids as the panoptic colours: ``id = R + 256 G + 256**2 B`` (H x W x 3 uint8)."""
    ids = np.asarray(segment_map, dtype=np.uint32)
    if ids.size and int(ids.max()) > MAX_PANOPTIC_SEGMENTS:
        raise CocoError(f"segment id {int(ids.max())} does not fit 24 bits")
    return np.stack([(ids >> shift) & 0xFF for shift in (0, 8, 16)], axis=-1).astype(np.uint8)


def rgb_to_ids(rgb: np.ndarray) -> np.ndarray:
    """The segment ids of a panoptic PNG's pixels (H x W x 3) as ``uint32``."""
    rgb = np.asarray(rgb, dtype=np.uint32)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def write_coco_panoptic(
    path: str | os.PathLike[str],
    images: Sequence[CocoImage],
    table: InstanceTable | Sequence[InstanceTable],
    schema: LabelSchema,
    png_folder: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    info: dict[str, Any] | None = None,
) -> list[Path]:
    """Write COCO panoptic: one PNG per image (in ``png_folder``) and the JSON at ``path``.

    ``png_folder`` defaults to the JSON's name without ``.json`` (``panoptic.json`` and
    ``panoptic/``), as the COCO panoptic files are laid out. Every target is checked before
    anything is written; the JSON is written last, and if a PNG fails the PNGs written by this
    call are removed again.

    Returns
    -------
    list of Path
        The JSON, then the PNGs.

    Raises
    ------
    OutputExistsError
        The JSON or a PNG exists and ``overwrite`` is false (before anything is written).
    """
    path = Path(path)
    folder = Path(png_folder) if png_folder is not None else path.with_suffix("")
    pngs = [folder / panoptic_png_name(image.file_name) for image in images]
    if len(set(pngs)) != len(pngs):
        raise CocoError(f"{path}: two images give the same panoptic PNG name; rename them")
    check_writable(path, overwrite)
    if folder.is_dir():
        for png in pngs:
            check_writable(png, overwrite)
    document, maps = panoptic_dataset(images, table, schema, info)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for png, segment_map in zip(pngs, maps, strict=True):
            with atomic_write(png, overwrite=overwrite) as tmp:
                tmp.write_bytes(encode_png(ids_to_rgb(segment_map)))
            written.append(png)
        _write_json(path, document, overwrite)
    except BaseException:
        for png in written:
            png.unlink(missing_ok=True)
        raise
    return [path, *pngs]


def encode_png(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of an H x W x 3 ``uint8`` array (lossless; no row filters)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise CocoError(f"a PNG of an H x W x 3 array; got shape {rgb.shape}")
    height, width = rgb.shape[:2]
    rows = np.zeros((height, 1 + 3 * width), dtype=np.uint8)  # filter byte 0 per row
    rows[:, 1:] = rgb.reshape(height, 3 * width)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------------------- helpers


def _write_json(path: Path, document: dict[str, Any], overwrite: bool) -> None:
    with atomic_write(path, overwrite=overwrite) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(document, handle, separators=(",", ":"), allow_nan=False)
