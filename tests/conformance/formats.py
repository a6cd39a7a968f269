"""The formats the conformance harness runs: one small declarative entry each.

``test_conformance.py`` runs every entry of :data:`FORMATS` through the same checks (read back
the same labels, at the same world positions, with the schema; no file handle left open; atomic
write; no overwrite without permission). Adding a format is one :class:`Format` entry here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Format:
    """One label format as the harness exercises it.

    Parameters
    ----------
    name
        Test id.
    suffix
        Output file suffix; the core exporter picks the format by it.
    domain
        ``"medical"`` (3D, exact LPS affine; ``medical.export.export_labels``) or ``"geo"``
        (2D on a raster grid; ``geo.export.export_labels``).
    source
        Real data under ``shared/data`` the labels are drawn on (DICOM series folder or raster).
    fail_inside
        Dotted ``module:attribute`` (``module:Class.method`` allowed) of the low-level call that
        writes the bytes; the atomicity check lets it run, then raises, so the failure happens
        after the file was started.
    options
        Extra keyword arguments for the core exporter (``cog=True``).
    colours
        The format carries class colours (names are always checked).
    polygons
        Read back by burning the polygons onto the source grid.
    napari_reader
        The npe2 reader reads the written file back as labels on its own. A DICOM SEG needs
        its source series beside it, and polygons open as shapes, so these are read back by
        the core reader only.
    xfail
        ``{check name: reason}`` for checks the format genuinely cannot pass (strict xfail).
    """

    name: str
    suffix: str
    domain: str
    source: str
    fail_inside: tuple[str, ...]
    options: dict = field(default_factory=dict)
    colours: bool = True
    polygons: bool = False
    napari_reader: bool = True
    xfail: dict[str, str] = field(default_factory=dict)


CT = "medical/seg_dcmqi/ct-3slice"  # a real 3-slice CT series (dcmqi)
LANDSAT = "geo/landsat_rgb/RGB.byte.tif"  # a real Landsat subset, EPSG:32618

NIFTI_FLOAT32 = (
    "NIfTI stores the sform/qform in float32: a voxel 200 mm from the origin moves ~3e-6 mm"
)
GEOJSON_7_DECIMALS = (
    "RFC 7946 GeoJSON is lon/lat rounded to 7 decimals (~1 cm), coarser than 1e-6 m"
)

FORMATS: list[Format] = [
    Format(
        "nifti", ".nii.gz", "medical", CT,
        ("nibabel:save", "napari_domainseg.medical.nifti:json.dumps"),  # image, then label table
        xfail={"world": NIFTI_FLOAT32, "napari-world": NIFTI_FLOAT32},
    ),
    Format("nrrd", ".nrrd", "medical", CT, ("nrrd:write",)),
    Format("slicer-seg-nrrd", ".seg.nrrd", "medical", CT, ("nrrd:write",)),
    Format(
        "dicom-seg", ".dcm", "medical", CT, ("pydicom.dataset:Dataset.save_as",),
        napari_reader=False,
    ),
    Format("geotiff", ".tif", "geo", LANDSAT, ("napari_domainseg.geo.label_raster:_write_labels",)),
    Format("cog", ".tif", "geo", LANDSAT, ("rasterio.shutil:copy",), options={"cog": True}),
    Format(
        "geopackage", ".gpkg", "geo", LANDSAT, ("geopandas:GeoDataFrame.to_file",),
        colours=False, polygons=True, napari_reader=False,
    ),
    Format(
        "flatgeobuf", ".fgb", "geo", LANDSAT, ("geopandas:GeoDataFrame.to_file",),
        colours=False, polygons=True, napari_reader=False,
    ),
    Format(
        "geojson", ".geojson", "geo", LANDSAT, ("napari_domainseg.geo.vectors:write_rfc7946",),
        colours=False, polygons=True, napari_reader=False, xfail={"world": GEOJSON_7_DECIMALS},
    ),
]  # fmt: skip
