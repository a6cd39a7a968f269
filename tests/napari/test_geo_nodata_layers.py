"""Nodata, invalid polygons and GCP rasters as a napari user meets them (issue 10, section 2).

A label raster's nodata opens as unlabeled and never exports as a class (``gdal_polygonize.py``
is the oracle); what the vector reader left out or repaired is shown as a notification; a
GCP-only raster warns that it is placed by ground control points and opens warped through the
Layers > Register command.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import geopandas as gpd
import npe2
import numpy as np
import pytest
import rasterio
import shapely
from napari.layers import Labels
from rasterio.crs import CRS

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._geo_reader import (
    get_raster_reader,
    read_raster,
    read_raster_warped,
)
from napari_domainseg._napari._writers import write_geo_labels

from ..helpers.geotiffs import gcp_geotiff

PLUGIN = "napari-domainseg"
GOLDEN = "geo/polygonize_golden/polygonize_in.grd"


@pytest.fixture(autouse=True, scope="module")
def _discover_plugins():
    npe2.PluginManager.instance().discover()


def golden_label_geotiff(shared_data: Path, path: Path) -> Path:
    """GDAL's golden polygonize grid as a uint8 label GeoTIFF with a colour table (nodata 132)."""
    with rasterio.open(shared_data / GOLDEN) as src:
        values, transform = src.read(1).astype(np.uint8), src.transform
    with rasterio.open(
        path, "w", driver="GTiff", height=values.shape[0], width=values.shape[1], count=1,
        dtype="uint8", nodata=132, transform=transform, crs=CRS.from_epsg(32611),
    ) as dst:  # fmt: skip
        dst.write(values, 1)
        dst.write_colormap(1, {v: (v, 255 - v, 0, 255) for v in np.unique(values).tolist()})
    return path


def test_label_raster_nodata_opens_unlabeled_and_exports_like_gdal(shared_data, tmp_path):
    path = golden_label_geotiff(shared_data, tmp_path / "golden.tif")
    ((data, kwargs, kind),) = npe2.read([str(path)], stack=False, plugin_name=PLUGIN)
    assert kind == "labels" and 132 not in np.unique(data) and (data == 0).sum() == 8
    layer = Labels(data, **kwargs)
    (written,) = write_geo_labels(str(tmp_path / "ours.gpkg"), layer.data, layer._get_state())
    gdal = tmp_path / "gdal.gpkg"
    subprocess.run(["gdal_polygonize.py", "-q", str(path), "-f", "GPKG", str(gdal)], check=True)
    ours, theirs = gpd.read_file(written), gpd.read_file(gdal)
    assert len(ours) == len(theirs) == 13
    assert sorted(ours.label) == sorted(theirs.DN)
    np.testing.assert_allclose(sorted(ours.geometry.area), sorted(theirs.geometry.area))


def test_a_huge_label_raster_opens_lazily(tmp_path):
    vrt = tmp_path / "huge.vrt"
    vrt.write_text(textwrap.dedent("""\
        <VRTDataset rasterXSize="1000000" rasterYSize="1000000">
          <SRS>EPSG:32633</SRS>
          <GeoTransform>500000, 10, 0, 4000000, 0, -10</GeoTransform>
          <VRTRasterBand dataType="Byte" band="1">
            <NoDataValue>0</NoDataValue>
            <ColorInterp>Palette</ColorInterp>
            <ColorTable><Entry c1="0" c2="0" c3="0" c4="0"/><Entry c1="255" c2="0" c3="0" c4="255"/>
            </ColorTable>
          </VRTRasterBand>
        </VRTDataset>
        """))  # fmt: skip
    assert get_raster_reader(str(vrt)) is read_raster
    ((data, kwargs, kind),) = read_raster(str(vrt))
    assert kind == "labels" and data.shape == (1_000_000, 1_000_000)
    assert type(data).__module__.startswith("dask"), "pixels stay on disk"
    assert state.raster_grid_of(kwargs).shape == (1_000_000, 1_000_000)
    with pytest.raises(ValueError, match=r"too large to export from napari.*--tiled"):
        write_geo_labels(str(tmp_path / "huge.gpkg"), data, kwargs)


