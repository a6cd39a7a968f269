"""Shared fixtures: the real test data beside the checkout, and a private sample cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: real DICOM series and GeoTIFFs. Missing data is an error, not a skip."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.fail(
            f"real test data not found at {SHARED_DATA}; the shared/ folder must sit beside "
            "the checkout (as in CI). Tests never skip for want of data."
        )
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="session")
def _private_sample_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Generate sample data into a fresh folder, so the generators run in every test session."""
    os.environ["NAPARI_DOMAINSEG_CACHE"] = str(tmp_path_factory.mktemp("domainseg-cache"))
