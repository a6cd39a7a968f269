"""A bare ``.npy`` array: no geometry of its own (the command line gives it a reference's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_domainseg.formats.base import LABELS, Format, Read

NPY_MAGIC = b"\x93NUMPY"


class NumpyFormat(Format):
    """NumPy ``.npy``; object (pickled) arrays are refused, never unpickled."""

    name = "numpy"
    description = "NumPy array (.npy)"
    suffixes = (".npy",)

    def claims(self, path: Path) -> bool:
        """True for the files this format reads (cheap; never raises)."""
        return self.claims_name(path)

    def read(self, path: Path, **options: Any) -> list[Read]:
        """Read ``path`` (see :meth:`Format.read`)."""
        from napari_domainseg.errors import InputError

        with open(path, "rb") as handle:
            magic = handle.read(len(NPY_MAGIC))
        if magic != NPY_MAGIC:
            raise InputError(
                f"{path}: not a NumPy .npy file (it does not start with the NUMPY mark)"
            )
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as exc:
            if "pickle" not in str(exc).lower():
                raise
            raise InputError(
                f"{path}: holds Python objects (pickled data), which domainseg never loads; save "
                "a numeric array (numpy.save of an integer array)"
            ) from None
        return [Read(array, path, kind=LABELS, name=path.stem)]
