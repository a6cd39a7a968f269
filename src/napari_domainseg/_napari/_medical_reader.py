"""npe2 readers for DICOM series and SEG objects, NIfTI and NRRD volumes and masks.

``get_*_reader`` never raises: it returns ``None`` for anything it cannot read.
The returned reader reports the series it chose, the others it found, the
skipped files and any geometry warning as napari notifications; errors reach
the user as a clear message naming the file and what is wrong.

Label maps (DICOM SEG, ``.seg.nrrd``, NIfTI/NRRD masks) open as Labels
layers with their class names and colours. A DICOM SEG lands on the series
it references: the open image layer of that series, or the series found
beside the SEG file (then opened with it).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from napari_domainseg._napari._autosave import offer_recovery
from napari_domainseg._napari._layer_data import (
    METADATA_KEY,
    LayerData,
    label_volume_layer_data,
    labels_layer_data,
    volume_layer_data,
)
from napari_domainseg._napari._orientation import follow_in_current_viewer
from napari_domainseg._napari._writers import layer_data_to_world

__all__ = ["get_dicom_reader", "get_nifti_reader", "get_nrrd_reader"]

NIFTI_SUFFIXES = (".nii", ".nii.gz")
NRRD_SUFFIXES = (".nrrd",)


def _single_path(path: str | list[str]) -> str | None:
    if isinstance(path, (list, tuple)):
        return path[0] if len(path) == 1 else None
    return path


def _folder_has_dicom(folder: Path) -> bool:
    """A bounded scan of regular files for the DICM marker (as the command line finds them)."""
    from napari_domainseg.medical.sniff import folder_has_dicom

    return folder_has_dicom(folder)


def _show_geometry_warnings(metadata: dict[str, Any]) -> None:
    """Show the reader's warnings (unusable geometry, ...) as napari notifications."""
    from napari.utils.notifications import show_warning

    for note in metadata.get("warnings", []):
        show_warning(note)


def _layer_name(name: str, metadata: dict[str, Any]) -> str:
    """The layer name, marked ``(geometry unknown)`` when the reader could not place the voxels."""
    from napari_domainseg.medical.geometry_checks import layer_name

    return layer_name(name, metadata)


def get_dicom_reader(path: str | list[str]):
    """Return a reader for a DICOM folder, a DICOM file (image or SEG) or a list of files."""
    try:
        from napari_domainseg.medical.sniff import is_dicom_file

        if isinstance(path, (list, tuple)) and len(path) > 1:
            return read_dicom if all(is_dicom_file(p) for p in path) else None
        single = _single_path(path)
        if single is None:
            return None
        candidate = Path(single)
        if candidate.is_dir():
            return read_dicom if _folder_has_dicom(candidate) else None
        if candidate.name.lower().endswith(NIFTI_SUFFIXES + NRRD_SUFFIXES):
            return None
        if not (candidate.is_file() and is_dicom_file(candidate)):
            return None
        from napari_domainseg.medical.dicom_seg import is_dicom_seg  # highdicom: single files only

        return read_dicom_seg if is_dicom_seg(candidate) else read_dicom
    except Exception:  # a reader lookup must never raise
        return None


def read_dicom(path: str | list[str]) -> list[LayerData]:
    """Read the best image series at ``path`` into an image layer (LPS millimetres).

    DICOM SEG objects found beside the series that reference it open as labels.
    """
    from napari.utils.notifications import show_info, show_warning

    from napari_domainseg.medical.discovery import discover
    from napari_domainseg.medical.series import DicomSeriesError, read_series

    source = list(path) if isinstance(path, (list, tuple)) and len(path) > 1 else _single_path(path)
    try:
        discovery = discover(source)
        loaded = read_series(source, discovery=discovery)
    except (DicomSeriesError, FileNotFoundError) as exc:
        raise ValueError(f"Cannot open {source} as a volume: {exc}") from None
    for warning in loaded.warnings:
        show_warning(warning)
    volume_others = [c for c in loaded.others if c.is_volume_capable]
    if loaded.others:
        listed = "; ".join(c.summary() for c in loaded.others)
        show_info(
            f"Opened {loaded.candidate.summary()}. Also in this folder: {listed}. "
            f"({loaded.skipped})"
            + (" Use the DICOM series picker to open another." if volume_others else "")
        )
    volume = loaded.volume
    name = volume.metadata.get("series_description") or Path(str(source)).name
    image = volume_layer_data(volume, _layer_name(name, volume.metadata))
    layers = [image]
    layers += _segs_for_series(discovery, image)
    follow_in_current_viewer()
    offer_recovery(image)
    return layers


