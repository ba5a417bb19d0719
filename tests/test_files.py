"""albumcover.files: atomic writers and the output-folder check every writing command runs first."""

import os

import pytest

from albumcover.files import OutputDirError, check_writable_dir, write_atomic
from tests.unprivileged import call_unprivileged


def test_check_writable_dir_probes_missing_folders_and_leaves_no_trace(tmp_path):
    target = tmp_path / "a" / "b" / "covers"
    assert check_writable_dir(target) == target.resolve()
    assert list(tmp_path.iterdir()) == []  # the folders made for the probe are gone again
    target.mkdir(parents=True)
    assert check_writable_dir(target) == target.resolve()
    assert list(target.iterdir()) == []  # an existing folder stays, the probe file is gone


def test_check_writable_dir_refuses_a_file(tmp_path):
    song = tmp_path / "song.mp3"
    song.write_bytes(b"ID3")
    with pytest.raises(OutputDirError, match=r"--out '.*song.mp3' is a file, not a folder"):
        check_writable_dir(song, "--out")
    assert song.read_bytes() == b"ID3"


def test_check_writable_dir_refuses_a_folder_under_a_file(tmp_path):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(OutputDirError, match="cannot be created: Not a directory"):
        check_writable_dir(tmp_path / "plain" / "covers")


def test_check_writable_dir_refuses_a_read_only_folder(tmp_path):
    # root writes through file modes: as root it runs without that right (tests/unprivileged.py)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(OutputDirError, match="'.*locked' is not writable: Permission denied"):
            call_unprivileged(check_writable_dir, locked)
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


@pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="needs Linux sysfs")
def test_check_writable_dir_refuses_a_folder_even_root_cannot_write():
    # sysfs refuses new files to everyone, root included: the write probe, not os.access, sees it
    with pytest.raises(OutputDirError, match="'/sys/kernel' is not writable"):
        check_writable_dir("/sys/kernel")


def test_write_atomic_leaves_equal_files_untouched(tmp_path):
    path = tmp_path / "x" / "a.txt"
    assert write_atomic(path, "hé")
    assert path.read_bytes() == "hé".encode()
    assert not write_atomic(path, "hé")
    assert write_atomic(path, b"new")
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.txt"]
