"""Read the few header values the hot path needs without pydicom's per-value conversion.

Grouping 300 slices and sorting them reads about a dozen values per file;
pydicom's conversion of a raw element (validation, value objects) costs tens
of microseconds each. These helpers parse the raw bytes of text and decimal
elements directly when the element is still raw, and fall back to pydicom's
value otherwise, so the result is the same either way.
"""

from __future__ import annotations

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

_TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "SH", "TM", "UI", None}
_TAGS: dict[str, int] = {}


def _raw_item(ds: Dataset, keyword: str) -> RawDataElement | None:
    tag = _TAGS.get(keyword)
    if tag is None:
        tag = _TAGS[keyword] = tag_for_keyword(keyword)
    if tag not in ds:
        return None
    item = ds.get_item(tag)
    if isinstance(item, RawDataElement) and item.VR in _TEXT_VRS and item.value is not None:
        return item
    return None


def text_values(ds: Dataset, keyword: str) -> list[str]:
    """The values of a text element (``CS``, ``UI``, ``DS``, ...), as stripped strings."""
    item = _raw_item(ds, keyword)
    if item is not None:
        text = item.value.decode("ascii", errors="replace").strip("\x00 ")
        return [v.strip("\x00 ") for v in text.split("\\")] if text else []
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [str(v) for v in value]
    return [str(value)]


def text_value(ds: Dataset, keyword: str, default: str = "") -> str:
    """The first value of a text element, or ``default``."""
    values = text_values(ds, keyword)
    return values[0] if values else default


def float_values(ds: Dataset, keyword: str) -> list[float]:
    """The values of a decimal or integer string element (``DS``, ``IS``) as floats."""
    return [float(v) for v in text_values(ds, keyword) if v]
