"""The ``domainseg`` subcommands: each takes the parsed arguments and returns a result dict.

Errors with the input raise :class:`~napari_domainseg.files.InputError`
(exit code 1, one line); results are printed as text or JSON by :func:`main`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from napari_domainseg.cli import progress
from napari_domainseg.files import InputError, load, resample_onto, same_grid
from napari_domainseg.formats.base import Read
from napari_domainseg.geo.suffixes import RASTER_SUFFIXES
from napari_domainseg.labels import list_presets, load_preset, load_schema
from napari_domainseg.labels.schema import LabelSchema, SchemaError


def _schema(value: Path | None, fallback: LabelSchema | None = None) -> LabelSchema | None:
    if value is None:
        return fallback
    if str(value) in list_presets():
        return load_preset(str(value))
    if not value.exists():
        presets = ", ".join(list_presets())
        raise InputError(f"{value}: no such schema file or preset (presets: {presets})", value)
    try:
        return load_schema(value)
    except (SchemaError, OSError) as exc:  # every problem, one per line, under the file's name
        raise InputError(f"{value}: {exc}", value) from None


def _written(paths: list[Path]) -> dict[str, Any]:
    return {"written": [str(p) for p in paths]}


def info(args: argparse.Namespace) -> dict[str, Any]:
    """Summary of a DICOM series, NIfTI/NRRD volume or raster: geometry, size, type, warnings."""
    result = _summary(
        args.path,
        getattr(args, "philips_scaling", "display"),
        getattr(args, "skip_unreadable", False),
    )
    if getattr(args, "show_patient_data", False):
        return result
    from napari_domainseg.privacy import hide_folders, pseudonymise

    result = pseudonymise(result)  # UIDs as pseudonyms, the path relative or its name only
    result["warnings"] = [hide_folders(str(w), [args.path]) for w in result.get("warnings", [])]
    return result


def _summary(
    path: Path, philips_scaling: str = "display", skip_unreadable: bool = False
) -> dict[str, Any]:
    if path.suffix.lower() in RASTER_SUFFIXES:
        from napari_domainseg.geo.scene import RasterOpenError, open_scene

        try:
            scene = open_scene(path)
        except RasterOpenError as exc:
            raise InputError(str(exc)) from None
        import pyproj

        crs = pyproj.CRS.from_user_input(scene.crs) if scene.crs is not None else None
        return {
            "path": str(path),
            "kind": "raster",
            "size": [scene.height, scene.width],
            "bands": list(scene.band_names),
            "dtype": str(scene.dtype),
            "crs": (
                f"EPSG:{crs.to_epsg()}" if crs and crs.to_epsg() else crs.name if crs else None
            ),
            "transform": list(scene.transform)[:6],
            "nodata": scene.nodata,
            "overviews": scene.factors[1:],
            "warnings": scene.warnings,
        }
    loaded = load(path, philips_scaling=philips_scaling, skip_unreadable=skip_unreadable)
    result = {
        "path": str(path),
        "kind": "volume" if loaded.domain == "medical" else loaded.domain,
        "shape": list(loaded.array.shape),
        "dtype": str(loaded.array.dtype),
        "spacing_mm": [round(s, 6) for s in loaded.spacing],
        "origin_lps_zyx": [round(float(v), 4) for v in loaded.affine[:3, 3]]
        if loaded.affine is not None
        else None,
        "warnings": loaded.warnings,
    }
    for key in ("modality", "series_description", "acquisition_plane",
                "tilt_deg", "obliquity_deg", "rescale", "geometry_unknown"):  # fmt: skip
        if key in loaded.metadata:
            result[key] = loaded.metadata[key]
    geometry = loaded.volume_geometry_or_none
    if geometry is not None and geometry.source.series_instance_uid:
        result["series_instance_uid"] = geometry.source.series_instance_uid
    if loaded.metadata.get("skipped_unreadable"):  # names only: folders may identify patients
        result["skipped_unreadable"] = [Path(f).name for f in loaded.metadata["skipped_unreadable"]]
    return result


def convert(args: argparse.Namespace) -> dict[str, Any]:
    """A DICOM series to NIfTI or NRRD with the same geometry as the napari reader."""
    from napari_domainseg.medical.export import export_image
    from napari_domainseg.medical.series import DicomSeriesError, read_series

    progress.stage("reading the series")
    try:
        loaded = read_series(
            args.source,
            args.series,
            resample=args.resample,
            philips_scaling=getattr(args, "philips_scaling", "display"),
            skip_unreadable=getattr(args, "skip_unreadable", False),
        )
    except (DicomSeriesError, FileNotFoundError) as exc:
        raise InputError(f"{args.source}: {exc}") from None
    volume = loaded.volume
    progress.stage(f"writing {args.output.name}")
    try:
        paths = export_image(
            args.output, volume.array, volume.geometry, args.overwrite, volume.metadata,
            allow_unknown_geometry=getattr(args, "allow_unknown_geometry", False),
        )  # fmt: skip
    except ValueError as exc:
        raise InputError(str(exc)) from None
    result = _written(paths)
    result["scaling"] = volume.metadata.get("rescale", {}).get("mode", "display")
    if loaded.warnings:
        result["warnings"] = loaded.warnings
    return result


def _on_reference(labels: Read, reference: Read) -> np.ndarray:
    """The labels' array, checked to lie on the reference's grid."""
    if labels.domain == "array":
        if labels.array.shape != reference.array.shape[-labels.array.ndim :]:
            raise InputError(
                f"{labels.path}: shape {labels.array.shape} does not match {reference.path} "
                f"({reference.array.shape})"
            )
        return labels.array
    if not same_grid(reference, labels):
        raise InputError(
            f"{labels.path}: not on the grid of {reference.path} (different size, spacing, "
            "orientation or position)"
        )
    return labels.array


def export(args: argparse.Namespace) -> dict[str, Any]:
    """Labels onto a reference's geometry, written in the format the output extension names."""
    reference = load(args.like, labels=False, skip_unreadable=args.skip_unreadable)
    labels = load(args.labels, reference=reference)
    array = _on_reference(labels, reference)
    schema = _schema(args.schema, labels.schema)
    instances = _instance_option(labels)  # an instance file exports its objects
    try:
        if reference.domain == "medical":
            from napari_domainseg.medical.export import export_labels

            paths = export_labels(
                args.output, array, reference.volume_geometry, schema, reference.metadata,
                args.overwrite,
                seg_compression=args.seg_compression, seg_new_uids=args.seg_new_uids,
                allow_unknown_geometry=args.allow_unknown_geometry, **instances,
            )  # fmt: skip
        elif reference.domain == "geo":
            from napari_domainseg.geo.export import export_labels as export_geo_labels

            paths = export_geo_labels(
                args.output, array, reference.grid, schema, overwrite=args.overwrite,
                **instances,
            )  # fmt: skip
        else:
            raise InputError(
                f"{args.like}: a reference needs a geometry (DICOM, NIfTI, NRRD, raster)"
            )
    except (FileExistsError, InputError):
        raise
    except ValueError as exc:  # named once: some messages (unknown geometry) name the file
        text = str(exc)
        named = text if text.startswith(str(args.output)) else f"{args.output}: {text}"
        raise InputError(named) from None
    result = _written(paths)
    if reference.warnings:
        result["warnings"] = reference.warnings
    return result


