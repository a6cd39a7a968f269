"""Bad inputs met when writing or reading DICOM SEG: generated from real series under tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from napari_domainseg.medical.dicom_seg import SegReference, read_dicom_seg
from napari_domainseg.medical.export import export_labels
from napari_domainseg.medical.series import read_series

from ..helpers.dicom_copies import rewritten_series
from .corpus import BadInput, check, ids

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "medical"
CT = SHARED / "seg_dcmqi" / "ct-3slice"  # 3 axial 512x512 CT slices


def _empty_uids(ds: pydicom.Dataset) -> None:
    for keyword in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "SOPClassUID"):
        setattr(ds, keyword, "")
    ds.file_meta.MediaStorageSOPInstanceUID = ""


def _no_sop_class(ds: pydicom.Dataset) -> None:
    ds.SOPClassUID = ""
    ds.file_meta.MediaStorageSOPClassUID = ""


def export_seg_of(series: Path, labels: np.ndarray | None = None, name: str = "m.dcm") -> None:
    """What a user does: open the series, paint, save as DICOM SEG beside it."""
    volume = read_series(series).volume
    if labels is None:
        labels = np.zeros(volume.shape, np.uint8)
        labels[1, 10:20, 10:20] = 1
    export_labels(series.parent / name, labels, volume.geometry, None, volume.metadata)


def _anonymised(folder: Path) -> Path:
    return rewritten_series(CT, folder / "anonymised-ct", _empty_uids)


def _classless(folder: Path) -> Path:
    return rewritten_series(CT, folder / "classless-ct", _no_sop_class)


def _labels_70000(folder: Path) -> Path:
    volume = read_series(CT).volume
    labels = np.zeros(volume.shape, np.uint32)
    labels[0, :4, :4] = 70000
    np.save(folder / "huge-ids.npy", labels)
    return folder / "huge-ids.npy"


def _export_npy_onto_ct(path: Path) -> None:
    volume = read_series(CT).volume
    labels = np.load(path)
    export_labels(path.with_suffix(".dcm"), labels, volume.geometry, None, volume.metadata)


def _seg_with_undefined_segment(folder: Path) -> Path:
    """A SEG of the real CT whose second frame references segment 42, which it does not define."""
    volume = read_series(CT).volume
    labels = np.zeros(volume.shape, np.uint8)
    labels[0, 10:20, 10:20] = 1
    labels[2, 30:40, 30:40] = 2
    (path,) = export_labels(folder / "edited.dcm", labels, volume.geometry, None, volume.metadata)
    ds = pydicom.dcmread(path)
    ds.PerFrameFunctionalGroupsSequence[1].SegmentIdentificationSequence[
        0
    ].ReferencedSegmentNumber = 42
    ds.save_as(path)
    return path


def _read_on_ct(path: Path):
    volume = read_series(CT).volume
    return read_dicom_seg(path, SegReference.of_volume(volume))


CASES = [
    BadInput(
        "seg-anonymised-empty-uids",
        make=_anonymised,
        open=export_seg_of,
        message=r"cannot reference the series.*UIDs are empty.*NIfTI or NRRD.*--seg-new-uids.*"
        r"SOPInstanceUID, SeriesInstanceUID, StudyInstanceUID in 3 of 3 files",
    ),
    BadInput(
        "seg-no-sop-class-anywhere",
        make=_classless,
        open=export_seg_of,
        message=r"no SOP class.*NIfTI or NRRD.*SOPClassUID in 3 of 3 files",
    ),
    BadInput(
        "seg-label-id-above-65535",
        make=_labels_70000,
        open=_export_npy_onto_ct,
        message=r"huge-ids\.dcm.*70000.*65535.*Renumber",
        names_file=False,  # the message names the output it refused to write
    ),
    BadInput(
        "seg-frame-references-undefined-segment",
        make=_seg_with_undefined_segment,
        open=_read_on_ct,
        message=r"frame 2 references segment 42.*does not define.*not shown",
        outcome="warning",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_input(case, tmp_path, shared_data):
    assert CT.is_relative_to(shared_data)
    check(case, tmp_path)


@pytest.mark.parametrize("extension", [".nii.gz", ".nrrd", ".seg.nrrd"])
def test_ids_above_65535_are_refused_in_every_label_format(tmp_path, shared_data, extension):
    volume = read_series(CT).volume
    labels = np.zeros(volume.shape, np.uint32)
    labels[0, 0, 0] = 65536
    with pytest.raises(ValueError, match=r"65536.*largest class id"):
        export_labels(tmp_path / f"m{extension}", labels, volume.geometry)
    assert not list(tmp_path.iterdir())
    labels[0, 0, 0] = 65535  # the largest class id still exports
    export_labels(tmp_path / f"m{extension}", labels, volume.geometry)
