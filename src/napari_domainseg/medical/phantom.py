"""A synthetic abdominal CT phantom, written as a real DICOM series.

The phantom is an elliptical body (skin, subcutaneous fat, soft tissue) with
a liver, spleen, two kidneys, the aorta, a vertebra and the lung bases in the
upper slices, in Hounsfield units with mild noise. It is written as a CT
Image Storage series with exact ImagePositionPatient/ImageOrientationPatient,
PixelSpacing, RescaleSlope/Intercept, WindowCenter/Width and deterministic
UIDs, so every reader (ours, SimpleITK, dcm2niix) sees the same geometry.

:func:`phantom_labels` gives the ground-truth organ masks, numbered like the
``ct_abdomen_head`` preset schema.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

HU_AIR = -1000
RESCALE_INTERCEPT = -1024


@dataclass(frozen=True)
class PhantomGeometry:
    """Size and placement of the phantom.

    ``origin_lps`` is the LPS position (x, y, z) in mm of the first voxel of
    the most inferior slice; rows run posterior, columns run to patient left.
    """

    shape: tuple[int, int, int] = (48, 160, 160)  # slices, rows, columns
    spacing: tuple[float, float, float] = (2.5, 1.25, 1.25)  # slice step, row, column (mm)
    origin_lps: tuple[float, float, float] = (-99.375, -112.5, -60.0)


def _grid(geometry: PhantomGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return LPS coordinates (z, y, x) in mm of every voxel, broadcastable."""
    nz, ny, nx = geometry.shape
    dz, dy, dx = geometry.spacing
    x0, y0, z0 = geometry.origin_lps
    z = (z0 + dz * np.arange(nz))[:, None, None]
    y = (y0 + dy * np.arange(ny))[None, :, None]
    x = (x0 + dx * np.arange(nx))[None, None, :]
    return z, y, x


def _ellipsoid(z, y, x, centre, radii) -> np.ndarray:
    cz, cy, cx = centre
    rz, ry, rx = radii
    return ((z - cz) / rz) ** 2 + ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0


def phantom_labels(geometry: PhantomGeometry | None = None) -> np.ndarray:
    """Return the ground-truth organ labels (uint8, axes z, y, x).

    Values follow the ``ct_abdomen_head`` preset: 1 liver, 2 spleen,
    3 kidney, 5 bone; 0 elsewhere.
    """
    geometry = geometry or PhantomGeometry()
    z, y, x = _grid(geometry)
    labels = np.zeros(geometry.shape, dtype=np.uint8)
    # Patient right is -x (screen left on an axial view), anterior is -y.
    labels[_ellipsoid(z, y, x, (5.0, -5.0, -40.0), (45.0, 38.0, 42.0))] = 1  # liver
    labels[_ellipsoid(z, y, x, (10.0, 25.0, 58.0), (30.0, 22.0, 16.0))] = 2  # spleen
    for side in (-1.0, 1.0):
        labels[_ellipsoid(z, y, x, (-20.0, 38.0, 45.0 * side), (35.0, 16.0, 12.0))] = 3
    vertebra = (x**2 + (y - 45.0) ** 2 <= 14.0**2) & np.ones_like(z, dtype=bool)
    labels[vertebra] = 5
    return labels


def phantom_hu(geometry: PhantomGeometry | None = None, seed: int = 7) -> np.ndarray:
    """Return the phantom in Hounsfield units (int16, axes z, y, x)."""
    geometry = geometry or PhantomGeometry()
    z, y, x = _grid(geometry)
    shape = geometry.shape
    hu = np.full(shape, HU_AIR, dtype=np.float32)

    def body_ellipse(rx: float, ry: float) -> np.ndarray:
        return np.broadcast_to((x / rx) ** 2 + (y / ry) ** 2 <= 1.0, shape)

    body_inner = body_ellipse(86.0, 66.0)
    hu[body_ellipse(95.0, 75.0)] = 30.0  # skin
    hu[body_ellipse(93.0, 73.0)] = -100.0  # subcutaneous fat
    hu[body_inner] = 35.0  # muscle and bowel
    lungs = np.zeros(shape, dtype=bool)
    for side in (-1.0, 1.0):
        lungs |= _ellipsoid(z, y, x, (75.0, 5.0, 42.0 * side), (40.0, 45.0, 34.0))
    hu[lungs & body_inner] = -850.0
    labels = phantom_labels(geometry)
    hu[labels == 1] = 60.0
    hu[labels == 2] = 45.0
    hu[labels == 3] = 30.0
    hu[np.broadcast_to(x**2 + (y - 45.0) ** 2 <= 14.0**2, shape)] = 700.0  # cortical bone
    hu[np.broadcast_to(x**2 + (y - 45.0) ** 2 <= 9.0**2, shape)] = 250.0  # marrow
    hu[np.broadcast_to((x - 12.0) ** 2 + (y - 22.0) ** 2 <= 8.0**2, shape)] = 160.0  # aorta
    noise = np.random.default_rng(seed).normal(0.0, 8.0, size=shape).astype(np.float32)
    hu[hu > HU_AIR] += noise[hu > HU_AIR]
    return np.clip(np.rint(hu), HU_AIR, 3000).astype(np.int16)


def write_phantom_series(
    folder: str | os.PathLike[str], geometry: PhantomGeometry | None = None
) -> list[Path]:
    """Write the phantom as a CT DICOM series, one file per slice.

    Files are named by InstanceNumber, which counts from the most superior
    slice down (as scanners usually do), so a reader that stacks by file name
    or InstanceNumber instead of position gets the volume upside down.

    Returns
    -------
    list of Path
        The written files, in InstanceNumber order.
    """
    geometry = geometry or PhantomGeometry()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hu = phantom_hu(geometry)
    stored = (hu.astype(np.int32) - RESCALE_INTERCEPT).astype(np.uint16)
    nz, ny, nx = geometry.shape
    dz, dy, dx = geometry.spacing
    x0, y0, z0 = geometry.origin_lps

    def uid(*parts: str) -> str:
        return generate_uid(
            prefix=pydicom.uid.PYDICOM_ROOT_UID, entropy_srcs=["napari-domainseg phantom", *parts]
        )

    study_uid, series_uid, frame_uid = uid("study"), uid("series"), uid("frame")
    paths = []
    for instance, k in enumerate(range(nz - 1, -1, -1), start=1):
        z = z0 + dz * k
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = uid("slice", str(k))
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20260101"
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
        ds.AccessionNumber = ""
        ds.Modality = "CT"
        ds.Manufacturer = "napari-domainseg"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = "Synthetic abdomen phantom"
        ds.SeriesDescription = "Phantom abdomen 2.5 mm"
        ds.PatientName = "Phantom^Abdomen"
        ds.PatientID = "DOMAINSEG-PHANTOM"
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.BodyPartExamined = "ABDOMEN"
        ds.SliceThickness = f"{dz:g}"
        ds.KVP = "120"
        ds.PatientPosition = "FFS"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = "1"
        ds.SeriesNumber = 2
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = instance
        ds.ImagePositionPatient = [f"{x0:g}", f"{y0:g}", f"{z:g}"]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = f"{z:g}"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = ny, nx
        ds.PixelSpacing = [f"{dy:g}", f"{dx:g}"]
        ds.BitsAllocated = 16
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        ds.WindowCenter = ["40", "-600"]
        ds.WindowWidth = ["400", "1500"]
        ds.WindowCenterWidthExplanation = ["ABDOMEN", "LUNG"]
        ds.RescaleIntercept = str(RESCALE_INTERCEPT)
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
        path = folder / f"IM{instance:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
