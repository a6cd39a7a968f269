"""DICOM SEGs we write open in the field's tools: dcmqi (3D Slicer, Imaging Data Commons), dciodvfy.

Every SEG is converted back with dcmqi's ``segimage2itkimage``; each segment must cover exactly
the voxels (world positions) that our own NIfTI export of the same labels gives its class.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest

from napari_domainseg.labels import load_preset
from napari_domainseg.medical.dicom_seg import (
    GENERATED_UIDS_NOTE,
    DicomSegWarning,
    SegReference,
    build_dicom_seg,
    read_dicom_seg,
    search_referenced_series,
    seg_character_set,
)
from napari_domainseg.medical.export import export_labels
from napari_domainseg.medical.series import read_series

from ..helpers.dicom_copies import rewritten_series
from ..helpers.oracles import dciodvfy_errors

SERIES = [
    "ct_head_study",  # S2010: 28 axial 512x512 CT slices, beside a scout and secondary captures
    "mr_sagittal",  # sagittal: permuted and flipped to world
    "mr_compressed/jpegls",
    "mr_compressed/j2k",
    "mr_compressed/rle",
    "enhanced_ct",  # one enhanced multi-frame object
    "bad_input/too_few_slices",
    "seg_dcmqi/ct-3slice",
    "seg_dcmqi/24x38x3/image",  # frames of 24x38 pixels
    "seg_dcmqi/24x38x3/multiframe",
]
UNCOMPRESSED = "1.2.840.10008.1.2.1"


@pytest.fixture(scope="module")
def schema():
    return load_preset("ct_abdomen_head")


def segimage2itkimage() -> str:
    beside_python = Path(sys.executable).parent / "segimage2itkimage"
    tool = str(beside_python) if beside_python.is_file() else shutil.which("segimage2itkimage")
    assert tool, "dcmqi is required: pip install dcmqi (in the test extras)"
    return tool


def run_dcmqi(seg: Path, out: Path) -> subprocess.CompletedProcess:
    out.mkdir()
    return subprocess.run(
        [segimage2itkimage(), "--inputDICOM", str(seg), "--outputDirectory", str(out),
         "--outputType", "nifti"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def dcmqi_segments(seg: Path, out: Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """dcmqi's reading of a SEG: segment number -> (RAS world positions of its voxels, affine)."""
    result = run_dcmqi(seg, out)
    said = result.stdout + result.stderr
    # dcmqi exits 0 even after "ERROR: Frame 1 origin ... is outside image geometry".
    assert result.returncode == 0 and "ERROR" not in said, f"dcmqi refused {seg.name}:\n{said}"
    warned = [line for line in said.splitlines() if line.startswith(("W:", "WARN"))]
    assert not warned, f"dcmqi warns about {seg.name}: {warned}"
    meta = json.loads((out / "meta.json").read_text())
    segments = {}
    for index, group in enumerate(meta["segmentAttributes"], start=1):
        (attributes,) = group
        image = nib.load(out / f"{index}.nii.gz")
        voxels = np.argwhere(np.asarray(image.dataobj) > 0)
        segments[int(attributes["labelID"])] = (
            nib.affines.apply_affine(image.affine, voxels),
            image.affine,
        )
    return segments


