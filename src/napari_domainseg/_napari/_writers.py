"""npe2 writers: labels to NIfTI, NRRD, Slicer .seg.nrrd and DICOM SEG; images to NIfTI/NRRD.

The geometry written is the exact voxel-to-patient affine kept in the layer
metadata when the layer still sits where the plugin placed it (tilted and
oblique series included); otherwise it is the layer's own data-to-world
transform, so a labels layer aligned with its image in napari exports aligned.

Writers are atomic: the file (and its sidecar) is written under a temporary name and moved
into place, so a failure leaves any earlier file as it was. They replace an existing file:
napari's Save dialog has asked the user to confirm that (Qt's file dialog), and a script that
calls ``viewer.layers.save(path)`` names the file it wants. The core exporters and the
command line never replace a file unless told (``overwrite=True``, ``--overwrite``).

Labels made with the Assist tab carry the provenance of the accepted pixels
(:func:`._layer_state.assist_of`); every label export writes its compact form
(:func:`napari_domainseg.ops.assist.accept.export_record`: models, acceptances still
applied, accepted pixels as runs, per-slice or per-tile review status) into the
file's sidecar, header, private block or tag.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_domainseg._napari import _layer_state as state

__all__ = [
    "write_geo_labels",
    "write_geo_labels_cog",
    "write_image",
    "write_image_unknown_geometry",
    "write_labels",
    "write_labels_unknown_geometry",
    "write_seg_new_uids",
]

NAPARI_CONFIRMS_OVERWRITE = True
"""napari calls writers after its Save dialog confirmed replacing an existing file."""


def _instances_option(attributes: dict[str, Any]) -> dict[str, Any]:
    """``{"instances": table}`` for an instance layer (values are instance ids), else ``{}``."""
    table = state.instances_of(attributes)
    return {} if table is None else {"instances": table}


def assist_provenance(attributes: dict[str, Any], labels: np.ndarray) -> dict | None:
    """The compact assisted-labeling provenance to export with ``labels``, or None."""
    assist = state.assist_of(attributes)
    if not assist:
        return None
    from napari_domainseg.ops.assist.accept import export_record

    return export_record(assist, labels)


def _check_volume(path: str, data: Any) -> np.ndarray:
    array = np.asarray(data)
    if array.ndim != 3:
        raise ValueError(
            f"Cannot write {path}: these formats hold 3D volumes and the layer has "
            f"{array.ndim} dimensions"
        )
    return array


def write_labels(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write a labels layer as NIfTI, NRRD, ``.seg.nrrd`` or DICOM SEG (by extension)."""
    return _write_labels(path, data, attributes)


