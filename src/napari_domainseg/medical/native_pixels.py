"""Read uncompressed slices straight into the finished volume (the hot path of opening a CT).

The volume is allocated once, in world order, and each slice's bytes are
read from the offset :mod:`.fast_header` recorded into its place (through a
view in acquisition order). Rescaling happens in place: with an integral
intercept the values are shifted in 16-bit arithmetic, exact whenever the
result fits int16 (the usual CT), so peak memory stays near the volume's own
size. Unused high bits are masked and signed values sign-extended as pydicom does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom

from napari_domainseg.errors import DomainSegError
from napari_domainseg.medical.fast_header import PixelLocation
from napari_domainseg.medical.geometry import canonical_axes, undo_reorient
from napari_domainseg.medical.header_values import uint_value


def native_dtype(header: pydicom.Dataset) -> np.dtype | None:
    """Stored pixel dtype of a single-sample 8/16-bit image, or ``None`` if unsupported."""
    bits_allocated = int(header.get("BitsAllocated", 0) or 0)
    bits_stored = int(header.get("BitsStored", bits_allocated) or bits_allocated)
    high_bit = int(header.get("HighBit", bits_stored - 1) or 0)
    if int(header.get("SamplesPerPixel", 1) or 1) != 1 or bits_allocated not in (8, 16):
        return None
    if high_bit != bits_stored - 1 or not 1 <= bits_stored <= bits_allocated:
        return None
    signed = int(header.get("PixelRepresentation", 0) or 0) == 1
    return np.dtype(f"<{'i' if signed else 'u'}{bits_allocated // 8}")


class PixelDataError(DomainSegError, ValueError):
    """A slice's pixel data is not what its header says (the file changed or is truncated)."""


def read_native_stack(
    files: Sequence[Path],
    locations: Sequence[PixelLocation],
    header: pydicom.Dataset,
    acquired_affine: np.ndarray,
    headers: Sequence[pydicom.Dataset] | None = None,
    scalings: Sequence[tuple[float, float]] | None = None,
) -> np.ndarray | None:
    """Rescaled slices in one world-ordered volume, returned as an acquisition-order view.

    ``None`` when this fast path does not apply (the caller decodes with pydicom).

    Parameters
    ----------
    files, locations
        Slice files sorted along the normal and where their native pixels are.
    header
        Any slice's header: size, bit depth and rescale are shared by the stack.
    acquired_affine
        The stack's affine, which decides the world order of the volume.
    headers
        Every slice's header: the fast path applies only when they all share the
        pixel format (size, bits allocated and stored, sign).
    scalings
        ``(slope, intercept)`` of each slice, in the order of ``files`` (default:
        ``header``'s RescaleSlope/Intercept for all). When they differ, each
        slice is scaled by its own values into a float32 volume.

    Raises
    ------
    PixelDataError
        If a file holds fewer pixels than its header says (named in the message).
    """
    stored = native_dtype(header)
    rows, columns = int(header.Rows), int(header.Columns)
    if headers is not None and not _uniform(headers):
        return None
    if stored is None or any(loc.length < rows * columns * stored.itemsize for loc in locations):
        return None
    if scalings is None:
        slope = float(header.get("RescaleSlope", 1) or 1)
        intercept = float(header.get("RescaleIntercept", 0) or 0)
    else:
        slope, intercept = scalings[0]
        if any(s != (slope, intercept) for s in scalings[1:]):
            return _read_scaled_per_slice(files, locations, header, acquired_affine, scalings)
    bits_stored = int(header.get("BitsStored", stored.itemsize * 8))
    shape = (len(files), rows, columns)
    permutation, flips = canonical_axes(acquired_affine)
    world_shape = tuple(shape[axis] for axis in permutation)
    integral = slope == 1 and intercept == int(intercept)
    bits = np.dtype(f"<u{stored.itemsize}")
    out = np.empty(world_shape, dtype=np.int16 if integral else np.float32)
    target = out.view(np.uint16) if integral and stored.itemsize == 2 else out
    acquired = undo_reorient(target, permutation, flips)
    low, high = None, None
    for k, (file, location) in enumerate(zip(files, locations, strict=True)):
        raw = _read_slice(file, location, bits, rows * columns)
        values = _stored_values(raw, stored, bits_stored).reshape(rows, columns)
        low = int(values.min()) if low is None else min(low, int(values.min()))
        high = int(values.max()) if high is None else max(high, int(values.max()))
        if integral:
            acquired[k] = values.view(bits) if stored.itemsize == 2 else values
        else:
            np.multiply(values, np.float32(slope), out=acquired[k], casting="unsafe")
            acquired[k] += np.float32(intercept)
    if not integral:
        return acquired
    offset = int(intercept)
    if -(2**15) <= low + offset and high + offset < 2**15:
        wrapped = out.view(np.uint16)  # two's complement: exact when the result fits int16
        np.add(wrapped, np.uint16(offset % 2**16), out=wrapped)
        return undo_reorient(out, permutation, flips)
    values = out.view(stored.newbyteorder("=")) if stored.itemsize == 2 else out
    widened = values.astype(np.int32)
    widened += offset
    return undo_reorient(widened, permutation, flips)