def painted(shape: tuple[int, int, int]) -> np.ndarray:
    """Three classes on different slices, one the schema does not name, one a thin line."""
    labels = np.zeros(shape, dtype=np.uint8)
    labels[0, : shape[1] // 3, : shape[2] // 4] = 1
    labels[-1, -5:, 2:9] = 3
    labels[shape[0] // 2, 1:4, -4:-1] = 200
    labels[:, shape[1] // 2, shape[2] // 2] = 5  # every slice
    return labels


def nifti_voxels(path: Path, value: int) -> tuple[np.ndarray, np.ndarray]:
    """Our NIfTI export: voxel indices of ``value`` and the RAS affine."""
    image = nib.load(path)
    return np.argwhere(np.asarray(image.dataobj) == value), image.affine


def assert_same_voxels(world: np.ndarray, ours: np.ndarray, affine: np.ndarray, what: str) -> None:
    """dcmqi's world positions land exactly on our voxels of the class (within 0.01 voxel)."""
    index = nib.affines.apply_affine(np.linalg.inv(affine), world)
    assert np.abs(index - np.round(index)).max(initial=0) < 1e-2, f"{what}: off our voxel grid"
    theirs = {tuple(v) for v in np.round(index).astype(int)}
    mine = {tuple(v) for v in ours}
    assert theirs == mine, f"{what}: dcmqi {len(theirs)} voxels, ours {len(mine)}"


def export_both(volume, labels, schema, folder: Path, **options) -> tuple[Path, Path]:
    seg = export_labels(
        folder / "m.dcm", labels, volume.geometry, schema, volume.metadata, **options
    )
    nifti = export_labels(folder / "m.nii.gz", labels, volume.geometry, schema)
    return seg[0], nifti[0]


def segment_values(seg: Path) -> dict[int, int]:
    """Segment number -> our label value, as the SEG's private block records it."""
    block = pydicom.dcmread(seg).private_block(0x0073, "napari-domainseg")
    values = json.loads(block[0x01].value)["segment_values"]
    return {number: int(value) for number, value in enumerate(values, start=1)}


@pytest.mark.parametrize("series", SERIES)
def test_dcmqi_puts_every_segment_on_our_nifti_voxels(shared_data, tmp_path, schema, series):
    volume = read_series(shared_data / "medical" / series).volume
    labels = painted(volume.shape)
    seg, nifti = export_both(volume, labels, schema, tmp_path)
    assert str(pydicom.dcmread(seg, stop_before_pixels=True).file_meta.TransferSyntaxUID) == (
        UNCOMPRESSED
    )
    assert dciodvfy_errors(seg) == []
    values = segment_values(seg)
    theirs = dcmqi_segments(seg, tmp_path / "dcmqi")
    for number, value in values.items():
        voxels, affine = nifti_voxels(nifti, value)
        world = theirs[number][0] if number in theirs else np.empty((0, 3))
        assert_same_voxels(world, voxels, affine, f"{series} segment {number} (label {value})")
    painted_values = set(np.unique(labels)) - {0}
    assert all(len(theirs[n][0]) for n, v in values.items() if v in painted_values)


def test_tilted_series_seg_is_valid_though_dcmqi_cannot_place_it(shared_data, tmp_path, schema):
    """dcmqi builds an ITK volume, which has no shear: it says a tilted frame is outside it.

    The SEG itself is right: every frame sits where the slice it references sits.
    """
    volume = read_series(shared_data / "medical/bad_input/gantry_tilt").volume
    labels = painted(volume.shape)
    with pytest.warns(DicomSegWarning, match="gantry-tilted.*3D Slicer"):
        seg, _ = export_both(volume, labels, schema, tmp_path)
    assert dciodvfy_errors(seg) == []
    result = run_dcmqi(seg, tmp_path / "dcmqi")
    assert "outside image geometry" in result.stdout + result.stderr
    dataset = pydicom.dcmread(seg)
    sources = {
        str(ds.SOPInstanceUID): [float(v) for v in ds.ImagePositionPatient]
        for ds in (
            pydicom.dcmread(f, stop_before_pixels=True) for f in volume.metadata["source_files"]
        )
    }
    for frame in dataset.PerFrameFunctionalGroupsSequence:
        (source,) = frame.DerivationImageSequence[0].SourceImageSequence
        position = [float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient]
        np.testing.assert_allclose(position, sources[str(source.ReferencedSOPInstanceUID)])
    reference = SegReference.of_volume(volume)
    (label_map,) = read_dicom_seg(seg, reference).label_maps
    np.testing.assert_array_equal(label_map.array, labels)


# Headers rewritten from a real series, as scanners and anonymisers leave them.


def latin1_iso2022(ds: pydicom.Dataset) -> None:
    ds.SpecificCharacterSet = "ISO 2022 IR 100"
    ds.PatientName = "Müller^Jörg"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ISO 2022 IR 100", "ISO_IR 100"),
        ("ISO 2022 IR 6", None),
        ("ISO_IR 6", None),
        (["ISO 2022 IR 144"], "ISO_IR 144"),
        ("ISO_IR 100", "ISO_IR 100"),
        ("ISO_IR 192", "ISO_IR 192"),
        ("ISO 2022 IR 87", "ISO_IR 192"),  # Kanji has no single-byte form: UTF-8
        (["", "ISO 2022 IR 87"], "ISO_IR 192"),
        (["ISO 2022 IR 6", "ISO 2022 IR 87"], ["ISO 2022 IR 6", "ISO 2022 IR 87"]),
        (None, None),
    ],
)
def test_character_set_the_seg_inherits_is_one_highdicom_accepts(value, expected):
    assert seg_character_set(value) == expected


def test_series_with_a_single_code_extension_charset_exports_a_seg(shared_data, tmp_path, schema):
    source = rewritten_series(
        shared_data / "medical/seg_dcmqi/ct-3slice", tmp_path / "ct", latin1_iso2022
    )
    volume = read_series(source).volume
    labels = painted(volume.shape)
    seg, nifti = export_both(volume, labels, schema, tmp_path)
    dataset = pydicom.dcmread(seg)
    assert dataset.SpecificCharacterSet == "ISO_IR 100"
    assert str(dataset.PatientName) == "Müller^Jörg"  # the text survives the re-encoding
    assert dciodvfy_errors(seg) == []
    theirs = dcmqi_segments(seg, tmp_path / "dcmqi")
    voxels, affine = nifti_voxels(nifti, 1)
    assert_same_voxels(theirs[1][0], voxels, affine, "segment 1")


def anonymised(ds: pydicom.Dataset) -> None:
    """What an over-eager anonymiser leaves: empty UIDs, the SOP class only in the file meta."""
    for keyword in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "SOPClassUID"):
        setattr(ds, keyword, "")
    ds.file_meta.MediaStorageSOPInstanceUID = ""


