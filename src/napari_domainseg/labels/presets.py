"""Label schemas shipped with the package."""

from __future__ import annotations

from importlib import resources

from napari_domainseg.labels.schema import LabelSchema, parse_schema

_PRESET_FILES = {
    "ct_abdomen_head": "ct_abdomen_head.yaml",
    "land_cover": "land_cover.yaml",
    "ct_lesions": "ct_lesions.yaml",
    "buildings": "buildings.yaml",
}


def list_presets() -> list[str]:
    """Return the names of the shipped schemas: the flat ones first, then the class trees.

    The order is fixed (the first is the panel's default schema).
    """
    return list(_PRESET_FILES)


def load_preset(name: str) -> LabelSchema:
    """Load a shipped schema by name (see :func:`list_presets`)."""
    try:
        file_name = _PRESET_FILES[name]
    except KeyError:
        raise KeyError(
            f"no preset schema called {name!r}; available: {', '.join(list_presets())}"
        ) from None
    text = (
        resources.files("napari_domainseg.labels")
        .joinpath("presets", file_name)
        .read_text(encoding="utf-8")
    )
    return parse_schema(text, source=f"preset {name}")