def _instance_option(labels: Read) -> dict[str, Any]:
    """``{"instances": table}`` when ``labels`` holds instance ids (its file carries a table)."""
    records = labels.metadata.get("instances")
    if records is None:
        return {}
    from napari_domainseg.labels.instances import InstanceTable

    return {"instances": InstanceTable.from_records(records)}


def class_map_of(labels: Read) -> np.ndarray:
    """The class map of ``labels``: the array, or the classes of its instances (instance files)."""
    records = labels.metadata.get("instances")
    if records is None:
        return labels.array
    from napari_domainseg.labels.instances import InstanceTable, semantic_map

    return semantic_map(labels.array, InstanceTable.from_records(records))


def polygonize(args: argparse.Namespace) -> dict[str, Any]:
    """A label raster to polygons (GeoJSON RFC 7946, GeoPackage, FlatGeobuf)."""
    from napari_domainseg.geo.vectors import VectorError, export_polygons

    instances = getattr(args, "instances", False)
    if args.tiled is not None:
        if instances:
            raise InputError("--tiled polygonizes classes; leave it out with --instances")
        return _polygonize_tiled(args)
    progress.stage("reading labels")
    labels = load(args.labels)
    if labels.domain != "geo":
        raise InputError(f"{args.labels}: polygonize needs a georeferenced label raster")
    progress.stage("polygonizing and writing")
    if instances:
        return _polygonize_instances(args, labels)
    array = labels.array
    if "instances" in labels.metadata:  # an instance GeoTIFF: its classes
        from napari_domainseg.labels.instances import InstanceTable, semantic_map

        array = semantic_map(array, InstanceTable.from_records(labels.metadata["instances"]))
    try:
        paths = export_polygons(
            args.output, array, labels.grid, _schema(args.schema, labels.schema),
            connectivity=args.connectivity, min_area=args.min_area,
            simplify_tolerance=args.simplify, overwrite=args.overwrite,
        )  # fmt: skip
    except (VectorError, ValueError) as exc:
        raise InputError(str(exc)) from None
    import pyogrio

    return {**_written(paths), "features": int(pyogrio.read_info(paths[0])["features"])}


