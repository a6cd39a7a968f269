"""``domainseg coco``: an instance file or a class map as COCO instance segmentation or panoptic.

The labels are an instance map with its table (a two-band instance GeoTIFF; a NIfTI, NRRD,
.seg.nrrd or DICOM SEG written with instances) or a plain class map, whose instances are made
here (:func:`~napari_domainseg.ops.instances.make_instances`: each connected part of an
"objects" class one instance, each "stuff" class one region). The schema (``--schema``, else
the file's own) gives the categories; a file without one is refused, since the kinds of its
classes, and so its instances, would be guesses.

A volume becomes one COCO image per slice holding labels along ``--axis`` (``z`` by default,
the world-ordered array's first axis), named ``"<stem>_z0000.png"`` (``_y``, ``_x`` for the
other axes); a raster one image ``"<stem>.png"``. The writers are
:func:`~napari_domainseg.labels.coco.write_coco` and
:func:`~napari_domainseg.labels.coco.write_coco_panoptic` (atomic, never replacing a file
without ``--overwrite``).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from napari_domainseg.atomic import check_writable
from napari_domainseg.cli import progress
from napari_domainseg.cli.commands import _labels, _schema
from napari_domainseg.files import InputError

if TYPE_CHECKING:
    from napari_domainseg.formats.base import Read
    from napari_domainseg.labels.coco import CocoImage
    from napari_domainseg.labels.instances import InstanceTable
    from napari_domainseg.labels.schema import LabelSchema

AXES = {"z": 0, "y": 1, "x": 2}
"""``--axis`` letters and the world-ordered (z, y, x) array axis each names."""
DEFAULT_AXIS = "z"
_COMPOUND_SUFFIXES = (".nii.gz", ".seg.nrrd")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``coco`` options."""
    parser.add_argument(
        "labels", type=Path,
        help="instance file (instance GeoTIFF, NIfTI/NRRD/.seg.nrrd/DICOM SEG with instances) "
        "or a class map",
    )  # fmt: skip
    parser.add_argument("-o", "--output", type=Path, required=True, help="the COCO .json")
    parser.add_argument(
        "--panoptic", action="store_true",
        help="COCO panoptic: one PNG per image in the folder named as the JSON without .json",
    )  # fmt: skip
    parser.add_argument(
        "--axis", choices=tuple(AXES), default=None,
        help="volumes: one image per slice along this axis (default z)",
    )  # fmt: skip
    parser.add_argument(
        "--schema", type=Path,
        help="schema file or preset (default: the one the file carries): the categories, and "
        "which classes are objects",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true")


def coco(args: argparse.Namespace) -> dict[str, Any]:
    """Instances as COCO: RLE masks (default) or panoptic PNGs + JSON (``--panoptic``).

    A volume gives one image per slice holding labels along ``--axis`` (default z); a raster
    one image. A class map's instances are made from the schema's kinds ("objects": each
    connected part, "stuff": one region per class).
    """
    from napari_domainseg.labels.coco import CocoError, write_coco, write_coco_panoptic

    if args.output.suffix.lower() != ".json":
        raise InputError(f"{args.output}: the COCO file is a .json; name it so", args.output)
    check_writable(args.output, args.overwrite)  # before any work
    progress.stage(f"reading {args.labels.name}")
    labels = _labels(args.labels)
    schema = _schema(args.schema, _carried(labels.schema))
    if schema is None:
        raise InputError(
            f"{args.labels}: no label schema (the file names no classes, so which are objects "
            "and what the categories are is unknown); pass --schema FILE or a preset "
            "(e.g. --schema buildings)",
            args.labels,
        )
    instance_map, table, made = _instances(labels, schema)
    images = _images(args, labels, instance_map)
    info = {
        "description": f"napari-domainseg export of {args.labels.name} ({schema.name})",
        "labels": args.labels.name,
        "schema": schema.name,
    }
    if made:
        info["instances"] = "made from the class map: each connected part of an objects class, "\
            "one region per stuff class"  # fmt: skip
    progress.stage(f"writing {args.output.name}")
    walked = _Walked(images, "slices" if instance_map.ndim == 3 else "images")
    try:
        if args.panoptic:
            paths = write_coco_panoptic(
                args.output, walked, table, schema, overwrite=args.overwrite, info=info
            )
        else:
            paths = [write_coco(args.output, walked, table, schema, args.overwrite, info=info)]
    except CocoError as exc:
        raise InputError(f"{args.labels}: {exc}", args.labels) from None
    result: dict[str, Any] = {
        "written": [str(paths[0])] + ([str(paths[0].with_suffix(""))] if args.panoptic else []),
        "images": len(images),
        "instances": len({int(v) for v in np.unique(instance_map)} - {0}),
    }
    warnings = list(labels.warnings)
    if not images:
        warnings.append(f"{args.labels}: no slice holds labels; the COCO file lists no image")
    if warnings:
        result["warnings"] = warnings
    return result


def _carried(schema: LabelSchema | None) -> LabelSchema | None:
    """The file's schema, or ``None`` when it is only the stand-in ``"label N"`` names.

    Exports without a schema name every painted value ``"label N"`` (so the file has names
    and colours); such names say nothing about the classes' kinds.
    """
    if schema is None:
        return None
    stand_in = schema.name == "labels" and all(
        c.name == f"label {c.id}" and c.parent is None and c.kind == "stuff" for c in schema
    )
    return None if stand_in else schema


def _instances(labels: Read, schema: LabelSchema) -> tuple[np.ndarray, InstanceTable, bool]:
    """The instance map, its table, and whether they were made from a class map."""
    from napari_domainseg.labels.instances import InstanceError, InstanceTable, check_instances
    from napari_domainseg.ops.instances import make_instances

    array = np.asarray(labels.array)
    table = getattr(labels, "instances", None) or labels.metadata.get("instances")
    if table is None:
        progress.stage("making instances")
        instance_map, made = make_instances(array, schema, provenance="imported")
        return instance_map, made, True
    if not isinstance(table, InstanceTable):
        try:
            table = InstanceTable.from_records(table)
        except InstanceError as exc:
            raise InputError(f"{labels.path}: {exc}", labels.path) from None
    check = check_instances(array, table)
    if not check.ok:  # named once for the file, not per slice
        raise InputError(check.message(str(labels.path)), labels.path)
    return array, table, False


def _images(args: argparse.Namespace, labels: Read, instance_map: np.ndarray) -> list[CocoImage]:
    """One image per labelled slice of a volume along ``--axis``; a raster's single image."""
    from napari_domainseg.labels.coco import CocoImage

    stem = _stem(args.labels)
    if instance_map.ndim == 2:
        if args.axis is not None:
            raise InputError(
                f"{args.labels}: --axis slices a volume; this is a single 2D image (leave it out)",
                args.labels,
            )
        return [CocoImage(f"{stem}.png", instance_map)]
    if instance_map.ndim != 3:
        raise InputError(
            f"{args.labels}: COCO images are 2D slices of a volume or a raster; this label map "
            f"has {instance_map.ndim} dimensions",
            args.labels,
        )
    letter = args.axis or DEFAULT_AXIS
    axis = AXES[letter]
    planes = np.moveaxis(instance_map, axis, 0)
    labelled = np.flatnonzero(planes.reshape(planes.shape[0], -1).any(axis=1))
    return [
        CocoImage(
            f"{stem}_{letter}{int(index):04d}.png",
            planes[index],
            {"slice_index": int(index), "axis": axis},
        )
        for index in labelled
    ]


def _stem(path: Path) -> str:
    """The file's name without its suffix (``.nii.gz`` and ``.seg.nrrd`` as one)."""
    name = path.name
    for suffix in _COMPOUND_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


class _Walked(Sequence["CocoImage"]):
    """The images, with a progress bar each time the writer walks through them."""

    def __init__(self, images: list[CocoImage], unit: str) -> None:
        self._images = images
        self._unit = unit

    def __len__(self) -> int:
        return len(self._images)

    @overload
    def __getitem__(self, index: int) -> CocoImage: ...
    @overload
    def __getitem__(self, index: slice) -> list[CocoImage]: ...
    def __getitem__(self, index: int | slice) -> CocoImage | list[CocoImage]:
        return self._images[index]

    def __iter__(self) -> Iterator[CocoImage]:
        if len(self._images) < 2:
            return iter(self._images)
        return progress.bar(self._images, "encoding", total=len(self._images), unit=self._unit)
