"""The command line imports only what a subcommand needs (start-up time users wait for).

Checked in fresh interpreters through ``sys.modules``: importing the CLI and parsing a
polygonize command line loads none of the heavy stacks, and a whole polygonize run loads
none of the medical, dask or napari ones.
"""

from __future__ import annotations

import json
import subprocess
import sys

NEVER_FOR_POLYGONIZE = (
    "dask",
    "distributed",
    "SimpleITK",
    "pydicom",
    "highdicom",
    "nibabel",
    "nrrd",
    "scipy",
    "napari",
    "npe2",
)
"""Modules a polygonize run has no use for."""
NOT_AT_IMPORT = (*NEVER_FOR_POLYGONIZE, "geopandas", "pandas", "pyogrio", "shapely", "pyproj")
"""Modules that importing the CLI and parsing its arguments must not load."""


def _loaded_after(code: str) -> list[str]:
    """Which of :data:`NOT_AT_IMPORT` a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    modules = set(json.loads(done.stdout.strip().splitlines()[-1]))
    return sorted(name for name in NOT_AT_IMPORT if name in modules)


def test_import_and_parse_load_no_heavy_module():
    code = (
        "from napari_domainseg.cli import build_parser\n"
        "build_parser().parse_args(['polygonize', 'in.tif', '-o', 'out.gpkg'])\n"
    )
    assert _loaded_after(code) == []


def test_polygonize_run_loads_no_medical_dask_or_napari_module(shared_data, tmp_path):
    raster = shared_data / "geo/edge_cases/byte.tif"
    out = tmp_path / "byte.gpkg"
    code = (
        "from napari_domainseg.cli import main\n"
        f"assert main(['polygonize', {str(raster)!r}, '-o', {str(out)!r}]) == 0\n"
    )
    loaded = _loaded_after(code)
    assert out.is_file()
    assert [name for name in loaded if name in NEVER_FOR_POLYGONIZE] == []
