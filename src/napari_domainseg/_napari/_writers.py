"""npe2 writers: labels to NIfTI, NRRD, Slicer .seg.nrrd and DICOM SEG; images to NIfTI/NRRD.

The geometry written is the exact voxel-to-patient affine kept in the layer
metadata when the layer still sits where the plugin placed it (tilted and
oblique series included); otherwise it is the layer's own data-to-world
transform, so a labels layer aligned with its image in napari exports aligned.

Writers are atomic and never replace an existing file, except when napari's
Save dialog has already asked the user to confirm the overwrite.

Labels made with the Assist tab carry the provenance of the accepted pixels
(``metadata["domainseg"]["assist"]``); every label export writes its compact form
(:func:`napari_domainseg.ops.assist.accept.export_record`: models, acceptances still
applied, accepted pixels as runs, per-slice or per-tile review status) into the
file's sidecar, header, private block or tag.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np

from napari_domainseg._napari._layer_data import METADATA_KEY

__all__ = [
    "write_geo_labels",
    "write_geo_labels_cog",
    "write_image",
    "write_image_unknown_geometry",
    "write_labels",
    "write_labels_unknown_geometry",
    "write_seg_new_uids",
]

_SAVE_DIALOG = "_save_layers_dialog"
"""napari's Save dialog (QFileDialog, which confirms overwriting) calls writers from here."""


def overwrite_confirmed_by_napari() -> bool:
    """True when the write comes from napari's Save dialog, which confirmed any overwrite."""
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == _SAVE_DIALOG and "napari" in code.co_filename:
            return True
        frame = frame.f_back
    return False


def data_to_world(attributes: dict[str, Any], ndim: int) -> np.ndarray:
    """The layer's data-to-world matrix from its saved attributes (napari's composition)."""
    from napari.utils.transforms import Affine

    base = Affine(
        scale=attributes.get("scale", np.ones(ndim)),
        translate=attributes.get("translate", np.zeros(ndim)),
        rotate=attributes.get("rotate"),
        shear=attributes.get("shear"),
        ndim=ndim,
    ).affine_matrix
    extra = np.asarray(attributes.get("affine", np.eye(ndim + 1)), dtype=float)
    if extra.shape != base.shape:
        extra = np.eye(ndim + 1)
    return extra @ base


def layer_data_to_world(layer: Any) -> np.ndarray:
    """A live layer's data-to-world matrix (the same composition as :func:`data_to_world`)."""
    placement = {
        "scale": layer.scale,
        "translate": layer.translate,
        "rotate": layer.rotate,
        "shear": layer.shear,
        "affine": layer.affine.affine_matrix,
    }
    return data_to_world(placement, layer.ndim)


def export_affine(attributes: dict[str, Any], ndim: int) -> np.ndarray:
    """The exact affine to write: the metadata's, unless the layer was moved since."""
    current = data_to_world(attributes, ndim)
    entry = attributes.get("metadata", {}).get(METADATA_KEY, {})
    exact, display = entry.get("affine"), entry.get("display_affine", entry.get("affine"))
    if exact is None or np.shape(exact) != current.shape:
        return current
    exact, display = np.asarray(exact, dtype=float), np.asarray(display, dtype=float)
    scale = max(1.0, float(np.abs(current).max()))
    if np.allclose(current, display, atol=1e-6 * scale):
        return exact
    if not np.allclose(exact, display):
        warnings.warn(
            "the layer was moved after opening; it is exported where napari shows it, "
            "not on the acquired (oblique or tilted) geometry",
            stacklevel=2,
        )
    return current


def _schema(attributes: dict[str, Any]) -> Any:
    from napari_domainseg.labels.schema import LabelSchema

    entry = attributes.get("metadata", {}).get(METADATA_KEY, {})
    return LabelSchema.from_dict(entry["schema"]) if entry.get("schema") else None


