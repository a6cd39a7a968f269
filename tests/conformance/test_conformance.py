"""Conformance: every label reader/writer pair passes the same checks (models: nibabel's
``test_image_api.py``, bioio-base's ``run_image_file_checks``).

Each entry of :data:`.formats.FORMATS` is written by the core exporter (``medical.export`` /
``geo.export``) on a real image's geometry and read back by the core reader (``files.load``;
polygons burnt onto the source grid), then checked: (1) identical label values; (2) the same
world position of voxel/pixel centres to 1e-6 mm or m; (3) class names (and colours where the
format carries them); (4) no file handle left open on the output; (5) a failure mid-write leaves
no output, no temporary file and a pre-existing file untouched; (6) no overwrite without
permission (the napari writers replace a file whole: napari's Save dialog confirmed it). The
napari path (npe2 reader -> labels layer attributes -> npe2 writer -> npe2 reader, positions
through ``Layer.data_to_world``) runs the same round trip.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np
import pytest

from napari_domainseg.atomic import OutputExistsError
from napari_domainseg.files import load
from napari_domainseg.formats.base import Read
from napari_domainseg.labels import load_preset
from napari_domainseg.labels.schema import covering_schema

from .formats import FORMATS, Format

WORLD_TOLERANCE = 1e-6  # mm (medical) or m (geo)


def entries(check: str, napari_reader_only: bool = False) -> list:
    """:data:`FORMATS` as parameters, with the entry's strict xfail for ``check``."""
    chosen = [f for f in FORMATS if f.napari_reader or not napari_reader_only]
    marks = {
        fmt.name: [pytest.mark.xfail(strict=True, reason=fmt.xfail[check])]
        if check in fmt.xfail
        else []
        for fmt in chosen
    }
    return [pytest.param(fmt, id=fmt.name, marks=marks[fmt.name]) for fmt in chosen]


# --- the labels and their source -------------------------------------------------------------


@pytest.fixture(scope="module")
def sources(shared_data: Path) -> dict[str, Read]:
    """The real images the labels are drawn on, read once per module."""
    return {fmt.source: load(shared_data / fmt.source, labels=False) for fmt in FORMATS}


def schema_for(fmt: Format):
    return load_preset("ct_abdomen_head" if fmt.domain == "medical" else "land_cover")


