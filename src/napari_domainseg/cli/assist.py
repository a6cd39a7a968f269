"""``domainseg assist``: train the pixel classifier on a scribble file and label the whole image.

The scribbles (0 = unlabeled) must lie on the image's grid; the predicted labels are written on
that grid in the image's kind of format: a label GeoTIFF on the source grid and CRS for rasters,
a NIfTI/NRRD with the image's affine for volumes. Every pixel with data gets a class; pixels
without data (nodata, NaN) stay 0. The painted pixels keep the class they were painted with
(the panel's "paint only over unlabeled" policy). A saved model (``--model``) is applied as it
is, so ``domainseg batch assist`` pre-labels many images of the same kind.

Only the standard library is imported here; the classifier and the format libraries are
imported when the command runs (the CLI starts fast).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
from pathlib import Path
from typing import Any

VOLUME_OUTPUTS = (".nii.gz", ".nii", ".seg.nrrd", ".nrrd")
"""Outputs of a volume: NIfTI or NRRD (3D Slicer's .seg.nrrd too)."""
PROVENANCE_KEY = "assisted"
"""Key of the provenance record in NIfTI sidecars and the NRRD source field."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``domainseg assist``."""
    parser.add_argument("image", type=Path, help="NIfTI/NRRD/DICOM volume or GeoTIFF raster")
    parser.add_argument(
        "--scribbles", type=Path,
        help="label file on the image's grid (0 = unlabeled); optional with --model",
    )  # fmt: skip
    parser.add_argument(
        "-o", "--output", type=Path, required=True,
        help="predicted labels: .nii.gz, .nii, .nrrd, .seg.nrrd (volumes) or .tif (rasters)",
    )  # fmt: skip
    parser.add_argument("--probabilities", type=Path, help="per-class probabilities, same format")
    parser.add_argument("--uncertainty", type=Path, help="uncertainty map (0 sure .. 1 tie)")
    parser.add_argument("--save-model", type=Path, help="write the trained model here")
    parser.add_argument("--model", type=Path, help="apply this saved model instead of training")
    parser.add_argument(
        "--intensity", choices=("percentile", "hu", "raw"), default="percentile",
        help="intensity normalisation when training (hu: CT; raw: reflectance)",
    )  # fmt: skip
    parser.add_argument(
        "--regularise", action="store_true",
        help="smooth the probabilities and drop regions touching no stroke (organs; not for "
        "land cover)",
    )  # fmt: skip
    parser.add_argument("--schema", type=Path, help="label schema (YAML/JSON) or preset name")
    parser.add_argument("--overwrite", action="store_true")


def assist(args: argparse.Namespace) -> dict[str, Any]:
    """Train on scribbles (or apply a saved model) and write the predicted labels."""
    from napari_domainseg.cli import progress
    from napari_domainseg.cli.commands import _schema

    outputs = _check_outputs(args)
    progress.stage(f"reading {args.image.name}")
    return _run(args, outputs, _schema(getattr(args, "schema", None)))  # errors: as raised


def _suffix(path: Path, known: tuple[str, ...]) -> str | None:
    name = path.name.lower()
    return next((ext for ext in known if name.endswith(ext)), None)


def _check_outputs(args: argparse.Namespace) -> dict[str, Path]:
    """The outputs asked for, checked before any work: format, distinct, writable."""
    from napari_domainseg.atomic import check_writable
    from napari_domainseg.files import InputError
    from napari_domainseg.geo.suffixes import GEOTIFF_SUFFIXES, RASTER_SUFFIXES

    if args.scribbles is None and args.model is None:
        raise InputError(
            f"{args.image}: give --scribbles to train on, or --model to apply a saved model"
        )
    if args.model is not None and not args.model.is_file():
        raise InputError(
            f"{args.model}: no such model file; give a model written by "
            "'domainseg assist ... --save-model PATH'"
        )
    raster = args.image.suffix.lower() in RASTER_SUFFIXES
    known = GEOTIFF_SUFFIXES if raster else VOLUME_OUTPUTS
    kind = "raster" if raster else "volume"
    outputs = {
        name: path
        for name, path in (
            ("labels", args.output),
            ("probabilities", args.probabilities),
            ("uncertainty", args.uncertainty),
            ("model", args.save_model),
        )
        if path is not None
    }
    for name, path in outputs.items():
        if name == "model":
            continue
        allowed = known if name != "probabilities" or raster else (".nii.gz", ".nii")
        if _suffix(path, allowed) is None:
            raise InputError(
                f"{path}: the {name} of a {kind} are written as {', '.join(allowed)}; "
                "give a name with one of these extensions"
            )
    resolved = [p.resolve() for p in outputs.values()]
    if len(set(resolved)) != len(resolved):
        raise InputError(f"{args.output}: two outputs have the same file name; give each its own")
    for path in outputs.values():
        check_writable(path, args.overwrite)
    return outputs


def _run(args: argparse.Namespace, outputs: dict[str, Path], schema: Any) -> dict[str, Any]:
    import numpy as np

    from napari_domainseg.cli import progress
    from napari_domainseg.ops.assist import PixelClassifier
    from napari_domainseg.ops.assist.io import open_image, open_scribbles

    image, geometry = open_image(args.image)
    strokes = None
    if args.scribbles is not None:
        progress.stage(f"reading {args.scribbles.name}")
        strokes = np.asarray(open_scribbles(args.scribbles, geometry))
    warnings: list[str] = []
    if args.model is not None:
        model = PixelClassifier.load(args.model)
    else:
        model = _train(args, image, strokes, warnings)
    record = _provenance(args, model, strokes)
    progress.stage("predicting")
    with contextlib.ExitStack() as stack:  # the maps move into place once the labels are written
        maps = _Maps(outputs, geometry, image.shape, model, record, args.overwrite, stack)
        labels, valid = _predict(args, model, image, strokes, maps)
        if strokes is not None:  # the annotator's strokes stand where there is data
            if int(strokes.max(initial=0)) > np.iinfo(labels.dtype).max:
                labels = labels.astype(np.uint16)
            painted = (strokes > 0) & valid
            labels[painted] = strokes[painted].astype(labels.dtype, copy=False)
        progress.stage(f"writing {args.output.name}")
        written = [*_write_labels(outputs["labels"], geometry, labels, record, schema,
                                  args.overwrite), *maps.finish()]  # fmt: skip
    if "model" in outputs:
        written.append(model.save(outputs["model"], overwrite=args.overwrite))
    values, counts = np.unique(labels[labels > 0], return_counts=True)
    return {
        "written": [str(p) for p in written],
        "classes": {int(v): int(n) for v, n in zip(values, counts, strict=True)},
        "warnings": [*warnings, *geometry.warnings],
    }


def _train(args: argparse.Namespace, image: Any, strokes: Any, warnings: list[str]) -> Any:
    from napari_domainseg.ops.assist import PixelClassifier, default_recipe

    names = image.channel_names if len(image.channel_names) > 1 else ()
    recipe = default_recipe(
        image.spacing, image.unit, intensity=args.intensity, channel_names=names
    )
    model = PixelClassifier(recipe)
    summary = model.fit(image, strokes, args.scribbles.name)
    warnings.extend(f"{args.scribbles.name}: {w}" for w in summary.warnings)
    return model


def _predict(
    args: argparse.Namespace, model: Any, image: Any, strokes: Any, maps: _Maps
) -> tuple[Any, Any]:
    """Labels and validity of the whole image; each block's maps go to ``maps``."""
    import numpy as np

    from napari_domainseg.cli import progress
    from napari_domainseg.ops.assist.features import blocks

    if args.regularise:  # needs the whole proposal at once
        from napari_domainseg.ops.assist.regularise import regularise, smooth_probabilities

        proposal = model.predict(image, probabilities=True)
        if strokes is not None:
            proposal = regularise(proposal, strokes, image.spacing)
        else:
            proposal = smooth_probabilities(proposal, 2.0 * min(image.spacing), image.spacing)
        maps.add(proposal)
        return proposal.labels, proposal.valid
    shape = image.shape
    total = len(list(blocks(shape, model.chunk(image), tuple(slice(0, n) for n in shape))))
    labels = np.zeros(shape, dtype=np.uint8 if max(model.classes) <= 255 else np.uint16)
    valid = np.zeros(shape, dtype=bool)
    parts = model.predict_blocks(image, probabilities="probabilities" in maps.kinds)
    for part in progress.bar(parts, "predicting", total=total, unit="block"):
        labels[part.region] = part.labels
        valid[part.region] = part.valid
        maps.add(part)
    return labels, valid


class _Maps:
    """The probabilities and uncertainty asked for, filled block by block as they are predicted.

    Rasters: GeoTIFF bands written window by window into temporary files (a large scene's
    probabilities are never all in memory), moved into place when ``stack`` closes. Volumes:
    gathered, then written by :meth:`finish`.
    """

    def __init__(
        self, outputs: dict[str, Path], geometry: Any, shape: tuple[int, ...], model: Any,
        record: dict, overwrite: bool, stack: contextlib.ExitStack,
    ) -> None:  # fmt: skip
        import numpy as np

        self.kinds = [k for k in ("probabilities", "uncertainty") if k in outputs]
        self.outputs, self.geometry, self.model = outputs, geometry, model
        self.record, self.overwrite = record, overwrite
        self.arrays: dict[str, Any] = {}
        self.datasets: dict[str, Any] = {}
        for kind in self.kinds:
            if geometry.domain == "geo":
                self.datasets[kind] = self._open_raster(kind, stack)
            elif kind == "uncertainty":
                self.arrays[kind] = np.zeros(shape, dtype=np.float32)
            else:
                self.arrays[kind] = np.zeros((len(model.classes), *shape), dtype=np.float32)

    def _open_raster(self, kind: str, stack: contextlib.ExitStack) -> Any:
        import numpy as np

        from napari_domainseg.geo.label_raster import open_geotiff, write_assist_tag

        count = len(self.model.classes) if kind == "probabilities" else 1
        dst = stack.enter_context(
            open_geotiff(
                self.outputs[kind], self.geometry.grid, np.float32, count, overwrite=self.overwrite
            )
        )
        for index in range(1, count + 1):
            name = self.model.classes[index - 1] if kind == "probabilities" else None
            dst.set_band_description(index, f"probability of class {name}" if name else kind)
        write_assist_tag(dst, self.record)
        return dst

    def add(self, part: Any) -> None:
        """Write one block's maps (a :class:`~napari_domainseg.ops.assist.Proposal`)."""
        import numpy as np
        from rasterio.windows import Window

        values = {"probabilities": part.probabilities, "uncertainty": part.uncertainty}
        for kind in self.kinds:
            lead = (slice(None),) if kind == "probabilities" else ()
            if kind in self.arrays:
                self.arrays[kind][(*lead, *part.region)] = values[kind]
                continue
            rows, cols = part.region
            window = Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
            bands = values[kind] if lead else values[kind][None]
            pixels = np.where(part.valid, bands, np.nan).astype(np.float32)
            self.datasets[kind].write(pixels, window=window)

    def finish(self) -> list[Path]:
        """Write the gathered volume maps; the names of every map file."""
        written: list[Path] = []
        for kind in self.kinds:
            if kind in self.arrays:
                written += _write_volume_map(
                    self.outputs[kind], self.geometry, self.arrays[kind], kind, self.model,
                    self.record, self.overwrite,
                )  # fmt: skip
            else:
                written.append(self.outputs[kind])
        return written


def _provenance(args: argparse.Namespace, model: Any, strokes: Any) -> dict:
    """What the outputs record about how they were made."""
    import numpy as np

    return {
        "assisted": True,
        "source": "napari-domainseg assisted labeling (domainseg assist)",
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "image": args.image.name,
        "scribbles": args.scribbles.name if args.scribbles is not None else None,
        "strokes_kept": int(np.count_nonzero(strokes)) if strokes is not None else 0,
        "model_file": (args.model or args.save_model).name
        if (args.model or args.save_model)
        else None,
        "regularised": bool(args.regularise),
        "model": {
            "classes": list(model.classes),
            "recipe": model.recipe.to_dict(),
            "settings": model.header()["settings"],
            "versions": dict(model.versions),
            "trained_on": dict(model.trained_on),
        },
    }


def _write_labels(
    path: Path, geometry: Any, labels: Any, record: dict, schema: Any, overwrite: bool
) -> list[Path]:
    """The labels on the image's grid, with the provenance record; atomically."""
    import numpy as np

    from napari_domainseg.labels.schema import covering_schema

    if geometry.domain == "geo":
        from napari_domainseg.geo.label_raster import write_label_geotiff

        return write_label_geotiff(
            path, labels, geometry.grid, schema, overwrite=overwrite, assist=record
        )
    from napari_domainseg.medical.nifti import write_nifti
    from napari_domainseg.medical.nrrd_files import write_nrrd

    source = _volume_source(path, geometry, record)
    full = covering_schema(np.unique(labels), schema)
    writer = write_nrrd if _suffix(path, (".nrrd",)) else write_nifti
    return writer(path, labels, geometry.affine, full, overwrite, source=source)


def _volume_source(path: Path, geometry: Any, record: dict) -> dict[str, Any]:
    """The source record of a volume output, with the provenance under :data:`PROVENANCE_KEY`."""
    from napari_domainseg.medical.provenance import check_geometry_known, source_record

    check_geometry_known(path, geometry.metadata, False)
    return {**source_record(geometry.metadata), PROVENANCE_KEY: record}


def _write_volume_map(
    path: Path, geometry: Any, array: Any, kind: str, model: Any, record: dict, overwrite: bool
) -> list[Path]:
    """Uncertainty (NIfTI or NRRD) or probabilities (4-D NIfTI) with the image's affine."""
    from napari_domainseg.medical.nifti import write_nifti
    from napari_domainseg.medical.nrrd_files import write_nrrd

    source = _volume_source(path, geometry, record)
    if kind == "uncertainty":
        source["map"] = "uncertainty: 1 - (p_best - p_second); 0 where there is no data"
        writer = write_nrrd if _suffix(path, (".nrrd",)) else write_nifti
        return writer(path, array, geometry.affine, None, overwrite, source=source)
    source["map"] = "class probabilities, one volume per class (4th axis)"
    source["classes"] = list(model.classes)
    return _write_nifti_4d(path, array, geometry.affine, source, overwrite)


def _write_nifti_4d(
    path: Path, array: Any, affine: Any, source: dict, overwrite: bool
) -> list[Path]:
    """``(classes, z, y, x)`` as a 4-D NIfTI (x, y, z, class) with a ``STEM.json`` sidecar."""
    import nibabel as nib
    import numpy as np

    from napari_domainseg.atomic import atomic_write, check_writable
    from napari_domainseg.medical.nifti import nifti_stem, ras_affine
    from napari_domainseg.medical.provenance import image_sidecar

    sidecar = path.with_name(f"{nifti_stem(path)}.json")
    for target in (path, sidecar):
        check_writable(target, overwrite)
    ras = ras_affine(affine)
    image = nib.Nifti1Image(np.ascontiguousarray(np.asarray(array).transpose(3, 2, 1, 0)), ras)
    image.set_qform(ras, code=1)
    image.set_sform(ras, code=1)
    image.header.set_xyzt_units("mm")
    with atomic_write(path, overwrite=overwrite) as tmp:
        nib.save(image, str(tmp))
    with atomic_write(sidecar, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(image_sidecar(source), indent=2) + "\n", encoding="utf-8")
    return [path, sidecar]
