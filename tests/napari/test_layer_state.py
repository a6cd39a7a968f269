"""The plugin's layer state: one adapter module, typed geometry values, exact exports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import npe2
import numpy as np
import pytest
import rasterio
from napari.layers import Image, Labels
from rasterio import windows
from rasterio.windows import Window

import napari_domainseg
from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._layer_data import labels_layer_data, scene_labels_layer_data
from napari_domainseg.geo.grid import RasterGrid
from napari_domainseg.geo.scene import open_scene
from napari_domainseg.medical.series import read_series
from napari_domainseg.medical.volume_geometry import VolumeGeometry

from .layer_helpers import labels_for

PLUGIN = "napari-domainseg"
LANDSAT = "geo/landsat_rgb/RGB.byte.tif"
MEDICAL = ["bad_input/gantry_tilt", "seg_dcmqi/ct-3slice", "mr_sagittal"]
OLD_VOLUME_KEYS = (
    "affine",
    "display_affine",
    "straightened",
    "reorientation",
    "sop_instance_uids",
    "source_files",
    "frame_order",
    "frame_of_reference_uid",
    "study_instance_uid",
    "series_instance_uid",
)
OLD_RASTER_KEYS = ("crs_wkt", "crs", "transform", "shape", "window")
REGION = (10, 20, 30, 40)  # row offset, col offset, height, width


@pytest.fixture(autouse=True, scope="module")
def _discover_plugins():
    npe2.PluginManager.instance().discover()


def _read(path: Path) -> list:
    return npe2.read([str(path)], stack=False, plugin_name=PLUGIN)


def _image(path: Path) -> Image:
    layers = _read(path)
    assert [kind for _, _, kind in layers] == ["image"]
    data, kwargs, _ = layers[0]
    return Image(data, **kwargs)


# --------------------------------------------------------------------------- the contract

FORBIDDEN = re.compile(
    r"""metadata\[\s*["']domainseg["']\s*\]"""
    r"""|metadata\.get\(\s*["']domainseg["']"""
    r"""|\bPLUGIN_KEY\b|\bMETADATA_KEY\b"""
)


def test_only_the_layer_state_module_touches_the_plugin_entry():
    """No module but ``_napari/_layer_state.py`` reads or writes ``layer.metadata["domainseg"]``.

    The entry's layout (which key holds the geometry, the schema, the band, ...) is known in
    one place, so renaming or retyping an entry breaks there, loudly, and nowhere else; a
    module that reaches into the dict itself would silently read a stale or missing value.
    """
    package = Path(napari_domainseg.__file__).parent
    allowed = package / "_napari" / "_layer_state.py"
    offending = [
        f"{path.relative_to(package.parent)}:{number}: {line.strip()}"
        for path in sorted(package.rglob("*.py"))
        if path != allowed
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if FORBIDDEN.search(line)
    ]
    assert offending == [], "use napari_domainseg._napari._layer_state instead:\n" + "\n".join(
        offending
    )


def test_the_contract_pattern_finds_what_it_forbids():
    for line in (
        'layer.metadata["domainseg"]["band"]',
        "meta = layer.metadata.get('domainseg', {})",
        "from ._layer_state import PLUGIN_KEY",
        "key = METADATA_KEY",
    ):
        assert FORBIDDEN.search(line), line
    assert not FORBIDDEN.search('prog="domainseg"')


# --------------------------------------------------------------------------- reader layers


@pytest.mark.parametrize("source", MEDICAL)
def test_medical_layer_carries_the_series_geometry_and_not_the_old_keys(shared_data, source):
    path = shared_data / "medical" / source
    layer = _image(path)
    geometry = state.geometry_of(layer)
    assert isinstance(geometry, VolumeGeometry)
    assert geometry == read_series(path).volume.geometry
    assert state.volume_geometry_of(layer) is geometry
    assert state.raster_grid_of(layer) is None
    left = [key for key in OLD_VOLUME_KEYS if key in state.info(layer)]
    assert left == [], f"geometry entries still in the layer description: {left}"
    assert state.domain_of(layer) == "medical"
    assert geometry.placed(layer.affine.affine_matrix @ _base_matrix(layer))


def _base_matrix(layer) -> np.ndarray:
    """The layer's scale/translate/rotate/shear matrix (napari composes affine @ this)."""
    return state.data_to_world(
        {
            "scale": layer.scale,
            "translate": layer.translate,
            "rotate": layer.rotate,
            "shear": layer.shear,
        },
        layer.ndim,
    )


def test_raster_layers_carry_the_dataset_grid_and_not_the_old_keys(shared_data):
    path = shared_data / LANDSAT
    layers = [Image(data, **kwargs) for data, kwargs, _ in _read(path)]
    with rasterio.open(path) as src:
        expected = RasterGrid.of_dataset(src)
    assert len(layers) == 3
    for layer in layers:
        grid = state.geometry_of(layer)
        assert isinstance(grid, RasterGrid)
        assert grid == expected
        assert state.raster_grid_of(layer) is grid
        assert state.volume_geometry_of(layer) is None
        left = [key for key in OLD_RASTER_KEYS if key in state.info(layer)]
        assert left == [], f"grid entries still in the layer description: {left}"
        assert state.domain_of(layer) == "geo"


def test_labels_share_the_image_geometry_object(shared_data):
    data, kwargs, _ = _read(shared_data / "medical/bad_input/gantry_tilt")[0]
    geometry = state.geometry_of(kwargs)
    _, labels_kwargs, kind = labels_layer_data(np.zeros(data.shape, np.uint8), kwargs, "labels")
    assert kind == "labels"
    assert state.geometry_of(labels_kwargs) is geometry
    image = Image(data, **kwargs)
    assert state.geometry_of(image) is geometry
    assert state.geometry_of(labels_for(image)) is geometry


# --------------------------------------------------------------------------- exports


def _moved_rows(attributes: dict, by: float) -> dict:
    translate = np.array(attributes["translate"], dtype=float)
    translate[0] += by
    return {**attributes, "translate": translate}


@pytest.mark.parametrize("source", ["bad_input/gantry_tilt", "seg_dcmqi/ct-3slice"])
def test_unmoved_labels_export_on_the_exact_geometry(shared_data, source):
    image = _image(shared_data / "medical" / source)
    labels = labels_for(image)
    geometry = state.volume_geometry_of(image)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        exported = state.export_volume_geometry(labels._get_state(), labels.data.shape)
    assert exported == geometry
    assert np.array_equal(
        exported.affine, read_series(shared_data / "medical" / source).volume.affine
    )
    assert exported.sheared is geometry.sheared


def test_moved_tilted_labels_export_where_napari_shows_them_with_a_warning(shared_data):
    image = _image(shared_data / "medical/bad_input/gantry_tilt")
    labels = labels_for(image)
    geometry = state.volume_geometry_of(image)
    assert geometry.sheared and geometry.straightened
    slice_step = float(geometry.display_affine[0, 0])
    moved = _moved_rows(labels._get_state(), slice_step)
    with pytest.warns(UserWarning, match="moved after opening"):
        exported = state.export_volume_geometry(moved, labels.data.shape)
    expected = np.array(geometry.display_affine)
    expected[0, 3] += slice_step
    np.testing.assert_allclose(exported.affine, expected, atol=1e-9)
    assert not exported.sheared
    assert exported.source == geometry.source


def test_moved_axial_labels_export_where_napari_shows_them_silently(shared_data):
    image = _image(shared_data / "medical/seg_dcmqi/ct-3slice")
    labels = labels_for(image)
    geometry = state.volume_geometry_of(image)
    assert not geometry.straightened
    moved = _moved_rows(labels._get_state(), float(geometry.affine[0, 0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        exported = state.export_volume_geometry(moved, labels.data.shape)
    expected = np.array(geometry.affine)
    expected[0, 3] += geometry.affine[0, 0]
    np.testing.assert_allclose(exported.affine, expected, atol=1e-9)
    assert exported != geometry
    assert exported.source == geometry.source


@pytest.fixture
def region_labels(shared_data) -> tuple[Labels, rasterio.Affine]:
    path = shared_data / LANDSAT
    with rasterio.open(path) as src:
        transform = src.transform
    scene = open_scene(path)
    data, kwargs, _ = scene_labels_layer_data(
        np.zeros(REGION[2:], np.uint8), scene, "labels", None, window=REGION
    )
    return Labels(data, **kwargs), transform


def test_unmoved_region_labels_export_on_their_window_of_the_raster(shared_data, region_labels):
    labels, transform = region_labels
    with rasterio.open(shared_data / LANDSAT) as src:
        expected = RasterGrid.of_dataset(src).with_window(REGION)
    assert state.raster_grid_of(labels) == expected
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        exported = state.export_raster_grid(labels._get_state(), labels.data.shape)
    assert exported == expected
    assert exported.array_transform == windows.transform(Window(20, 10, 40, 30), transform)
    assert exported.array_shape == (30, 40)


def test_moved_region_labels_export_where_napari_shows_them(region_labels):
    labels, transform = region_labels
    moved = _moved_rows(labels._get_state(), transform.e)  # one pixel row south
    with pytest.warns(UserWarning, match="no longer sit on their raster's grid"):
        exported = state.export_raster_grid(moved, labels.data.shape)
    one_row_down = windows.transform(Window(20, 11, 40, 30), transform)
    assert exported.array_transform.almost_equals(one_row_down, precision=1e-6)
    assert exported.array_shape == (30, 40)
    assert exported.crs == state.raster_grid_of(labels).crs


# --------------------------------------------------------------------------- restore


def test_geometry_in_dict_form_is_turned_back_into_the_value(shared_data):
    geometry = read_series(shared_data / "medical/bad_input/gantry_tilt").volume.geometry
    kwargs: dict = {"metadata": state.plugin_metadata({"domain": "medical"})}
    state.set_geometry(kwargs, json.loads(json.dumps(geometry.to_dict())))
    restored = state.geometry_of(kwargs)
    assert isinstance(restored, VolumeGeometry)
    assert restored == geometry
    assert np.array_equal(restored.affine, geometry.affine)
    assert state.volume_geometry_of(kwargs) == geometry


def test_raster_grid_in_dict_form_is_turned_back_into_the_value(shared_data):
    with rasterio.open(shared_data / LANDSAT) as src:
        grid = RasterGrid.of_dataset(src).with_window(REGION)
    kwargs: dict = {"metadata": state.plugin_metadata({"domain": "geo"})}
    state.set_geometry(kwargs, json.loads(json.dumps(grid.to_dict())))
    restored = state.geometry_of(kwargs)
    assert isinstance(restored, RasterGrid)
    assert restored == grid
    assert state.raster_grid_of(kwargs) == grid


# --------------------------------------------------------------------------- imports

NO_RASTER_CODE = """
import json, sys
from napari_domainseg._napari import _layer_data, _layer_state
from napari_domainseg.medical.series import read_series
_, kwargs, _ = _layer_data.volume_layer_data(read_series(sys.argv[1]).volume, "x")
geometry = _layer_state.geometry_of(kwargs)
_layer_state.placement(geometry)
_layer_state.raster_grid_of(kwargs)
_layer_state.info(kwargs)
print(json.dumps({
    "kind": type(geometry).__name__,
    "loaded": [m for m in ("rasterio", "napari_domainseg.geo.grid") if m in sys.modules],
}))
"""


def test_medical_layers_never_import_rasterio(shared_data):
    done = subprocess.run(
        [sys.executable, "-c", NO_RASTER_CODE, str(shared_data / "medical/seg_dcmqi/ct-3slice")],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"kind": "VolumeGeometry", "loaded": []}
