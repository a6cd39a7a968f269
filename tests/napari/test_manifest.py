"""The npe2 manifest is valid and importing the package stays light."""

import subprocess
import sys

import npe2


def test_manifest_validates():
    result = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-domainseg"],
        capture_output=True,
        text=True,
    )
    if "No module named npe2.__main__" in result.stderr:
        result = subprocess.run(
            ["npe2", "validate", "napari-domainseg"], capture_output=True, text=True
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def test_manifest_contributions():
    manifest = npe2.PluginManifest.from_distribution("napari-domainseg")
    assert manifest.display_name == "DomainSeg"
    samples = {s.key for s in manifest.contributions.sample_data}
    assert samples == {"ct_phantom", "synthetic_scene"}
    widgets = {w.display_name for w in manifest.contributions.widgets}
    assert "Label schema" in widgets
    for command in manifest.contributions.commands:
        module = command.python_name.split(":")[0]
        assert module.startswith(("napari_domainseg._napari", "napari_domainseg._widgets"))


def test_importing_the_package_imports_no_qt_and_no_napari():
    code = (
        "import sys, napari_domainseg\n"
        "gui = ('napari', 'qtpy', 'PyQt6', 'magicgui', 'vispy')\n"
        "heavy = [m for m in gui if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