def _polygonize_instances(args: argparse.Namespace, labels: Any) -> dict[str, Any]:
    """One feature per instance of an instance label GeoTIFF (band 2 and its table tag)."""
    from napari_domainseg.geo.instance_polygons import export_instance_polygons
    from napari_domainseg.geo.label_raster import INSTANCES_TAG
    from napari_domainseg.geo.vectors import VectorError
    from napari_domainseg.labels.instances import InstanceTable

    records = labels.metadata.get("instances")
    if records is None:
        raise InputError(
            f"{args.labels}: no instance band ({INSTANCES_TAG} tag); export the labels with "
            "their instances, or polygonize classes without --instances"
        )
    try:
        paths = export_instance_polygons(
            args.output, labels.array, labels.grid, InstanceTable.from_records(records),
            _schema(args.schema, labels.schema), min_area=args.min_area,
            simplify_tolerance=args.simplify, overwrite=args.overwrite,
        )  # fmt: skip
    except (VectorError, ValueError) as exc:
        raise InputError(str(exc)) from None
    import pyogrio

    result = {**_written(paths), "features": int(pyogrio.read_info(paths[0])["features"])}
    if labels.warnings:
        result["warnings"] = labels.warnings
    return result


def _polygonize_tiled(args: argparse.Namespace) -> dict[str, Any]:
    """Polygonize strip by strip (dask), for label rasters larger than memory."""
    from napari_domainseg.geo.suffixes import POLYGON_EXPORTS
    from napari_domainseg.geo.tiled import polygonize_file
    from napari_domainseg.geo.vectors import VectorError, write_frame

    if args.connectivity != 4 or args.simplify or args.min_area:
        raise InputError("--tiled supports 4-connected polygons without --simplify or --min-area")
    if args.output.suffix.lower() not in POLYGON_EXPORTS:
        raise InputError(f"{args.output}: use .geojson, .gpkg or .fgb")
    try:
        with progress.dask_bar("polygonize strips"):
            frame = polygonize_file(args.labels, _schema(args.schema), strip_rows=args.tiled)
        paths = write_frame(args.output, frame, overwrite=args.overwrite)
    except (VectorError, ValueError, OSError) as exc:
        raise InputError(f"{args.labels}: {exc}") from None
    return {**_written(paths), "features": len(frame)}


