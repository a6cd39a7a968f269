"""NIfTI images and label maps in the plugin's world convention.

NIfTI stores voxels as (i, j, k) with an affine to RAS; the plugin stores
arrays as (k, j, i) with an affine to LPS (z, y, x). :func:`to_nifti` and
:func:`volume_from_nifti` convert between the two exactly.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np

from napari_domainseg.atomic import atomic_write, check_writable
from napari_domainseg.labels.schema import LabelSchema
from napari_domainseg.medical.geometry import reorient
from napari_domainseg.medical.geometry_checks import (
    GeometryWarning,
    affine_problem,
    mark_geometry_unknown,
    spacing_problem,
    unit_affine,
)
from napari_domainseg.medical.instance_segments import INSTANCES_KEY
from napari_domainseg.medical.provenance import SIDECAR_KEY, image_sidecar, restore_source_record
from napari_domainseg.medical.volume import Volume

if TYPE_CHECKING:
    from napari_domainseg.labels.instances import InstanceTable

ASSIST_KEY = "assist"
"""Key of the assisted-labeling provenance in the ``.labels.json`` sidecar."""

_REVERSE = np.eye(4)[[2, 1, 0, 3]]  # (z, y, x, 1) <-> (x, y, z, 1); also (k, j, i) <-> (i, j, k)
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def ras_affine(affine_zyx: np.ndarray) -> np.ndarray:
    """NIfTI affine ((i, j, k) to RAS x, y, z) of a plugin affine ((k, j, i) to LPS z, y, x)."""
    return _LPS_TO_RAS @ _REVERSE @ np.asarray(affine_zyx, dtype=float) @ _REVERSE


def plugin_affine(ras: np.ndarray) -> np.ndarray:
    """Inverse of :func:`ras_affine`."""
    return _REVERSE @ _LPS_TO_RAS @ np.asarray(ras, dtype=float) @ _REVERSE


def to_nifti(array: np.ndarray, affine_zyx: np.ndarray, labels: bool = False) -> nib.Nifti1Image:
    """A NIfTI-1 image of ``array`` (axes k, j, i) placed by ``affine_zyx``.

    Both qform and sform hold the affine (codes 1, scanner) so every reader agrees;
    the data is stored unscaled (``scl_slope`` 1, ``scl_inter`` 0). A label map
    gets the ``NIFTI_INTENT_LABEL`` intent.
    """
    data = np.asarray(array).transpose(2, 1, 0)
    affine = ras_affine(affine_zyx)
    image = nib.Nifti1Image(data, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_slope_inter(1.0, 0.0)
    image.header.set_xyzt_units("mm")
    if labels:
        image.header.set_intent("label")
    return image


def nifti_geometry(
    image: nib.Nifti1Image, path: str | os.PathLike[str]
) -> tuple[np.ndarray, list[str], list[str]]:
    """The RAS affine to use, the warnings to give, and why the geometry is unknown (if so).

    The sform is used when its code is set and it is usable (finite, non-zero
    axes, not singular: :func:`.geometry_checks.affine_problem`), else the
    qform under the same test (with a warning), as the NIfTI standard ranks
    them. When neither is usable, or both codes are 0, the voxels are placed
    on an axis-aligned grid of their pixdim (1 mm when pixdim is unusable too)
    and the geometry is marked unknown.
    """
    name = Path(path).name
    header = image.header
    candidates = []
    if int(header.get("sform_code", 0)) > 0:
        candidates.append(("sform", lambda: header.get_sform()))
    if int(header.get("qform_code", 0)) > 0:
        candidates.append(("qform", lambda: header.get_qform()))
    problems: list[str] = []
    for what, get in candidates:
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                affine = np.asarray(get(), dtype=float)
        except Exception as exc:  # nibabel raises several kinds on broken quaternions
            problems.append(f"its {what} cannot be computed ({exc})")
            continue
        problem = affine_problem(affine, what)
        if problem is None:
            notes = [f"{name}: {'; '.join(problems)}; placed by its {what}."] if problems else []
            return affine, notes, []
        problems.append(f"its {problem}")
    reason = "; ".join(problems) if problems else "no sform or qform (both codes are 0)"
    zooms = [float(z) for z in header.get_zooms()[:3]]
    zooms += [1.0] * (3 - len(zooms))
    fallback = unit_affine(zooms[::-1])  # (k, j, i) spacing on the plugin's grid
    grid = "its voxel size (pixdim)" if spacing_problem(zooms, "pixdim") is None else "1 mm voxels"
    message = (
        f"{name}: geometry unknown: {reason}. Shown on an axis-aligned grid of {grid} at the "
        "origin; "
        "positions and exports are not in patient millimetres. Fix the header "
        "(e.g. with nibabel or fslorient) to place it."
    )
    return ras_affine(fallback), [message], [reason]


def volume_from_nifti(path: str | os.PathLike[str]) -> Volume:
    """Read a NIfTI file as a volume, reoriented (lossless) to world (z, y, x).

    The metadata says whether it is a label map (``"is_labels"``: the label
    intent, a ``.labels.json`` sidecar, or integer values that look like
    labels) and holds the sidecar's schema (``"schema"``) when there is one, and its
    instance records (``"instances"``: the file is an instance map) when it has them.
    An unusable sform/qform is reported with a :class:`GeometryWarning`
    (see :func:`nifti_geometry`); an unknown geometry is recorded under
    ``"geometry_unknown"``.
    """
    image = nib.load(str(path))
    if len(image.shape) > 3 and any(n > 1 for n in image.shape[3:]):
        raise ValueError(f"{path}: {len(image.shape)}D image; only 3D volumes are supported")
    data = np.asanyarray(image.dataobj)
    data = data.reshape(data.shape[:3]) if data.ndim > 3 else data
    if data.ndim == 2:
        data = data[:, :, None]
    array = data.transpose(2, 1, 0)
    ras, notes, unknown = nifti_geometry(image, path)
    view, affine, _, _ = reorient(array, plugin_affine(ras))
    metadata: dict = {"source_format": "NIfTI"}
    for reason in unknown:
        mark_geometry_unknown(metadata, reason)
    labels_sidecar = Path(path).with_name(f"{nifti_stem(path)}.labels.json")
    content = _read_sidecar(labels_sidecar)
    if not labels_sidecar.is_file():
        content = _read_sidecar(Path(path).with_name(f"{nifti_stem(path)}.json"))
    elif "label_schema" in content:
        metadata["schema"] = content["label_schema"]
    if labels_sidecar.is_file() and INSTANCES_KEY in content:
        metadata[INSTANCES_KEY] = content[INSTANCES_KEY]
    note = restore_source_record(metadata, content.get(SIDECAR_KEY), Path(path).name)
    notes += [note] if note else []
    if notes:
        metadata["warnings"] = notes
    for note in notes:
        warnings.warn(note, GeometryWarning, stacklevel=2)
    intent = image.header.get_intent()[0] if hasattr(image.header, "get_intent") else ""
    metadata["is_labels"] = intent == "label" or "schema" in metadata or looks_like_labels(view)
    return Volume(np.ascontiguousarray(view), affine, metadata)


def _read_sidecar(path: Path) -> dict:
    """A JSON sidecar's content; empty when absent or damaged (it must not hide the volume)."""
    if not path.is_file():
        return {}
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, TypeError, RecursionError, OSError):
        return {}
    return content if isinstance(content, dict) else {}


