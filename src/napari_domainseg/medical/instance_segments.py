"""Instances in medical label files: one segment per instance, its name, tracking and terminology.

The exports of an instance map (:func:`napari_domainseg.medical.export.export_labels` with
``instances``) describe each instance the same way in every format: a segment label
``"<class name> <n>"`` (``n`` its number within its class, 1 for the first by id), a tracking
id ``"<class path>/<n>"``, a colour near its class colour, and its class's terminology codes.
The instance table itself travels as JSON records (:meth:`InstanceTable.to_records`) under
:data:`INSTANCES_KEY`; reading a file back puts them in the read's metadata under that key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_domainseg.labels.instances import (
    InstanceError,
    InstanceTable,
    check_instances,
    instance_dtype,
)
from napari_domainseg.labels.schema import MAX_CLASS_ID, LabelSchema

INSTANCES_KEY = "instances"
"""Key of the instance records: NIfTI ``.labels.json``, DICOM SEG private block, read metadata."""

GENERIC_CATEGORY = ("85756007", "SCT", "Tissue")
GENERIC_TYPE = ("85756007", "SCT", "Tissue")
"""Category and type (value, scheme, meaning) of a class without codes, as DICOM SEG needs one."""

SLICER_CONTEXT = "Segmentation category and type - 3D Slicer General Anatomy list"
SLICER_ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"
"""The terminology context names 3D Slicer writes in a ``.seg.nrrd`` ``Segment<N>_Tags``."""


@dataclass(frozen=True)
class InstanceSegment:
    """How one instance is written as a segment.

    Attributes
    ----------
    instance_id
        Its value in the instance map.
    class_id
        Its class.
    number
        Its number within its class (1 for the class's instance with the smallest id).
    label
        ``"<class name> <number>"``.
    tracking_id
        ``"<class path>/<number>"`` (DICOM SEG TrackingID).
    color
        RGBA 0-255, near the class colour and different for each instance.
    codes
        The class's terminology (:class:`~napari_domainseg.labels.schema.ClassCodes`), or ``None``.
    description
        The class's description (its guideline).
    """

    instance_id: int
    class_id: int
    number: int
    label: str
    tracking_id: str
    color: tuple[int, int, int, int]
    codes: Any
    description: str


def instance_segments(table: InstanceTable, schema: LabelSchema) -> list[InstanceSegment]:
    """One segment per instance of ``table``, by ascending id (``schema`` names every class)."""
    numbers = table.numbers_in_class()
    segments = []
    for instance in table:
        label_class = schema[instance.class_id]
        number = numbers[instance.id]
        path = schema.path(instance.class_id)
        color = schema.instance_color(instance.class_id, number)
        segments.append(
            InstanceSegment(
                instance_id=instance.id,
                class_id=instance.class_id,
                number=number,
                label=f"{label_class.name} {number}",
                tracking_id=f"{path}/{instance.id}",  # the id: stable when others are deleted
                color=tuple(int(c) for c in color),  # type: ignore[arg-type]
                codes=label_class.codes,
                description=label_class.description,
            )
        )
    return segments


def checked_instance_map(
    path: str | os.PathLike[str], labels: np.ndarray, table: InstanceTable
) -> np.ndarray:
    """``labels`` as an instance map of ``table``: uint16 (ids up to 65535) or uint32.

    Raises
    ------
    InstanceError
        When the map holds ids the table does not list (they would be exported without a
        class: repair the table first), or class ids outside 1-65535.
    """
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise InstanceError(f"{path}: an instance map must be integers, got {labels.dtype}")
    if labels.size and int(labels.min()) < 0:
        raise InstanceError(f"{path}: instance ids must be 0 (unlabeled) or positive")
    check = check_instances(labels, table)
    if not check.ok:
        raise InstanceError(f"{path}: not exported: {check.message('the instance map')}")
    high = [i.class_id for i in table if i.class_id > MAX_CLASS_ID]
    if high:
        raise InstanceError(
            f"{path}: instances of class ids {sorted(set(high))[:5]} above {MAX_CLASS_ID}: "
            "class ids are 16-bit; renumber the classes before exporting"
        )
    largest = max(int(labels.max(initial=0)), max(table.ids, default=0))
    dtype = instance_dtype(largest)
    return labels if labels.dtype == dtype else labels.astype(dtype)


def restore_instances(metadata: dict[str, Any], array: np.ndarray, where: str) -> list[str]:
    """Check the instance records a file carried (``metadata[INSTANCES_KEY]``), in place.

    Valid records stay (normalised); damaged ones are removed and said so; ids painted in
    ``array`` but absent from the records are said so (never dropped: the map is kept).

    Returns
    -------
    list of str
        The warnings to give (empty when all is well or there are no records).
    """
    if INSTANCES_KEY not in metadata:
        return []
    try:
        table = InstanceTable.from_records(metadata[INSTANCES_KEY])
    except (InstanceError, TypeError, ValueError, AttributeError) as exc:
        del metadata[INSTANCES_KEY]
        return [f"{where}: its instance table is not valid ({exc}); read as a plain label map."]
    metadata[INSTANCES_KEY] = table.to_records()
    message = check_instances(array, table).message(where)
    return [message] if message else []


def _plain(text: str) -> str:
    """Text Slicer's terminology string can hold (its separators ``~ ^ |`` removed)."""
    return " ".join(str(text).replace("~", " ").replace("^", " ").replace("|", " ").split())


def _coded(code: Any) -> str:
    if code is None:
        return "^^"
    return f"{_plain(code.scheme)}^{_plain(code.value)}^{_plain(code.meaning)}"


def slicer_terminology(codes: Any) -> str:
    """3D Slicer's ``TerminologyEntry`` value for a class's codes (generic Tissue without).

    ``context~category~type~type modifier~anatomic context~anatomic region~region modifier``,
    each code ``SCHEME^VALUE^MEANING`` (``^^`` when absent).
    """
    if codes is None:
        category = "{1}^{0}^{2}".format(*GENERIC_CATEGORY)
        kind = "{1}^{0}^{2}".format(*GENERIC_TYPE)
        modifier = region = "^^"
    else:
        category, kind = _coded(codes.category), _coded(codes.type)
        modifier, region = _coded(codes.modifier), _coded(codes.anatomic_region)
    return "~".join(
        (SLICER_CONTEXT, category, kind, modifier, SLICER_ANATOMIC_CONTEXT, region, "^^")
    )
