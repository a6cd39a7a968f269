"""NRRD images and label maps, including 3D Slicer's ``.seg.nrrd`` segmentations.

NRRD lists its axes fastest first (i, j, k) with ``space directions`` and
``space origin`` in a named patient space; the plugin stores arrays as
(k, j, i) with an affine to LPS (z, y, x). Files are written in LPS
(``left-posterior-superior``, as Slicer writes them), gzip-encoded.

A label map written here carries its schema twice: as Slicer's segment
fields (``Segment0_Name:=liver``, ``_Color``, ``_LabelValue``, ...) when
written as ``.seg.nrrd``, and always as one ``DomainSeg_LabelSchema`` JSON
field, which keeps descriptions and shortcuts.

An instance map (values are instance ids) is written with its instance table in the JSON
field ``DomainSeg_Instances`` and, as ``.seg.nrrd``, one Slicer segment per instance
(``Segment<N>_Name`` ``"<class> <n>"``, ``_LabelValue`` the instance id, ``_Layer`` 0, the
class's terminology in ``_Tags``), so 3D Slicer opens one segment per instance.
"""

from __future__ import annotations

import bz2
import json
import os
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nrrd
import numpy as np

from napari_domainseg.atomic import atomic_write
from napari_domainseg.errors import DomainSegError
from napari_domainseg.labels.colors import default_color
from napari_domainseg.labels.schema import LabelClass, LabelSchema, covering_schema, schema_or_none
from napari_domainseg.medical.geometry import reorient
from napari_domainseg.medical.geometry_checks import (
    GeometryWarning,
    affine_problem,
    mark_geometry_unknown,
    spacing_problem,
    unit_affine,
)
from napari_domainseg.medical.instance_segments import (
    INSTANCES_KEY,
    instance_segments,
    slicer_terminology,
)
from napari_domainseg.medical.nifti import looks_like_labels
from napari_domainseg.medical.provenance import SOURCE_FIELD, restore_source_record
from napari_domainseg.medical.volume import Volume

if TYPE_CHECKING:
    from napari_domainseg.labels.instances import InstanceTable

ASSIST_FIELD = "DomainSeg_Assist"
"""NRRD header field holding the assisted-labeling provenance (JSON)."""

SCHEMA_FIELD = "DomainSeg_LabelSchema"
INSTANCES_FIELD = "DomainSeg_Instances"
"""NRRD header field holding the instance table of an instance map (JSON records)."""
_LPS_NAMES = {"left-posterior-superior", "lps"}
_RAS_NAMES = {"right-anterior-superior", "ras"}


class NrrdError(DomainSegError, ValueError):
    """An NRRD file cannot be read as a volume; the message says why."""


@dataclass
class NrrdRead:
    """A volume read from NRRD, with its label schemas when it is a label map.

    ``layers`` holds one array per Slicer segmentation layer (usually one);
    ``schemas`` the classes found in each.
    """

    volume: Volume
    is_labels: bool
    layers: list[np.ndarray]
    schemas: list[LabelSchema | None]


def is_seg_nrrd(path: str | os.PathLike[str]) -> bool:
    """True for Slicer segmentation file names (``*.seg.nrrd``)."""
    return str(path).lower().endswith(".seg.nrrd")