def painted(fmt: Format, shape: tuple[int, ...]) -> np.ndarray:
    """Labels with named classes, a class the schema lacks, and the corner voxel set."""
    labels = np.zeros(shape[-3:] if fmt.domain == "medical" else shape[-2:], dtype=np.uint8)
    labels[..., : labels.shape[-2] // 3, : labels.shape[-1] // 4] = 1
    labels[..., -9:-2, 20:31] = 3
    labels[..., 0, -1] = 2  # a corner pixel
    labels[..., 40:43, -6:-1] = 200  # a value the schema does not name
    return labels


def export(fmt: Format, path: Path, labels: np.ndarray, source: Read, **options) -> list[Path]:
    """Write ``labels`` on ``source``'s geometry with the format's core exporter."""
    if fmt.domain == "medical":
        from napari_domainseg.medical.export import export_labels

        return export_labels(
            path, labels, source.volume_geometry, schema_for(fmt), source.metadata, **options
        )
    from napari_domainseg.geo.export import export_labels

    return export_labels(path, labels, source.grid, schema_for(fmt), **fmt.options, **options)


def read_back(fmt: Format, path: Path, source: Read) -> tuple[np.ndarray, dict[int, tuple]]:
    """Labels as the core reader gives them, and ``{id: (name, colour or None)}``."""
    if fmt.polygons:
        from napari_domainseg.geo.vectors import rasterize_vectors, read_vectors

        frame = read_vectors(path, warn=False)
        array = rasterize_vectors(frame, source.grid, attribute="label", dtype=np.uint8)
        return array, {
            int(k): (n, None) for k, n in zip(frame["label"], frame["name"], strict=True)
        }
    loaded = load(path, labels=True, reference=source)
    classes = {c.id: (c.name, tuple(c.color)) for c in loaded.schema.classes}
    return loaded.array, classes


def world_of(fmt: Format, geometry, indices: np.ndarray) -> np.ndarray:
    """World coordinates of voxel/pixel centres ``indices`` (N x ndim, array order)."""
    if fmt.domain == "medical":
        homogeneous = np.c_[indices, np.ones(len(indices))]
        return (np.asarray(geometry) @ homogeneous.T).T[:, :3]
    rows, cols = indices[:, 0] + 0.5, indices[:, 1] + 0.5
    xs, ys = geometry * (cols, rows)
    return np.c_[xs, ys]


def sample_indices(shape: tuple[int, ...]) -> np.ndarray:
    """The first and last voxel centres and one in between."""
    last = np.asarray(shape) - 1
    return np.array([np.zeros(len(shape)), last, last // 2, [v // 3 for v in last]], dtype=float)


def open_fds_in(folder: Path) -> list[str]:
    """The open file descriptors of this process that point into ``folder``."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        if target.startswith(str(folder)):
            found.append(target)
    return found


def written_file(fmt: Format, folder: Path) -> Path:
    return folder / f"labels{fmt.suffix}"


# --- (1)-(4): round trip through the core -----------------------------------------------------


@pytest.mark.parametrize("fmt", entries("labels"))
def test_labels_read_back_identical(fmt, sources, tmp_path):
    source = sources[fmt.source]
    labels = painted(fmt, source.array.shape)
    path = written_file(fmt, tmp_path)
    assert export(fmt, path, labels, source)[0] == path
    array, _ = read_back(fmt, path, source)
    np.testing.assert_array_equal(array, labels)


@pytest.mark.parametrize("fmt", entries("world"))
def test_same_world_positions(fmt, sources, tmp_path):
    source = sources[fmt.source]
    labels = painted(fmt, source.array.shape)
    path = written_file(fmt, tmp_path)
    export(fmt, path, labels, source)
    indices = sample_indices(labels.shape)
    if fmt.polygons:  # every vertex on a corner of the source grid, in the grid's CRS
        import pyproj

        from napari_domainseg.geo.vectors import read_vectors

        frame = read_vectors(path, warn=False)
        xs, ys = frame.get_coordinates().to_numpy().T
        to_grid = pyproj.Transformer.from_crs(frame.crs, source.grid.crs_wkt, always_xy=True)
        cols, rows = ~source.grid.transform * to_grid.transform(xs, ys)  # vertices, not densified
        pixel = abs(source.grid.transform.a)
        np.testing.assert_allclose(cols, np.round(cols), atol=WORLD_TOLERANCE / pixel)
        np.testing.assert_allclose(rows, np.round(rows), atol=WORLD_TOLERANCE / pixel)
        return
    back = load(path, labels=True, reference=source)
    before = world_of(
        fmt, source.affine if fmt.domain == "medical" else source.grid.transform, indices
    )
    after = world_of(fmt, back.affine if fmt.domain == "medical" else back.grid.transform, indices)
    np.testing.assert_allclose(after, before, rtol=0, atol=WORLD_TOLERANCE)
    if fmt.domain == "geo":
        assert back.grid.crs_wkt and source.grid.crs_wkt
        import pyproj

        assert pyproj.CRS.from_wkt(back.grid.crs_wkt).equals(
            pyproj.CRS.from_wkt(source.grid.crs_wkt)
        )


@pytest.mark.parametrize("fmt", entries("schema"))
def test_schema_preserved(fmt, sources, tmp_path):
    source = sources[fmt.source]
    labels = painted(fmt, source.array.shape)
    path = written_file(fmt, tmp_path)
    export(fmt, path, labels, source)
    _, classes = read_back(fmt, path, source)
    expected = covering_schema(np.unique(labels), schema_for(fmt))
    for value in np.unique(labels[labels > 0]):
        wanted = expected[int(value)]
        name, colour = classes[int(value)]
        assert name == wanted.name, (value, name, wanted.name)
        if fmt.colours:
            np.testing.assert_allclose(colour, tuple(wanted.color), atol=1 / 255)
    assert classes[200][0] == "label 200"


@pytest.mark.parametrize("fmt", entries("handles"))
def test_no_file_handle_left_open(fmt, sources, tmp_path):
    source = sources[fmt.source]
    labels = painted(fmt, source.array.shape)
    path = written_file(fmt, tmp_path)
    before = open_fds_in(tmp_path)
    export(fmt, path, labels, source)
    assert open_fds_in(tmp_path) == before, "the writer left the output open"
    read_back(fmt, path, source)
    assert open_fds_in(tmp_path) == before, "the reader left the output open"


# --- (5) atomic, (6) no overwrite without permission ------------------------------------------


def fail_after(monkeypatch: pytest.MonkeyPatch, dotted: str) -> None:
    """Let the low-level call ``module:attr[.attr]`` run, then raise: a failure mid-write."""
    module_name, _, attribute = dotted.partition(":")
    owner = importlib.import_module(module_name)
    *parents, name = attribute.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original = getattr(owner, name)

    def failing(*args, **kwargs):
        original(*args, **kwargs)
        raise RuntimeError(f"forced failure after {dotted}")

    monkeypatch.setattr(owner, name, failing)


ATOMIC = [
    pytest.param(fmt, point, id=f"{fmt.name}-{point.rpartition(':')[2]}")
    for fmt in FORMATS
    for point in fmt.fail_inside
]


@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
@pytest.mark.parametrize(("fmt", "point"), ATOMIC)
def test_failed_write_leaves_nothing(fmt, point, existing, sources, tmp_path, monkeypatch):
    source = sources[fmt.source]
    labels = painted(fmt, source.array.shape)
    path = written_file(fmt, tmp_path)
    if existing:
        path.write_bytes(b"the previous export")
    fail_after(monkeypatch, point)
    with pytest.raises(RuntimeError, match="forced failure"):
        export(fmt, path, labels, source, overwrite=True)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ([path.name] if existing else []), left
    if existing:
        assert path.read_bytes() == b"the previous export"


@pytest.mark.parametrize("fmt", entries("overwrite"))
def test_no_overwrite_without_permission(fmt, sources, tmp_path):
    source = sources[fmt.source]
    labels = painted(fmt, source.array.shape)
    path = written_file(fmt, tmp_path)
    path.write_bytes(b"the previous export")
    with pytest.raises(OutputExistsError, match="already exists"):
        export(fmt, path, labels, source)
    assert path.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    assert export(fmt, path, labels, source, overwrite=True)[0] == path  # permission given
    np.testing.assert_array_equal(read_back(fmt, path, source)[0], labels)


# --- the napari path: npe2 reader -> writer -> reader -----------------------------------------

PLACEMENT = ("scale", "translate", "rotate", "shear", "affine")


def napari_reader_of(fmt: Format, path: str):
    if fmt.domain == "medical":
        from napari_domainseg._napari import _medical_reader as readers

        if path.lower().endswith((".nii", ".nii.gz")):
            return readers.get_nifti_reader(path)
        if path.lower().endswith(".nrrd"):
            return readers.get_nrrd_reader(path)
        return readers.get_dicom_reader(path)
    from napari_domainseg._napari import _geo_reader as readers

    return readers.get_raster_reader(path)


def labels_attributes(image_kwargs: dict, shape: tuple[int, ...], schema) -> dict:
    """The attributes napari hands a writer for a labels layer made on the image."""
    from napari_domainseg._napari._layer_data import labels_layer_data

    _, kwargs, _ = labels_layer_data(np.zeros(shape, np.uint8), image_kwargs, "labels", schema)
    return {**{k: kwargs[k] for k in PLACEMENT if k in kwargs}, "metadata": kwargs["metadata"]}


def napari_world(kwargs: dict, ndim: int, indices: np.ndarray) -> np.ndarray:
    """World positions through a napari layer's public ``data_to_world``."""
    from napari.layers import Labels

    layer = Labels(
        np.zeros((2,) * ndim, np.uint8), **{k: kwargs[k] for k in PLACEMENT if k in kwargs}
    )
    return np.array([layer.data_to_world(index) for index in indices])


def napari_round_trip(fmt: Format, shared_data: Path, sources, folder: Path):
    """Image layer data from the npe2 reader, labels written by the npe2 writer on it.

    Returns the labels, the image layer's kwargs and the written path.
    """
    from napari_domainseg._napari._writers import (
        write_geo_labels,
        write_geo_labels_cog,
        write_labels,
    )

    source_path = str(shared_data / fmt.source)
    _, image_kwargs, _ = napari_reader_of(fmt, source_path)(source_path)[0]
    shape = sources[fmt.source].array.shape
    labels = painted(fmt, shape[-3:] if fmt.domain == "medical" else shape[-2:])
    attributes = labels_attributes(image_kwargs, labels.shape, schema_for(fmt))
    path = written_file(fmt, folder)
    if fmt.domain == "medical":
        writer = write_labels
    else:
        writer = write_geo_labels_cog if fmt.options.get("cog") else write_geo_labels
    sidecar = [str(folder / "labels.labels.json")] if fmt.suffix.startswith(".nii") else []
    assert writer(str(path), np.zeros_like(labels), attributes) == [str(path), *sidecar]
    # napari's Save dialog confirmed the replacement: it happens, whole, with no temporary left
    assert writer(str(path), labels, attributes) == [str(path), *sidecar]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        Path(p).name for p in [path, *sidecar]
    )
    return labels, image_kwargs, path


@pytest.mark.parametrize("fmt", entries("napari"))
def test_napari_writer_round_trip(fmt, shared_data, sources, tmp_path):
    from napari_domainseg._napari import _layer_state as state

    labels, _, path = napari_round_trip(fmt, shared_data, sources, tmp_path)
    if not fmt.napari_reader:  # read back by the core reader
        np.testing.assert_array_equal(read_back(fmt, path, sources[fmt.source])[0], labels)
        return
    data, kwargs, kind = napari_reader_of(fmt, str(path))(str(path))[0]
    assert kind == "labels"
    np.testing.assert_array_equal(np.asarray(data), labels)
    schema = state.schema_of(kwargs)
    expected = covering_schema(np.unique(labels), schema_for(fmt))
    for value in np.unique(labels[labels > 0]):
        assert schema[int(value)].name == expected[int(value)].name


@pytest.mark.parametrize("fmt", entries("napari-world", napari_reader_only=True))
def test_napari_same_world_positions(fmt, shared_data, sources, tmp_path):
    labels, image_kwargs, path = napari_round_trip(fmt, shared_data, sources, tmp_path)
    _, kwargs, _ = napari_reader_of(fmt, str(path))(str(path))[0]
    indices = sample_indices(labels.shape)
    np.testing.assert_allclose(
        napari_world(kwargs, labels.ndim, indices),
        napari_world(image_kwargs, labels.ndim, indices),
        rtol=0,
        atol=WORLD_TOLERANCE,
    )


# --- the registry: every format that reads label maps is run through the harness -----------

NOT_LABEL_READERS = {
    "dicom": "reads image series; their label maps are DICOM SEG (dicom_seg)",
    "numpy": "a bare array without geometry: nothing to place, so nothing to check",
}
"""Registered formats the harness does not write, and why."""


def test_every_registered_format_is_run_by_the_harness(sources, tmp_path):
    """A format added to ``napari_domainseg.formats.FORMATS`` needs a harness entry here."""
    from napari_domainseg import formats as registry

    reached: dict[str, str] = {}
    for fmt in FORMATS:
        if fmt.polygons:
            continue  # polygons are vectors: read back by burning them, not by a format
        source = sources[fmt.source]
        path = written_file(fmt, tmp_path / fmt.name)
        path.parent.mkdir()
        export(fmt, path, painted(fmt, source.array.shape), source)
        claimed = registry.format_for(path)
        assert claimed is not None, f"{fmt.name}: no registered format claims {path.name}"
        reached.setdefault(claimed.name, fmt.name)
    registered = {f.name for f in registry.FORMATS}
    missing = registered - set(reached) - set(NOT_LABEL_READERS)
    assert not missing, f"registered formats no harness entry writes: {sorted(missing)}"
    assert set(NOT_LABEL_READERS) <= registered, "an exemption names no registered format"
