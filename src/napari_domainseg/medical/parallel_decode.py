"""Decode the slices of a compressed series on every core.

A compressed classic series (JPEG 2000, JPEG-LS, JPEG, RLE) is one file per
slice; pydicom decodes one after another. Here each file still goes through
``pydicom.dcmread(file).pixel_array`` (pydicom's validation, sign and bit
corrections and shaping; lossless codecs give the same samples whichever
library decodes them, and the tests check it), but the files are shared among
workers, chosen by whether the decoder releases the GIL while it works:

* **threads** for JPEG 2000 and JPEG-LS through imagecodecs
  (:mod:`.imagecodecs_decoder`, a pydicom plugin: OpenJPEG and CharLS without
  the GIL). pylibjpeg-rle (pydicom's first choice for RLE) releases it too.
  Checked from the extension modules (``PyEval_SaveThread``) and by timing;
* **processes** for the decoders that hold the GIL for the whole decode
  (pylibjpeg-openjpeg, pylibjpeg-libjpeg for JPEG, pyjpegls, pydicom's own RLE):
  forked workers (Linux; started for each series, about 5 ms) decode whole
  files and send back the arrays while this process decodes too. Where
  ``fork`` is not available (macOS, Windows) threads are used: correct, not faster;
* **serial** for one or two files, one core, uncompressed data, and RLE, whose
  decoding (about 1 ms a slice) costs less than handing it to a thread.

The number of workers is the number of CPUs this process may use, or the
``DOMAINSEG_DECODE_WORKERS`` environment variable (``1`` turns this off).
"""

from __future__ import annotations

import functools
import importlib.util
import multiprocessing
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Literal

import numpy as np
import pydicom
from pydicom.filereader import read_file_meta_info
from pydicom.uid import UID, JPEGLSLossless, JPEGLSNearLossless, RLELossless

from napari_domainseg.medical import imagecodecs_decoder
from napari_domainseg.medical.native_pixels import PixelDataError

Strategy = Literal["serial", "threads", "processes"]

WORKERS_VARIABLE = "DOMAINSEG_DECODE_WORKERS"
"""Environment variable overriding the number of decoding workers (1: serial)."""
IMAGECODECS_SYNTAXES = imagecodecs_decoder.JPEG2000_SYNTAXES + imagecodecs_decoder.JPEGLS_SYNTAXES
"""Syntaxes decoded through imagecodecs when it is available."""
CHEAP_SYNTAXES = (RLELossless,)
"""Decoded faster than a thread hand-off costs (pylibjpeg-rle: about 1 ms per 512x512
slice, less than reading the file): serial, measured in ``benchmarks/bench_plugin_read.py``."""
MIN_PARALLEL_FILES = 3
"""Fewer files than this are decoded in the calling thread: a pool would not pay off."""


def decode_file(path: str | os.PathLike[str]) -> np.ndarray:
    """``pydicom.dcmread(path).pixel_array``, with a failure naming the file.

    JPEG 2000 and JPEG-LS go to imagecodecs first (:func:`preferred_plugin`: the
    same OpenJPEG and CharLS, without the GIL, and for JPEG-LS about three times
    faster than pydicom's default, pylibjpeg-libjpeg); the lossless codecs agree
    bit for bit (the tests check it). If it fails, pydicom's default order is used.

    Parameters
    ----------
    path
        A DICOM file with pixel data.

    Returns
    -------
    numpy.ndarray
        The stored pixel values, as pydicom decodes them.

    Raises
    ------
    PixelDataError
        If pydicom cannot read or decode the pixel data.
    """
    try:
        ds = pydicom.dcmread(path)
        plugin = preferred_plugin(ds.file_meta.get("TransferSyntaxUID"))
        if plugin:
            try:
                ds.pixel_array_options(decoding_plugin=plugin)
                return ds.pixel_array
            except Exception:  # fall back on pydicom's own order of decoders
                ds.pixel_array_options()
        return ds.pixel_array
    except Exception as exc:  # decoders raise anything; name the file
        raise PixelDataError(
            f"{path}: pixel data cannot be decoded ({type(exc).__name__}: {exc})"[:400]
        ) from None


