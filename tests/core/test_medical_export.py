"""Label maps written as NIfTI, NRRD, Slicer .seg.nrrd and DICOM SEG, and read back."""

from __future__ import annotations

import json
from pathlib import Path

import highdicom as hd
import nibabel as nib
import nrrd
import numpy as np
import pytest

from napari_domainseg.atomic import OutputExistsError
from napari_domainseg.labels import load_preset
from napari_domainseg.medical.dicom_seg import DicomSegError, SegReference, read_dicom_seg
from napari_domainseg.medical.export import export_labels
from napari_domainseg.medical.nifti import volume_from_nifti
from napari_domainseg.medical.nrrd_files import read_nrrd
from napari_domainseg.medical.series import read_series
from napari_domainseg.medical.volume_geometry import VolumeGeometry

from ..helpers.oracles import dciodvfy_errors

SERIES = [
    "seg_dcmqi/ct-3slice",  # axial CT
    "enhanced_ct",  # one enhanced multi-frame object
    "mr_sagittal",  # sagittal: permuted and flipped to world
    "bad_input/gantry_tilt",  # sheared geometry, shown straightened
    "seg_dcmqi/24x38x3/image",  # frames too small for JPEG 2000
]
FORMATS = [".nii.gz", ".nii", ".nrrd", ".seg.nrrd", ".dcm"]


@pytest.fixture(scope="module")
def schema():
    return load_preset("ct_abdomen_head")