def nrrd_stem(path: str | os.PathLike[str]) -> str:
    """File name without ``.seg.nrrd`` or ``.nrrd``."""
    name = Path(path).name
    for suffix in (".seg.nrrd", ".nrrd", ".nhdr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def _header_geometry(array: np.ndarray, affine_zyx: np.ndarray) -> dict:
    affine_zyx = np.asarray(affine_zyx, dtype=float)
    # NRRD axes i, j, k are array axes 2, 1, 0; each direction in LPS (x, y, z).
    directions = np.array([affine_zyx[:3, axis][::-1] for axis in (2, 1, 0)])
    return {
        "space": "left-posterior-superior",
        "space directions": directions,
        "space origin": affine_zyx[:3, 3][::-1].copy(),
        "kinds": ["domain", "domain", "domain"],
        "encoding": "gzip",
    }


def _extents(labels: np.ndarray) -> dict[int, str]:
    """Slicer's extent (i min/max, j min/max, k min/max) of every value painted in ``labels``."""
    flat = np.flatnonzero(labels)
    if flat.size == 0:
        return {}
    values = labels.reshape(-1)[flat]
    order = np.argsort(values, kind="stable")
    values, flat = values[order], flat[order]
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    coords = np.unravel_index(flat, labels.shape)
    lows = [np.minimum.reduceat(coords[a], starts) for a in (2, 1, 0)]
    highs = [np.maximum.reduceat(coords[a], starts) for a in (2, 1, 0)]
    return {
        int(values[start]): " ".join(
            f"{int(low[n])} {int(high[n])}" for low, high in zip(lows, highs, strict=True)
        )
        for n, start in enumerate(starts)
    }


def _slicer_fields(
    labels: np.ndarray, segments: list[tuple[int, str, tuple, str]]
) -> dict[str, str]:
    """Slicer's segmentation header fields: one segment per (value, name, colour, tags)."""
    fields = {
        "Segmentation_MasterRepresentation": "Binary labelmap",
        "Segmentation_ContainedRepresentationNames": "Binary labelmap|",
        "Segmentation_ReferenceImageExtentOffset": "0 0 0",
    }
    extents = _extents(labels)
    for index, (value, name, color, tags) in enumerate(segments):
        r, g, b = (c / 255 for c in color[:3])
        prefix = f"Segment{index}_"
        fields[prefix + "ID"] = f"Segment_{value}"
        fields[prefix + "Name"] = name
        fields[prefix + "NameAutoGenerated"] = "0"
        fields[prefix + "Color"] = f"{r:.6g} {g:.6g} {b:.6g}"
        fields[prefix + "ColorAutoGenerated"] = "0"
        fields[prefix + "LabelValue"] = str(value)
        fields[prefix + "Layer"] = "0"
        fields[prefix + "Extent"] = extents.get(value, "0 -1 0 -1 0 -1")
        fields[prefix + "Tags"] = tags
    return fields


def _tags(codes: object) -> str:
    """A segment's ``_Tags``: Slicer's terminology entry, then ``|``."""
    return f"TerminologyEntry:{slicer_terminology(codes)}|"


def _segment_fields(labels: np.ndarray, schema: LabelSchema) -> dict[str, str]:
    """Slicer's segmentation header fields for a single-layer label map (one per class)."""
    return _slicer_fields(
        labels,
        [
            (
                c.id,
                c.name,
                c.color,
                _tags(c.codes) if getattr(c, "codes", None) is not None else "|",
            )
            for c in schema.classes
        ],
    )


def _instance_fields(
    labels: np.ndarray, instances: InstanceTable, schema: LabelSchema
) -> dict[str, str]:
    """Slicer's fields for an instance map: one segment per instance, its class's terminology."""
    return _slicer_fields(
        labels,
        [
            (s.instance_id, s.label, s.color, _tags(s.codes))
            for s in instance_segments(instances, schema)
        ],
    )


def write_nrrd(
    path: str | os.PathLike[str],
    array: np.ndarray,
    affine_zyx: np.ndarray,
    schema: LabelSchema | None = None,
    overwrite: bool = False,
    source: dict | None = None,
    assist: dict | None = None,
    instances: InstanceTable | None = None,
) -> list[Path]:
    """Write an image or label map as NRRD (LPS, gzip), atomically.

    A ``.seg.nrrd`` name writes a 3D Slicer segmentation (segment names,
    colours and label values in the header); label values missing from
    ``schema`` become segments named ``"label N"``. A ``source`` record
    (:func:`.provenance.source_record`: scaling, unknown geometry) is written
    as the header field :data:`.provenance.SOURCE_FIELD` (JSON), the ``assist``
    provenance of assisted labeling as :data:`ASSIST_FIELD` (JSON). With ``instances``,
    ``array`` is an instance map and ``schema`` names every class of the table: the table goes
    into :data:`INSTANCES_FIELD` (JSON records) and a ``.seg.nrrd`` gets one segment per
    instance.
    """
    path = Path(path)
    header = _header_geometry(array, affine_zyx)
    custom: dict[str, str] = {}
    if instances is not None:
        if schema is None:
            raise ValueError(f"{path}: an instance map needs the schema naming its classes")
        if is_seg_nrrd(path):
            custom.update(_instance_fields(array, instances, schema))
        custom[INSTANCES_FIELD] = json.dumps(instances.to_records(), separators=(",", ":"))
    elif is_seg_nrrd(path):
        full = covering_schema(np.unique(array), schema)
        custom.update(_segment_fields(array, full))
        schema = schema or full
    if schema is not None:
        custom[SCHEMA_FIELD] = json.dumps(schema.to_dict(), separators=(",", ":"))
    if source:
        custom[SOURCE_FIELD] = json.dumps(source, separators=(",", ":"))
    if assist:
        custom[ASSIST_FIELD] = json.dumps(assist, separators=(",", ":"))
    header.update(custom)
    with atomic_write(path, overwrite=overwrite) as tmp:
        nrrd.write(str(tmp), np.ascontiguousarray(array), header, index_order="C")
    return [path]


def _list_axes(directions: np.ndarray) -> np.ndarray:
    """Which axes are non-spatial (``none`` in ``space directions``: a row of NaN)."""
    return np.all(np.isnan(directions), axis=1)


def _affine_from_header(header: dict, path: Path) -> tuple[np.ndarray, list[str], list[str]]:
    """The voxel-to-LPS affine, warnings, and why the geometry is unknown (if it is).

    Space directions and origin are checked in one place
    (:func:`.geometry_checks.affine_problem`: finite, non-zero, not singular).
    When they are unusable the volume is placed on an axis-aligned grid of
    the ``spacings`` field (1 mm if that is unusable too) and marked unknown.
    """
    space = str(header.get("space", "")).lower()
    directions = header.get("space directions")
    if directions is None:
        raise NrrdError(f"{path}: no 'space directions', so its voxels have no patient position")
    try:
        directions = np.asarray(directions, dtype=float)
        spatial = list(directions[~_list_axes(directions)])
    except (TypeError, ValueError, IndexError):
        raise NrrdError(f"{path}: 'space directions' {directions!r:.80} are not vectors") from None
    if len(spatial) != 3:
        raise NrrdError(f"{path}: {len(spatial)} spatial axes; only 3D volumes are supported")
    try:
        origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=float).reshape(3)
    except (TypeError, ValueError):
        origin = np.full(3, np.nan)
    flip = np.ones(3)
    if space in _RAS_NAMES:
        flip = np.array([-1.0, -1.0, 1.0])
    elif space not in _LPS_NAMES:
        raise NrrdError(
            f"{path}: space {header.get('space')!r} is not a patient space (LPS or RAS)"
        )
    affine = np.eye(4)
    for array_axis, direction in zip((2, 1, 0), spatial, strict=True):
        affine[:3, array_axis] = (direction * flip)[::-1]
    affine[:3, 3] = (origin * flip)[::-1]
    problem = affine_problem(affine, "space directions/origin")
    if problem is None:
        return affine, [], []
    spacings = header.get("spacings")
    spacings = [float(v) for v in spacings if np.isfinite(v)] if spacings is not None else []
    usable = len(spacings) == 3 and spacing_problem(spacings, "spacings") is None
    grid = "its 'spacings'" if usable else "1 mm voxels"
    message = (
        f"{path.name}: geometry unknown: {problem}. Shown on an axis-aligned grid of {grid} at "
        "the origin; positions and exports are not in patient millimetres. Fix the header's "
        "'space directions' and 'space origin' to place it."
    )
    return unit_affine(spacings[::-1] if usable else None), [message], [problem]


