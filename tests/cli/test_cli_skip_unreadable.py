"""``--skip-unreadable`` on ``info``, ``convert`` and ``export``: readable slices only, when asked.

A copy of the real sagittal MR with its last slice (along the slice normal) truncated: refused
by default, naming the file and the flag; opened without that slice with the flag, with a
warning, and the skipped file recorded in the exported sidecar.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ..helpers.dicom_copies import with_last_slice_truncated
from .cli_helpers import run


@pytest.fixture
def series(shared_data: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The copied series and its truncated file (the last slice, so no gap is left)."""
    folder = tmp_path / "series"
    return folder, with_last_slice_truncated(shared_data / "medical" / "mr_sagittal", folder)


@pytest.mark.parametrize("command", ["info", "convert"])
def test_refused_without_the_flag_naming_file_and_flag(series, tmp_path, capsys, command):
    folder, victim = series
    output = ["-o", tmp_path / "v.nii.gz"] if command == "convert" else []
    code, _, err = run(capsys, command, folder, *output)
    assert code == 1
    assert victim.name in err and "truncated" in err and "--skip-unreadable" in err


def test_info_opens_the_readable_slices_and_says_so(series, capsys):
    folder, victim = series
    code, out, err = run(capsys, "info", folder, "--skip-unreadable", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert sorted(result["shape"]) == [3, 256, 256]  # 4 sagittal slices, one skipped
    assert any(victim.name in w and "opened without them" in w for w in result["warnings"])
    assert result["skipped_unreadable"] == [victim.name], "names only, no folders"


def test_convert_writes_the_readable_slices_and_records_the_skipped_one(series, tmp_path, capsys):
    folder, victim = series
    output = tmp_path / "v.nii.gz"
    code, out, err = run(capsys, "convert", folder, "-o", output, "--skip-unreadable")
    assert code == 0, err
    assert "opened without them" in out
    assert sorted(nib.load(output).shape) == [3, 256, 256]
    record = json.loads((tmp_path / "v.json").read_text())["source"]
    assert record["skipped_unreadable"] == [victim.name]


def test_export_onto_a_series_with_an_unreadable_slice(series, tmp_path, capsys):
    folder, victim = series
    shape = tuple(
        json.loads(run(capsys, "info", folder, "--skip-unreadable", "--json")[1])["shape"]
    )
    mask = tmp_path / "mask.npy"
    np.save(mask, np.ones(shape, np.uint8))
    arguments = ["export", mask, "--like", folder, "-o", tmp_path / "m.nii.gz"]
    code, _, err = run(capsys, *arguments)
    assert code == 1 and victim.name in err and "--skip-unreadable" in err
    code, out, err = run(capsys, *arguments, "--skip-unreadable")
    assert code == 0, err
    assert "opened without them" in out
    sidecar = json.loads((tmp_path / "m.labels.json").read_text())
    assert sidecar["source"]["skipped_unreadable"] == [victim.name]
