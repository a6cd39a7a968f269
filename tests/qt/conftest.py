"""Helpers for looking at what napari shows, and the real MR opened in a panel."""

from pathlib import Path

import numpy as np
import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / "demo-screenshots"


def _assert_not_blank(image: np.ndarray) -> None:
    rgb = image[..., :3].reshape(-1, 3)
    assert rgb.std() > 20, "screenshot is (nearly) uniform"
    assert len(np.unique(rgb // 32, axis=0)) >= 8, "screenshot has too few colours"


@pytest.fixture
def screenshot_folder() -> Path:
    """Where GUI tests save the screenshots they check (open them to look)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def assert_not_blank():
    """Check that a screenshot shows something: contrast and several colours."""
    return _assert_not_blank


@pytest.fixture
def mr_panel(make_napari_viewer, shared_data, tmp_path, monkeypatch):
    """The real abdominal MR opened through the plugin, an annotation panel and an empty
    annotation layer; with the reference labels (``totalseg_mr``) as an array."""
    from napari_domainseg._widgets._annotation_panel import AnnotationPanel

    monkeypatch.setenv("NAPARI_DOMAINSEG_RECOVERY", str(tmp_path / "recovery"))
    viewer = make_napari_viewer()
    folder = shared_data / "medical/totalseg_mr"
    viewer.open(str(folder / "labels.nii.gz"), plugin="napari-domainseg")
    reference = np.asarray(viewer.layers[-1].data).copy()
    viewer.layers.remove(viewer.layers[-1])
    viewer.open(str(folder / "mr.nii.gz"), plugin="napari-domainseg")
    panel = AnnotationPanel(viewer)
    labels = panel.new_annotation_layer()
    return viewer, panel, labels, reference