def looks_like_labels(array: np.ndarray, max_values: int = 32) -> bool:
    """True for a mask rather than an image: non-negative integers, few values, mostly 0.

    Used only when a file carries no explicit sign (label intent, label table,
    segment fields). Images rarely pass: they have many distinct values, or
    little background.
    """
    if not np.issubdtype(array.dtype, np.integer) or array.size == 0:
        return False
    sample = array.reshape(-1)[:: max(1, array.size // 1_000_000)]
    values, counts = np.unique(sample, return_counts=True)
    if values[0] != 0 or len(values) > max_values or counts[0] < sample.size / 2:
        return False
    return bool(array.min() >= 0 and len(np.unique(array)) <= max_values)


def nifti_stem(path: str | os.PathLike[str]) -> str:
    """File name without ``.nii`` or ``.nii.gz`` (``"mask.nii.gz"`` -> ``"mask"``)."""
    name = Path(path).name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def schema_sidecar(
    schema: LabelSchema,
    source: dict | None = None,
    assist: dict | None = None,
    instances: InstanceTable | None = None,
) -> dict:
    """The label table written beside a mask: ids, names, colours and descriptions.

    ``source`` (:func:`.provenance.source_record`) is added under ``"source"`` when not empty,
    ``assist`` (which pixels came from the assistant:
    :func:`napari_domainseg.ops.assist.accept.export_record`) under ``"assist"``, and for an
    instance map the instance records (id, class id, attributes, provenance) under
    ``"instances"``.
    """
    sidecar: dict = {"label_schema": schema.to_dict()}
    if instances is not None:
        sidecar[INSTANCES_KEY] = instances.to_records()
    if source:
        sidecar[SIDECAR_KEY] = source
    if assist:
        sidecar[ASSIST_KEY] = assist
    return sidecar


def write_nifti(
    path: str | os.PathLike[str],
    array: np.ndarray,
    affine_zyx: np.ndarray,
    schema: LabelSchema | None = None,
    overwrite: bool = False,
    source: dict | None = None,
    assist: dict | None = None,
    instances: InstanceTable | None = None,
) -> list[Path]:
    """Write ``array`` as ``.nii``/``.nii.gz`` atomically, with a JSON sidecar.

    Labels (a ``schema`` given) get ``STEM.labels.json``: the label table, plus
    the ``source`` record (:func:`.provenance.source_record`: scaling, unknown
    geometry) and the ``assist`` provenance when there are, and with ``instances`` (``array``
    then being the instance map) the instance records. Images get ``STEM.json``
    (as dcm2niix writes beside its NIfTI) only when there is a ``source`` record.

    Returns the written paths (the image, then the sidecar).
    """
    path = Path(path)
    image = to_nifti(array, affine_zyx, labels=schema is not None)
    sidecar, content = None, None
    if schema is not None:
        sidecar = path.with_name(f"{nifti_stem(path)}.labels.json")
        content = schema_sidecar(schema, source, assist, instances)
    elif source:
        sidecar, content = path.with_name(f"{nifti_stem(path)}.json"), image_sidecar(source)
    for target in (path, sidecar) if sidecar is not None else (path,):
        check_writable(target, overwrite)  # refuse before writing anything
    with atomic_write(path, overwrite=overwrite) as tmp:
        nib.save(image, str(tmp))
        if sidecar is not None:  # inside: a failed sidecar leaves no image without its table
            with atomic_write(sidecar, overwrite=overwrite) as side:
                side.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    return [path] if sidecar is None else [path, sidecar]
