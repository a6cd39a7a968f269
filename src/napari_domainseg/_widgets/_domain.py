"""Which controls an image calls for: its domain (medical or geo) and, for volumes, its modality.

The annotation panel shows CT window presets and Hounsfield ranges only for CT-like volumes, and
band composites, stretches and spectral indices only for rasters; this module decides which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from napari_domainseg._napari import _layer_state as state


@dataclass(frozen=True)
class ImageDomain:
    """What the image is, as far as the panel's controls are concerned.

    Attributes
    ----------
    domain
        ``"medical"``, ``"geo"`` or ``None`` (an image not opened by DomainSeg).
    modality
        DICOM Modality (``"CT"``, ``"MR"``, ...), ``""`` when unknown (NIfTI, NRRD).
    ndim
        Dimensions of the image data (2 for scenes and single slices, 3 for volumes).
    """

    domain: str | None
    modality: str
    ndim: int

    @property
    def hounsfield(self) -> bool:
        """Whether intensities may be Hounsfield units: CT, or a volume of unknown modality."""
        return self.domain == "medical" and self.modality in ("CT", "")

    @property
    def bands(self) -> bool:
        """Whether band composites, stretches and spectral indices apply."""
        return self.domain == "geo"

    @property
    def area_unit(self) -> str:
        """The unit a clean-up's minimum island size is given in."""
        if self.domain == "geo":
            return "m²"
        if self.domain == "medical":
            return "mm³" if self.ndim == 3 else "mm²"
        return "pixels"


def image_domain(image: Any) -> ImageDomain:
    """The :class:`ImageDomain` of a napari image layer (or ``None``: nothing picked)."""
    if image is None:
        return ImageDomain(None, "", 0)
    return ImageDomain(state.domain_of(image), state.modality_of(image), int(image.ndim))


def volume_intensity(image: Any) -> str:
    """How the assistant's features read an image layer's values.

    Hounsfield units for CT, percentiles otherwise (MR and unknown modalities).
    """
    return "hu" if state.modality_of(image) == "CT" else "percentile"