def write_seg_new_uids(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write a labels layer as DICOM SEG, generating the UIDs an anonymised series lacks.

    The Save dialog's *DICOM SEG (generate source UIDs for an anonymised series)*;
    the SEG records that its source UIDs were generated.
    """
    if not path.lower().endswith(".dcm"):
        raise ValueError(f"Cannot write {path}: this file type writes DICOM SEG (.dcm) only")
    return _write_labels(path, data, attributes, seg_new_uids=True)


def write_labels_unknown_geometry(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write labels of a volume whose geometry is unknown, on its stand-in grid.

    The Save dialog's *Medical label map, geometry unknown (export anyway)*; the
    sidecar (NIfTI) or header (NRRD) records "geometry unknown".
    """
    return _write_labels(path, data, attributes, allow_unknown_geometry=True)


def _write_labels(path: str, data: Any, attributes: dict[str, Any], **options: Any) -> list[str]:
    from napari_domainseg.medical.export import export_labels
    from napari_domainseg.medical.provenance import UnknownGeometryError

    array = _check_volume(path, data)
    entry = state.info(attributes)
    entry.pop("assist", None)
    assist = assist_provenance(attributes, array)
    if assist:
        entry["assist"] = assist
    if path.lower().endswith(".dcm"):
        entry = _with_patient_data_choice(entry, attributes)
    try:
        written = export_labels(
            path,
            array,
            state.export_volume_geometry(attributes, array.shape),
            schema=state.schema_of(attributes),
            image_metadata=entry,
            overwrite=NAPARI_CONFIRMS_OVERWRITE,
            **_instances_option(attributes),
            **options,
        )
    except (FileExistsError, UnknownGeometryError):  # these name the file themselves
        raise
    except ValueError as exc:  # DICOM SEG without a DICOM source, bad values, ...
        raise ValueError(f"Cannot write {path}: {exc}") from None
    return [str(p) for p in written]


def _with_patient_data_choice(entry: dict[str, Any], attributes: dict[str, Any]) -> dict[str, Any]:
    """Labels metadata plus the source image's patient data, when *Show patient data* was on.

    Labels layers never inherit patient data; a DICOM SEG then leaves out where the
    patient was scanned (institution, station, device serial) unless the image it was
    drawn on, still open, shows patient data.
    """
    if entry.get("patient"):
        return entry
    try:
        import napari

        viewer = napari.current_viewer()
    except Exception:
        return entry
    name = (entry.get("source_image") or {}).get("name")
    geometry = state.volume_geometry_of(attributes)
    series = geometry.source.series_instance_uid if geometry is not None else None
    for layer in viewer.layers if viewer is not None and name else []:
        image = state.volume_geometry_of(layer)
        same = image is not None and image.source.series_instance_uid == series
        if layer.name == name and same and state.get(layer, "patient"):
            return {**entry, "patient": state.get(layer, "patient")}
    return entry


def write_image(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write an image layer as NIfTI or NRRD (by extension)."""
    return _write_image(path, data, attributes)


def write_image_unknown_geometry(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write an image whose geometry is unknown, on its stand-in grid (recorded in the sidecar)."""
    return _write_image(path, data, attributes, allow_unknown_geometry=True)


def _write_image(
    path: str, data: Any, attributes: dict[str, Any], allow_unknown_geometry: bool = False
) -> list[str]:
    from napari_domainseg.medical.export import export_image
    from napari_domainseg.medical.provenance import UnknownGeometryError

    array = _check_volume(path, data)
    try:
        written = export_image(
            path,
            array,
            state.export_volume_geometry(attributes, array.shape),
            overwrite=NAPARI_CONFIRMS_OVERWRITE,
            metadata=state.info(attributes),
            allow_unknown_geometry=allow_unknown_geometry,
        )
    except (FileExistsError, UnknownGeometryError):  # these name the file themselves
        raise
    except ValueError as exc:
        raise ValueError(f"Cannot write {path}: {exc}") from None
    return [str(p) for p in written]


def _write_geo(path: str, data: Any, attributes: dict[str, Any], cog: bool) -> list[str]:
    from napari_domainseg.geo.export import export_labels
    from napari_domainseg.geo.vectors import IN_MEMORY_BYTES

    nbytes = int(np.prod(np.shape(data))) * np.dtype(data.dtype).itemsize
    if not isinstance(data, np.ndarray) and nbytes > IN_MEMORY_BYTES:
        raise ValueError(  # a huge label raster opened lazily (read-only): never read whole
            f"Cannot write {path}: these {' x '.join(map(str, np.shape(data)))} labels are shown "
            "from their file and too large to export from napari; polygonize the file with "
            "'domainseg polygonize LABELS.tif -o OUT.gpkg --tiled ROWS'"
        )
    array = np.asarray(data)
    if array.ndim != 2:
        raise ValueError(
            f"Cannot write {path}: GeoTIFF and vector exports hold 2D labels; the layer has "
            f"{array.ndim} dimensions"
        )
    grid = state.export_raster_grid(attributes, array.shape)
    overwrite = NAPARI_CONFIRMS_OVERWRITE
    assist = assist_provenance(attributes, array)
    try:
        written = export_labels(
            path, array, grid, state.schema_of(attributes), overwrite=overwrite,
            assist=assist, cog=cog, **_instances_option(attributes),
        )  # fmt: skip
    except FileExistsError:
        raise
    except ValueError as exc:
        raise ValueError(f"Cannot write {path}: {exc}") from None
    return [str(p) for p in written]


def write_geo_labels(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write 2D labels as GeoTIFF (``.tif``) or polygons (``.geojson``, ``.gpkg``, ``.fgb``)."""
    return _write_geo(path, data, attributes, cog=False)


def write_geo_labels_cog(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write 2D labels as a Cloud-Optimized GeoTIFF."""
    return _write_geo(path, data, attributes, cog=True)
