"""Benchmark: NIfTI export of a 512x512x300 uint8 label mask, ours versus SimpleITK.

Best-of-N wall time (methods interleaved per round, one untimed warm-up each) of
``napari_domainseg.medical.nifti.write_nifti`` versus SimpleITK ``GetImageFromArray`` +
``WriteImage`` with the same geometry, to ``.nii.gz`` and to ``.nii``; both files are read
back with nibabel (same voxels, same affine) and their sizes recorded.

Run ``.venv/bin/python benchmarks/bench_nifti_export.py`` (``--quick``: a 30x256x256 mask,
two rounds); results go to ``benchmarks/results/nifti_export.json``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # harness sits next to this script
    sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from harness import MIB  # noqa: E402


def make_mask(shape: tuple[int, int, int]) -> np.ndarray:
    """A uint8 mask (k, j, i) of four ellipsoidal blobs, labels 1 to 4 (3 % at 300x512x512)."""
    mask = np.zeros(shape, dtype=np.uint8)
    blobs = [  # centre and radii as fractions of the shape, label
        ((0.50, 0.50, 0.50), (0.20, 0.15, 0.12), 1),
        ((0.30, 0.40, 0.30), (0.08, 0.06, 0.06), 2),
        ((0.70, 0.60, 0.70), (0.10, 0.08, 0.05), 3),
        ((0.55, 0.25, 0.65), (0.05, 0.04, 0.04), 4),
    ]
    for centre, radii, label in blobs:
        c = np.array(centre) * shape
        r = np.maximum(np.array(radii) * shape, 1.0)
        low = np.maximum(np.floor(c - r).astype(int), 0)
        high = np.minimum(np.ceil(c + r).astype(int) + 1, shape)
        box = tuple(slice(a, b) for a, b in zip(low, high, strict=True))
        k, j, i = np.ogrid[box]
        inside = ((k - c[0]) / r[0]) ** 2 + ((j - c[1]) / r[1]) ** 2 + ((i - c[2]) / r[2]) ** 2
        mask[box][inside <= 1.0] = label
    return mask


def write_ours(path: Path, mask: np.ndarray, affine: np.ndarray) -> None:
    """napari-domainseg ``write_nifti`` (overwriting); ``affine``: voxel (k, j, i) to LPS."""
    from napari_domainseg.medical.nifti import write_nifti

    write_nifti(path, mask, affine, overwrite=True)


def write_simpleitk(path: Path, mask: np.ndarray, affine: np.ndarray) -> None:
    """SimpleITK ``GetImageFromArray`` with the same geometry, then ``WriteImage``.

    Compression is requested for ``.nii.gz`` (ITK's default level).
    """
    import SimpleITK as sitk

    linear_xyz = affine[:3, :3][::-1, ::-1]  # voxel (i, j, k) -> LPS (x, y, z)
    spacing = np.linalg.norm(linear_xyz, axis=0)
    image = sitk.GetImageFromArray(mask)
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(v) for v in affine[:3, 3][::-1]])
    image.SetDirection([float(v) for v in (linear_xyz / spacing).ravel()])
    sitk.WriteImage(image, str(path), useCompression=path.name.endswith(".gz"))


def check_exports(ours: Path, theirs: Path, mask: np.ndarray) -> dict[str, Any]:
    """Read both exports back with nibabel: same voxels, same RAS affine? Both file sizes."""
    import nibabel as nib

    images = [nib.load(str(p)) for p in (ours, theirs)]
    expected = mask.transpose(2, 1, 0)
    return {
        "voxels_equal": all(np.array_equal(np.asanyarray(im.dataobj), expected) for im in images),
        "affines_close": bool(np.allclose(images[0].affine, images[1].affine, atol=1e-4)),
        "ours_bytes": ours.stat().st_size,
        "simpleitk_bytes": theirs.stat().st_size,
    }


def bench_export(shape: tuple[int, int, int], repeat: int, tmp: Path) -> dict[str, Any]:
    """Time NIfTI export of a label mask: ours versus SimpleITK, ``.nii.gz`` and ``.nii``."""
    affine = np.diag([1.0, 0.451171875, 0.451171875, 1.0])
    affine[:3, 3] = (766.21, -1.85, -115.5)
    tmp.mkdir(parents=True, exist_ok=True)
    mask = make_mask(shape)
    labelled = round(float(np.count_nonzero(mask)) / mask.size, 4)
    results: dict[str, Any] = {
        "mask": {"shape": list(shape), "dtype": str(mask.dtype), "labelled_fraction": labelled}
    }
    for suffix in (".nii.gz", ".nii"):
        ours, theirs = tmp / f"ours{suffix}", tmp / f"sitk{suffix}"
        tasks = {
            "ours": lambda ours=ours: write_ours(ours, mask, affine),
            "simpleitk": lambda theirs=theirs: write_simpleitk(theirs, mask, affine),
        }
        entry = harness.summaries(harness.time_interleaved(tasks, repeat, warmup=True))
        entry["ratio_ours_over_simpleitk"] = entry["ours"]["best_s"] / entry["simpleitk"]["best_s"]
        entry["check"] = check_exports(ours, theirs, mask)
        results[suffix] = entry
    return results


def markdown_table(results: dict[str, Any]) -> list[str]:
    """One row per suffix: file sizes, both writers' best times and their ratio."""
    rows = []
    for suffix in (".nii.gz", ".nii"):
        entry, sizes = results[suffix], results[suffix]["check"]
        rows.append(
            [f"`{suffix}` ({sizes['ours_bytes'] / MIB:.1f} / "
             f"{sizes['simpleitk_bytes'] / MIB:.1f} MiB)",
             f"{entry['ours']['best_s']:.3f}", f"{entry['simpleitk']['best_s']:.3f}",
             f"{entry['ratio_ours_over_simpleitk']:.2f}"]
        )  # fmt: skip
    header = ["NIfTI export of the uint8 mask", "ours s", "SimpleITK s", "ours / SimpleITK"]
    return harness.table(header, rows)


def main(argv: list[str] | None = None) -> int:
    """Time both writers, print and save the results."""
    parser = harness.arguments(__doc__, "nifti_export", "a 30x256x256 mask, two rounds")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (best of N)")
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--cols", type=int, default=512)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.slices, args.rows, args.cols = 2, 30, 256, 256
    import nibabel  # noqa: F401  (imports outside the timings)
    import SimpleITK  # noqa: F401

    import napari_domainseg.medical.nifti  # noqa: F401

    harness.DATA_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench_nifti_", dir=harness.DATA_DIR) as scratch:
        export = bench_export((args.slices, args.rows, args.cols), args.repeat, Path(scratch))
    packages = ("napari-domainseg", "numpy", "SimpleITK", "nibabel")
    results = {
        "benchmark": "nifti_export",
        "date": harness.timestamp(),
        "machine": harness.machine(packages),
        "repeat": args.repeat,
        "export": export,
    }
    harness.save_results(results, markdown_table(export), args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
