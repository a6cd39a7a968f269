"""Write the sample data sets (CT phantom DICOM series, 4-band GeoTIFF scene) to a folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_domainseg.geo.synthetic import write_synthetic_scene
from napari_domainseg.medical.phantom import write_phantom_series


def main() -> None:
    """Generate both samples into the folder given on the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path, help="folder to write into (created if missing)")
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    files = write_phantom_series(args.output / "ct_phantom")
    print(f"CT phantom: {len(files)} DICOM files in {args.output / 'ct_phantom'}")
    print(f"scene: {write_synthetic_scene(args.output / 'synthetic_scene.tif')}")


if __name__ == "__main__":
    main()
