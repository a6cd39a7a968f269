"""Screenshots of the messages a user meets on bad input, one napari window per domain.

Usage (under a virtual display)::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/message_screenshots.py

Each bad input is generated in a temporary folder from the real data in ``../shared/data`` and
opened the way a user opens it (``viewer.open`` with the plugin, or the series picker); errors
reach napari's notification manager as they do from a drag and drop. Writes
``docs/images/messages-medical.png`` and ``docs/images/messages-geo.png``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from napari.utils.notifications import notification_manager
from PIL import Image
from qtpy.QtCore import Qt
from qtpy.QtGui import QImage

import napari

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "docs" / "images"
SIZE = (1500, 900)
PLUGIN = "napari-domainseg"


def _settle(seconds: float = 1.0) -> None:
    from qtpy.QtWidgets import QApplication

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.05)


def _open(viewer: napari.Viewer, path: Path, **kwargs) -> None:
    """Open as a user would; an error lands in napari's notifications, as from a drag and drop.

    Each notification it raises is expanded, grabbed as a picture and closed, so the final
    screenshot can show every message in full beside the window.
    """
    try:
        viewer.open(str(path), plugin=PLUGIN, **kwargs)
    except Exception:  # shown to the user, as napari's own exception hook does
        notification_manager.receive_error(*sys.exc_info())
    _settle(0.6)
    _grab_notifications(viewer)


MESSAGES: list[Image.Image] = []


def _grab_notifications(viewer: napari.Viewer) -> None:
    """Expand, grab and close the notification toasts showing now (newest last)."""
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
        if not toast.isVisible():
            continue
        _settle(1.0)  # let it finish fading in
        toast.expand()
        _settle(0.5)
        text = toast.message.fontMetrics().boundingRect(
            0, 0, toast.message.width(), 10_000, Qt.TextFlag.TextWordWrap, toast.message.text()
        )
        toast.message.setMinimumHeight(text.height() + 18)  # the whole text, not one line
        toast.setFixedHeight(max(toast.height(), toast.sizeHint().height()))
        _settle(1.0)
        image = toast.grab().toImage().convertToFormat(QImage.Format.Format_RGBA8888)
        width, height, stride = image.width(), image.height(), image.bytesPerLine()
        pixels = np.frombuffer(image.constBits().asstring(height * stride), np.uint8)
        pixels = pixels.reshape(height, stride // 4, 4)[:, :width]
        MESSAGES.append(Image.fromarray(pixels.copy(), "RGBA").convert("RGB"))
        toast.close()
        _settle(0.2)


def _shoot(viewer: napari.Viewer, name: str) -> Path:
    """The window, and to its right every message it showed, in the order they came."""
    _settle(0.5)
    viewer.reset_view()
    window = OUT / name
    viewer.screenshot(str(window), canvas_only=False)
    viewer.close()
    shot = Image.open(window).convert("RGB")
    column = max((m.width for m in MESSAGES), default=0)
    height = max(shot.height, sum(m.height + 8 for m in MESSAGES))
    sheet = Image.new("RGB", (shot.width + column + 16, height), (38, 41, 48))
    sheet.paste(shot, (0, 0))
    top = 0
    for message in MESSAGES:
        sheet.paste(message, (shot.width + 8, top))
        top += message.height + 8
    MESSAGES.clear()
    sheet.save(window)
    return window


def medical(folder: Path) -> Path:
    """A series with a truncated slice, then its readable slices; a NIfTI with a NaN sform."""
    import nibabel as nib

    series = folder / "mr_truncated"
    shutil.copytree(SHARED / "medical/mr_sagittal", series)
    victim = sorted(series.iterdir())[2]
    victim.write_bytes(victim.read_bytes()[:-3000])
    viewer = napari.Viewer(show=True)
    viewer.window.resize(*SIZE)
    _open(viewer, series)
    image = nib.load(SHARED / "medical/totalseg_mr/mr.nii.gz")
    nan_sform = folder / "nan_sform.nii"
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj), image.affine), nan_sform)
    raw = bytearray(nan_sform.read_bytes())  # srow_x, srow_y, srow_z: bytes 280-328
    raw[280:328] = np.full(12, np.nan, "<f4").tobytes()
    raw[252:254] = np.int16(0).tobytes()  # qform_code 0: no fallback geometry
    nan_sform.write_bytes(bytes(raw))
    _open(viewer, nan_sform)
    return _shoot(viewer, "messages-medical.png")


def geo(folder: Path) -> Path:
    """A GCP-only scene, warped by the command offered; vectors with a point and a bow-tie."""
    import geopandas as gpd
    import rasterio
    import shapely
    from rasterio.control import GroundControlPoint

    from napari_domainseg._napari._gcp_warp import warp_layers

    with rasterio.open(SHARED / "geo/landsat_rgb/RGB.byte.tif") as src:
        pixels, bounds, crs = src.read(), src.bounds, src.crs
    gcps = [
        GroundControlPoint(0, 0, bounds.left, bounds.top),
        GroundControlPoint(0, pixels.shape[2], bounds.right, bounds.top),
        GroundControlPoint(pixels.shape[1], 0, bounds.left, bounds.bottom),
        GroundControlPoint(pixels.shape[1], pixels.shape[2], bounds.right, bounds.bottom),
    ]
    gcp_path = folder / "landsat_gcps.tif"
    with rasterio.open(gcp_path, "w", driver="GTiff", height=pixels.shape[1],
                       width=pixels.shape[2], count=3, dtype="uint8", gcps=gcps,
                       crs=crs) as dst:  # fmt: skip
        dst.write(pixels)
    viewer = napari.Viewer(show=True)
    viewer.window.resize(*SIZE)
    _open(viewer, gcp_path)
    warp_layers(viewer, list(viewer.layers))  # Layers > Register > Warp ... (the fix offered)
    _settle(0.6)
    _grab_notifications(viewer)
    x0, y0 = bounds.left + 20000, bounds.top - 20000
    frame = gpd.GeoDataFrame(
        {"id": [1, 2, 3]},
        geometry=[
            shapely.Polygon(  # a bow-tie: self-intersecting
                [(x0, y0), (x0 + 30000, y0 - 30000), (x0 + 30000, y0), (x0, y0 - 30000)]
            ),
            shapely.Point(x0, y0),
            shapely.box(x0 + 40000, y0 - 60000, x0 + 90000, y0 - 20000),
        ],
        crs=crs,
    )
    frame.to_file(folder / "fields.geojson")
    _open(viewer, folder / "fields.geojson")
    return _shoot(viewer, "messages-geo.png")


def main() -> int:
    """Write both screenshots and print their paths."""
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for make in (medical, geo):
            folder = Path(tmp) / make.__name__
            folder.mkdir()
            path = make(folder)
            assert np.asarray(Image.open(path)).std() > 10, f"{path} looks blank"
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
