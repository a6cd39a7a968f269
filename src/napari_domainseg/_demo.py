"""The demo: napari with the sample CT and the sample scene, and the plugin's panel.

Medical (LPS millimetres) and map (UTM metres) worlds are unrelated, so each
sample opens in its own viewer window. ``--screenshot FILE`` runs headless:
it saves one PNG with both windows side by side (and one per window) and exits.

Usage::

    python -m napari_domainseg._demo                 # interactive, needs a display
    python -m napari_domainseg._demo --screenshot docs/images/demo.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import napari

WINDOW_SIZE = (1280, 820)
SAMPLES = (("medical", "ct_phantom"), ("geo", "synthetic_scene"))


def open_demo_viewer(sample_key: str, show: bool) -> napari.Viewer:
    """A viewer with one DomainSeg sample and the Label schema panel docked."""
    viewer = napari.Viewer(title=f"napari-domainseg demo: {sample_key}", show=show)
    viewer.open_sample("napari-domainseg", sample_key)
    viewer.window.add_plugin_dock_widget("napari-domainseg", "Label schema")
    viewer.window.resize(*WINDOW_SIZE)
    viewer.reset_view()
    return viewer


def save_screenshots(path: Path) -> list[Path]:
    """Screenshot each demo viewer in turn; save them side by side to ``path``."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    images, written = [], []
    for domain, sample_key in SAMPLES:
        viewer = open_demo_viewer(sample_key, show=False)
        single = path.with_name(f"{path.stem}-{domain}{path.suffix}")
        images.append(viewer.screenshot(str(single), canvas_only=False))
        written.append(single)
        viewer.close()
    height = max(image.shape[0] for image in images)
    padded = [
        np.pad(image, ((0, height - image.shape[0]), (0, 8), (0, 0)), constant_values=255)
        for image in images
    ]
    Image.fromarray(np.concatenate(padded, axis=1)[:, :-8]).save(path)
    return [path, *written]


def main(argv: list[str] | None = None) -> int:
    """Run the demo; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", type=Path, help="save a PNG here and exit (headless)")
    args = parser.parse_args(argv)
    if args.screenshot:
        for written in save_screenshots(args.screenshot):
            print(f"demo screenshot: {written}")
        return 0
    for _, sample_key in SAMPLES:
        open_demo_viewer(sample_key, show=True)
    napari.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