def test_a_gcp_raster_warns_truthfully_and_opens_warped_on_request(tmp_path, shown):
    path = gcp_geotiff(tmp_path / "gcps.tif")
    assert get_raster_reader(str(path)) is read_raster
    ((data, kwargs, _),) = npe2.read([str(path)], stack=False, plugin_name=PLUGIN)
    grid = state.raster_grid_of(kwargs)
    assert grid.crs is None and state.get(kwargs, "gcp_only"), "pixel coordinates by default"
    assert any("4 ground control points" in m and "EPSG:32630" in m for m in shown)
    assert any("Warp raster by its ground control points" in m for m in shown)
    assert not any("no coordinate reference system" in m for m in shown)
    shown.clear()
    ((data, kwargs, _),) = read_raster_warped(str(path))
    grid = state.raster_grid_of(kwargs)
    assert grid.crs == CRS.from_epsg(32630)
    assert grid.transform.a > 0 and grid.transform.e < 0, "north-up map grid"
    assert state.get(kwargs, "gcps") == "warp" and not state.get(kwargs, "gcp_only")
    assert type(data).__module__.startswith("dask"), "warped lazily"
    assert any("warped" in m for m in shown)
    assert data.shape != (40, 50), "on the warped grid"


def test_vector_reader_notifies_what_it_left_out_and_repaired(make_napari_viewer, shared_data,
                                                             tmp_path, shown):  # fmt: skip
    viewer = make_napari_viewer()
    viewer.open(str(shared_data / "geo/landsat_rgb/RGB.byte.tif"), plugin=PLUGIN)
    x, y = 200000, 2800000  # inside RGB.byte.tif (EPSG:32618)
    bowtie = shapely.Polygon([(x, y), (x + 3000, y + 3000), (x + 3000, y), (x, y + 3000)])
    frame = gpd.GeoDataFrame(
        geometry=[bowtie, shapely.Point(x, y), shapely.Point(x + 1, y), shapely.box(x, y, x + 900,
                  y + 900)], crs=32618,
    )  # fmt: skip
    path = tmp_path / "mixed.gpkg"
    frame.to_file(path)
    viewer.open(str(path), plugin=PLUGIN)
    shapes = viewer.layers[-1]
    assert len(shapes.data) == 3, "the bow-tie as its two triangles, and the box"
    text = " ".join(shown)
    assert "mixed.gpkg" in text and "left out 2 points" in text
    assert "repaired 1 invalid polygon" in text and "feature id 1" in text


def test_vector_import_widget_notifies_repairs(make_napari_viewer, shared_data, tmp_path,
                                               monkeypatch):  # fmt: skip
    from napari_domainseg._widgets import _vector_import

    messages: list[str] = []
    monkeypatch.setattr(_vector_import, "show_warning", messages.append)
    viewer = make_napari_viewer()
    viewer.open(str(shared_data / "geo/landsat_rgb/RGB.byte.tif"), plugin=PLUGIN)
    x, y = 200000, 2800000
    bowtie = shapely.Polygon([(x, y), (x + 3000, y + 3000), (x + 3000, y), (x, y + 3000)])
    path = tmp_path / "bowtie.geojson"
    gpd.GeoDataFrame(geometry=[bowtie], crs=32618).to_file(path)
    _vector_import.import_vectors(viewer, path, viewer.layers[0])
    assert any("bowtie.geojson" in m and "repaired 1 invalid polygon" in m for m in messages)
    labels = viewer.layers[-1].data
    with rasterio.open(shared_data / "geo/landsat_rgb/RGB.byte.tif") as src:
        expected = rasterio.features.rasterize(
            [shapely.make_valid(bowtie)], out_shape=src.shape, transform=src.transform
        )
    np.testing.assert_array_equal(labels > 0, expected > 0)


def test_the_export_bound_counts_bytes_not_pixels(tmp_path):
    """1.2 G uint16 pixels are 2.4 GB: over the 2 GiB bound although under 2**31 pixels."""
    import dask.array as da

    data = da.zeros((30_000, 40_000), dtype=np.uint16, chunks=4096)
    assert data.size < 2**31 < data.nbytes
    kwargs = {"metadata": {"domainseg": {"domain": "geo", "crs_wkt": None,
                                         "transform": [1, 0, 0, 0, -1, 0],
                                         "shape": [30_000, 40_000]}}}  # fmt: skip
    with pytest.raises(ValueError, match="too large to export from napari"):
        write_geo_labels(str(tmp_path / "big.gpkg"), data, kwargs)
