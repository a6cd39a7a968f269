"""Instance maps through the medical exports: DICOM SEG, NIfTI, NRRD and 3D Slicer .seg.nrrd.

On the real CT ``seg_dcmqi/ct-3slice``: touching instances of one class, a hole, nested
classes with terminology codes, and more than 255 instances (uint16 ids). Every file goes
through our writers and readers; every SEG through dciodvfy and dcmqi's segimage2itkimage.
"""

from __future__ import annotations

import json

import nibabel as nib
import nrrd
import numpy as np
import pydicom
import pytest

from napari_domainseg.formats.dicom import DicomFormat
from napari_domainseg.formats.dicom_seg import DicomSegFormat
from napari_domainseg.formats.nifti import NiftiFormat
from napari_domainseg.formats.nrrd import NrrdFormat
from napari_domainseg.labels.instances import Instance, InstanceError, InstanceTable
from napari_domainseg.labels.schema import LabelSchema
from napari_domainseg.medical.dicom_seg import DicomSegError
from napari_domainseg.medical.export import export_labels
from napari_domainseg.medical.series import read_series

from ..helpers.oracles import dciodvfy_errors
from .test_dicom_seg_interop import assert_same_voxels, dcmqi_segments

CT = "medical/seg_dcmqi/ct-3slice"
FORMATS = ["m.dcm", "m.nii.gz", "m.seg.nrrd", "m.nrrd"]


def code(value: str, meaning: str) -> dict[str, str]:
    return {"value": value, "scheme": "SCT", "meaning": meaning}


def anatomy() -> dict[str, str]:
    return code("123037004", "Anatomical Structure")  # a new dict each time (no YAML alias)


