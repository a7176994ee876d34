"""A backup or restore killed mid-copy (SIGKILL) leaves no copy of the register behind once
the same command, or ``db check``, has run again; while the copy exists it is 0600.

The register is made large (some 120 MB of filler) so that the copy takes long enough to be
caught and killed while it is being written.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

COMMCARE = str(Path(sys.executable).with_name("commcare"))


def commcare(db: Path, *args: str, wait: bool = True):
    env = {**os.environ, "COMMCARE_DB": str(db)}
    if not wait:
        return subprocess.Popen([COMMCARE, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return subprocess.run([COMMCARE, *args], env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def large(tmp_path) -> Path:
    path = tmp_path / "register.db"
    assert commcare(path, "resident", "add", "张桂兰", "--tag", "独居").returncode == 0
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE filler (b BLOB)")
    con.executemany("INSERT INTO filler VALUES (?)", ((os.urandom(4000),) for _ in range(30_000)))
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return path


def temporaries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if ".tmp-" in p.name)


def kill_while_copying(proc: subprocess.Popen, folder: Path) -> list[Path]:
    """SIGKILL ``proc`` once its temporary copy has some of the register in it; returns the
    temporaries it left, each checked to be 0600 at that moment."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = [p for p in temporaries(folder) if not p.name.endswith("-journal")]
        if found and found[0].stat().st_size > 1_000_000:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.002)
    else:
        pytest.fail("the copy never started")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = temporaries(folder)
    assert left, "nothing to clean: the copy ended before it was killed"
    for file in left:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, (file.name, oct(file.stat().st_mode))
    return left


def test_a_killed_backup_is_removed_by_the_next_backup(large, tmp_path):
    backups = tmp_path / "backups"
    backups.mkdir()
    kill_while_copying(commcare(large, "db", "backup", str(backups / "monday.db"), wait=False), backups)
    again = commcare(large, "db", "backup", str(backups / "tuesday.db"))
    assert again.returncode == 0, again.stderr
    assert temporaries(backups) == []
    assert sorted(p.name for p in backups.iterdir()) == ["tuesday.db"]


def test_a_killed_backup_is_removed_by_db_check(large, tmp_path):
    kill_while_copying(commcare(large, "db", "backup", str(tmp_path / "copy.db"), wait=False), tmp_path)
    check = commcare(large, "db", "check")
    assert check.returncode == 0, check.stderr
    assert temporaries(tmp_path) == [] and not (tmp_path / "copy.db").exists()


def test_a_killed_restore_is_removed_by_the_next_restore(large, tmp_path):
    backup = tmp_path / "backup.db"
    assert commcare(large, "db", "backup", str(backup)).returncode == 0
    left = kill_while_copying(commcare(large, "db", "restore", str(backup), wait=False), tmp_path)
    assert any("before-restore" in p.name for p in left)
    again = commcare(large, "db", "restore", str(backup))
    assert again.returncode == 0, again.stderr
    assert temporaries(tmp_path) == []
    assert commcare(large, "db", "check").returncode == 0


def test_a_running_commands_copy_is_left_alone(large, tmp_path):
    """A temporary whose process is alive is another command at work, not a leftover."""
    copy = tmp_path / f".other.db.tmp-{os.getpid()}"
    copy.write_bytes(b"SQLite format 3\0" + b"\0" * 100)
    os.chmod(copy, 0o600)
    assert commcare(large, "db", "check").returncode == 0
    assert copy.exists()
