"""``domainseg``: the command line, on the core packages only (no napari, no Qt).

Exit codes: 0 success; 1 an input failed (one line per failed file on stderr:
``domainseg: PATH: reason``); 2 usage errors (argparse).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from napari_domainseg import __version__
from napari_domainseg.cli import commands
from napari_domainseg.files import InputError

EXIT_OK, EXIT_INPUT, EXIT_USAGE = 0, 1, 2
BATCH_TASKS = ("info", "convert", "export", "polygonize", "rasterize", "compare", "stats", "chips")


def _add(subparsers: Any, name: str, function: Callable, help_text: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help_text, description=function.__doc__)
    parser.set_defaults(function=function)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The ``domainseg`` parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="domainseg",
        description="Convert, check and export medical and geospatial annotations.",
    )
    parser.add_argument("--version", action="version", version=f"domainseg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _add(sub, "info", commands.info, "summary of a series, volume or raster")
    p.add_argument("path", type=Path)

    p = _add(sub, "convert", commands.convert, "DICOM series to NIfTI or NRRD")
    p.add_argument("source", type=Path, help="DICOM folder or file")
    p.add_argument("-o", "--output", type=Path, required=True, help=".nii.gz, .nii or .nrrd")
    p.add_argument("--series", help="SeriesInstanceUID or number (default: the best series)")
    p.add_argument("--resample", action="store_true", help="resample tilted or gapped stacks")
    p.add_argument("--overwrite", action="store_true")

    p = _add(sub, "export", commands.export, "labels onto a reference's geometry, any format")
    p.add_argument("labels", type=Path, help="NIfTI, NRRD, DICOM SEG, GeoTIFF or .npy labels")
    p.add_argument("--like", type=Path, required=True, help="the reference image or series")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--schema", type=Path, help="label schema (YAML/JSON) or preset name")
    p.add_argument("--overwrite", action="store_true")

    p = _add(sub, "polygonize", commands.polygonize, "label raster to polygons")
    p.add_argument("labels", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, help=".geojson, .gpkg or .fgb")
    p.add_argument("--min-area", type=float, default=0.0, help="square metres (CRS units)")
    p.add_argument(
        "--simplify", type=float, default=None, help="coverage simplification, CRS units"
    )
    p.add_argument("--connectivity", type=int, choices=(4, 8), default=4)
    p.add_argument("--schema", type=Path)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument(
        "--tiled", type=int, metavar="ROWS", default=0,
        help="read and polygonize strips of ROWS rows in parallel (rasters larger than memory)",
    )  # fmt: skip

    p = _add(sub, "rasterize", commands.rasterize, "vectors onto a raster's grid")
    p.add_argument("vectors", type=Path)
    p.add_argument("--like", type=Path, required=True, help="the reference raster")
    p.add_argument("-o", "--output", type=Path, required=True, help=".tif")
    p.add_argument("--attribute", help="column with class ids or class names")
    p.add_argument("--schema", type=Path)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument(
        "--tiled", type=int, metavar="ROWS", default=0,
        help="burn and write strips of ROWS rows (outputs larger than memory)",
    )  # fmt: skip

    p = _add(sub, "compare", commands.compare, "per-class agreement of two label maps")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--resample", action="store_true", help="nearest-neighbour B onto A's grid")

    p = _add(sub, "agreement", commands.agreement, "inter-annotator agreement of N label maps")
    p.add_argument("files", type=Path, nargs="+")

    p = _add(sub, "stats", commands.stats, "size and share of each class")
    p.add_argument("labels", type=Path)
    p.add_argument("--like", type=Path, help="image for intensities and geometry")

    p = _add(sub, "chips", commands.chips, "training tiles (image + mask) with a manifest")
    p.add_argument("image", type=Path, help="raster or DICOM series / NIfTI volume")
    p.add_argument("labels", type=Path, help="labels on the image's grid")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder for the chips")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--overlap", type=int, default=0)
    p.add_argument("--min-labelled", type=float, default=0.0, help="fraction of labelled pixels")
    p.add_argument("--balance", action="store_true", help="repeat chips holding rare classes")

    p = _add(sub, "batch", commands.batch, "run a command over many inputs on dask.distributed")
    p.add_argument("task", choices=BATCH_TASKS)
    p.add_argument("--inputs", required=True, help="glob pattern, or a CSV/list file of paths")
    p.add_argument("--scheduler", help="address of a running dask scheduler (tcp://host:port)")
    p.add_argument("--workers", type=int, default=2, help="local worker processes")
    p.add_argument("--results", type=Path, help="results table (.csv or .json)")
    p.epilog = (
        "The task's own arguments follow a lone --; {input}, {stem} and {name} in them are "
        'replaced per input, e.g. -- -o "out/{stem}.nii.gz"'
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``domainseg``; return the exit code."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    task_arguments: list[str] = []
    if "--" in argv:  # batch: the task's own arguments
        split = argv.index("--")
        argv, task_arguments = argv[:split], argv[split + 1 :]
    args = parser.parse_args(argv)
    args.arguments = task_arguments
    try:
        result = args.function(args)
    except commands.BatchFailed as exc:
        _print(args, exc.summary)
        print(f"domainseg: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except InputError as exc:
        print(f"domainseg: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except FileExistsError as exc:
        print(f"domainseg: {exc}", file=sys.stderr)
        return EXIT_INPUT
    _print(args, result)
    return EXIT_OK


def _print(args: argparse.Namespace, result: Any) -> None:
    if result is None:
        return
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2, default=str))
    else:
        print(commands.as_text(args.command, result))


def main_exit() -> None:
    """Console-script entry point: exit with :func:`main`'s code."""
    raise SystemExit(main())
