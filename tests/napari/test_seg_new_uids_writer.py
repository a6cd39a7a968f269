"""napari's Save dialog offers a DICOM SEG writer that generates an anonymised series' source UIDs.

The dialog lists writers by display name and calls the one chosen (napari's
``_npe2_decode_selected_filter``); the test picks the writer the same way, by its display name
from napari's own filter string, and saves through napari's ``save_layers``.
"""

from __future__ import annotations

import npe2
import pydicom
import pytest
from napari.layers import Image
from napari.plugins._npe2 import file_extensions_string_for_layers
from napari.plugins.io import save_layers

from napari_domainseg._napari._writers import write_seg_new_uids
from napari_domainseg.medical.dicom_seg import GENERATED_UIDS_NOTE

from ..helpers.dicom_copies import anonymised_copy
from .layer_helpers import labels_for

PLUGIN = "napari-domainseg"
DISPLAY_NAME = "DICOM SEG (generate source UIDs for an anonymised series)"
CT = "medical/seg_dcmqi/ct-3slice"


@pytest.fixture(autouse=True, scope="module")
def _discover_plugins():
    npe2.PluginManager.instance().discover()


@pytest.fixture
def labels(shared_data, tmp_path):
    folder = anonymised_copy(shared_data / CT, tmp_path / "anon")
    ((data, kwargs, _),) = npe2.read([str(folder)], stack=False, plugin_name=PLUGIN)
    layer = labels_for(Image(data, **kwargs))
    layer.data[1, 100:120, 100:140] = 1
    return layer


def writer_named(layer, display_name: str):
    """The writer napari's Save dialog calls when the user picks ``display_name``."""
    filters, writers = file_extensions_string_for_layers([layer])
    for entry, writer in zip(filters.split(";;"), writers, strict=True):
        if writer.display_name == display_name:
            assert entry.startswith(f"DomainSeg {display_name} (*.dcm)")
            return writer
    raise AssertionError(f"no writer {display_name!r} in the Save dialog's list: {filters}")


def test_default_writer_refuses_and_names_the_option(labels, tmp_path):
    with pytest.raises(ValueError, match=r"UIDs are empty.*generate source UIDs") as error:
        npe2.write(str(tmp_path / "s.dcm"), [labels.as_layer_data_tuple()], plugin_name=PLUGIN)
    assert "s.dcm" in str(error.value) and not (tmp_path / "s.dcm").exists()


def test_save_dialog_writer_generates_the_source_uids(labels, tmp_path):
    path = tmp_path / "s.dcm"
    written = save_layers(str(path), [labels], _writer=writer_named(labels, DISPLAY_NAME))
    assert written == [str(path)]
    seg = pydicom.dcmread(path)
    assert seg.ContentDescription == GENERATED_UIDS_NOTE
    referenced = seg.ReferencedSeriesSequence[0]
    assert (
        referenced.SeriesInstanceUID
        and referenced.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID
    )


def test_the_writer_function_writes_dicom_seg_only(labels, tmp_path):
    data, attributes, _ = labels.as_layer_data_tuple()
    (path,) = write_seg_new_uids(str(tmp_path / "w.dcm"), data, attributes)
    assert pydicom.dcmread(path).Modality == "SEG"
    with pytest.raises(ValueError, match=r"m.nii.gz: .*DICOM SEG \(.dcm\) only"):
        write_seg_new_uids(str(tmp_path / "m.nii.gz"), data, attributes)
