"""Per-class statistics of a label array, kept up to date slice by slice; per-instance statistics.

The volume is summarised per slice (along axis 0; blocks of rows for 2D
rasters): voxel count, sum and sum of squares of the image under each class,
minimum and maximum. After an edit only the touched slices are summarised
again, so a refresh after a brush stroke on a 512x512x300 volume takes a few
milliseconds instead of a full pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

if TYPE_CHECKING:
    from napari_domainseg.labels.instances import InstanceTable
    from napari_domainseg.labels.schema import LabelSchema

ROWS_PER_BLOCK = 256
"""2D rasters are summarised in blocks of this many rows."""


@dataclass
class ClassRow:
    """Statistics of one class."""

    label: int
    name: str
    count: int
    size: float
    share: float
    mean: float | None = None
    sd: float | None = None
    minimum: float | None = None
    maximum: float | None = None


class ClassStatistics:
    """Incrementally maintained statistics of ``labels`` (and of ``image`` under each class).

    Parameters
    ----------
    labels
        Label array (2D or 3D); it is read, never modified, and may change between refreshes.
    image
        Intensities of the same shape, or ``None``.
    element_size
        Physical size of one voxel or pixel (mm3, m2).
    unit, unit_factor
        Name of the reported size unit and the factor from ``element_size`` units
        (``"mL"``, 0.001 for mm3; ``"ha"``, 1e-4 for m2; ``"m2"``, 1).
    compute
        Summarise every block now; with ``False`` call :meth:`refresh` later (for
        example in a worker thread: a 512x512x300 volume takes a few seconds).
    valid
        Where the image has data (same shape; ``None``: everywhere). Class
        counts and sizes take every labelled pixel; the image statistics
        (mean, sd, minimum, maximum) only pixels with data, so a nodata value
        never enters a mean.
    """

    def __init__(
        self,
        labels: np.ndarray,
        image: np.ndarray | None = None,
        element_size: float = 1.0,
        unit: str = "voxels",
        unit_factor: float = 1.0,
        compute: bool = True,
        valid: np.ndarray | None = None,
    ) -> None:
        if image is not None and np.shape(image) != np.shape(labels):
            raise ValueError(f"image {np.shape(image)} and labels {np.shape(labels)} differ")
        if valid is not None and np.shape(valid) != np.shape(labels):
            raise ValueError(f"valid mask {np.shape(valid)} and labels {np.shape(labels)} differ")
        self.labels, self.image, self.valid = labels, image, valid
        self.element_size, self.unit, self.unit_factor = element_size, unit, unit_factor
        n_blocks = labels.shape[0] if labels.ndim == 3 else -(-labels.shape[0] // ROWS_PER_BLOCK)
        self._blocks: list[dict[int, np.ndarray]] = [{} for _ in range(n_blocks)]
        if compute:
            self.refresh()

    def _block(self, index: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Labels, image values and validity of one block."""
        if self.labels.ndim == 3:
            where: int | slice = index
        else:
            where = slice(index * ROWS_PER_BLOCK, (index + 1) * ROWS_PER_BLOCK)
        values = None if self.image is None else np.asarray(self.image[where])
        inside = None if self.valid is None else np.asarray(self.valid[where])
        return np.asarray(self.labels[where]), values, inside

    @property
    def block_count(self) -> int:
        """How many blocks the summary is kept in (slices of a volume, row strips of a raster)."""
        return len(self._blocks)

    def block_of(self, index: int) -> int:
        """The block holding slice (3D) or row (2D) ``index``."""
        return index if self.labels.ndim == 3 else index // ROWS_PER_BLOCK

    def refresh(self, blocks: Iterable[int] | None = None) -> None:
        """Summarise the given blocks again (all when ``None``)."""
        for index in range(len(self._blocks)) if blocks is None else set(blocks):
            labels, values, inside = self._block(index)
            flat = labels.ravel()
            counts = np.bincount(flat)
            present = np.flatnonzero(counts)
            measured = counts
            summary = {}
            if values is not None:
                classes, measures = flat, values.ravel()
                if inside is not None and not inside.all():  # nodata is no intensity
                    keep = inside.ravel()
                    classes, measures = flat[keep], measures[keep]
                    measured = np.bincount(classes, minlength=len(counts))
                weights = measures.astype(np.float64)
                sums = np.bincount(classes, weights=weights, minlength=len(counts))
                squares = np.bincount(classes, weights=weights * weights, minlength=len(counts))
                minima = ndimage.minimum(measures, classes, present)
                maxima = ndimage.maximum(measures, classes, present)
            for position, value in enumerate(present):
                row = [counts[value], 0.0, 0.0, np.nan, np.nan, measured[value]]
                if values is not None:
                    row = [
                        counts[value],
                        sums[value],
                        squares[value],
                        minima[position],
                        maxima[position],
                        measured[value],
                    ]
                summary[int(value)] = np.asarray(row, dtype=np.float64)
            self._blocks[index] = summary

    def rows(self, names: dict[int, str] | None = None) -> list[ClassRow]:
        """One row per labelled class (0 excluded), sorted by id."""
        totals: dict[int, np.ndarray] = {}
        for summary in self._blocks:
            for value, row in summary.items():
                if value not in totals:
                    totals[value] = row.copy()
                else:
                    total = totals[value]
                    total[:3] += row[:3]
                    total[3] = np.fmin(total[3], row[3])
                    total[4] = np.fmax(total[4], row[4])
                    total[5] += row[5]
        labelled = sum(int(t[0]) for v, t in totals.items() if v != 0)
        result = []
        for value in sorted(v for v in totals if v != 0):
            count, total, squares, low, high, measured = totals[value]
            row = ClassRow(
                label=value,
                name=(names or {}).get(value, f"label {value}"),
                count=int(count),
                size=count * self.element_size * self.unit_factor,
                share=count / labelled if labelled else 0.0,
            )
            if self.image is not None and measured:
                mean = total / measured
                row.mean = float(mean)
                row.sd = float(np.sqrt(max(squares / measured - mean * mean, 0.0)))
                row.minimum, row.maximum = float(low), float(high)
            result.append(row)
        return result