def preferred_plugin(transfer_syntax: object) -> str:
    """The pydicom decoding plugin to try first for a syntax, or ``""`` for pydicom's order.

    Parameters
    ----------
    transfer_syntax
        A transfer syntax UID (or ``None``).

    Returns
    -------
    str
        ``"imagecodecs"`` (:mod:`.imagecodecs_decoder`) for JPEG 2000 and JPEG-LS when
        available, else ``"pyjpegls"`` for JPEG-LS when installed, else ``""``.
    """
    syntax = str(transfer_syntax or "")
    if syntax in IMAGECODECS_SYNTAXES and imagecodecs_ready():
        return imagecodecs_decoder.LABEL
    if syntax in (JPEGLSLossless, JPEGLSNearLossless):
        return "pyjpegls" if _installed("jpeg_ls") else ""
    return ""


_REGISTERING = threading.Lock()


@functools.cache
def imagecodecs_ready() -> bool:
    """Whether the imagecodecs plugin is registered with pydicom (done on first call).

    Returns
    -------
    bool
        True when imagecodecs can decode JPEG 2000 (and, with it, JPEG-LS).
    """
    with _REGISTERING:  # worker threads may ask at once; pydicom's registry is not locked
        return imagecodecs_decoder.register()


@functools.cache
def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


Decoded = tuple[np.ndarray, str] | PixelDataError
"""What a worker sends back: the array and its dtype string, or the failure."""


def _decode_in_worker(path: str) -> Decoded:
    """:func:`decode_file` in a worker: a failure travels back as a value.

    The dtype travels beside the array: big-endian arrays (explicit VR big
    endian files) were seen to arrive from the pool in native byte order.
    """
    try:
        pixels = decode_file(path)
    except PixelDataError as exc:
        return exc
    return pixels, pixels.dtype.str