def test_anonymised_series_gets_a_seg_with_new_uids_only_when_asked(shared_data, tmp_path, schema):
    source = rewritten_series(
        shared_data / "medical/seg_dcmqi/ct-3slice", tmp_path / "ct", anonymised
    )
    volume = read_series(source).volume
    labels = painted(volume.shape)
    (tmp_path / "a").mkdir()
    seg, nifti = export_both(volume, labels, schema, tmp_path / "a", seg_new_uids=True)
    dataset = pydicom.dcmread(seg)
    assert dataset.ContentDescription == GENERATED_UIDS_NOTE
    assert dataset.StudyInstanceUID and dataset.ReferencedSeriesSequence[0].SeriesInstanceUID
    referenced = [
        item.ReferencedSOPClassUID
        for item in dataset.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    ]
    assert set(referenced) == {"1.2.840.10008.5.1.4.1.1.2"}  # from MediaStorageSOPClassUID
    assert dciodvfy_errors(seg) == []
    theirs = dcmqi_segments(seg, tmp_path / "dcmqi")
    voxels, affine = nifti_voxels(nifti, 1)
    assert_same_voxels(theirs[1][0], voxels, affine, "segment 1")
    read = read_dicom_seg(seg, SegReference.of_volume(volume))
    assert "SeriesInstanceUID" in read.metadata["generated_source_uids"]["generated"]
    np.testing.assert_array_equal(read.label_maps[0].array, labels)
    # The UIDs come from the files' contents: a second export references the same ones.
    again = build_dicom_seg(labels, volume.geometry, volume.metadata, schema, new_uids=True)
    assert again.StudyInstanceUID == dataset.StudyInstanceUID
    assert (
        again.ReferencedSeriesSequence[0].SeriesInstanceUID
        == dataset.ReferencedSeriesSequence[0].SeriesInstanceUID
    )


def test_sop_class_falls_back_to_the_file_meta(shared_data, tmp_path, schema):
    def no_sop_class(ds: pydicom.Dataset) -> None:
        ds.SOPClassUID = ""

    source = rewritten_series(shared_data / "medical/mr_sagittal", tmp_path / "mr", no_sop_class)
    volume = read_series(source).volume
    segmentation = build_dicom_seg(painted(volume.shape), volume.geometry, volume.metadata, schema)
    (item,) = {
        i.ReferencedSOPClassUID
        for i in segmentation.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    }
    assert item == "1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage


# What the SEG carries about the equipment.

WHERE_ACQUIRED = ("InstitutionName", "InstitutionAddress", "StationName", "DeviceSerialNumber")


