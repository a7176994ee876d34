"""A damaged register is never read as whole (the contract's *Integrity*).

Real files are damaged byte by byte at the pages the daily round reads — the residents table,
the special groups' index, the counts kept beside them, another table — and the installed
``commcare`` is run as a user runs it. Before this check existed, 16 bytes in the residents
table's root page made ``call due`` list 262 residents instead of 362, exit 0.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

COMMCARE = str(Path(sys.executable).with_name("commcare"))
READS = [("call", "due"), ("report", "today"), ("resident", "list")]


def commcare(db: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COMMCARE_DB": str(db)}
    return subprocess.run([COMMCARE, *args], env=env, capture_output=True, text=True, timeout=300, check=False)


def one_line(stderr: str) -> bool:
    return len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A demo register of 2,000 residents, its write-ahead log folded into the file."""
    folder = tmp_path_factory.mktemp("demo")
    path = folder / "demo.db"
    env = {
        **os.environ,
        "COMMCARE_CONFIG": str(folder / "c.toml"),
        "COMMCARE_AUDIT_KEY": str(folder / "audit.key"),
        "XDG_DATA_HOME": str(folder / "xdg-data"),
        "COMMCARE_LANG": "en",
    }
    done = subprocess.run(
        [COMMCARE, "--db", str(path), "demo", "--residents", "2000", "--requests", "200", "--days", "3", "--seed", "1"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return path


@pytest.fixture
def copy(demo, tmp_path, monkeypatch) -> Path:
    """A copy of the demo register, acting as its first staff member (writes need one)."""
    target = tmp_path / "register.db"
    shutil.copy(demo, target)
    os.chmod(target, 0o600)
    con = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    try:
        monkeypatch.setenv(
            "COMMCARE_USER", con.execute("SELECT name FROM staff WHERE active ORDER BY id").fetchone()[0]
        )
    finally:
        con.close()
    shutil.copy(demo.parent / "audit.key", tmp_path / "audit.key")  # its audit trail's key
    os.chmod(tmp_path / "audit.key", 0o600)
    return target


def page_of(path: Path, name: str) -> tuple[int, int]:
    """(root page of table or index ``name``, page size)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
        return root, con.execute("PRAGMA page_size").fetchone()[0]
    finally:
        con.close()


def damage(path: Path, name: str, offset: int = 8, seed: int = 1) -> None:
    """Sixteen random bytes into the root page of ``name``, at ``offset`` (by default over its
    header's end and its first cell pointers: where the page says where its rows are)."""
    page, size = page_of(path, name)
    rng = random.Random(seed)
    with open(path, "r+b") as fh:
        fh.seek((page - 1) * size + offset)
        fh.write(bytes(rng.randrange(256) for _ in range(16)))


def count_bytes(path: Path, tag: str) -> tuple[int, bytes]:
    """Where in the file the kept count of ``tag`` is stored, and its bytes (a 2-byte integer)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    kept = con.execute("SELECT residents FROM register_counts WHERE tag = ?", (tag,)).fetchone()[0]
    con.close()
    page, size = page_of(path, "register_counts")
    data = path.read_bytes()[(page - 1) * size : page * size]
    value = kept.to_bytes(2, "big")
    at = data.index(tag.encode() + value)
    return (page - 1) * size + at + len(tag), value


def assert_refused_naming_db_check(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 3, (result.returncode, result.stdout[:200], result.stderr)
    assert one_line(result.stderr) and "commcare db check" in result.stderr, result.stderr
    assert result.stdout == ""


def test_the_demo_register_reads_whole_and_checks_sound(copy):
    for args in READS:
        assert commcare(copy, *args, "-f", "json").returncode == 0
    check = commcare(copy, "db", "check", "-f", "json")
    assert check.returncode == 0, check.stderr
    rows = {row["check"]: row for row in json.loads(check.stdout)}
    assert rows["integrity"]["ok"] and rows["counts"]["ok"]


@pytest.mark.parametrize(
    "name, offset, reads",
    [
        ("residents", 8, READS),
        ("residents", 40, READS),
        (
            "ix_resident_tags_community_tag",
            8,
            [("call", "due"), ("report", "today"), ("resident", "list", "--tag", "独居")],
        ),
        ("register_counts", 8, READS),
        ("households", 8, READS),
    ],
    ids=["residents-header", "residents-cells", "tag-index", "counts", "households"],
)
def test_a_damaged_page_is_exit_3_naming_db_check(copy, name, offset, reads):
    """Each read command, on its own fresh copy of the damaged file, exits 3 in one line
    naming ``commcare db check``, and prints nothing as if it were the register."""
    damage(copy, name, offset)
    pristine = copy.read_bytes()
    for args in reads:
        copy.write_bytes(pristine)
        Path(f"{copy}.damaged").unlink(missing_ok=True)
        assert_refused_naming_db_check(commcare(copy, *args, "-f", "json"))


@pytest.mark.parametrize(
    "name, offset, table",
    [
        ("residents", 40, "residents"),
        ("ix_resident_tags_community_tag", 8, "resident_tags"),
        ("register_counts", 8, "register_counts"),
        ("households", 8, "households"),
    ],
    ids=["residents", "tag-index", "counts", "households"],
)
def test_db_check_names_the_damage_and_writes_are_refused(copy, name, offset, table):
    damage(copy, name, offset)
    check = commcare(copy, "db", "check")
    assert check.returncode == 3 and one_line(check.stderr), check.stderr
    assert "internal error" not in check.stderr and f"integrity ({table}:" in check.stderr, check.stderr
    before = copy.read_bytes()
    added = commcare(copy, "resident", "add", "新来的", "--tag", "独居")
    assert_refused_naming_db_check(added)
    assert copy.read_bytes() == before
    for args in READS:
        assert_refused_naming_db_check(commcare(copy, *args))


@pytest.mark.parametrize(
    "tag, reads",
    [
        ("elderly", [("call", "due"), ("report", "today"), ("resident", "list", "--tag", "老人")]),
        ("*", [("resident", "list"), ("resident", "export", "-f", "json")]),
    ],
)
def test_a_wrong_kept_count_is_found_by_the_reads_that_rely_on_it(copy, tag, reads):
    """The counts themselves, changed by a byte in the file (a record SQLite still reads as
    valid): the reads that rely on them, and db check, say the register does not read whole."""
    at, value = count_bytes(copy, tag)
    with open(copy, "r+b") as fh:
        fh.seek(at)
        fh.write((int.from_bytes(value, "big") + 1).to_bytes(2, "big"))
    for args in reads:
        Path(f"{copy}.damaged").unlink(missing_ok=True)
        result = commcare(copy, *args)
        assert_refused_naming_db_check(result)
        assert "could not be read whole" in result.stderr
    check = commcare(copy, "db", "check", "-f", "json")
    assert check.returncode == 3 and "counts (" in check.stderr, check.stderr
    rows = {row["check"]: row for row in json.loads(check.stdout)}
    assert rows["integrity"]["ok"] and not rows["counts"]["ok"]


def test_a_read_that_finds_damage_refuses_the_writes_after_it(copy):
    """``call due`` finds the damage; the next ``resident add`` is refused without reading,
    and so is every read, until db check passes (it does not) or a backup is restored."""
    backup = copy.with_name("before.db")
    assert commcare(copy, "db", "backup", str(backup)).returncode == 0
    damage(copy, "residents", 40)
    assert_refused_naming_db_check(commcare(copy, "call", "due"))
    marker = Path(f"{copy}.damaged")
    assert marker.exists() and oct(marker.stat().st_mode & 0o777) == "0o600"
    assert_refused_naming_db_check(commcare(copy, "resident", "add", "新来的"))
    assert commcare(copy, "db", "check").returncode == 3 and marker.exists()
    restored = commcare(copy, "db", "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert not marker.exists()
    due = commcare(copy, "call", "due", "-f", "json")
    assert due.returncode == 0 and len(json.loads(due.stdout)) > 0
    assert commcare(copy, "resident", "add", "新来的", "--tag", "独居").returncode == 0
    assert commcare(copy, "db", "check").returncode == 0


def test_a_marker_without_damage_is_cleared_by_db_check(copy):
    """A finding remembered of a register that is sound (it was restored by hand, say):
    refused until db check, which finds it sound and lets it be used again."""
    Path(f"{copy}.damaged").write_text("2026-11-29T08:00:00+08:00\tdatabase disk image is malformed\n")
    assert_refused_naming_db_check(commcare(copy, "call", "due"))
    assert commcare(copy, "db", "check").returncode == 0
    assert commcare(copy, "call", "due").returncode == 0


def test_a_resident_hidden_by_damage_is_not_not_found(copy):
    """Naming a resident the damaged page hides is exit 3 (damage), not exit 1 (not found)."""
    con = sqlite3.connect(copy)
    name = con.execute("SELECT name FROM residents ORDER BY id DESC LIMIT 1").fetchone()[0]
    con.close()
    damage(copy, "residents", 40)
    result = commcare(copy, "call", "log", name, "--outcome", "ok")
    assert result.returncode == 3 and "commcare db check" in result.stderr, result.stderr


def test_a_garbled_registration_time_does_not_drop_a_resident_from_the_round(copy):
    """Bytes garbled inside one special-group resident's record, where SQLite sees nothing
    wrong and every count still holds: the registration time no longer reads as a time, it
    compares as later than any day, and the resident fell out of ``call due`` and the
    report, exit 0 (found by damaging random bytes of the residents' pages)."""
    con = sqlite3.connect(copy)
    id_number, phone, created = con.execute(
        "SELECT r.id_number, r.phone, r.created_at FROM residents r JOIN resident_tags t ON t.resident_id = r.id "
        "WHERE r.archived_at IS NULL AND r.id_number IS NOT NULL AND r.phone IS NOT NULL ORDER BY r.id LIMIT 1"
    ).fetchone()
    con.close()
    data = bytearray(copy.read_bytes())
    record = (id_number + phone).encode()  # side by side in the table's record, not in an index
    assert data.count(record) == 1
    at = data.index(created.encode(), data.index(record))  # its registration time
    data[at : at + 5] = b"XZ\xfd\xca\xe6"
    copy.write_bytes(bytes(data))
    for args in [("call", "due"), ("report", "today")]:
        assert_refused_naming_db_check(commcare(copy, *args, "-f", "json"))
    check = commcare(copy, "db", "check")
    assert check.returncode == 3 and "created_at" in check.stderr, check.stderr


def test_the_evening_run_checks_the_whole_file_and_does_not_report_from_a_damaged_one(copy, tmp_path):
    """Damage in a page no daily command reads (here the directory's) is found by the
    scheduled summary's full integrity check: no report file, exit 3 naming db check, the
    run recorded as failed, and the register refused until it is checked or restored."""
    damage(copy, "directory", 8)
    assert commcare(copy, "call", "due", "-f", "json").returncode == 0  # the daily read sees nothing
    reports = tmp_path / "reports"
    run = commcare(copy, "schedule", "run", "--dir", str(reports))
    assert run.returncode == 3 and "commcare db check" in run.stderr and "directory" in run.stderr, run.stderr
    assert not reports.exists() or not list(reports.glob("*.md"))
    status = commcare(copy, "schedule", "status")
    assert status.returncode == 1, status.stdout + status.stderr
    after = commcare(copy, "call", "due", "-f", "json")  # refused; the failed run is told too
    assert after.returncode == 3 and after.stdout == "" and "commcare db check" in after.stderr, after.stderr


# --- the counts are kept by every write path, on both backends ------------------------------


def kept_and_fresh(url: str) -> tuple[dict, dict]:
    """The counts the register keeps, and the same counted afresh from the rows."""
    from commcare.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            kept = {
                (c, t): n
                for c, t, n in conn.exec_driver_sql(
                    "SELECT community_id, tag, residents FROM register_counts WHERE residents <> 0"
                )
            }
            fresh = {
                (c, "*"): n
                for c, n in conn.exec_driver_sql(
                    "SELECT community_id, count(*) FROM residents WHERE archived_at IS NULL GROUP BY community_id"
                )
            }
            fresh.update(
                {
                    (c, t): n
                    for c, t, n in conn.exec_driver_sql(
                        "SELECT r.community_id, t.tag, count(*) FROM resident_tags t JOIN residents r ON r.id = t.resident_id"
                        " WHERE r.archived_at IS NULL GROUP BY r.community_id, t.tag"
                    )
                }
            )
    finally:
        engine.dispose()
    return kept, fresh


def test_every_write_path_keeps_the_counts(db_url, cli, tmp_path):
    steps = [
        ("staff", "add", "王秀英"),
        ("resident", "add", "张桂兰", "--tag", "独居", "--tag", "老人", "--compound", "幸福小区", "--address", "1-101"),
        ("resident", "add", "张桂兰", "--tag", "老人", "--compound", "幸福小区", "--address", "1-101"),
        ("resident", "add", "刘建国"),
        ("resident", "edit", "#3", "--add-tag", "体弱"),
        ("resident", "edit", "#1", "--remove-tag", "老人"),
        ("resident", "edit", "#2", "--tag", "残疾", "--tag", "孕妇"),
        ("resident", "archive", "#3", "--reason", "搬走"),
        ("resident", "edit", "#3", "--add-tag", "儿童"),
        ("resident", "unarchive", "#3"),
        ("resident", "merge", "#1", "#2"),
    ]
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "姓名,小区,住址,人群类别\n王一,阳光花园,2-201,独居、老人\n王二,阳光花园,2-202,\n王三,阳光花园,2-203,慢病\n",
        encoding="utf-8",
    )
    steps.append(("resident", "import", str(roster)))
    for step in steps:
        result = cli(*step)
        assert result.exit_code == 0, (step, result.stderr)
        kept, fresh = kept_and_fresh(db_url)
        assert kept == fresh, step
    check = cli("db", "check", "-f", "json")
    assert check.exit_code == 0, check.stderr
    assert {row["check"]: row["ok"] for row in json.loads(check.stdout)}["counts"]
    assert cli("call", "due").exit_code == 0 and cli("report", "today").exit_code == 0


def test_a_hand_made_change_keeps_the_counts_too(db_url, cli):
    """The triggers are in the database: SQL typed by hand (an administrator's fix) keeps
    them, deletes included (the tags go first, or with the resident by ON DELETE CASCADE)."""
    from commcare.db import make_engine

    for name in ("甲", "乙", "丙"):
        assert cli("resident", "add", name, "--tag", "独居", "--tag", "老人").exit_code == 0
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM resident_tags WHERE resident_id = 1 AND tag = 'elderly'")
        conn.exec_driver_sql("UPDATE resident_tags SET tag = 'sick' WHERE resident_id = 2 AND tag = 'elderly'")
        conn.exec_driver_sql("DELETE FROM residents WHERE id = 3")
    engine.dispose()
    kept, fresh = kept_and_fresh(db_url)
    assert kept == fresh == {(1, "*"): 2, (1, "lives-alone"): 2, (1, "sick"): 1}


def test_the_demo_keeps_the_counts(db_url, cli):
    assert cli("demo", "--residents", "300", "--requests", "50", "--days", "2").exit_code == 0
    kept, fresh = kept_and_fresh(db_url)
    assert kept == fresh and kept[(1, "*")] > 0
    assert cli("demo", "--residents", "200", "--requests", "50", "--days", "2").exit_code == 0  # over its own demo
    kept, fresh = kept_and_fresh(db_url)
    assert kept == fresh
