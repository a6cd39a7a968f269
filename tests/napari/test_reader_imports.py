"""Opening a DICOM folder through npe2 imports only what reading a series needs.

The first drop of a folder in a napari session pays for every module the reader
imports; SEG support (highdicom), rasters (rasterio, dask.array for pyramids),
vectors (geopandas), SimpleITK and imagecodecs (compressed series only) are not among them
when the folder holds no SEG and no compressed pixels.
"""

from __future__ import annotations

import json
import subprocess
import sys

NOT_NEEDED = ("highdicom", "rasterio", "dask.array", "geopandas", "SimpleITK", "imagecodecs")

CODE = """
import json, sys
import napari, napari.layers, napari.utils.notifications
import npe2
npe2.PluginManager.instance().discover()
layers = npe2.read([sys.argv[1]], stack=False, plugin_name="napari-domainseg")
assert [kind for _, _, kind in layers] == ["image"]
print(json.dumps({"loaded": [m for m in sys.argv[2:] if m in sys.modules]}))
"""


def test_dicom_folder_read_imports_no_seg_raster_or_vector_stack(shared_data):
    folder = shared_data / "medical/mr_sagittal"
    done = subprocess.run(
        [sys.executable, "-c", CODE, str(folder), *NOT_NEEDED],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1])["loaded"] == []