def assist_provenance(attributes: dict[str, Any], labels: np.ndarray) -> dict | None:
    """The compact assisted-labeling provenance to export with ``labels``, or None."""
    assist = attributes.get("metadata", {}).get(METADATA_KEY, {}).get("assist")
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
    entry = dict(attributes.get("metadata", {}).get(METADATA_KEY, {}))
    entry.pop("assist", None)
    assist = assist_provenance(attributes, array)
    if assist:
        entry["assist"] = assist
    if path.lower().endswith(".dcm"):
        entry = _with_patient_data_choice(entry)
    try:
        written = export_labels(
            path,
            array,
            export_affine(attributes, array.ndim),
            schema=_schema(attributes),
            image_metadata=entry,
            overwrite=overwrite_confirmed_by_napari(),
            **options,
        )
    except (FileExistsError, UnknownGeometryError):  # these name the file themselves
        raise
    except ValueError as exc:  # DICOM SEG without a DICOM source, bad values, ...
        raise ValueError(f"Cannot write {path}: {exc}") from None
    return [str(p) for p in written]


def _with_patient_data_choice(entry: dict[str, Any]) -> dict[str, Any]:
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
    for layer in viewer.layers if viewer is not None and name else []:
        image = layer.metadata.get(METADATA_KEY, {})
        same = image.get("series_instance_uid") == entry.get("series_instance_uid")
        if layer.name == name and same and image.get("patient"):
            return {**entry, "patient": image["patient"]}
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
            export_affine(attributes, array.ndim),
            overwrite=overwrite_confirmed_by_napari(),
            metadata=attributes.get("metadata", {}).get(METADATA_KEY, {}),
            allow_unknown_geometry=allow_unknown_geometry,
        )
    except (FileExistsError, UnknownGeometryError):  # these name the file themselves
        raise
    except ValueError as exc:
        raise ValueError(f"Cannot write {path}: {exc}") from None
    return [str(p) for p in written]


def geo_grid(attributes: dict[str, Any], shape: tuple[int, int]) -> tuple[Any, Any]:
    """The grid and window to write 2D labels on: the source raster's, unless the layer moved.

    Returns ``(grid, window)``; ``window`` is ``(row, col, height, width)`` or ``None``.
    """
    from napari_domainseg.geo.label_raster import Grid
    from napari_domainseg.geo.raster import pixel_center_affine, transform_from_world_affine

    current = data_to_world(attributes, 2)
    entry = attributes.get("metadata", {}).get(METADATA_KEY, {})
    if entry.get("transform") is not None and entry.get("shape") is not None:
        grid = Grid.from_metadata(entry)
        window = tuple(entry["region"]) if entry.get("region") else None
        transform = grid.transform
        if window is not None:
            transform = grid.window_transform_of(window)
        expected = pixel_center_affine(transform)
        scale = max(1.0, float(np.abs(expected).max()))
        if np.allclose(current, expected, atol=1e-9 * scale) and (
            window is not None or tuple(shape) == (grid.height, grid.width)
        ):
            return grid, window
        warnings.warn(
            "the labels no longer sit on their raster's grid (moved or resized); they are "
            "exported on their own grid, where napari shows them",
            stacklevel=2,
        )
        crs_wkt = grid.crs_wkt
    else:
        crs_wkt = entry.get("crs_wkt")
        if crs_wkt is None:
            warnings.warn(
                "these labels were not made for a georeferenced raster: exported without CRS, "
                "in napari's world units",
                stacklevel=2,
            )
    return Grid(shape[0], shape[1], transform_from_world_affine(current), crs_wkt), None


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
    grid, window = geo_grid(attributes, array.shape)
    overwrite = overwrite_confirmed_by_napari()
    assist = assist_provenance(attributes, array)
    try:
        written = export_labels(
            path, array, grid, _schema(attributes), window=window, overwrite=overwrite,
            assist=assist, cog=cog,
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
