"""Colour values of a label schema: parsing and formatting.

A colour in a schema file is written either as a hex string (``"#rgb"``,
``"#rrggbb"`` or ``"#rrggbbaa"``) or as a list of three or four integers
from 0 to 255 (``[220, 120, 100]``). In memory it is always an ``RGBA``
tuple of four integers from 0 to 255.
"""

from __future__ import annotations

import re

RGBA = tuple[int, int, int, int]

_HEX = re.compile(r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")

COLOR_HELP = "write it as '#rrggbb', '#rrggbbaa' or a list [r, g, b] of integers 0-255"


def parse_color(value: object) -> RGBA:
    """Parse a schema colour into an RGBA tuple of integers 0-255.

    Parameters
    ----------
    value
        A hex string (``"#rgb"``, ``"#rrggbb"``, ``"#rrggbbaa"``) or a sequence
        of 3 or 4 integers in 0-255.

    Returns
    -------
    tuple of int
        ``(r, g, b, a)``, each 0-255; alpha defaults to 255.

    Raises
    ------
    ValueError
        If the value is not one of the accepted forms; the message says why.
    """
    if isinstance(value, str):
        match = _HEX.match(value.strip())
        if not match:
            raise ValueError(f"{value!r} is not a colour; {COLOR_HELP}")
        digits = match.group(1)
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        if len(digits) == 6:
            digits += "ff"
        r, g, b, a = (int(digits[i : i + 2], 16) for i in range(0, 8, 2))
        return (r, g, b, a)
    if isinstance(value, (list, tuple)):
        if len(value) not in (3, 4):
            raise ValueError(
                f"{list(value)!r} has {len(value)} components, expected 3 or 4; {COLOR_HELP}"
            )
        components = []
        for component in value:
            if isinstance(component, bool) or not isinstance(component, int):
                raise ValueError(
                    f"{list(value)!r} has a non-integer component {component!r}; {COLOR_HELP}"
                )
            if not 0 <= component <= 255:
                raise ValueError(
                    f"{list(value)!r} has component {component} outside 0-255; {COLOR_HELP}"
                )
            components.append(component)
        if len(components) == 3:
            components.append(255)
        return (components[0], components[1], components[2], components[3])
    raise ValueError(f"{value!r} is not a colour; {COLOR_HELP}")


def format_color(rgba: RGBA) -> str:
    """Format an RGBA tuple as ``#rrggbb`` (or ``#rrggbbaa`` when not opaque)."""
    r, g, b, a = rgba
    text = f"#{r:02x}{g:02x}{b:02x}"
    return text if a == 255 else f"{text}{a:02x}"


def to_float_rgba(rgba: RGBA) -> tuple[float, float, float, float]:
    """Convert an RGBA tuple of integers 0-255 to floats in 0-1."""
    return (rgba[0] / 255.0, rgba[1] / 255.0, rgba[2] / 255.0, rgba[3] / 255.0)


_PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
    (170, 110, 40),
)
"""Distinct colours (Sasha Trubetskoy's list) for classes that come without one."""


def default_color(index: int) -> RGBA:
    """A distinct opaque colour for class number ``index`` (cycles after 12)."""
    r, g, b = _PALETTE[(index - 1) % len(_PALETTE)]
    return (r, g, b, 255)
