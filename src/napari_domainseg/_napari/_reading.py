"""What every npe2 reader does with what a format read: tell the user, return layer data."""

from __future__ import annotations

from typing import Any

from napari_domainseg._napari._layer_data import LayerData, layer_data
from napari_domainseg._napari._viewer_setup import watch_current_viewer
from napari_domainseg.errors import InputError, naming


def tell(reads: list[Any]) -> None:
    """Show what the reads say the user must know (warnings) or should know (notes)."""
    from napari.utils.notifications import show_info, show_warning

    for read in reads:
        for warning in read.warnings:
            show_warning(warning)
        for note in read.notes:
            show_info(note)


def layers_of(reads: list[Any]) -> list[LayerData]:
    """The layer data of ``reads``, their messages shown, the viewer's set-up hook registered."""
    tell(reads)
    watch_current_viewer()
    return [layer for read in reads for layer in layer_data(read)]


def cannot_open(path: Any, error: BaseException) -> InputError:
    """What a reader raises when a format cannot read ``path``: the format's own message.

    The message already says what is wrong and what to do; the file is put in front only
    when the message does not name it, so it is named once.
    """
    text = " ".join(str(error).split()) or type(error).__name__
    return InputError(naming(text, path), path)