def _segs_for_series(discovery: Any, image: LayerData) -> list[LayerData]:
    """Labels layers for the SEG objects in ``discovery`` that reference the image's series."""
    if not any(candidate.kind == "segmentation" for candidate in discovery.candidates):
        return []  # no SEG in the folder: dicom_seg (highdicom, 0.3 s to import) is not needed
    from napari.utils.notifications import show_warning

    from napari_domainseg.medical.dicom_seg import DicomSegError, segs_referencing

    metadata = image[1]["metadata"][METADATA_KEY]
    layers: list[LayerData] = []
    for seg_file in segs_referencing(discovery, metadata["series_instance_uid"]):
        try:
            layers += _seg_layers_on_image(seg_file, image[0].shape, image[1])
        except DicomSegError as exc:
            show_warning(str(exc))
    return layers


def _seg_layers_on_image(
    seg_file: str | Path, shape: tuple[int, ...], image_kwargs: dict[str, Any]
) -> list[LayerData]:
    """Labels layers of a SEG placed on an image layer (given as its keyword arguments)."""
    from napari.utils.notifications import show_info

    from napari_domainseg.medical.dicom_seg import DicomSegError, SegReference

    metadata = image_kwargs["metadata"][METADATA_KEY]
    reference = SegReference.from_metadata(metadata, tuple(shape))  # type: ignore[arg-type]
    if reference is None:
        raise DicomSegError(
            f"{seg_file}: the image it references was resampled or is a mosaic, so its frames "
            "cannot be matched; open the series without resampling"
        )
    seg = _read_seg(seg_file, reference)
    if seg.overlapping:
        show_info(f"{Path(seg_file).name}: segments overlap, so each opens as its own layer.")
    return [
        labels_layer_data(
            label_map.array,
            image_kwargs,
            label_map.name,
            label_map.schema,
        )
        for label_map in seg.label_maps
    ]


def _read_seg(seg_file: str | Path, reference: Any = None) -> Any:
    """Read a SEG, showing what the user must know (frames of undefined segments) once."""
    from napari.utils.notifications import show_warning

    from napari_domainseg.medical.dicom_seg import DicomSegWarning, read_dicom_seg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DicomSegWarning)  # shown below, as notifications
        seg = read_dicom_seg(seg_file, reference)
    for note in seg.warnings:
        show_warning(note)
    return seg


def _open_image_layer_of(series_uid: str) -> Any | None:
    """The image layer of the current viewer that shows series ``series_uid``, if any."""
    try:
        import napari

        viewer = napari.current_viewer()
    except Exception:
        return None
    if viewer is None:
        return None
    for layer in viewer.layers:
        entry = layer.metadata.get(METADATA_KEY, {})
        is_image = isinstance(layer, napari.layers.Image)
        if is_image and entry.get("series_instance_uid") == series_uid:
            return layer
    return None


