"""``domainseg``: the command line, on the core packages only (no napari, no Qt).

Exit codes: 0 success; 1 an input or output failed (one line per failure on stderr:
``domainseg: PATH: reason``); 2 usage errors (argparse); 3 a bug; 130 interrupted
(:mod:`napari_domainseg.cli.errors` maps every failure).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from napari_domainseg import __version__
from napari_domainseg.cli import assist, coco, commands, progress
from napari_domainseg.cli.errors import EXIT_INPUT, EXIT_OK, EXIT_USAGE

__all__ = ["EXIT_INPUT", "EXIT_OK", "EXIT_USAGE", "build_parser", "json_safe", "main"]
BATCH_TASKS = (
    "info", "convert", "export", "polygonize", "rasterize", "compare", "stats", "chips", "assist"
)  # fmt: skip


def _add(subparsers: Any, name: str, function: Callable, help_text: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help_text, description=function.__doc__)
    parser.set_defaults(function=function)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _add_show_patient_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--show-patient-data", "--identifiers", action="store_true", dest="show_patient_data",
        help="show DICOM UIDs and full paths (default: pseudonyms and relative paths)",
    )  # fmt: skip


def _add_level_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schema",
        type=Path,
        help="schema file or preset: with a class tree, figures per level (a parent aggregates "
        "its children), keyed by class path",
    )
    parser.add_argument(
        "--instances", action="store_true",
        help="instance figures of the 'objects' classes (every class without such a schema): "
        "matched at IoU >= 0.5, precision, recall, F1, panoptic quality, count difference; "
        "connected parts are the instances of a class map",
    )  # fmt: skip


def _add_philips_precise(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--philips-precise", action="store_const", const="precise", default="display",
        dest="philips_scaling",
        help="Philips MR: precise floating-point values (private scale slope 2005,100E, "
        "dcm2niix's default) instead of display values (RescaleSlope/Intercept)",
    )  # fmt: skip


def _add_skip_unreadable(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--skip-unreadable", action="store_true",
        help="DICOM: open the readable slices of a series some of whose files are truncated or "
        "inconsistent (named in a warning) instead of refusing it; a gap they leave is still "
        "detected",
    )  # fmt: skip


def _add_allow_unknown_geometry(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-unknown-geometry", action="store_true",
        help="export a volume whose geometry is unknown on its stand-in grid (recorded in the "
        "sidecar or header) instead of refusing",
    )  # fmt: skip


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
    _add_philips_precise(p)
    _add_skip_unreadable(p)
    _add_show_patient_data(p)

    p = _add(sub, "convert", commands.convert, "DICOM series to NIfTI or NRRD")
    p.add_argument("source", type=Path, help="DICOM folder or file")
    p.add_argument("-o", "--output", type=Path, required=True, help=".nii.gz, .nii or .nrrd")
    p.add_argument("--series", help="SeriesInstanceUID or number (default: the best series)")
    p.add_argument("--resample", action="store_true", help="resample tilted or gapped stacks")
    _add_philips_precise(p)
    _add_skip_unreadable(p)
    _add_allow_unknown_geometry(p)
    p.add_argument("--overwrite", action="store_true")

    p = _add(sub, "export", commands.export, "labels onto a reference's geometry, any format")
    p.add_argument("labels", type=Path, help="NIfTI, NRRD, DICOM SEG, GeoTIFF or .npy labels")
    p.add_argument("--like", type=Path, required=True, help="the reference image or series")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--schema", type=Path, help="label schema (YAML/JSON) or preset name")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument(
        "--seg-compression", choices=("none", "jpeg2000"), default="none",
        help="DICOM SEG pixel encoding (default none: what dcmqi and 3D Slicer read)",
    )  # fmt: skip
    p.add_argument(
        "--seg-new-uids", action="store_true",
        help="DICOM SEG of an anonymised series without UIDs: generate them (recorded in the SEG)",
    )  # fmt: skip
    _add_skip_unreadable(p)
    _add_allow_unknown_geometry(p)

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
        "--tiled", type=int, metavar="ROWS", default=None,
        help="read and polygonize strips of ROWS rows in parallel (rasters larger than memory)",
    )  # fmt: skip
    p.add_argument(
        "--instances", action="store_true",
        help="one feature per instance (band 2 and the instance table of an instance GeoTIFF)",
    )  # fmt: skip

    p = _add(sub, "rasterize", commands.rasterize, "vectors onto a raster's grid")
    p.add_argument("vectors", type=Path)
    p.add_argument("--like", type=Path, required=True, help="the reference raster")
    p.add_argument("-o", "--output", type=Path, required=True, help=".tif")
    p.add_argument("--attribute", help="column with class ids or class names")
    p.add_argument("--schema", type=Path)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument(
        "--tiled", type=int, metavar="ROWS", default=None,
        help="burn and write strips of ROWS rows (outputs larger than memory)",
    )  # fmt: skip

    p = _add(sub, "compare", commands.compare, "per-class agreement of two label maps")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--resample", action="store_true", help="nearest-neighbour B onto A's grid")
    _add_level_options(p)

    p = _add(sub, "agreement", commands.agreement, "inter-annotator agreement of N label maps")
    p.add_argument("files", type=Path, nargs="+")
    _add_level_options(p)

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
    p.add_argument("--overwrite", action="store_true", help="replace chips already in the folder")
    p.add_argument(
        "--instances", type=Path, metavar="INSTANCE_MAP",
        help="instance ids (0 unlabeled) on the image's grid: also write an instance mask per chip",
    )  # fmt: skip
    p.add_argument(
        "--instance-table", type=Path, metavar="JSON",
        help="with --instances: the instances' records (id, class_id, attributes, provenance); "
        "default: each instance's class is the labels' class under it",
    )  # fmt: skip
    p.add_argument(
        "--coco", action="store_true",
        help="with --instances: also write coco.json (COCO instance segmentation, RLE masks)",
    )  # fmt: skip

    p = _add(sub, "coco", coco.coco, "instances as COCO instance segmentation or panoptic")
    coco.add_arguments(p)

    p = _add(sub, "assist", assist.assist, "train on scribbles (or a saved model), label the image")
    assist.add_arguments(p)

    p = _add(sub, "batch", commands.batch, "run a command over many inputs on dask.distributed")
    p.add_argument("task", choices=BATCH_TASKS)
    p.add_argument("--inputs", required=True, help="glob pattern, or a CSV/list file of paths")
    p.add_argument("--scheduler", help="address of a running dask scheduler (tcp://host:port)")
    p.add_argument("--workers", type=int, default=2, help="local worker processes")
    p.add_argument("--results", type=Path, help="results table (.csv or .json)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing results table")
    _add_show_patient_data(p)
    p.epilog = (
        "The task's own arguments follow a lone --; {input}, {stem} and {name} in them are "
        'replaced per input, e.g. -- -o "out/{stem}.nii.gz"'
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``domainseg``; return the exit code (see :mod:`napari_domainseg.cli.errors`)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    task_arguments: list[str] = []
    if "--" in argv:  # batch: the task's own arguments
        split = argv.index("--")
        argv, task_arguments = argv[:split], argv[split + 1 :]
    args = parser.parse_args(argv)
    args.arguments = task_arguments
    progress.configure(json_output=getattr(args, "json", False))
    try:
        try:
            with progress.working(f"domainseg {args.command}"):
                result = args.function(args)
        except commands.BatchFailed as exc:
            _print(args, exc.summary)
            raise
        _print(args, result)
    except Exception as exc:  # every failure ends in one clear line
        return _fail(exc, args)
    except KeyboardInterrupt as exc:
        return _fail(exc, args)
    return EXIT_OK


def _fail(exc: BaseException, args: argparse.Namespace) -> int:
    """Print ``exc`` as one line per problem on stderr; return its exit code."""
    from napari_domainseg.cli import errors

    if os.environ.get("DOMAINSEG_TRACEBACK"):
        traceback.print_exception(exc, file=sys.stderr)
    output = getattr(args, "output", None)
    lines, code = errors.report(exc, _subject(args), output if isinstance(output, Path) else None)
    errors.print_lines(lines, sys.stderr)
    return code


def _subject(args: argparse.Namespace) -> Path | None:
    """The file a command works on, named when a failure does not say which."""
    for name in ("path", "source", "labels", "image", "vectors", "a", "output"):
        value = getattr(args, name, None)
        if isinstance(value, Path):
            return value
    return None


def _print(args: argparse.Namespace, result: Any) -> None:
    if result is None:
        return
    if getattr(args, "json", False):
        print(json.dumps(json_safe(result), indent=2, allow_nan=False))
    else:
        print(commands.as_text(args.command, result))


def json_safe(value: Any) -> Any:
    """``value`` as strict JSON types: non-finite floats become ``null``, arrays lists."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy scalars and arrays
        return json_safe(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def main_exit() -> None:
    """Console-script entry point: exit with :func:`main`'s code.

    What C libraries print straight to the process's stderr (libtiff's "_tiffWriteProc: No
    space left on device", once per strip) is held back: shown after a success, dropped after
    a failure, whose own line says what happened (``DOMAINSEG_TRACEBACK=1`` shows it too).
    """
    with _library_stderr_held() as held:
        code = main()
        held["show"] = code == EXIT_OK or bool(os.environ.get("DOMAINSEG_TRACEBACK"))
    raise SystemExit(code)


@contextlib.contextmanager
def _library_stderr_held() -> Iterator[dict[str, bool]]:
    """Point file descriptor 2 at a temporary file; Python's ``sys.stderr`` keeps the terminal."""
    try:
        sys.stderr.flush()
        terminal = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield {"show": True}
        return
    held = tempfile.TemporaryFile()
    python_stderr = os.fdopen(
        os.dup(terminal), "w", buffering=1, encoding=sys.stderr.encoding or "utf-8",
        errors="backslashreplace",
    )  # fmt: skip
    previous, sys.stderr = sys.stderr, python_stderr
    os.dup2(held.fileno(), 2)
    state = {"show": True}
    try:
        yield state
    finally:
        python_stderr.flush()
        os.dup2(terminal, 2)
        os.close(terminal)
        sys.stderr = previous
        python_stderr.close()
        if state["show"]:
            held.seek(0)
            sys.stderr.flush()
            os.write(2, held.read())
        held.close()