def rasterize(args: argparse.Namespace) -> dict[str, Any]:
    """Vectors burnt onto a reference raster's grid, written as a label GeoTIFF."""
    from napari_domainseg.geo.label_raster import write_label_geotiff
    from napari_domainseg.geo.vectors import VectorError, rasterize_vectors, read_vectors

    schema = _schema(args.schema)
    if args.tiled is not None:
        from napari_domainseg.geo.tiled import rasterize_file

        try:
            frame = read_vectors(args.vectors, warn=False)  # what it left out: in "warnings"
            path = rasterize_file(
                frame, args.like, args.output, args.attribute, schema,
                strip_rows=args.tiled, overwrite=args.overwrite,
            )  # fmt: skip
        except (VectorError, ValueError, rasterio_errors()) as exc:
            raise InputError(f"{args.vectors}: {exc}") from None
        return {**_written([path]), "warnings": frame.attrs["domainseg_report"]}
    from napari_domainseg.geo.label_raster import read_grid

    try:  # the grid from the header: no pixel of the reference is read
        grid = read_grid(args.like)
    except rasterio_errors() as exc:
        raise InputError(f"{args.like}: not a raster GDAL can read: {exc}") from None
    try:
        frame = read_vectors(args.vectors, warn=False)  # what it left out: in "warnings"
        dtype = schema.label_dtype if schema is not None else np.uint8
        labels = rasterize_vectors(frame, grid, args.attribute, schema, dtype=dtype)
    except VectorError as exc:
        raise InputError(f"{args.vectors}: {exc}") from None
    paths = write_label_geotiff(args.output, labels, grid, schema, overwrite=args.overwrite)
    return {
        **_written(paths),
        "labelled_pixels": int((labels > 0).sum()),
        "warnings": frame.attrs["domainseg_report"],
    }


def rasterio_errors() -> type[Exception]:
    """Rasterio's error base class (imported when needed)."""
    from rasterio.errors import RasterioError

    return RasterioError


def _labels(path: Path, **options: Any) -> Read:
    """Load a label map and check it holds class ids: integers, 0 or more.

    Whole numbers stored as floating point (some tools write label NIfTIs so) become integers.
    """
    loaded = load(path, **options)
    array = loaded.array
    if array.dtype.kind == "f" and np.isfinite(array).all() and (array == np.round(array)).all():
        array = loaded.array = array.astype(np.int64)
    if array.dtype.kind not in "biu":
        raise InputError(
            f"{path}: a label map holds integer class ids; this one holds {array.dtype} values "
            "(an image, not labels?)",
            path,
        )
    if array.dtype.kind == "i" and array.size and int(array.min()) < 0:
        raise InputError(
            f"{path}: negative label {int(array.min())}; class ids are 1-65535 and 0 is unlabeled",
            path,
        )
    return loaded


def _pair(first: Path, second: Path, resample: bool) -> tuple[Read, Read, list[str]]:
    """A and B read, B on A's grid (resampled when asked)."""
    a, b = _labels(first), _labels(second)
    warnings = []
    if a.domain == "array" or b.domain == "array":
        if a.array.shape != b.array.shape:
            raise InputError(
                f"{second}: shape {b.array.shape} differs from {first} ({a.array.shape})"
            )
        return a, b, warnings
    if same_grid(a, b):
        return a, b, warnings
    if not resample:
        raise InputError(
            f"{second}: not on the grid of {first}; pass --resample to resample it "
            "(nearest neighbour) onto the first one's grid"
        )
    from dataclasses import replace

    warnings.append(f"{second} resampled (nearest neighbour) onto the grid of {first}")
    return a, replace(b, array=resample_onto(b, a), geometry=a.geometry), warnings


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """Per-class Dice, IoU, hd95, msd (physical units), sizes, and Cohen's kappa of A and B.

    With a class tree (``--schema``, or the one A carries) also per level of the tree; with
    ``--instances`` also matched instances (IoU >= 0.5), precision, recall, F1 and panoptic
    quality of the "objects" classes (every class without such a schema).
    """
    from napari_domainseg.ops.metrics import compare as compare_maps

    a, b, warnings = _pair(args.a, args.b, args.resample)
    schema = _schema(getattr(args, "schema", None), a.schema)
    (class_a, inst_a), (class_b, inst_b) = _sides([a, b], getattr(args, "instances", False))
    instances = (inst_a, inst_b) if inst_a is not None and inst_b is not None else None
    result = compare_maps(class_a, class_b, a.spacing, schema=schema, instances=instances)
    result["unit"] = a.unit
    result["warnings"] = warnings
    return result