def equipment_values(segmentation: pydicom.Dataset) -> dict[str, str]:
    return {
        keyword: str(item.get(keyword))
        for item in segmentation.ContributingEquipmentSequence
        for keyword in WHERE_ACQUIRED
        if keyword in item
    }


def test_seg_names_no_institution_station_or_serial_unless_patient_data_is_shown(
    shared_data, tmp_path, schema
):
    series = shared_data / "medical/ct_head_study"
    volume = read_series(series).volume
    segmentation = build_dicom_seg(painted(volume.shape), volume.geometry, volume.metadata, schema)
    assert equipment_values(segmentation) == {}
    assert segmentation.DeviceSerialNumber == "0"  # ours (type 1), not the scanner's
    assert segmentation.ContributingEquipmentSequence[0].Manufacturer == "Philips"
    shown = read_series(series, include_patient=True).volume
    segmentation = build_dicom_seg(painted(shown.shape), shown.geometry, shown.metadata, schema)
    assert equipment_values(segmentation) == {
        "InstitutionName": "QMC",
        "InstitutionAddress": "NOTTINGHAM",
        "StationName": "CT4",
        "DeviceSerialNumber": "336067",
    }
    path = tmp_path / "m.dcm"
    segmentation.save_as(path, enforce_file_format=True)
    assert dciodvfy_errors(path) == []


# Compression stays available, as an option.


def test_jpeg2000_is_an_option_and_reads_back(shared_data, tmp_path, schema):
    volume = read_series(shared_data / "medical/seg_dcmqi/ct-3slice").volume
    labels = painted(volume.shape)
    (path,) = export_labels(
        tmp_path / "m.dcm", labels, volume.geometry, schema, volume.metadata,
        seg_compression="jpeg2000",
    )  # fmt: skip
    assert str(hd.seg.segread(path).file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.4.90"
    assert dciodvfy_errors(path) == []
    reference = SegReference.of_volume(volume)
    np.testing.assert_array_equal(read_dicom_seg(path, reference).label_maps[0].array, labels)
    result = run_dcmqi(path, tmp_path / "dcmqi")  # why it is not the default
    assert "lossy compression, not supported" in result.stdout + result.stderr


# Opening a SEG without its series: a bounded search beside it.


def seg_of_ct(shared_data: Path, folder: Path, schema) -> Path:
    volume = read_series(shared_data / "medical/seg_dcmqi/ct-3slice").volume
    folder.mkdir(parents=True)
    (path,) = export_labels(
        folder / "seg.dcm", painted(volume.shape), volume.geometry, schema, volume.metadata
    )
    return path


def test_series_in_a_sibling_folder_is_found(shared_data, tmp_path, schema):
    seg = seg_of_ct(shared_data, tmp_path / "study" / "seg", schema)
    shutil.copytree(shared_data / "medical/seg_dcmqi/ct-3slice", tmp_path / "study" / "ct")
    (tmp_path / "study" / "notes.txt").write_text("not DICOM")
    search = search_referenced_series(seg)
    assert search.found is not None
    folder, discovery, _ = search.found
    assert folder == tmp_path / "study" / "ct"
    assert sum(len(c.files) for c in discovery.candidates) == 3  # the series only, not the SEG


def test_search_never_reaches_the_grandparent_and_is_bounded(shared_data, tmp_path, schema):
    root = tmp_path / "archive"
    shutil.copytree(shared_data / "medical/seg_dcmqi/ct-3slice", root / "ct")  # two levels up
    seg = seg_of_ct(shared_data, root / "patient" / "seg", schema)
    os.mkfifo(seg.parent / "a-fifo")  # opening it would hang
    crowd = root / "patient" / "other"
    crowd.mkdir()
    for index in range(120):
        (crowd / f"{index:04d}.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 64)
    start = time.perf_counter()
    search = search_referenced_series(seg, max_files=100)
    assert time.perf_counter() - start < 10
    assert search.found is None
    assert search.files_checked == 100 and search.truncated
    assert root not in search.folders and root / "ct" not in search.folders
    summary = search.summary()
    assert "searched 100 files in" in summary and str(seg.parent) in summary
    assert "stopped at" in summary