def _segments(header: dict) -> dict[int, list[LabelClass]]:
    """Segments per layer from Slicer's ``SegmentN_*`` fields."""
    layers: dict[int, list[LabelClass]] = {}
    index = 0
    while f"Segment{index}_ID" in header or f"Segment{index}_Name" in header:
        prefix = f"Segment{index}_"
        name = str(header.get(prefix + "Name", f"segment {index + 1}"))
        value = int(header.get(prefix + "LabelValue", 1))
        layer = int(
            header.get(prefix + "Layer", index if prefix + "LabelValue" not in header else 0)
        )
        try:
            rgb = [float(v) for v in str(header.get(prefix + "Color", "")).split()]
            color = (*[round(255 * c) for c in rgb[:3]], 255)
        except ValueError:
            rgb = []
        if len(rgb) < 3:
            color = default_color(value)
        layers.setdefault(layer, []).append(
            LabelClass(id=value, name=name, color=color)  # type: ignore[arg-type]
        )
        index += 1
    return layers


def _unique_names(classes: list[LabelClass]) -> tuple[LabelClass, ...]:
    seen: set[str] = set()
    result = []
    for c in classes:
        name = c.name if c.name not in seen else f"{c.name} ({c.id})"
        seen.add(name)
        result.append(LabelClass(id=c.id, name=name, color=c.color, description=c.description))
    return tuple(result)