def worker_count() -> int:
    """Decoding workers to use: ``DOMAINSEG_DECODE_WORKERS``, else the usable CPUs.

    Returns
    -------
    int
        At least 1.
    """
    value = os.environ.get(WORKERS_VARIABLE, "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            pass  # a malformed setting falls back to the CPU count
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def releases_gil(transfer_syntax: UID) -> bool:
    """Whether the decoder used for this syntax releases the GIL while it decodes.

    JPEG 2000 and JPEG-LS go to imagecodecs (:func:`preferred_plugin`), which
    does; RLE to pydicom's first choice, pylibjpeg-rle, which does too. The
    other decoders pydicom has (pylibjpeg-openjpeg, pylibjpeg-libjpeg, pyjpegls,
    its own RLE) hold it for the whole decode.

    Parameters
    ----------
    transfer_syntax
        The files' transfer syntax.

    Returns
    -------
    bool
        True for JPEG 2000 and JPEG-LS with imagecodecs, and RLE with pylibjpeg-rle.
    """
    if transfer_syntax in IMAGECODECS_SYNTAXES:
        return imagecodecs_ready()
    if transfer_syntax == RLELossless:
        return _installed("pylibjpeg") and _installed("rle")
    return False


def choose_strategy(transfer_syntax: UID, n_files: int, workers: int) -> Strategy:
    """How to decode ``n_files`` files of ``transfer_syntax`` with ``workers`` workers.

    Parameters
    ----------
    transfer_syntax
        The files' transfer syntax.
    n_files
        Number of files.
    workers
        Available workers.

    Returns
    -------
    str
        ``"serial"``, ``"threads"`` or ``"processes"``.
    """
    if workers < 2 or n_files < MIN_PARALLEL_FILES or not transfer_syntax.is_encapsulated:
        return "serial"
    if transfer_syntax in CHEAP_SYNTAXES:
        return "serial"
    if releases_gil(transfer_syntax) or not fork_available():
        return "threads"
    return "processes"


def fork_available() -> bool:
    """Whether worker processes can be forked (cheap to start, inherit the imports).

    Returns
    -------
    bool
        True on Linux and other systems offering the ``fork`` start method,
        except macOS, where forking a process with system frameworks loaded is unsafe, and
        inside a daemonic process (a dask worker of ``domainseg batch``), which may not have
        children.
    """
    if multiprocessing.current_process().daemon:
        return False
    return sys.platform != "darwin" and "fork" in multiprocessing.get_all_start_methods()


def transfer_syntax_of(path: str | os.PathLike[str]) -> UID | None:
    """The transfer syntax in a file's meta information, or ``None`` when unreadable.

    Parameters
    ----------
    path
        A DICOM file.

    Returns
    -------
    pydicom.uid.UID or None
        ``TransferSyntaxUID`` of the file meta.
    """
    try:
        meta = read_file_meta_info(path)
    except Exception:  # no meta, or not DICOM: the serial path reports it per file
        return None
    value = meta.get("TransferSyntaxUID")
    return UID(str(value)) if value else None


def decode_pixel_arrays(
    files: Sequence[str | os.PathLike[str]],
    strategy: Strategy | None = None,
    workers: int | None = None,
) -> list[np.ndarray]:
    """Each file's ``pydicom.dcmread(file).pixel_array``, decoded in parallel when it pays.

    Parameters
    ----------
    files
        DICOM files of one series (one transfer syntax: the first file's decides).
    strategy
        Force ``"serial"``, ``"threads"`` or ``"processes"`` (default: chosen by
        :func:`choose_strategy`).
    workers
        Number of workers (default: :func:`worker_count`).

    Returns
    -------
    list of numpy.ndarray
        The decoded arrays, in the order of ``files``.

    Raises
    ------
    PixelDataError
        If a file cannot be decoded (the first such file in ``files`` is named).
    """
    paths = [str(f) for f in files]
    workers = worker_count() if workers is None else max(1, workers)
    if strategy is None:
        syntax = transfer_syntax_of(paths[0]) if paths else None
        strategy = "serial" if syntax is None else choose_strategy(syntax, len(paths), workers)
    if strategy == "serial" or workers < 2 or len(paths) < 2:
        return [decode_file(p) for p in paths]
    if strategy == "threads":
        one_thread = imagecodecs_decoder.one_thread_per_frame  # the pool is the parallelism
        with ThreadPoolExecutor(min(workers, len(paths)), initializer=one_thread) as pool:
            return list(pool.map(decode_file, paths))
    return _decode_in_processes(paths, workers)


def _decode_in_processes(paths: list[str], workers: int) -> list[np.ndarray]:
    """Decode in ``workers - 1`` forked processes and this one (which takes the last files).

    Every file is submitted to the pool; this process then walks back from the
    last file and decodes each one whose task no worker has started yet (it
    cancels it), so the share of each adapts to how busy the cores are. The pool
    lives for this call only (forking costs about 5 ms): an idle worker kept for
    the session would hold on to memory the session frees after the fork. If a
    worker dies (killed, out of memory), the files are decoded here, serially.
    """
    context = multiprocessing.get_context("fork")
    try:
        with ProcessPoolExecutor(max_workers=max(1, workers - 1), mp_context=context) as pool:
            results = _shared_with_pool(pool, paths)
    except BrokenProcessPool:  # not the data's fault: decode them here
        return [decode_file(p) for p in paths]
    return [_raise_failure(result) for result in results]


def _shared_with_pool(pool: Executor, paths: list[str]) -> list[Decoded]:
    """Results of :func:`_decode_in_worker` for every path, this process helping the pool."""
    futures = [pool.submit(_decode_in_worker, path) for path in paths]
    results: list[Decoded | None] = [None] * len(paths)
    try:
        for index in range(len(paths) - 1, -1, -1):
            if futures[index].cancel():  # no worker has started it: decode it here
                results[index] = _decode_in_worker(paths[index])
        for index, future in enumerate(futures):
            if results[index] is None:
                results[index] = future.result()
    finally:
        for future in futures:
            future.cancel()
    return results  # type: ignore[return-value]


def _raise_failure(result: Decoded) -> np.ndarray:
    """The decoded array in its original dtype, or the failure raised."""
    if isinstance(result, PixelDataError):
        raise result
    pixels, dtype = result
    return pixels if pixels.dtype.str == dtype else pixels.astype(dtype)


__all__: list[str] = [
    "choose_strategy",
    "decode_file",
    "decode_pixel_arrays",
    "fork_available",
    "imagecodecs_ready",
    "preferred_plugin",
    "releases_gil",
    "transfer_syntax_of",
    "worker_count",
]
