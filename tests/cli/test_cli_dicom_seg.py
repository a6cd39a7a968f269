"""``domainseg export`` to DICOM SEG: uncompressed by default; compression, new UIDs on request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom

from napari_domainseg.medical.series import read_series

from ..helpers.dicom_copies import anonymised_copy
from .cli_helpers import run

CT = "medical/seg_dcmqi/ct-3slice"


def labels_npy(shared_data: Path, folder: Path) -> Path:
    labels = np.zeros(read_series(shared_data / CT).volume.shape, np.uint8)
    labels[1, 100:120, 100:140] = 2
    np.save(folder / "l.npy", labels)
    return folder / "l.npy"


def syntax(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)


def test_seg_compression_is_an_option(capsys, shared_data, tmp_path):
    npy = labels_npy(shared_data, tmp_path)
    assert run(capsys, "export", npy, "--like", shared_data / CT, "-o", tmp_path / "a.dcm")[0] == 0
    assert syntax(tmp_path / "a.dcm") == "1.2.840.10008.1.2.1"
    code, _, _ = run(
        capsys, "export", npy, "--like", shared_data / CT, "-o", tmp_path / "b.dcm",
        "--seg-compression", "jpeg2000",
    )  # fmt: skip
    assert code == 0 and syntax(tmp_path / "b.dcm") == "1.2.840.10008.1.2.4.90"


def test_anonymised_reference_needs_seg_new_uids(capsys, shared_data, tmp_path):
    npy = labels_npy(shared_data, tmp_path)
    series = anonymised_copy(shared_data / CT, tmp_path / "anon")
    code, _, err = run(capsys, "export", npy, "--like", series, "-o", tmp_path / "s.dcm")
    assert code == 1 and "--seg-new-uids" in err and "Traceback" not in err
    assert err.count("\n") == 1 and "anon" in err and not (tmp_path / "s.dcm").exists()
    code, _, _ = run(
        capsys, "export", npy, "--like", series, "-o", tmp_path / "s.dcm", "--seg-new-uids"
    )
    assert code == 0
    assert pydicom.dcmread(tmp_path / "s.dcm").ContentDescription.startswith("source UIDs")