def rows_to_csv(rows: list[ClassRow], unit: str) -> str:
    """The statistics as CSV text (one header line, one line per class)."""
    header = f"label,name,count,size_{unit},share,mean,sd,min,max"
    lines = [header]
    for r in rows:
        cells = [r.label, r.name, r.count, f"{r.size:.6g}", f"{r.share:.6f}"]
        cells += ["" if v is None else f"{v:.6g}" for v in (r.mean, r.sd, r.minimum, r.maximum)]
        lines.append(
            ",".join(f'"{c}"' if isinstance(c, str) and "," in c else str(c) for c in cells)
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- instances

_MILLIMETRES = ("mm", "millimetre", "millimeter", "millimetres", "millimeters")
_METRES = ("m", "metre", "meter", "metres", "meters")
_NO_UNIT = ("", "pixel", "pixels", "voxel", "voxels", "units")
_PIXELS_PER_BLOCK = 1 << 22
"""Instance statistics count this many pixels at a time (bounded memory on big volumes)."""


@dataclass
class InstanceRow:
    """Statistics of one instance (``class_id`` 0: an id painted but not in the table)."""

    id: int
    class_id: int
    class_path: str
    number: int
    provenance: str
    voxels: int
    size: float
    unit: str
    mean: float | None = None
    sd: float | None = None


@dataclass
class ClassSummary:
    """Statistics of one class over its instances; a parent class includes its descendants'."""

    class_id: int
    class_path: str
    depth: int
    instances: int
    own_instances: int
    voxels: int
    size: float
    unit: str
    mean: float | None = None


def size_unit(ndim: int, unit: str | None) -> tuple[str, float]:
    """The unit sizes are reported in and the factor from the element size in ``unit``**ndim.

    mm: mL in 3D (mm3 / 1000), mm2 in 2D; metres: m2 in 2D, m3 in 3D; no unit ("", "pixel"):
    "voxels" (3D) or "pixels" with factor 1 (the element size is then taken as 1); another
    unit ``u``: ``u2``/``u3``.
    """
    name = (unit or "").strip().casefold()
    if name in _MILLIMETRES:
        return ("mL", 1e-3) if ndim == 3 else (f"mm{ndim}", 1.0)
    if name in _METRES:
        return f"m{ndim}", 1.0
    if name in _NO_UNIT:
        return ("voxels" if ndim == 3 else "pixels"), 1.0
    return f"{unit}{ndim}", 1.0


def instance_statistics(
    instance_map: np.ndarray,
    table: InstanceTable,
    spacing: Iterable[float],
    unit: str | None,
    intensities: np.ndarray | None = None,
    schema: LabelSchema | None = None,
) -> list[InstanceRow]:
    """One row per painted instance: class, path, number in its class, voxels, size, mean.

    One pass over the map in blocks with :func:`numpy.bincount` (counts, and with
    ``intensities`` the sum and sum of squares, e.g. HU). Sizes are ``voxels x prod(spacing)``
    in :func:`size_unit` of ``unit`` (the unit of ``spacing``: mm gives mL in 3D, metres m2 in
    2D). Ids painted but missing from the table get a row with ``class_id`` 0 (never dropped);
    instances the table lists without pixels get none. Sorted by id.
    """
    values = np.asarray(instance_map)
    if values.dtype.kind not in "ui":
        raise ValueError(f"an instance map holds integers, not {values.dtype}")
    if intensities is not None and np.shape(intensities) != values.shape:
        raise ValueError(f"intensities {np.shape(intensities)} and map {values.shape} differ")
    steps = tuple(float(s) for s in spacing)[-values.ndim :] if values.ndim else ()
    unit_name, factor = size_unit(values.ndim, unit)
    element = 1.0 if (unit or "").strip().casefold() in _NO_UNIT else float(np.prod(steps))
    counts, sums, squares = _instance_sums(values, intensities, table.next_id())
    present = np.flatnonzero(counts)
    present = present[present != 0]
    numbers = table.numbers_in_class()
    rows = []
    for value in present.tolist():
        count = int(counts[value])
        if value in table:
            instance = table[value]
            class_id, provenance = instance.class_id, instance.provenance
            path = schema.path(class_id) if schema is not None and class_id in schema else ""
            path = path or str(class_id)
        else:
            class_id, provenance, path = 0, "", "(no class)"
        row = InstanceRow(
            id=value,
            class_id=class_id,
            class_path=path,
            number=numbers.get(value, 0),
            provenance=provenance,
            voxels=count,
            size=count * element * factor,
            unit=unit_name,
        )
        if sums is not None:
            mean = sums[value] / count
            row.mean = float(mean)
            row.sd = float(np.sqrt(max(squares[value] / count - mean * mean, 0.0)))
        rows.append(row)
    return rows


def _instance_sums(
    values: np.ndarray, intensities: np.ndarray | None, size: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Pixel count, intensity sum and sum of squares per id, block by block."""
    length = max(int(values.max(initial=0)) + 1 if values.size else 1, size)
    counts = np.zeros(length, dtype=np.int64)
    sums = squares = None
    if intensities is not None:
        sums, squares = np.zeros(length), np.zeros(length)
    if values.ndim == 0 or not values.size:
        return counts, sums, squares
    block = max(1, _PIXELS_PER_BLOCK // max(1, values[0].size))
    for start in range(0, values.shape[0], block):
        flat = np.asarray(values[start : start + block]).ravel()
        counts += np.bincount(flat, minlength=length)
        if sums is not None and squares is not None and intensities is not None:
            weights = np.asarray(intensities[start : start + block], dtype=np.float64).ravel()
            sums += np.bincount(flat, weights=weights, minlength=length)
            squares += np.bincount(flat, weights=weights * weights, minlength=length)
    return counts, sums, squares


def class_summary(
    rows: Iterable[InstanceRow], schema: LabelSchema | None = None
) -> list[ClassSummary]:
    """Per class: instance count, voxels, size and mean over :func:`instance_statistics` rows.

    With a schema whose classes form a tree, a parent class aggregates its descendants (its
    ``instances`` counts theirs too; ``own_instances`` only its own) and has a row even when
    it has no instance of its own. Schema order, then classes the schema lacks (by id).
    """
    rows = list(rows)
    own: dict[int, list[InstanceRow]] = {}
    for row in rows:
        own.setdefault(row.class_id, []).append(row)
    unit = rows[0].unit if rows else ""
    order = [c.id for c in schema] if schema is not None else []
    order += sorted(c for c in own if c not in set(order))
    result = []
    for class_id in order:
        listed = schema is not None and class_id in schema
        members = [class_id, *(schema.descendants(class_id) if listed else ())]
        found = [r for c in members for r in own.get(c, ())]
        if not found:
            continue
        measured = [r for r in found if r.mean is not None]
        voxels = sum(r.voxels for r in found)
        weight = sum(r.voxels for r in measured)
        mean = sum(r.mean * r.voxels for r in measured) / weight if weight else None
        result.append(
            ClassSummary(
                class_id=class_id,
                class_path=found[0].class_path if not listed else schema.path(class_id),
                depth=schema.depth(class_id) if listed else 0,
                instances=len(found),
                own_instances=len(own.get(class_id, ())),
                voxels=voxels,
                size=sum(r.size for r in found),
                unit=unit,
                mean=mean,
            )
        )
    return result