def _sides(reads: list[Read], instances: bool) -> list[tuple[np.ndarray, Any]]:
    """Each label map as (class map, its instances when ``instances`` is asked, else ``None``).

    A file that carries an instance table (``Read.instances`` or ``metadata["instances"]``)
    holds an instance map: its class map is derived from the table, its instances are the
    drawn ones. Otherwise the class map's connected parts are the instances.
    """
    from napari_domainseg.labels.instances import InstanceError, InstanceTable, semantic_map
    from napari_domainseg.ops.instance_metrics import Instances

    sides: list[tuple[np.ndarray, Any]] = []
    for read in reads:
        table = getattr(read, "instances", None) or read.metadata.get("instances")
        if table is not None and not isinstance(table, InstanceTable):
            try:
                table = InstanceTable.from_records(table)
            except InstanceError as exc:
                raise InputError(f"{read.path}: {exc}", read.path) from None
        if table is not None:
            sides.append((semantic_map(read.array, table), Instances(read.array, table)))
        else:
            from_classes = Instances.from_classes(read.array) if instances else None
            sides.append((read.array, from_classes))
    return [(class_map, found if instances else None) for class_map, found in sides]


def agreement(args: argparse.Namespace) -> dict[str, Any]:
    """Pairwise Dice per class and Fleiss' kappa across N annotators' label maps.

    ``--schema`` (or the first file's class tree): also Dice per level of the tree;
    ``--instances``: also instance figures per pair (as ``compare``).
    """
    from napari_domainseg.ops.metrics import agreement as agreement_of

    if len(args.files) < 2:
        raise InputError("agreement needs at least two label files")
    first = _labels(args.files[0])
    reads = [first] + [_pair(args.files[0], path, False)[1] for path in args.files[1:]]
    schema = _schema(getattr(args, "schema", None), first.schema)
    sides = _sides(reads, getattr(args, "instances", False))
    maps = [class_map for class_map, _ in sides]
    instances = [i for _, i in sides] if all(i is not None for _, i in sides) else None
    return agreement_of(
        maps, first.spacing, [p.name for p in args.files], schema=schema, instances=instances
    )


def stats(args: argparse.Namespace) -> dict[str, Any]:
    """Count, size (mL or m2) and share of each class, and image statistics with ``--like``."""
    from napari_domainseg.ops.statistics import ClassStatistics

    labels = _labels(args.labels)
    image = None
    geometry = labels
    if args.like is not None:
        reference = load(args.like, labels=False)
        _on_reference(labels, reference)
        image, geometry = reference.array, reference
    element = float(np.prod(geometry.spacing))
    if geometry.domain == "medical":
        unit, factor = "mL", 1e-3
    elif geometry.domain == "geo":
        unit = "m2" if geometry.unit in ("metre", "meter", "m") else f"{geometry.unit}2"
        factor = 1.0
    else:
        unit, factor = "voxels", 1.0
    values = image if image is not None and np.shape(image) == labels.array.shape else None
    valid = None
    if image is not None and geometry.domain == "geo":  # nodata and masked pixels: unlabeled
        from napari_domainseg.geo.nodata import image_validity

        valid = image_validity(geometry.path, image)
    records = labels.metadata.get("instances")
    if records is not None:  # an instance map: per object, and per class from its objects
        return _instance_stats(labels, records, geometry, values)
    table = ClassStatistics(labels.array, values, element, unit, factor, valid=valid)
    names = {c.id: c.name for c in labels.schema.classes} if labels.schema else None
    return {"unit": unit, "classes": [vars(row) for row in table.rows(names)]}


