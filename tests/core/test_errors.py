"""One error base class: every public exception of the package is a ``DomainSegError``.

Its message is written once, where the problem is found; the command line prints it without
naming the file a second time.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import napari_domainseg
from napari_domainseg.errors import DomainSegError, naming

from ..helpers.cli import cli

CONTROL_FLOW = {"napari_domainseg.medical.sniff.SkipFile"}
"""Exceptions that never reach the user: caught inside the module that raises them."""
BAD_INPUT = Path(__file__).resolve().parents[2].parent / "shared/data/medical/bad_input"
GUI_PACKAGES = ("napari_domainseg._napari", "napari_domainseg._widgets")


def _exception_classes() -> list[type[BaseException]]:
    """Every public exception class defined in a module of the package (GUI modules too)."""
    found = []
    for module_info in pkgutil.walk_packages(napari_domainseg.__path__, "napari_domainseg."):
        try:
            module = importlib.import_module(module_info.name)
        except ImportError as exc:  # an optional dependency (torch, ...) that is not installed
            if module_info.name.startswith(GUI_PACKAGES) or "napari_domainseg" in str(exc.name):
                raise
            continue
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if (
                cls.__module__ == module.__name__
                and issubclass(cls, BaseException)
                and not issubclass(cls, Warning)
                and not name.startswith("_")
            ):
                found.append(cls)
    return found


def test_every_public_exception_is_a_domainseg_error():
    classes = _exception_classes()
    names = {f"{cls.__module__}.{cls.__qualname__}" for cls in classes}
    assert {
        "napari_domainseg.errors.InputError",
        "napari_domainseg.atomic.OutputExistsError",
    } <= names
    outside = sorted(names - CONTROL_FLOW - {
        f"{c.__module__}.{c.__qualname__}" for c in classes if issubclass(c, DomainSegError)
    })  # fmt: skip
    assert outside == []


def test_builtin_bases_are_kept():
    from napari_domainseg.atomic import OutputExistsError
    from napari_domainseg.medical.nrrd_files import NrrdError

    assert issubclass(NrrdError, ValueError) and issubclass(OutputExistsError, FileExistsError)
    error = OutputExistsError("out.nii.gz already exists")
    assert isinstance(error, OSError) and str(error) == "out.nii.gz already exists"


def test_naming_puts_the_file_in_front_once():
    assert naming("not a volume", Path("/data/ct")) == "/data/ct: not a volume"
    assert naming("/data/ct: not a volume", Path("/data/ct")) == "/data/ct: not a volume"
    assert naming("ct: not a volume", Path("/data/ct")) == "ct: not a volume"
    # a short name elsewhere in the text (a folder called CT) does not name the file
    assert naming("series 4 [CT volume] is not a volume", Path("/data/CT")) == (
        "/data/CT: series 4 [CT volume] is not a volume"
    )
    assert naming("not a volume", None) == "not a volume"


def test_cli_names_a_truncated_nrrd_once(tmp_path):
    path = tmp_path / "scan.nrrd"
    path.write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 4 4 4\nencoding: raw\n\nxx")
    code, _, err = cli("info", path)
    assert code == 1
    assert err.count(str(path)) == 1 and err.count("scan.nrrd") == 1, err
    assert err.startswith(f"domainseg: {path}: ") and "truncated" in err and "again" in err


@pytest.mark.skipif(not BAD_INPUT.is_dir(), reason="needs ../shared/data")
def test_cli_names_a_dicom_folder_with_a_gap_once():
    folder = BAD_INPUT / "slice_gap"
    code, _, err = cli("info", folder)
    assert code == 1
    assert len(err.splitlines()) == 1 and err.count("slice_gap") == 1, err
    assert "slice spacing is not regular" in err and "resample" in err.lower()
