"""A pydicom decoding plugin for JPEG 2000 and JPEG-LS frames through imagecodecs.

imagecodecs wraps the same libraries as pydicom's own plugins (OpenJPEG, CharLS)
but releases the GIL while it decodes, so slices decode in parallel in threads
(:mod:`.parallel_decode`). Only the codestream-to-samples step is ours: pydicom
still validates the dataset, applies its sign and unused-bit corrections and
shapes the array, exactly as for its own plugins. Single-sample (grayscale) images
only; anything else raises, and the caller falls back on pydicom's own decoders.

Registered with pydicom under the label ``"imagecodecs"`` by :func:`register`, after
pydicom's own plugins, so pydicom's default order is unchanged (it comes last);
:mod:`.parallel_decode` asks for it by name. imagecodecs itself (0.2 s to import) is
imported only when a JPEG 2000 or JPEG-LS series is decoded.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

from pydicom import uid

LABEL = "imagecodecs"
"""The plugin's name for ``Dataset.pixel_array_options(decoding_plugin=...)``."""
JPEG2000_SYNTAXES = (uid.JPEG2000Lossless, uid.JPEG2000)
JPEGLS_SYNTAXES = (uid.JPEGLSLossless, uid.JPEGLSNearLossless)
DECODER_DEPENDENCIES = dict.fromkeys(JPEG2000_SYNTAXES + JPEGLS_SYNTAXES, ("imagecodecs",))
"""What pydicom reports as missing when imagecodecs is not installed."""


@functools.cache
def _imagecodecs() -> Any:
    """The imagecodecs module, imported on first use (0.2 s), or ``None`` if missing."""
    try:
        import imagecodecs
    except ImportError:  # pragma: no cover - imagecodecs is a dependency
        return None
    return imagecodecs


def is_available(transfer_syntax: str) -> bool:
    """Whether this plugin can decode the syntax (pydicom's plugin protocol).

    Parameters
    ----------
    transfer_syntax
        A transfer syntax UID.

    Returns
    -------
    bool
        True for JPEG 2000 and JPEG-LS when imagecodecs has the codec.
    """
    codecs = _imagecodecs()
    if codecs is None:
        return False
    if transfer_syntax in JPEG2000_SYNTAXES:
        return bool(codecs.JPEG2K.available)
    if transfer_syntax in JPEGLS_SYNTAXES:
        return bool(codecs.JPEGLS.available)
    return False


def decode_frame(src: bytes, runner: Any) -> bytes:
    """One frame's samples, little endian, as pydicom's decoders return them.

    Parameters
    ----------
    src
        The frame's codestream.
    runner
        pydicom's ``DecodeRunner`` (its options say what the dataset declares).

    Returns
    -------
    bytes
        Rows x Columns samples in the container pydicom expects (8 or 16 bits from
        the codestream's precision, as for pydicom's pylibjpeg plugin).

    Raises
    ------
    ValueError
        For colour images or a codestream whose size or components differ from
        the dataset's (pydicom's own plugins then decode it).
    """
    if runner.samples_per_pixel != 1:
        raise ValueError("imagecodecs plugin: single-sample images only")
    syntax = runner.transfer_syntax
    if syntax in JPEG2000_SYNTAXES:
        pixels = _imagecodecs().jpeg2k_decode(src, numthreads=_openjpeg_threads())
        precision = runner.get_option("j2k_precision", runner.bits_stored)
    else:
        pixels = _imagecodecs().jpegls_decode(src)
        precision = runner.get_option("jls_precision", runner.bits_stored)
        runner.set_option("planar_configuration", 0)
    if pixels.shape != (runner.rows, runner.columns) or pixels.dtype.itemsize > 2:
        raise ValueError(
            f"imagecodecs plugin: decoded {pixels.shape} {pixels.dtype}, "
            f"expected ({runner.rows}, {runner.columns})"
        )
    container = 8 if 0 < precision <= 8 else 16
    if pixels.dtype.itemsize * 8 != container:
        raise ValueError("imagecodecs plugin: sample container differs from the precision")
    runner.set_option("bits_allocated", container)
    return pixels.astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()


_PER_THREAD = threading.local()


def one_thread_per_frame() -> None:
    """Decode this thread's frames with one OpenJPEG thread (for slice-decoding pools).

    When :mod:`.parallel_decode` already decodes one slice per core, OpenJPEG's own
    threads only compete with the other slices (measured: 20 slices of 512x512 on two
    cores, 0.157 s with one thread per frame against 0.182 s with two).
    """
    _PER_THREAD.threads = 1


def _openjpeg_threads() -> int:
    """OpenJPEG's own threads per frame: 1 in a slice pool, else the usable CPUs (at most 4)."""
    return getattr(_PER_THREAD, "threads", None) or _cpu_threads()


@functools.cache
def _cpu_threads() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, cpus or 1))


def register() -> bool:
    """Add this plugin to pydicom's JPEG 2000 and JPEG-LS decoders (once).

    Returns
    -------
    bool
        Whether the plugin is available for JPEG 2000 (the syntax it matters most for).
    """
    from pydicom.pixels.decoders.base import get_decoder

    for syntax in JPEG2000_SYNTAXES + JPEGLS_SYNTAXES:
        decoder = get_decoder(syntax)
        if LABEL not in decoder.available_plugins and is_available(syntax):
            decoder.add_plugin(LABEL, (__name__, "decode_frame"))
    return LABEL in get_decoder(uid.JPEG2000Lossless).available_plugins