def read_dicom_seg(path: str | list[str]) -> list[LayerData]:
    """Read a DICOM SEG as Labels layers placed on the series it references."""
    import pydicom
    from napari.utils.notifications import show_warning

    from napari_domainseg.medical.dicom_seg import (
        DicomSegError,
        referenced_series_uids,
        search_referenced_series,
    )
    from napari_domainseg.medical.series import DicomSeriesError, read_series
    from napari_domainseg.medical.volume import Volume

    single = str(_single_path(path))
    try:
        header = pydicom.dcmread(single, stop_before_pixels=True)
        for series_uid in referenced_series_uids(header):
            layer = _open_image_layer_of(series_uid)
            if layer is not None:
                kwargs = {
                    "name": layer.name,
                    "metadata": {METADATA_KEY: dict(layer.metadata[METADATA_KEY])},
                    "affine": layer_data_to_world(layer),
                    "axis_labels": tuple(layer.axis_labels),
                    "units": tuple(str(u) for u in layer.units),
                }
                return _seg_layers_on_image(single, layer.data.shape, kwargs)
        search = search_referenced_series(single)
        found = search.found
        if found is not None:
            folder, discovery, series_uid = found
            loaded = read_series(folder, series_uid, discovery=discovery)
            name = loaded.volume.metadata.get("series_description") or folder.name
            image = volume_layer_data(loaded.volume, name)
            follow_in_current_viewer()
            return [image, *_seg_layers_on_image(single, image[0].shape, image[1])]
        show_warning(
            f"{Path(single).name}: the series it references is neither open nor beside the "
            f"file ({search.summary()}); the labels are shown in their own geometry. Open the "
            "series first to annotate on it."
        )
        seg = _read_seg(single)
    except (DicomSegError, DicomSeriesError, OSError, pydicom.errors.InvalidDicomError) as exc:
        raise ValueError(f"Cannot open {single} as a DICOM SEG: {exc}") from None
    layers = []
    for label_map in seg.label_maps:
        volume = Volume(label_map.array, label_map.affine, dict(seg.metadata))
        layers.append(
            label_volume_layer_data(label_map.array, volume, label_map.name, label_map.schema)
        )
    follow_in_current_viewer()
    return layers


def _reader_by_suffix(path: str | list[str], suffixes: tuple[str, ...], reader: Any) -> Any:
    """``reader`` when ``path`` is one file whose name ends with one of ``suffixes``."""
    single = _single_path(path)
    if single is None or not str(single).lower().endswith(suffixes):
        return None
    return reader


def get_nifti_reader(path: str | list[str]):
    """Return a reader for a ``.nii``/``.nii.gz`` file."""
    return _reader_by_suffix(path, NIFTI_SUFFIXES, read_nifti)


def read_nifti(path: str | list[str]) -> list[LayerData]:
    """Read a NIfTI volume or mask (RAS on disk) into LPS (z, y, x) millimetres.

    A label map (label intent, ``.labels.json`` sidecar, or few non-negative
    integer values) opens as a Labels layer with the sidecar's classes.
    """
    from napari_domainseg.labels.schema import schema_or_none
    from napari_domainseg.medical.geometry_checks import GeometryWarning
    from napari_domainseg.medical.nifti import nifti_stem, volume_from_nifti

    single = _single_path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GeometryWarning)  # shown below, as notifications
            volume = volume_from_nifti(single)
    except Exception as exc:
        raise ValueError(f"Cannot open {single} as a NIfTI volume: {exc}") from None
    _show_geometry_warnings(volume.metadata)
    follow_in_current_viewer()
    name = _layer_name(nifti_stem(single), volume.metadata)
    if volume.metadata.get("is_labels"):
        schema = schema_or_none(volume.metadata.get("schema"), source=f"{name}.labels.json")
        return [label_volume_layer_data(volume.array, volume, name, schema)]
    return [volume_layer_data(volume, name)]


def get_nrrd_reader(path: str | list[str]):
    """Return a reader for a ``.nrrd`` or ``.seg.nrrd`` file."""
    return _reader_by_suffix(path, NRRD_SUFFIXES, read_nrrd)


def read_nrrd(path: str | list[str]) -> list[LayerData]:
    """Read an NRRD volume, mask or 3D Slicer segmentation into LPS (z, y, x) millimetres."""
    from napari_domainseg.medical.geometry_checks import GeometryWarning
    from napari_domainseg.medical.nrrd_files import NrrdError, nrrd_stem
    from napari_domainseg.medical.nrrd_files import read_nrrd as read_nrrd_file

    single = _single_path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GeometryWarning)  # shown below, as notifications
            read = read_nrrd_file(single)
    except NrrdError as exc:
        raise ValueError(f"Cannot open {single}: {exc}") from None
    _show_geometry_warnings(read.volume.metadata)
    follow_in_current_viewer()
    name = _layer_name(nrrd_stem(single), read.volume.metadata)
    if not read.is_labels:
        return [volume_layer_data(read.volume, name)]
    layers = []
    for index, (array, schema) in enumerate(zip(read.layers, read.schemas, strict=True)):
        layer_name = name if len(read.layers) == 1 else f"{name} layer {index}"
        layers.append(label_volume_layer_data(array, read.volume, layer_name, schema))
    return layers