SCHEMA = {
    "name": "abdomen instances",
    "classes": [
        {"id": 1, "name": "liver", "color": "#b05a3c",
         "codes": {"category": anatomy(), "type": code("10200004", "Liver")}},
        {"id": 2, "name": "lesion", "color": "#e6d200", "parent": 1, "kind": "objects",
         "codes": {"category": code("49755003", "Morphologically Abnormal Structure"),
                   "type": code("4147007", "Mass"),
                   "anatomic_region": code("10200004", "Liver")}},
        {"id": 3, "name": "kidney", "color": "#b94e48", "kind": "objects",
         "codes": {"category": anatomy(), "type": code("64033007", "Kidney"),
                   "modifier": code("24028007", "Right")}},
        {"id": 4, "name": "vessel", "color": "#0050c8", "kind": "objects"},  # no codes
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def schema() -> LabelSchema:
    return LabelSchema.from_dict(SCHEMA)


@pytest.fixture(scope="module")
def ct(shared_data):
    """The CT volume (for the exporters) and its image read (to place a SEG on)."""
    folder = shared_data / CT
    volume = read_series(folder).volume
    (image,) = DicomFormat().read(folder)
    return volume, image


def nested_instances(shape: tuple[int, int, int]) -> tuple[np.ndarray, InstanceTable]:
    """A liver with a hole, lesions inside it (two touching, one a ring around liver), two
    touching kidneys, a vessel with a non-consecutive id."""
    labels = np.zeros(shape, dtype=np.uint16)
    labels[:, 100:300, 100:300] = 1  # liver ...
    labels[:, 180:200, 260:280] = 0  # ... with a hole
    labels[:, 120:140, 120:140] = 2  # lesion 1
    labels[:, 120:140, 140:160] = 3  # lesion 2, touching lesion 1 along x = 140
    labels[1, 220:260, 220:260] = 4  # lesion 3: a ring ...
    labels[1, 230:250, 230:250] = 1  # ... around liver
    labels[:, 350:400, 50:90] = 5  # kidney 1
    labels[:, 350:400, 90:130] = 6  # kidney 2, touching
    labels[0, 400:450, 400:410] = 9  # vessel
    table = InstanceTable(
        (
            Instance(1, 1),
            Instance(2, 2, {"confidence": 0.9}),
            Instance(3, 2, {}, "assisted"),
            Instance(4, 2),
            Instance(5, 3),
            Instance(6, 3, {"occluded": True}),
            Instance(9, 4, {}, "imported"),
        )
    )
    return labels, table


def many_instances(
    shape: tuple[int, int, int], count: int = 300
) -> tuple[np.ndarray, InstanceTable]:
    """``count`` lesions as touching 6x6 tiles, spread over the three slices (uint16 ids)."""
    labels = np.zeros(shape, dtype=np.uint16)
    for index in range(count):
        row, col = divmod(index, 25)
        labels[index % 3, 20 + 6 * row : 26 + 6 * row, 20 + 6 * col : 26 + 6 * col] = index + 1
    return labels, InstanceTable(tuple(Instance(i, 2) for i in range(1, count + 1)))


def read_back(path, image):
    reader = {"dcm": DicomSegFormat, "gz": NiftiFormat, "nrrd": NrrdFormat}[path.suffix[1:]]
    options = {"on": image} if path.suffix == ".dcm" else {}
    (read,) = [r for r in reader().read(path, **options) if r.kind == "labels"]
    return read


def assert_restored(read, labels, table, schema) -> None:
    assert read.array.dtype == labels.dtype
    np.testing.assert_array_equal(read.array, labels)
    assert InstanceTable.from_records(read.metadata["instances"]) == table
    assert [read.schema.path(c.id) for c in read.schema] == [schema.path(c.id) for c in schema]
    assert [c.codes for c in read.schema] == [c.codes for c in schema]
    assert [c.kind for c in read.schema] == [c.kind for c in schema]


@pytest.mark.parametrize("name", FORMATS)
def test_nested_instances_round_trip(ct, schema, tmp_path, name):
    volume, image = ct
    labels, table = nested_instances(volume.shape)
    export_labels(
        tmp_path / name, labels, volume.geometry, schema, volume.metadata, instances=table
    )
    read = read_back(tmp_path / name, image)
    assert_restored(read, labels, table, schema)
    assert read.warnings == []
    # touching lesions stay two instances; numbering within the class follows the ids
    assert {int(v) for v in np.unique(read.array[:, 130, 135:145])} == {2, 3}


@pytest.mark.parametrize("name", FORMATS)
def test_more_than_255_instances_round_trip(ct, schema, tmp_path, name):
    volume, image = ct
    labels, table = many_instances(volume.shape)
    export_labels(
        tmp_path / name, labels, volume.geometry, schema, volume.metadata, instances=table
    )
    assert_restored(read_back(tmp_path / name, image), labels, table, schema)


def test_dicom_seg_has_one_tracked_segment_per_instance(ct, schema, tmp_path):
    volume, _ = ct
    labels, table = nested_instances(volume.shape)
    (seg,) = export_labels(
        tmp_path / "m.dcm", labels, volume.geometry, schema, volume.metadata, instances=table
    )
    assert dciodvfy_errors(seg) == []
    segments = pydicom.dcmread(seg, stop_before_pixels=True).SegmentSequence
    assert [int(s.SegmentNumber) for s in segments] == list(range(1, 8))
    assert [s.SegmentLabel for s in segments] == [
        "liver 1", "lesion 1", "lesion 2", "lesion 3", "kidney 1", "kidney 2", "vessel 1",
    ]  # fmt: skip
    assert [s.TrackingID for s in segments] == [  # class path / instance id: stable
        "liver/1", "liver/lesion/2", "liver/lesion/3", "liver/lesion/4",
        "kidney/5", "kidney/6", "vessel/9",
    ]  # fmt: skip
    uids = [str(s.TrackingUID) for s in segments]
    assert len(set(uids)) == 7 and all(pydicom.uid.UID(u).is_valid for u in uids)
    # the same objects exported again (one deleted) keep their TrackingUIDs: longitudinal tracking
    labels[labels == 3] = 0
    (again,) = export_labels(
        tmp_path / "again.dcm", labels, volume.geometry, schema, volume.metadata,
        instances=table.without([3]),
    )  # fmt: skip
    kept = {
        str(s.TrackingID): str(s.TrackingUID)
        for s in pydicom.dcmread(again, stop_before_pixels=True).SegmentSequence
    }
    assert kept == {t: u for t, u in zip([s.TrackingID for s in segments], uids, strict=True)
                    if t != "liver/lesion/3"}  # fmt: skip
    liver, lesion, kidney, vessel = segments[0], segments[1], segments[4], segments[6]
    assert liver.SegmentedPropertyTypeCodeSequence[0].CodeValue == "10200004"
    assert lesion.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
    assert lesion.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Mass"
    assert lesion.AnatomicRegionSequence[0].CodeValue == "10200004"
    (modifier,) = kidney.SegmentedPropertyTypeCodeSequence[
        0
    ].SegmentedPropertyTypeModifierCodeSequence
    assert (modifier.CodeValue, modifier.CodeMeaning) == ("24028007", "Right")
    assert vessel.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Tissue"  # generic
    colours = {tuple(s.RecommendedDisplayCIELabValue) for s in segments[1:4]}
    assert len(colours) == 3  # the lesions differ, each near the lesion colour
    block = pydicom.dcmread(seg).private_block(0x0073, "napari-domainseg")
    payload = json.loads(block[0x01].value)
    assert payload["instances"] == table.to_records()
    assert payload["segment_values"] == [1, 2, 3, 4, 5, 6, 9]


def test_dcmqi_reads_one_segment_per_instance_on_our_voxels(ct, schema, tmp_path):
    volume, _ = ct
    labels, table = nested_instances(volume.shape)
    (seg,) = export_labels(
        tmp_path / "m.dcm", labels, volume.geometry, schema, volume.metadata, instances=table
    )
    (nifti, _) = export_labels(
        tmp_path / "m.nii.gz", labels, volume.geometry, schema, instances=table
    )
    theirs = dcmqi_segments(seg, tmp_path / "dcmqi")
    assert len(list((tmp_path / "dcmqi").glob("*.nii.gz"))) == len(table) == len(theirs)
    image = nib.load(nifti)
    ours = np.asarray(image.dataobj)
    meta = json.loads((tmp_path / "dcmqi" / "meta.json").read_text())
    tracked = {int(a["labelID"]): a for (a,) in meta["segmentAttributes"]}
    for number, instance_id in enumerate(table.ids, start=1):
        world, _ = theirs[number]
        assert_same_voxels(world, np.argwhere(ours == instance_id), image.affine, f"{instance_id}")
        assert tracked[number]["TrackingIdentifier"].endswith(f"/{instance_id}")


def test_dcmqi_reads_more_than_255_instances(ct, schema, tmp_path):
    volume, _ = ct
    labels, table = many_instances(volume.shape)
    (seg,) = export_labels(
        tmp_path / "m.dcm", labels, volume.geometry, schema, volume.metadata, instances=table
    )
    assert dciodvfy_errors(seg) == []
    theirs = dcmqi_segments(seg, tmp_path / "dcmqi")
    assert len(theirs) == len(list((tmp_path / "dcmqi").glob("*.nii.gz"))) == 300
    assert all(len(theirs[n][0]) == 36 for n in range(1, 301))  # each 6x6 tile


def test_seg_nrrd_has_slicer_segment_fields_per_instance(ct, schema, tmp_path):
    volume, _ = ct
    labels, table = nested_instances(volume.shape)
    (path,) = export_labels(
        tmp_path / "m.seg.nrrd", labels, volume.geometry, schema, instances=table
    )
    header = nrrd.read_header(str(path))
    names = [header[f"Segment{i}_Name"] for i in range(7)]
    assert names == [
        "liver 1", "lesion 1", "lesion 2", "lesion 3", "kidney 1", "kidney 2", "vessel 1",
    ]  # fmt: skip
    assert [int(header[f"Segment{i}_LabelValue"]) for i in range(7)] == [1, 2, 3, 4, 5, 6, 9]
    assert {header[f"Segment{i}_Layer"] for i in range(7)} == {"0"}
    assert "Segment7_Name" not in header
    context = "Segmentation category and type - 3D Slicer General Anatomy list"
    anatomic = "Anatomic codes - DICOM master list"
    assert header["Segment0_Tags"] == (
        f"TerminologyEntry:{context}~SCT^123037004^Anatomical Structure~SCT^10200004^Liver"
        f"~^^~{anatomic}~^^~^^|"
    )
    assert header["Segment1_Tags"] == (
        f"TerminologyEntry:{context}~SCT^49755003^Morphologically Abnormal Structure"
        f"~SCT^4147007^Mass~^^~{anatomic}~SCT^10200004^Liver~^^|"
    )
    assert header["Segment4_Tags"] == (
        f"TerminologyEntry:{context}~SCT^123037004^Anatomical Structure~SCT^64033007^Kidney"
        f"~SCT^24028007^Right~{anatomic}~^^~^^|"
    )
    assert header["Segment6_Tags"] == (
        f"TerminologyEntry:{context}~SCT^85756007^Tissue~SCT^85756007^Tissue~^^~{anatomic}~^^~^^|"
    )
    # the extent of lesion 2 (i from 140 to 159, j from 120 to 139, all three slices)
    assert header["Segment2_Extent"] == "140 159 120 139 0 2"
    assert json.loads(header["DomainSeg_Instances"]) == table.to_records()


def test_plain_nrrd_and_nifti_carry_the_instance_table(ct, schema, tmp_path):
    volume, _ = ct
    labels, table = nested_instances(volume.shape)
    export_labels(tmp_path / "m.nrrd", labels, volume.geometry, schema, instances=table)
    header = nrrd.read_header(str(tmp_path / "m.nrrd"))
    assert "Segment0_Name" not in header
    assert json.loads(header["DomainSeg_Instances"]) == table.to_records()
    files = export_labels(tmp_path / "m.nii.gz", labels, volume.geometry, schema, instances=table)
    sidecar = json.loads(files[1].read_text())
    assert sidecar["instances"] == table.to_records()
    assert LabelSchema.from_dict(sidecar["label_schema"]) == schema
    assert nib.load(files[0]).get_data_dtype() == np.uint16


def test_a_seg_tracked_by_another_tool_reads_as_instances(ct, schema, tmp_path):
    """Without our private block, TrackingIDs make the instances; classes by label and codes."""
    volume, image = ct
    labels, table = nested_instances(volume.shape)
    (seg,) = export_labels(
        tmp_path / "m.dcm", labels, volume.geometry, schema, volume.metadata, instances=table
    )
    dataset = pydicom.dcmread(seg)
    del dataset[0x00730010], dataset[0x00731001]  # as another tool would write it
    dataset.save_as(tmp_path / "other.dcm")
    read = read_back(tmp_path / "other.dcm", image)
    foreign = InstanceTable.from_records(read.metadata["instances"])
    assert foreign.ids == (1, 2, 3, 4, 5, 6, 7)  # segment numbers
    assert [read.schema[foreign.class_of(i)].name for i in foreign.ids] == [
        "liver", "lesion", "lesion", "lesion", "kidney", "kidney", "vessel",
    ]  # fmt: skip
    assert read.schema.by_name("lesion").codes == schema[2].codes
    assert {i.provenance for i in foreign} == {"imported"}
    renumbered = np.zeros_like(labels)
    for number, instance_id in enumerate(table.ids, start=1):
        renumbered[labels == instance_id] = number
    np.testing.assert_array_equal(read.array, renumbered)


def test_class_maps_without_tracking_still_read_as_classes(ct, schema, tmp_path):
    volume, image = ct
    labels, table = nested_instances(volume.shape)
    classes = table.class_lookup()[labels]
    export_labels(tmp_path / "c.dcm", classes, volume.geometry, schema, volume.metadata)
    read = read_back(tmp_path / "c.dcm", image)
    assert "instances" not in read.metadata
    np.testing.assert_array_equal(read.array, classes)
    segments = pydicom.dcmread(tmp_path / "c.dcm", stop_before_pixels=True).SegmentSequence
    assert all("TrackingID" not in s for s in segments)
    assert segments[1].SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Mass"  # codes too


def test_more_instances_than_segment_numbers_refused_but_nifti_keeps_uint32(ct, schema, tmp_path):
    volume, image = ct
    count = 65536
    labels = np.zeros(volume.shape, dtype=np.uint32)
    labels.reshape(-1)[:count] = np.arange(1, count + 1)
    table = InstanceTable(tuple(Instance(i, 2) for i in range(1, count + 1)))
    with pytest.raises(DicomSegError, match=r"at most 65535 segments.*Export NIfTI or NRRD"):
        export_labels(
            tmp_path / "m.dcm", labels, volume.geometry, schema, volume.metadata, instances=table
        )
    assert not (tmp_path / "m.dcm").exists()
    for name in ("m.nii.gz", "m.nrrd"):
        export_labels(tmp_path / name, labels, volume.geometry, schema, instances=table)
        read = read_back(tmp_path / name, image)
        assert read.array.dtype == np.uint32
        np.testing.assert_array_equal(read.array, labels)
        assert len(read.metadata["instances"]) == count


@pytest.mark.parametrize("name", FORMATS)
def test_painted_ids_missing_from_the_table_are_refused(ct, schema, tmp_path, name):
    volume, _ = ct
    labels, table = nested_instances(volume.shape)
    labels[2, 0:3, 0:3] = 77
    with pytest.raises(InstanceError, match="instance ids 77 are painted but have no class"):
        export_labels(
            tmp_path / name, labels, volume.geometry, schema, volume.metadata, instances=table
        )
    assert list(tmp_path.iterdir()) == []


def test_damaged_instance_table_is_told_and_the_map_kept(ct, schema, tmp_path):
    volume, image = ct
    labels, table = nested_instances(volume.shape)
    files = export_labels(tmp_path / "m.nii.gz", labels, volume.geometry, schema, instances=table)
    sidecar = json.loads(files[1].read_text())
    sidecar["instances"] = sidecar["instances"][:-1]  # the vessel (id 9) lost
    files[1].write_text(json.dumps(sidecar))
    read = read_back(files[0], image)
    np.testing.assert_array_equal(read.array, labels)
    assert len(read.metadata["instances"]) == 6
    assert any("instance ids 9 are painted" in w for w in read.warnings)
    sidecar["instances"] = [{"id": "x"}]
    files[1].write_text(json.dumps(sidecar))
    read = read_back(files[0], image)
    assert "instances" not in read.metadata
    assert any("instance table is not valid" in w for w in read.warnings)
