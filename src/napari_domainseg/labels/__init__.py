"""Label schemas: the classes an annotation may use, shared by both domains.

Pure core: no napari, Qt or magicgui.
"""

from napari_domainseg.labels.colors import format_color, parse_color
from napari_domainseg.labels.presets import list_presets, load_preset
from napari_domainseg.labels.schema import (
    UNLABELED,
    LabelClass,
    LabelSchema,
    SchemaError,
    SchemaProblem,
    dump_schema,
    load_schema,
    parse_schema,
    save_schema,
)

__all__ = [
    "UNLABELED",
    "LabelClass",
    "LabelSchema",
    "SchemaError",
    "SchemaProblem",
    "dump_schema",
    "format_color",
    "list_presets",
    "load_preset",
    "load_schema",
    "parse_color",
    "parse_schema",
    "save_schema",
]