def _instance_stats(labels: Read, records: Any, geometry: Read, values: Any) -> dict[str, Any]:
    """``stats`` of a file holding instances: one row per object and the class summary."""
    from napari_domainseg.labels.instances import InstanceTable
    from napari_domainseg.ops.statistics import class_summary, instance_statistics

    table = InstanceTable.from_records(records)
    unit = "mm" if geometry.domain == "medical" else geometry.unit
    rows = instance_statistics(
        labels.array, table, geometry.spacing, unit, intensities=values, schema=labels.schema
    )
    summary = class_summary(rows, labels.schema)
    return {
        "unit": rows[0].unit if rows else unit,
        "classes": [vars(row) for row in summary],
        "instances": [vars(row) for row in rows],
    }


def chips(args: argparse.Namespace) -> dict[str, Any]:
    """Training tiles of an image and its labels: GeoTIFF pairs for rasters, .npz for volumes."""
    from napari_domainseg.cli.chips import write_chips

    image = load(args.image, labels=False)
    labels = _labels(args.labels, reference=image)
    _on_reference(labels, image)
    array = class_map_of(labels)  # an instance file: its classes are the class masks
    if image.domain == "geo" and image.array.ndim == 2:
        import rasterio

        with rasterio.open(args.image) as src:  # every band
            image.array = src.read()
    instances = table = None
    if getattr(args, "instances", None) is not None:
        from napari_domainseg.cli.chips import instance_table, read_instance_table

        instance_file = _labels(args.instances, reference=image)
        instances = _on_reference(instance_file, image)
        given = None if args.instance_table is None else read_instance_table(args.instance_table)
        if given is None and "instances" in instance_file.metadata:  # the file's own table
            from napari_domainseg.labels.instances import InstanceTable

            given = InstanceTable.from_records(instance_file.metadata["instances"])
        table = instance_table(instances, array, given, source=str(args.instances))
    elif getattr(args, "instance_table", None) is not None:
        raise InputError("--instance-table needs --instances (the instance map it describes)")
    return write_chips(
        image, array, args.output, args.size, args.overlap, args.min_labelled, args.balance,
        overwrite=args.overwrite, schema=labels.schema, instances=instances, table=table,
        coco=getattr(args, "coco", False),
    )  # fmt: skip


def batch(args: argparse.Namespace) -> dict[str, Any]:
    """Run a subcommand over many inputs in parallel (dask.distributed); a results table."""
    from napari_domainseg.atomic import check_writable
    from napari_domainseg.cli.batch import expand_inputs, private_row, run_batch, write_table

    inputs = expand_inputs(args.inputs)
    if not inputs:
        raise InputError(f"{args.inputs}: no inputs match")
    if args.results is not None:  # before the run, not after it
        check_writable(args.results, args.overwrite)
    show = getattr(args, "show_patient_data", False)
    arguments = list(args.arguments)
    if show and args.task == "info" and "--show-patient-data" not in arguments:
        arguments.append("--show-patient-data")
    raw = run_batch(args.task, inputs, arguments, args.scheduler, args.workers)
    results = raw if show else [private_row(row) for row in raw]
    if args.results is not None:
        write_table(results, args.results, overwrite=args.overwrite)
    failed = [r for r in results if r["exit_code"] != 0]
    summary = {
        "task": args.task,
        "inputs": len(results),
        "succeeded": len(results) - len(failed),
        "failed": [{"input": r["input"], "error": r["error"]} for r in failed],
        "results": results,
    }
    if failed:
        for row in raw:  # the user's own terminal: the paths as given
            if row["exit_code"] != 0:
                print(f"domainseg: {row['error'] or row['input'] + ': failed'}", file=sys.stderr)
        raise BatchFailed(summary)
    return summary


class BatchFailed(InputError):
    """Some inputs of a batch failed; the summary is still printed."""

    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__(f"{len(summary['failed'])} of {summary['inputs']} inputs failed")
        self.summary = summary