def read_nrrd(path: str | os.PathLike[str]) -> NrrdRead:
    """Read an NRRD image, label map or Slicer segmentation into world (z, y, x).

    Raises
    ------
    NrrdError
        If the file is unreadable or is not a 3D volume in a patient space.
    """
    path = Path(path)
    try:
        data, header = nrrd.read(str(path), index_order="C")
    except Exception as exc:
        truncated = truncation_problem(path)
        if truncated is not None:
            raise NrrdError(f"{path}: truncated: {truncated}") from None
        raise NrrdError(f"{path} is not a readable NRRD file: {exc}") from None
    affine, notes, unknown = _affine_from_header(header, path)
    if data.ndim == 4:  # one non-spatial (list) axis: Slicer puts it first in the file
        directions = np.asarray(header["space directions"], dtype=float)
        file_axis = int(np.flatnonzero(_list_axes(directions))[0])
        data = np.moveaxis(data, data.ndim - 1 - file_axis, -1)  # C order reverses the axes
        arrays = [data[..., layer] for layer in range(data.shape[-1])]
    elif data.ndim == 3:
        arrays = [data]
    else:
        raise NrrdError(f"{path}: {data.ndim} axes; only 3D volumes are supported")
    segments = _segments(header)
    stored_schema = schema_or_none(header.get(SCHEMA_FIELD), source=f"{path} {SCHEMA_FIELD}")
    is_labels = (
        bool(segments)
        or stored_schema is not None
        or is_seg_nrrd(path)
        or looks_like_labels(arrays[0])
    )
    schemas: list[LabelSchema | None] = []
    for layer in range(len(arrays)):
        if stored_schema is not None and len(arrays) == 1:
            schemas.append(stored_schema)
        elif layer in segments:
            name = f"{nrrd_stem(path)} layer {layer}" if len(arrays) > 1 else nrrd_stem(path)
            schemas.append(LabelSchema(name=name, classes=_unique_names(segments[layer])))
        else:
            schemas.append(None)
    views = []
    world_affine = affine
    for array in arrays:
        view, world_affine, _, _ = reorient(array, affine)
        views.append(np.ascontiguousarray(view))
    metadata: dict = {"source_format": "NRRD"}
    for reason in unknown:
        mark_geometry_unknown(metadata, reason)
    if INSTANCES_FIELD in header:  # checked by the reader (formats.nrrd), never dropped here
        records = _json_field(header[INSTANCES_FIELD], limit=1 << 26)
        metadata[INSTANCES_KEY] = header[INSTANCES_FIELD] if records is None else records
    note = restore_source_record(metadata, _json_field(header.get(SOURCE_FIELD)), path.name)
    notes += [note] if note else []
    if notes:
        metadata["warnings"] = notes
    for note in notes:
        warnings.warn(note, GeometryWarning, stacklevel=2)
    volume = Volume(views[0], world_affine, metadata)
    return NrrdRead(volume=volume, is_labels=is_labels, layers=views, schemas=schemas)


