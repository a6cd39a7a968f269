"""Asking the DICOM reader about a file that is not DICOM loads no DICOM library.

napari asks every reader whose patterns match (the DICOM reader claims ``*``) about every
path it opens, so that answer must stay cheap: the checks in ``medical.sniff`` use the
standard library only.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pydicom", "highdicom", "rasterio", "dask", "SimpleITK", "sklearn", "geopandas")


def _lookup(path: str) -> dict:
    code = (
        "import json, sys\n"
        "from napari_domainseg._napari._medical_reader import get_dicom_reader\n"
        f"reader = get_dicom_reader({path!r})\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(json.dumps({'reader': getattr(reader, '__name__', None), 'heavy': heavy}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_non_dicom_file_is_declined_without_loading_pydicom(shared_data):
    answer = _lookup(str(shared_data / "README.md"))
    assert answer == {"reader": None, "heavy": []}
    answer = _lookup(str(shared_data / "geo/landsat_rgb/RGB.byte.tif"))
    assert answer == {"reader": None, "heavy": []}


def test_a_dicom_folder_is_still_claimed(shared_data):
    answer = _lookup(str(shared_data / "medical/ct_head_study"))
    assert answer["reader"] == "read_dicom"