def _instance_lines(section: dict[str, Any]) -> list[str]:
    """The instance figures as text rows (a class per row, then the overall one)."""
    lines = [f"instances (IoU >= {section['threshold']:g})  count_a  count_b  matched  "
             "precision  recall  f1  pq"]  # fmt: skip
    rows = [*section["classes"].items(), ("overall", section["overall"])]
    for name, m in rows:
        lines.append(
            f"{name}  {m['count_a']}  {m['count_b']}  {m['matched']}  {m['precision']:.4f}  "
            f"{m['recall']:.4f}  {m['f1']:.4f}  {m['pq']:.4f}"
        )
    return lines


def as_text(command: str, result: dict[str, Any]) -> str:
    """Human-readable rendering of a result."""
    if "written" in result and len(result) <= 3:
        extra = {k: v for k, v in result.items() if k not in ("written", "warnings")}
        lines = [f"wrote {p}" for p in result["written"]]
        lines += [f"{k}: {v}" for k, v in extra.items()]
        lines += [f"warning: {w}" for w in result.get("warnings", [])]
        return "\n".join(lines)
    if command == "compare":
        lines = [
            f"class  dice    iou     hd95({result['unit']})  msd({result['unit']})  size_a  size_b"
        ]
        for cls, m in result["classes"].items():
            hd95 = "-" if m["hd95"] is None else f"{m['hd95']:.3f}"
            msd = "-" if m["msd"] is None else f"{m['msd']:.3f}"
            lines.append(
                f"{cls:>5}  {m['dice']:.4f}  {m['iou']:.4f}  {hd95:>9}  {msd:>8}  "
                f"{m['size_a']:.4g}  {m['size_b']:.4g}"
            )
        lines.append(f"Cohen's kappa: {result['kappa']:.4f}")
        if "levels" in result:
            lines.append("level  dice    iou")
            for path, m in result["levels"].items():
                lines.append(f"{'  ' * m['depth']}{path}  {m['dice']:.4f}  {m['iou']:.4f}")
        if "instances" in result:
            lines += _instance_lines(result["instances"])
        lines += [f"warning: {w}" for w in result.get("warnings", [])]
        return "\n".join(lines)
    if command == "agreement":
        lines = [f"Fleiss' kappa: {result['fleiss_kappa']:.4f}"]
        for pair in result["pairs"]:
            dice = ", ".join(f"{c}: {d:.3f}" for c, d in pair["dice"].items())
            lines.append(f"{pair['a']} vs {pair['b']}: Dice {dice}")
            if "levels" in pair:
                levels = ", ".join(f"{c}: {d:.3f}" for c, d in pair["levels"].items())
                lines.append(f"  Dice per level: {levels}")
            if "instances" in pair:
                lines += ["  " + line for line in _instance_lines(pair["instances"])]
        return "\n".join(lines)
    if command == "batch":
        lines = [f"{result['succeeded']} of {result['inputs']} inputs succeeded"]
        lines += [f"failed: {row['input']}: {row['error']}" for row in result["failed"]]
        return "\n".join(lines)
    if command == "stats" and "instances" in result:
        unit = result["unit"]
        lines = [f"class  instances  size({unit})"]
        for row in result["classes"]:
            indent = "  " * row["depth"]
            lines.append(f"{indent}{row['class_path']}  {row['instances']}  {row['size']:.4g}")
        lines.append(f"instance  class  size({unit})  mean  provenance")
        for row in result["instances"]:
            mean = "" if row["mean"] is None else f"{row['mean']:.4g}"
            cells = (row["id"], row["class_path"], f"{row['size']:.4g}", mean, row["provenance"])
            lines.append("  ".join(map(str, cells)))
        return "\n".join(lines)
    if command == "stats":
        lines = [f"label  name  count  size({result['unit']})  share"]
        for row in result["classes"]:
            cells = (row["label"], row["name"], row["count"], f"{row['size']:.4g}")
            lines.append("  ".join(map(str, cells)) + f"  {row['share']:.3f}")
        return "\n".join(lines)
    return "\n".join(f"{k}: {v}" for k, v in result.items())
