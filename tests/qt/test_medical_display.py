"""Opened DICOM series are shown in their acquisition plane, oriented as radiologists expect."""

from pathlib import Path

import numpy as np
import pytest


@pytest.mark.parametrize(
    "folder, order, vertical",
    [
        ("ct_head_study", (0, 1, 2), "down"),  # axial: anterior up, patient left on the right
        ("mr_sagittal", (2, 0, 1), "up"),  # sagittal: slider over x, superior up
    ],
)
def test_series_opens_in_its_acquisition_plane(
    make_napari_viewer, shared_data, screenshot_folder, assert_not_blank, folder, order, vertical
):
    viewer = make_napari_viewer(show=True)
    viewer.open(str(shared_data / "medical" / folder), plugin="napari-domainseg")
    layer = viewer.layers[0]
    assert tuple(viewer.dims.order) == order
    assert viewer.camera.orientation2d[0] == vertical
    slider_axis = order[0]
    assert viewer.dims.nsteps[slider_axis] == layer.data.shape[slider_axis], (
        "one slider step = one acquired slice"
    )
    viewer.window.resize(1280, 820)
    viewer.reset_view()
    canvas = viewer.screenshot(str(screenshot_folder / f"medical-{Path(folder).name}.png"))
    assert_not_blank(canvas)
    # The displayed slice is as tall as the field of view along z, not a one-voxel strip.
    rows_with_data = np.count_nonzero(canvas[..., :3].max(axis=(1, 2)) > 0)
    assert rows_with_data > canvas.shape[0] / 3
