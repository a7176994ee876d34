"""Where the register's file lies: a read-only folder and a full disk whose -shm file cannot
grow each get their own message and exit 3 (they were both "not a database file").

Both are made for real: a small tmpfs mounted for the test, remounted read-only or filled to
the last byte. Mounting needs root (CAP_SYS_ADMIN); without it the folder case falls back to
a folder without write permission, and the full disk is skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMMCARE = str(Path(sys.executable).with_name("commcare"))


def commcare(db: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COMMCARE_DB": str(db)}
    return subprocess.run([COMMCARE, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    if os.geteuid() != 0:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)], capture_output=True, check=False
    )
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    folder = tmp_path / "disk"
    mounted = mount_tmpfs(folder, "8m")
    yield folder, mounted
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def one_line_exit_3(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 3, (result.returncode, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "not a database file" not in result.stderr and "internal error" not in result.stderr
    return result.stderr


def test_a_register_in_a_read_only_folder_says_so(small_disk):
    folder, mounted = small_disk
    db = folder / "register.db"
    assert commcare(db, "resident", "add", "张桂兰", "--tag", "独居").returncode == 0
    if mounted:
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    elif os.geteuid() == 0:
        pytest.skip("root ignores folder permissions and mounting failed: no read-only folder to test")
    else:
        folder.chmod(0o500)
    try:
        for args in (("call", "due"), ("resident", "add", "刘建国"), ("db", "check")):
            said = one_line_exit_3(commcare(db, *args))
            assert "not writable" in said and str(folder) in said, said
    finally:
        if mounted:
            subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=False)
        folder.chmod(0o700)


def test_a_full_disk_whose_shm_cannot_grow_says_so(small_disk):
    folder, mounted = small_disk
    if not mounted:
        pytest.skip("a full disk is made with a small tmpfs, which needs root to mount")
    db = folder / "register.db"
    assert commcare(db, "resident", "add", "张桂兰", "--tag", "独居").returncode == 0
    before = db.read_bytes()
    with open(folder / "filler", "wb") as fh:  # every byte left, so that -shm cannot be made
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    for args in (("call", "due"), ("report", "today"), ("resident", "add", "刘建国")):
        said = one_line_exit_3(commcare(db, *args))
        assert "disk is full" in said and "-shm" in said, said
    assert db.read_bytes() == before
    (folder / "filler").unlink()
    assert commcare(db, "call", "due").returncode == 0


def test_a_folder_given_as_the_database_says_so(tmp_path):
    said = one_line_exit_3(commcare(tmp_path, "call", "due"))
    assert "is a folder" in said


def test_a_backup_that_cannot_be_written_says_where(tmp_path):
    db = tmp_path / "register.db"
    assert commcare(db, "resident", "add", "张桂兰").returncode == 0
    (tmp_path / "folder.db").mkdir()
    for target, why in ((tmp_path / "folder.db", "--force"), (Path("/proc/no/such/place.db"), "")):
        result = commcare(db, "db", "backup", str(target), *([why] if why else []))
        assert result.returncode == 2, result.stderr
        assert "cannot write" in result.stderr and str(target) in result.stderr and "internal" not in result.stderr


def test_db_check_of_a_missing_file_says_no_such_file(tmp_path):
    result = commcare(tmp_path / "nothere.db", "db", "check")
    assert result.returncode == 3 and "no such file" in result.stderr, result.stderr
    assert not (tmp_path / "nothere.db").exists()