def painted(shape: tuple[int, int, int]) -> np.ndarray:
    labels = np.zeros(shape, dtype=np.uint8)
    labels[0, : shape[1] // 3, : shape[2] // 4] = 1
    labels[-1, -5:, 2:9] = 3
    labels[shape[0] // 2, 1:4, -4:-1] = 200  # a value the schema does not name
    return labels


def read_back(path: Path, volume) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Labels, affine and class names as the readers give them."""
    name = path.name
    if name.endswith(".dcm"):
        seg = read_dicom_seg(path, SegReference.of_volume(volume))
        (label_map,) = seg.label_maps
        return label_map.array, label_map.affine, [c.name for c in label_map.schema.classes]
    if name.endswith(".nrrd"):
        read = read_nrrd(path)
        assert read.is_labels
        return read.layers[0], read.volume.affine, [c.name for c in read.schemas[0].classes]
    back = volume_from_nifti(path)
    assert back.metadata["is_labels"]
    return back.array, back.affine, [c["name"] for c in back.metadata["schema"]["classes"]]


@pytest.mark.parametrize("extension", FORMATS)
@pytest.mark.parametrize("series", SERIES)
def test_round_trip_gives_identical_labels_at_identical_positions(
    shared_data, tmp_path, schema, series, extension
):
    volume = read_series(shared_data / "medical" / series).volume
    labels = painted(volume.shape)
    path = tmp_path / f"mask{extension}"
    written = export_labels(path, labels, volume.geometry, schema, volume.metadata)
    assert written[0] == path and path.is_file()
    array, affine, names = read_back(path, volume)
    np.testing.assert_array_equal(array, labels)
    np.testing.assert_allclose(affine, volume.affine, atol=1e-4)
    assert names[:2] == ["liver", "spleen"] and "label 200" in names


def test_nifti_is_an_integer_label_map_with_its_table(shared_data, tmp_path, schema):
    volume = read_series(shared_data / "medical/seg_dcmqi/ct-3slice").volume
    paths = export_labels(tmp_path / "m.nii.gz", painted(volume.shape), volume.geometry, schema)
    image = nib.load(paths[0])
    assert image.get_data_dtype() == np.uint8
    assert image.header.get_intent()[0] == "label"
    assert image.header["sform_code"] == 1 and image.header["qform_code"] == 1
    table = json.loads(paths[1].read_text())["label_schema"]
    assert paths[1].name == "m.labels.json"
    assert {"id": 1, "name": "liver", "color": table["classes"][0]["color"]}.items() <= table[
        "classes"
    ][0].items()


def test_seg_nrrd_has_slicer_segment_fields(shared_data, tmp_path, schema):
    volume = read_series(shared_data / "medical/seg_dcmqi/ct-3slice").volume
    labels = painted(volume.shape)
    (path,) = export_labels(tmp_path / "m.seg.nrrd", labels, volume.geometry, schema)
    _, header = nrrd.read(str(path))
    assert header["space"] == "left-posterior-superior"
    names = {header[k]: k.split("_")[0] for k in header if k.endswith("_Name")}
    liver = names["liver"]
    assert header[f"{liver}_LabelValue"] == "1" and header[f"{liver}_Layer"] == "0"
    assert header[f"{liver}_Color"] == "0.866667 0.509804 0.396078"  # #dd8265
    # Slicer's extent: i, j, k ranges of the segment's voxels.
    k, j, i = np.nonzero(labels == 1)
    assert (
        header[f"{liver}_Extent"] == f"{i.min()} {i.max()} {j.min()} {j.max()} {k.min()} {k.max()}"
    )
    assert header["Segmentation_MasterRepresentation"] == "Binary labelmap"


@pytest.mark.parametrize("series", SERIES)
def test_dicom_seg_passes_dciodvfy_and_references_its_source(shared_data, tmp_path, schema, series):
    volume = read_series(shared_data / "medical" / series).volume
    (path,) = export_labels(
        tmp_path / "m.dcm", painted(volume.shape), volume.geometry, schema, volume.metadata
    )
    assert dciodvfy_errors(path) == []
    seg = hd.seg.segread(path)
    assert (
        seg.ReferencedSeriesSequence[0].SeriesInstanceUID == volume.metadata["series_instance_uid"]
    )
    referenced = {
        item.ReferencedSOPInstanceUID
        for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    }
    assert referenced == set(volume.metadata["sop_instance_uids"])
    assert seg.SegmentSequence[0].SegmentLabel == "liver"
    # Uncompressed by default: dcmqi (3D Slicer, IDC) refuses JPEG 2000 SEGs.
    assert str(seg.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.1"


def test_labelmap_seg_round_trips(shared_data, tmp_path, schema):
    volume = read_series(shared_data / "medical/ct_head_study").volume
    labels = painted(volume.shape)
    (path,) = export_labels(
        tmp_path / "m.dcm",
        labels,
        volume.geometry,
        schema,
        volume.metadata,
        segmentation_type="LABELMAP",
    )
    assert hd.seg.segread(path).segmentation_type.value == "LABELMAP"
    array, _, _ = read_back(path, volume)
    np.testing.assert_array_equal(array, labels)


def test_dicom_seg_needs_a_dicom_source(shared_data, tmp_path, schema):
    volume = read_series(shared_data / "medical/mr_12bit/12bitUnsigned.dcm").volume  # a mosaic
    with pytest.raises(DicomSegError, match="mosaic"):
        export_labels(
            tmp_path / "m.dcm", painted(volume.shape), volume.geometry, schema, volume.metadata
        )
    with pytest.raises(DicomSegError, match="reference the DICOM series"):
        export_labels(tmp_path / "m.dcm", painted(volume.shape), volume.geometry, schema, {})
    assert list(tmp_path.iterdir()) == [], "a failed export leaves nothing behind"


@pytest.mark.parametrize("extension", FORMATS)
def test_existing_files_are_never_replaced_unless_asked(shared_data, tmp_path, schema, extension):
    volume = read_series(shared_data / "medical/seg_dcmqi/ct-3slice").volume
    path = tmp_path / f"m{extension}"
    path.write_bytes(b"the user's work")
    with pytest.raises(OutputExistsError, match="already exists"):
        export_labels(path, painted(volume.shape), volume.geometry, schema, volume.metadata)
    assert path.read_bytes() == b"the user's work"
    export_labels(
        path, painted(volume.shape), volume.geometry, schema, volume.metadata, overwrite=True
    )
    assert path.read_bytes() != b"the user's work"
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_nifti_sidecar_in_the_way_stops_before_anything_is_written(shared_data, tmp_path, schema):
    volume = read_series(shared_data / "medical/seg_dcmqi/ct-3slice").volume
    (tmp_path / "m.labels.json").write_text("{}")
    with pytest.raises(OutputExistsError):
        export_labels(tmp_path / "m.nii.gz", painted(volume.shape), volume.geometry, schema)
    assert not (tmp_path / "m.nii.gz").exists()


def test_unknown_extension_names_the_choices(tmp_path):
    with pytest.raises(ValueError, match=r"\.nii\.gz.*\.seg\.nrrd.*\.dcm"):
        export_labels(
            tmp_path / "m.tif", np.zeros((2, 2, 2), np.uint8), VolumeGeometry(np.eye(4), (2, 2, 2))
        )


# Segmentations made by other tools (dcmqi) open on the series they reference.

DCMQI = "medical/seg_dcmqi"


def test_dcmqi_seg_lands_where_dcmqi_nrrd_has_the_labels(shared_data):
    volume = read_series(shared_data / DCMQI / "24x38x3/image").volume
    reference = SegReference.of_volume(volume)
    seg = read_dicom_seg(shared_data / DCMQI / "24x38x3/seg/label.seg", reference)
    (label_map,) = seg.label_maps
    nrrd_mask = read_nrrd(shared_data / DCMQI / "24x38x3/nrrd/label.nrrd")
    np.testing.assert_allclose(nrrd_mask.volume.affine, volume.affine, atol=1e-4)
    np.testing.assert_array_equal(label_map.array > 0, nrrd_mask.volume.array > 0)
    assert (label_map.array > 0).sum() == 315
    assert label_map.schema.classes[0].name == "Liver"


def test_dcmqi_seg_also_lands_on_the_multiframe_copy_by_geometry(shared_data):
    volume = read_series(shared_data / DCMQI / "24x38x3/multiframe").volume
    reference = SegReference.of_volume(volume)
    seg = read_dicom_seg(shared_data / DCMQI / "24x38x3/seg/label.seg", reference)
    assert (seg.label_maps[0].array > 0).sum() == 315


def test_overlapping_segments_open_one_layer_each(shared_data):
    volume = read_series(shared_data / DCMQI / "ct-3slice").volume
    reference = SegReference.of_volume(volume)
    seg = read_dicom_seg(shared_data / DCMQI / "partial_overlaps.dcm", reference)
    assert seg.overlapping
    assert [m.name for m in seg.label_maps] == [
        "GREEN",
        "ORANGE",
        "PURPLE",
        "LIGHT_BLUE",
        "DARK_BLUE",
    ]
    for number, label_map in enumerate(seg.label_maps, start=1):
        assert set(np.unique(label_map.array)) == {0, number}
    overlap = sum((m.array > 0).astype(int) for m in seg.label_maps)
    assert overlap.max() > 1


def test_seg_of_another_grid_is_refused(shared_data):
    volume = read_series(shared_data / DCMQI / "ct-3slice").volume
    reference = SegReference.of_volume(volume)
    with pytest.raises(DicomSegError, match="voxel grid"):
        read_dicom_seg(shared_data / DCMQI / "24x38x3/seg/label.seg", reference)
