"""Per-class statistics of a label array, kept up to date slice by slice.

The volume is summarised per slice (along axis 0; blocks of rows for 2D
rasters): voxel count, sum and sum of squares of the image under each class,
minimum and maximum. After an edit only the touched slices are summarised
again, so a refresh after a brush stroke on a 512x512x300 volume takes a few
milliseconds instead of a full pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

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
