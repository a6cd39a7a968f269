import pytest

from napari_domainseg.atomic import OutputExistsError, atomic_write


def test_writes_through_a_temporary_file_with_the_same_suffix(tmp_path):
    target = tmp_path / "mask.nii.gz"
    with atomic_write(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".nii.gz")
        assert not target.exists()
        tmp.write_bytes(b"data")
    assert target.read_bytes() == b"data"
    assert list(tmp_path.iterdir()) == [target]


def test_failure_leaves_nothing_behind(tmp_path):
    target = tmp_path / "mask.tif"
    with pytest.raises(RuntimeError, match="boom"), atomic_write(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_unless_asked(tmp_path):
    target = tmp_path / "mask.tif"
    target.write_bytes(b"user data")
    with pytest.raises(OutputExistsError, match="already exists"), atomic_write(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"user data"
    with atomic_write(target, overwrite=True) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"


def test_file_created_meanwhile_is_not_clobbered(tmp_path):
    target = tmp_path / "mask.tif"
    with pytest.raises(OutputExistsError, match="appeared"), atomic_write(target) as tmp:
        tmp.write_bytes(b"ours")
        target.write_bytes(b"someone else's")
    assert target.read_bytes() == b"someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.tif"]


def test_missing_folder_is_a_clear_error(tmp_path):
    with (
        pytest.raises(FileNotFoundError, match="does not exist"),
        atomic_write(tmp_path / "nope" / "mask.tif"),
    ):
        pass