def _json_field(value: object, limit: int = 1_000_000) -> object:
    """A JSON header field's value, or ``None`` when absent, damaged or over ``limit`` chars."""
    if not isinstance(value, str) or len(value) > limit:
        return None
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return None


_TYPE_SIZES = {
    1: ("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"),
    2: ("short", "short int", "signed short", "signed short int", "int16", "int16_t",
        "ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"),
    4: ("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t",
        "float"),
    8: ("longlong", "long long", "long long int", "signed long long", "signed long long int",
        "int64", "int64_t", "ulonglong", "unsigned long long", "unsigned long long int",
        "uint64", "uint64_t", "double"),
}  # fmt: skip
"""Bytes per value of each NRRD ``type`` name (the NRRD0005 specification's list)."""
_DECOMPRESSORS = {
    "gzip": lambda: zlib.decompressobj(zlib.MAX_WBITS | 32),
    "gz": lambda: zlib.decompressobj(zlib.MAX_WBITS | 32),
    "bzip2": bz2.BZ2Decompressor,
    "bz2": bz2.BZ2Decompressor,
}


def _element_size(type_name: str) -> int | None:
    """Bytes per value of an NRRD ``type`` (``None`` for ``block`` or an unknown name)."""
    name = " ".join(type_name.lower().split())
    return next((size for size, names in _TYPE_SIZES.items() if name in names), None)


def truncation_problem(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str | None:
    """Why an NRRD file's data are shorter than its header announces, or ``None``.

    The attached (or detached, one file) data are decompressed as a stream and
    counted, never kept: reading stops as soon as the announced size is
    reached. ``None`` also when the header cannot say (unknown type, a list of
    data files, ...); the caller then reports the reader's own error.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            header = nrrd.read_header(handle)
            offset = handle.tell()
        sizes = [int(v) for v in header["sizes"]]
        size = _element_size(str(header["type"]))
        encoding = str(header.get("encoding", "raw")).lower()
        if len(sizes) != int(header["dimension"]) or min(sizes, default=0) < 1:
            return None  # an inconsistent header: the reader's own message says so
    except Exception:
        return None
    detached = header.get("data file", header.get("datafile"))
    if size is None or (detached is not None and " " in str(detached).strip()):
        return None
    data_path, start = path, offset
    if detached is not None:
        data_path, start = path.parent / str(detached).strip(), 0
    expected = int(np.prod(sizes, dtype=np.int64)) * size
    available = _data_bytes(data_path, start, encoding, expected, chunk)
    if available is None or available >= expected:
        return None
    shown = " x ".join(str(n) for n in sizes)
    return (
        f"its header announces {shown} values of {header['type']} ({expected} bytes), but its "
        f"{encoding} data hold only {available} bytes. The file was cut short (an interrupted "
        "copy, download or save); copy or export it again."
    )


def _data_bytes(path: Path, start: int, encoding: str, limit: int, chunk: int) -> int | None:
    """Bytes of data from ``start`` in ``path`` once decoded (counted up to ``limit``)."""
    try:
        if encoding == "raw":
            return max(0, path.stat().st_size - start)
        make = _DECOMPRESSORS.get(encoding)
        if make is None:
            return None
        decoder, total = make(), 0
        with open(path, "rb") as handle:
            handle.seek(start)
            while total < limit:
                block = handle.read(chunk)
                if not block:
                    break
                try:
                    total += len(decoder.decompress(block))
                except (zlib.error, OSError, EOFError, ValueError):
                    break  # corrupt beyond here: what was decoded is all there is
                if getattr(decoder, "eof", False):
                    break
        return total
    except OSError:
        return None