def _read_slice(file: Path, location: PixelLocation, bits: np.dtype, count: int) -> np.ndarray:
    """The raw pixel words of one slice; a short read names the file."""
    raw = np.fromfile(file, dtype=bits, count=count, offset=location.offset)
    if raw.size != count:
        raise PixelDataError(
            f"{file}: pixel data truncated ({raw.size * bits.itemsize} of "
            f"{count * bits.itemsize} bytes); the file may have changed since it was scanned"
        )
    return raw


def _read_scaled_per_slice(
    files: Sequence[Path],
    locations: Sequence[PixelLocation],
    header: pydicom.Dataset,
    acquired_affine: np.ndarray,
    scalings: Sequence[tuple[float, float]],
) -> np.ndarray:
    """Slices whose RescaleSlope/Intercept differ: each scaled by its own, into float32."""
    stored = native_dtype(header)
    assert stored is not None  # checked by the caller
    rows, columns = int(header.Rows), int(header.Columns)
    bits_stored = int(header.get("BitsStored", stored.itemsize * 8))
    bits = np.dtype(f"<u{stored.itemsize}")
    permutation, flips = canonical_axes(acquired_affine)
    shape = (len(files), rows, columns)
    out = np.empty(tuple(shape[axis] for axis in permutation), dtype=np.float32)
    acquired = undo_reorient(out, permutation, flips)
    for k, (file, location) in enumerate(zip(files, locations, strict=True)):
        raw = _read_slice(file, location, bits, rows * columns)
        values = _stored_values(raw, stored, bits_stored).reshape(rows, columns)
        slope, intercept = scalings[k]
        np.multiply(values, np.float32(slope), out=acquired[k], casting="unsafe")
        acquired[k] += np.float32(intercept)
    return acquired


_FORMAT = ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation")


def _uniform(headers: Sequence[pydicom.Dataset]) -> bool:
    """True when every header has the first one's pixel format."""
    first = tuple(uint_value(headers[0], k) for k in _FORMAT)
    return all(tuple(uint_value(h, k) for k in _FORMAT) == first for h in headers[1:])


def _stored_values(raw: np.ndarray, stored: np.dtype, bits_stored: int) -> np.ndarray:
    """The stored values of raw pixel words: unused high bits masked, or sign-extended."""
    bits = stored.itemsize * 8
    if stored.kind == "u":
        return raw & np.asarray((1 << bits_stored) - 1, raw.dtype) if bits_stored < bits else raw
    signed = raw.view(stored.newbyteorder("="))
    if bits_stored < bits:
        shift = bits - bits_stored
        signed = (signed << shift) >> shift
    return signed
