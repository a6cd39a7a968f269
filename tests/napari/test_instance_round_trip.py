"""Instance layers (values = instance ids, classes in napari features) through the npe2 writers
and back through the npe2 readers: every object keeps its pixels, class and attributes."""

from __future__ import annotations

import npe2
import numpy as np
import pytest
from napari.layers import Image, Labels

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._layer_data import labels_layer_data
from napari_domainseg.labels.instances import Instance, InstanceTable, semantic_map
from napari_domainseg.labels.presets import load_preset

PLUGIN = "napari-domainseg"


@pytest.fixture(autouse=True, scope="module")
def _discover_plugins():
    npe2.PluginManager.instance().discover()


def read_layers(path) -> list:
    layers = npe2.read([str(path)], stack=False, plugin_name=PLUGIN)
    return [Labels(d, **k) if kind == "labels" else Image(d, **k) for d, k, kind in layers]


def instance_layer(image: Image, schema, paint) -> tuple[Labels, InstanceTable]:
    """An instance layer made for ``image``: ``paint(array)`` returns the table."""
    like = {**image._get_state(), "affine": image.affine.affine_matrix}
    array = np.zeros(image.data.shape, np.uint16)
    table = paint(array)
    data, kwargs, _ = labels_layer_data(array, like, "objects", schema)
    state.set_instances(kwargs, table, schema)
    return Labels(data, **kwargs), table


def touching_lesions(array: np.ndarray) -> InstanceTable:
    """Two lesions that touch along a whole edge, and a liver with a hole, on slice 1."""
    array[1, 100:140, 100:140] = 1  # liver
    array[1, 115:125, 115:125] = 0  # its hole
    array[1, 200:220, 200:210] = 7  # lesion 1
    array[1, 200:220, 210:225] = 9  # lesion 2, touching lesion 1
    return InstanceTable(
        (
            Instance(1, 1, {}, "manual"),
            Instance(7, 2, {"confidence": "high"}, "assisted"),
            Instance(9, 2, {"confidence": "low"}, "manual"),
        )
    )


@pytest.mark.parametrize("extension", [".dcm", ".nii.gz", ".seg.nrrd", ".nrrd"])
def test_medical_instance_layer_round_trips_through_napari(shared_data, tmp_path, extension):
    folder = tmp_path / "study"
    import shutil

    shutil.copytree(shared_data / "medical/seg_dcmqi/ct-3slice", folder / "ct")
    (image,) = read_layers(folder / "ct")
    schema = load_preset("ct_lesions")
    labels, table = instance_layer(image, schema, touching_lesions)
    (written, *_) = npe2.write(
        str(folder / f"objects{extension}"), [labels.as_layer_data_tuple()], plugin_name=PLUGIN
    )
    again = [layer for layer in read_layers(written) if isinstance(layer, Labels)]
    assert len(again) == 1, "one instance layer, not one layer per object"
    (back,) = again
    assert state.is_instance_layer(back)
    restored = state.instances_of(back)
    assert restored == table, "the same ids, classes, attributes and provenance"
    np.testing.assert_array_equal(np.asarray(back.data), labels.data)
    np.testing.assert_array_equal(
        semantic_map(np.asarray(back.data), restored), semantic_map(labels.data, table)
    )
    # touching objects stay apart: as many painted ids as objects
    assert len(np.unique(np.asarray(back.data))) - 1 == len(table)


@pytest.mark.parametrize("extension", [".tif", ".gpkg"])
def test_geo_instance_layer_round_trips_through_napari(shared_data, tmp_path, extension):
    image = read_layers(shared_data / "geo/landsat_rgb/RGB.byte.tif")[0]
    schema = load_preset("buildings")
    building = schema.by_path("built-up/building").id

    def paint(array):
        array[100:150, 100:150] = 3
        array[100:150, 150:170] = 4  # touching building
        return InstanceTable(
            (Instance(3, building, {"occluded": True}), Instance(4, building, {"occluded": False}))
        )

    labels, table = instance_layer(image, schema, paint)
    (written, *_) = npe2.write(
        str(tmp_path / f"b{extension}"), [labels.as_layer_data_tuple()], plugin_name=PLUGIN
    )
    if extension == ".tif":
        (back,) = read_layers(written)
        assert state.is_instance_layer(back)
        np.testing.assert_array_equal(np.asarray(back.data), labels.data)
        assert state.instances_of(back) == table
    else:
        from napari_domainseg.geo.grid import RasterGrid
        from napari_domainseg.geo.instance_polygons import read_instance_vectors

        grid = state.raster_grid_of(image)
        assert isinstance(grid, RasterGrid)
        array, back_table = read_instance_vectors(written, grid, schema)[:2]
        np.testing.assert_array_equal(array, labels.data)
        assert {i.id: i.attributes.get("occluded") for i in back_table} == {3: True, 4: False}


def test_cli_stats_of_an_instance_file_reports_each_object_and_each_class(shared_data, tmp_path):
    import json
    import shutil

    from napari_domainseg.cli import main

    shutil.copytree(shared_data / "medical/seg_dcmqi/ct-3slice", tmp_path / "ct")
    (image,) = read_layers(tmp_path / "ct")
    schema = load_preset("ct_lesions")
    labels, _ = instance_layer(image, schema, touching_lesions)
    (written, *_) = npe2.write(
        str(tmp_path / "objects.nii.gz"), [labels.as_layer_data_tuple()], plugin_name=PLUGIN
    )
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert main(["stats", written, "--json"]) == 0
    result = json.loads(printed.getvalue())
    sizes = {row["id"]: row["voxels"] for row in result["instances"]}
    assert sizes == {1: 40 * 40 - 100, 7: 200, 9: 300}, "touching lesions counted apart"
    by_path = {row["class_path"]: row["instances"] for row in result["classes"]}
    assert by_path["liver/lesion"] == 2 and by_path["liver"] == 3, "a parent counts its children"


def test_cli_export_of_an_instance_file_keeps_its_objects(shared_data, tmp_path):
    import shutil

    import pydicom

    from napari_domainseg.cli import main

    shutil.copytree(shared_data / "medical/seg_dcmqi/ct-3slice", tmp_path / "ct")
    (image,) = read_layers(tmp_path / "ct")
    labels, _ = instance_layer(image, load_preset("ct_lesions"), touching_lesions)
    (written, *_) = npe2.write(
        str(tmp_path / "objects.nii.gz"), [labels.as_layer_data_tuple()], plugin_name=PLUGIN
    )
    out = tmp_path / "objects.dcm"
    assert main(["export", written, "--like", str(tmp_path / "ct"), "-o", str(out)]) == 0
    segments = pydicom.dcmread(out, stop_before_pixels=True).SegmentSequence
    assert [s.TrackingID for s in segments] == ["liver/1", "liver/lesion/7", "liver/lesion/9"]
