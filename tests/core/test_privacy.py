"""What outputs and caches reveal: pseudonymised UIDs, no absolute paths, user-only cache files."""

from __future__ import annotations

import csv
import io
import json
import stat
from pathlib import Path

import numpy as np
import pydicom
import pytest

from napari_domainseg.atomic import atomic_write
from napari_domainseg.cli import commands, main
from napari_domainseg.ops.recovery import RecoveryStore, recovery_key
from napari_domainseg.privacy import hide_folders, pseudonym, pseudonymise, shown_path

from ..helpers.cli import cli

CT = "medical/seg_dcmqi/ct-3slice"


def _uids(folder: Path) -> set[str]:
    first = pydicom.dcmread(sorted(p for p in folder.iterdir() if p.is_file())[0])
    return {first.SeriesInstanceUID, first.StudyInstanceUID, first.FrameOfReferenceUID}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_pseudonyms_are_short_stable_and_distinct():
    a, b = pseudonym("1.2.840.1"), pseudonym("1.2.840.2")
    assert a == pseudonym("1.2.840.1") and a != b and a.startswith("uid-") and len(a) == 16
    assert "1.2.840" not in a


def test_paths_are_shown_relative_or_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inside = tmp_path / "studies" / "ct.nii.gz"
    assert shown_path(inside) == "studies/ct.nii.gz"
    assert shown_path("/srv/patients/Doe_John/ct.nii.gz") == "ct.nii.gz"
    assert shown_path("studies/ct.nii.gz") == "studies/ct.nii.gz", "as the user typed it"
    text = "series #2 in /srv/patients/Doe_John/ct: 3 files skipped"
    assert hide_folders(text, ["/srv/patients/Doe_John/ct"]) == "series #2 in ct: 3 files skipped"
    record = {"series_instance_uid": "1.2.3", "path": "/srv/x/a.dcm", "dice": 0.5}
    assert pseudonymise(record) == {
        "series_instance_uid": pseudonym("1.2.3"), "path": "a.dcm", "dice": 0.5,
    }  # fmt: skip


def test_info_json_carries_no_uid_and_no_absolute_path(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    series = shared_data / CT
    code, out, _ = cli("info", series, "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["path"] == series.name
    assert summary["series_instance_uid"].startswith("uid-")
    for secret in [*_uids(series), str(shared_data)]:
        assert secret not in out, f"{secret} in info --json"
    code, out, _ = cli("info", series, "--json", "--show-patient-data")
    shown = json.loads(out)
    assert shown["path"] == str(series) and shown["series_instance_uid"] in _uids(series)
    assert pseudonym(shown["series_instance_uid"]) == summary["series_instance_uid"]


def test_batch_results_table_is_pseudonymised(shared_data, tmp_path, monkeypatch):
    from napari_domainseg.cli import batch as batch_module

    def sequential(task, inputs, arguments, scheduler=None, workers=2):  # no cluster needed
        return [batch_module.run_one(task, source, arguments) for source in inputs]

    monkeypatch.setattr(batch_module, "run_batch", sequential)
    monkeypatch.chdir(tmp_path)
    listing = tmp_path / "inputs.txt"
    missing = shared_data / "medical" / "no_such_series"
    listing.write_text(f"{shared_data / CT}\n{missing}\n", encoding="utf-8")
    code, _, _ = cli("batch", "info", "--inputs", listing, "--results", "results.csv")
    assert code == 1, "one input fails"
    table = (tmp_path / "results.csv").read_text(encoding="utf-8")
    for secret in [*_uids(shared_data / CT), str(shared_data)]:
        assert secret not in table, f"{secret} in results.csv"
    rows = list(csv.DictReader(io.StringIO(table)))
    assert [r["input"] for r in rows] == ["ct-3slice", "no_such_series"]
    assert "no_such_series" in rows[1]["error"]
    code, _, err = cli("batch", "info", "--inputs", listing, "--results", "results.csv")
    assert code == 1 and "results.csv already exists" in err and "--overwrite" in err
    cli("batch", "info", "--inputs", listing, "--results", "results.csv", "--overwrite",
        "--show-patient-data")  # fmt: skip
    first = next(csv.DictReader(io.StringIO((tmp_path / "results.csv").read_text("utf-8"))))
    assert first["input"] == str(shared_data / CT)
    assert json.loads(first["result"])["series_instance_uid"] in _uids(shared_data / CT)


def test_the_recovery_store_is_private_and_keeps_no_identifiers(tmp_path):
    folder = tmp_path / "recovery"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    metadata = {
        "domain": "medical",
        "series_instance_uid": "1.2.826.0.1.3680043.8.498.1",
        "series_description": "Doe^John head CT",
        "source_files": ["/srv/patients/Doe_John/1.dcm"],
        "sop_instance_uids": ["1.2.826.0.1.3680043.8.498.2"],
        "patient": {"PatientName": "Doe^John"},
        "annotation_id": "abc",
        "schema": {"name": "x", "classes": [{"id": 1, "name": "liver", "color": "#ff0000"}]},
    }
    store = RecoveryStore(folder)
    key = recovery_key(metadata["series_instance_uid"], (2, 3, 4))
    data = store.save(key, np.ones((2, 3, 4), np.uint8), "liver", metadata)
    assert mode(folder) == 0o700 and mode(data.parent) == 0o700
    assert mode(data) == 0o600 and mode(data.with_suffix(".json")) == 0o600
    text = data.with_suffix(".json").read_text(encoding="utf-8")
    for secret in ("1.2.826.0.1.3680043.8.498", "Doe", "/srv", "head CT"):
        assert secret not in text and secret not in key
    restored = store.latest(key)
    assert restored.metadata["schema"] == metadata["schema"]
    assert restored.metadata["annotation_id"] == "abc"
    assert restored.metadata["series_instance_uid"] == pseudonym(metadata["series_instance_uid"])


def test_atomic_writes_can_be_user_only(tmp_path):
    with atomic_write(tmp_path / "cache.json", mode=0o600) as tmp:
        tmp.write_text("{}", encoding="utf-8")
    assert mode(tmp_path / "cache.json") == 0o600


@pytest.mark.parametrize("command", ["info"])
def test_show_patient_data_is_documented_in_help(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--show-patient-data" in capsys.readouterr().out
    assert commands.info.__doc__
