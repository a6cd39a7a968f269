"""The core must import without napari, Qt or magicgui (enforced two ways)."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def _core_modules() -> list[str]:
    """Every public module of the package: all but ``_napari``, ``_widgets`` and ``_demo``."""
    package = Path(__file__).resolve().parents[2] / "src" / "napari_domainseg"
    modules = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if any(p.startswith("_") and p != "__init__" for p in parts):
            continue
        modules.append(".".join(p for p in parts if p != "__init__"))
    return modules


CORE_MODULES = _core_modules()
GUI_PACKAGES = [
    "napari",
    "npe2",
    "qtpy",
    "PyQt5",
    "PyQt6",
    "PySide2",
    "PySide6",
    "magicgui",
    "superqt",
    "vispy",
]

# Make every GUI package unimportable, as on a machine where they are not installed.
BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys
    BLOCKED = set({blocked!r})
    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by test)")
            return None
    sys.meta_path.insert(0, Blocker())
    """
)


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_imports_without_gui_packages(module):
    code = BLOCKER.format(blocked=GUI_PACKAGES) + f"\nimport {module}\n"
    code += "loaded = sorted(m for m in sys.modules if m.split('.')[0] in BLOCKED)\n"
    code += "assert not loaded, loaded\n"
    result = run_python(code)
    assert result.returncode == 0, result.stderr


def test_blocker_really_blocks():
    """The check above must be able to fail: importing a widget needs napari and Qt."""
    widget = "napari_domainseg._widgets._annotation_panel"
    code = BLOCKER.format(blocked=GUI_PACKAGES) + f"\nimport {widget}\n"
    result = run_python(code)
    assert result.returncode != 0 and "blocked by test" in result.stderr


def test_core_modules_are_found():
    assert {
        "napari_domainseg.labels.schema",
        "napari_domainseg.medical.series",
        "napari_domainseg.geo.grid",
        "napari_domainseg.ops",
    } <= set(CORE_MODULES)
    assert not any("._napari" in m or "._widgets" in m for m in CORE_MODULES)


def test_import_linter_contracts_hold():
    pytest.importorskip("importlinter")
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "importlinter.cli"], cwd=root, capture_output=True, text=True
    )
    if result.returncode != 0 and "No module named importlinter.cli" in result.stderr:
        result = subprocess.run(["lint-imports"], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")
