"""Parallel slice decoding gives exactly the pixels of pydicom's serial decoding.

On the real compressed series (``mr_compressed/{j2k,jpegls,rle}``) and the nine
transfer-syntax files, every strategy (threads, forked processes, serial) is checked
array for array, dtype included, against plain ``pydicom.dcmread(f).pixel_array``, and
``read_series`` with parallel decoding against ``read_series`` with one worker.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from napari_domainseg.medical import imagecodecs_decoder, parallel_decode
from napari_domainseg.medical.native_pixels import PixelDataError
from napari_domainseg.medical.series import DicomSeriesError, read_series

COMPRESSED = ("j2k", "jpegls", "rle")
STRATEGIES = ("serial", "threads", "processes")


def _reference(path: Path) -> np.ndarray:
    """The serial path: pydicom's own decoding, default plugins."""
    return pydicom.dcmread(path).pixel_array


def _assert_same(decoded: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(decoded) == len(expected)
    for got, want in zip(decoded, expected, strict=True):
        assert got.dtype == want.dtype
        assert got.shape == want.shape
        assert np.array_equal(got, want)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("syntax", COMPRESSED)
def test_real_compressed_series_decode_like_pydicom(shared_data, syntax, strategy):
    files = sorted((shared_data / "medical/mr_compressed" / syntax).glob("*.dcm"))
    assert len(files) == 4
    decoded = parallel_decode.decode_pixel_arrays(files, strategy=strategy, workers=2)
    _assert_same(decoded, [_reference(f) for f in files])


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_transfer_syntax_decodes_like_pydicom(shared_data, strategy):
    files = sorted((shared_data / "medical/transfer_syntaxes").glob("*.dcm"))
    assert len(files) == 9
    syntaxes = {str(pydicom.dcmread(f, stop_before_pixels=True).file_meta.TransferSyntaxUID)
                for f in files}  # fmt: skip
    assert len(syntaxes) >= 7  # implicit, explicit, big-endian, JPEG, JPEG-LS, JPEG 2000, RLE
    decoded = parallel_decode.decode_pixel_arrays(files, strategy=strategy, workers=2)
    _assert_same(decoded, [_reference(f) for f in files])


@pytest.mark.parametrize("syntax", ("j2k", "jpegls"))  # RLE decodes serially (too cheap)
def test_read_series_parallel_equals_serial(shared_data, monkeypatch, syntax):
    folder = shared_data / "medical/mr_compressed" / syntax
    monkeypatch.setenv(parallel_decode.WORKERS_VARIABLE, "1")
    serial = read_series(folder).volume
    monkeypatch.setenv(parallel_decode.WORKERS_VARIABLE, "2")
    files = sorted(folder.glob("*.dcm"))
    strategy = parallel_decode.choose_strategy(
        parallel_decode.transfer_syntax_of(files[0]), len(files), 2
    )
    assert strategy != "serial"  # the parallel path is the one under test
    parallel = read_series(folder).volume
    assert parallel.array.dtype == serial.array.dtype
    assert np.array_equal(parallel.array, serial.array)
    assert np.array_equal(parallel.affine, serial.affine)


def test_strategy_follows_the_decoder():
    assert parallel_decode.imagecodecs_ready()  # a dependency: JPEG 2000 and JPEG-LS without GIL
    for syntax in (JPEG2000Lossless, JPEGLSLossless):
        assert parallel_decode.releases_gil(syntax)
        assert parallel_decode.choose_strategy(syntax, 20, 2) == "threads"
    assert parallel_decode.choose_strategy(RLELossless, 20, 2) == "serial"  # ~1 ms a slice
    held = "processes" if parallel_decode.fork_available() else "threads"
    assert not parallel_decode.releases_gil(JPEGLosslessSV1)  # pylibjpeg-libjpeg holds it
    assert parallel_decode.choose_strategy(JPEGLosslessSV1, 20, 2) == held
    assert parallel_decode.choose_strategy(ExplicitVRLittleEndian, 20, 2) == "serial"
    assert parallel_decode.choose_strategy(JPEG2000Lossless, 2, 2) == "serial"
    assert parallel_decode.choose_strategy(JPEG2000Lossless, 20, 1) == "serial"


@pytest.mark.parametrize("syntax", ("j2k", "jpegls"))
def test_imagecodecs_plugin_equals_pydicoms_own_decoders(shared_data, syntax):
    assert (
        parallel_decode.preferred_plugin(JPEG2000Lossless if syntax == "j2k" else JPEGLSLossless)
        == imagecodecs_decoder.LABEL
    )
    parallel_decode.imagecodecs_ready()
    for file in sorted((shared_data / "medical/mr_compressed" / syntax).glob("*.dcm")):
        ds = pydicom.dcmread(file)
        ds.pixel_array_options(decoding_plugin=imagecodecs_decoder.LABEL)
        ours = ds.pixel_array
        default = pydicom.dcmread(file).pixel_array  # pylibjpeg, pydicom's first choice
        assert ours.dtype == default.dtype
        assert np.array_equal(ours, default)


def test_worker_count_setting(monkeypatch):
    monkeypatch.setenv(parallel_decode.WORKERS_VARIABLE, "3")
    assert parallel_decode.worker_count() == 3
    monkeypatch.setenv(parallel_decode.WORKERS_VARIABLE, "0")
    assert parallel_decode.worker_count() == 1
    monkeypatch.setenv(parallel_decode.WORKERS_VARIABLE, "many")
    assert parallel_decode.worker_count() >= 1


def _broken_copy(source: Path, target: Path) -> Path:
    """A copy of a JPEG 2000 slice whose codestream is garbage."""
    ds = pydicom.dcmread(source)
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\x00" * 200])
    ds.save_as(target)
    return target


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_undecodable_slice_is_named(shared_data, tmp_path, strategy):
    files = []
    for source in sorted((shared_data / "medical/mr_compressed/j2k").glob("*.dcm")):
        files.append(Path(shutil.copy(source, tmp_path / source.name)))
    broken = _broken_copy(files[2], files[2])
    with pytest.raises(PixelDataError, match=str(broken.name)) as raised:
        parallel_decode.decode_pixel_arrays(files, strategy=strategy, workers=2)
    assert "pixel data cannot be decoded" in str(raised.value)


def test_read_series_names_the_undecodable_slice(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv(parallel_decode.WORKERS_VARIABLE, "2")
    for source in sorted((shared_data / "medical/mr_compressed/j2k").glob("*.dcm")):
        shutil.copy(source, tmp_path / source.name)
    broken = _broken_copy(tmp_path / "IM-0001-0003-0001.dcm", tmp_path / "IM-0001-0003-0001.dcm")
    with pytest.raises(DicomSeriesError, match=broken.name):
        read_series(tmp_path)
