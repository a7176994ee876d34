"""Backup, restore, check, the upgrade gates, and the faults a laptop register meets.

After every refused or failed command: counts and contents unchanged (``snapshot``) and, on
SQLite, ``integrity_check`` and ``foreign_key_check`` clean (``assert_sound``).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.dbstate import assert_sound, snapshot

FIXTURES = Path(__file__).parent / "fixtures"
FAULTY = FIXTURES / "faulty_commcare.py"
PHONE, ID_NUMBER, NOTE = "13912345678", "11010519491231002X", "心脏不好-secret-4417"


def load_fixture(name: str):
    spec = importlib.util.spec_from_file_location(name, FIXTURES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seed(cli) -> None:
    assert cli("staff", "add", "王秀英").exit_code == 0
    assert (
        cli(
            "resident",
            "add",
            "张桂兰",
            "--phone",
            PHONE,
            "--id-number",
            ID_NUMBER,
            "--note",
            NOTE,
            "--compound",
            "幸福小区",
            "--address",
            "1-101",
            "--liaison",
            "王秀英",
            "--tag",
            "独居",
        ).exit_code
        == 0
    )
    assert cli("add-request", "张桂兰", "-c", "medicine").exit_code == 0


@pytest.fixture
def register_db(tmp_path, cli, monkeypatch):
    path = tmp_path / "register.db"
    monkeypatch.setenv("COMMCARE_DB", str(path))
    seed(cli)
    return path


@pytest.fixture
def register(db_url, cli):
    """The same register on SQLite and (with COMMCARE_TEST_PG_URL) PostgreSQL."""
    seed(cli)
    return db_url


def files(path: Path) -> dict:
    """The database and its -wal/-shm as bytes: "nothing written" means these are equal."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.parent.glob(path.name + "*"))
        if p.name in (path.name, path.name + "-wal")
    }


def one_line(stderr: str) -> bool:
    return len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr


def run(url: str, *args, fault: str | None = None, timeout: str = "10", cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COMMCARE_DB": url, "COMMCARE_BUSY_TIMEOUT": timeout}
    command = [sys.executable, "-m", "commcare", *args]
    if fault:
        env["COMMCARE_TEST_FAULT"] = fault
        command = [sys.executable, str(FAULTY), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False, cwd=cwd)


# --- backup ---------------------------------------------------------------------------------


def test_backup_is_private_verified_and_never_overwrites(register_db, tmp_path, cli):
    target = tmp_path / "backups" / "b.db"
    result = cli("db", "backup", target)
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert snapshot(str(target)) == snapshot(str(register_db))
    assert_sound(str(target))
    before = target.read_bytes()
    refused = cli("db", "backup", target)
    assert refused.exit_code == 1 and "--force" in refused.stderr
    assert target.read_bytes() == before
    assert cli("db", "backup", target, "--force").exit_code == 0
    assert [p.name for p in target.parent.iterdir()] == ["b.db"]  # no temporary file left


def test_the_backup_is_written_to_a_temporary_file_created_0600(register_db, tmp_path, cli, monkeypatch):
    """The snapshot lands in a hidden temporary file that is private before any byte of the
    register is in it, and the target appears only once it is complete and checked."""
    from commcare.storage import maintenance

    seen = []
    shipped = maintenance._copy

    def watching(source, tmp):
        seen.append((tmp.name, stat.S_IMODE(tmp.stat().st_mode), tmp.stat().st_size, (tmp_path / "b.db").exists()))
        shipped(source, tmp)

    monkeypatch.setattr(maintenance, "_copy", watching)
    assert cli("db", "backup", tmp_path / "b.db").exit_code == 0
    [(name, mode, size, target_there)] = seen
    assert name.startswith(".b.db.tmp-") and mode == 0o600 and size == 0 and not target_there


def test_a_damaged_database_is_not_backed_up(register_db, tmp_path, cli):
    con = sqlite3.connect(register_db)
    con.execute("PRAGMA foreign_keys = OFF")
    con.execute("INSERT INTO resident_tags (resident_id, tag, community_id) VALUES (999, 'elderly', 1)")
    con.commit()
    con.close()
    result = cli("db", "backup", tmp_path / "b.db")
    assert result.exit_code == 3 and one_line(result.stderr)
    assert f"{register_db} is damaged" in result.stderr and "foreign key" in result.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".b.db", "b.db"))]


def test_postgresql_backup_points_to_pg_dump_without_the_password(cli):
    result = cli("--db", "postgresql+psycopg://clerk:s3cret@127.0.0.1:1/commcare", "db", "backup", "x.db")
    assert result.exit_code == 1 and "pg_dump" in result.stderr and "s3cret" not in result.stderr


# --- restore ----------------------------------------------------------------------------------


def test_restore_keeps_the_database_it_replaces(register_db, tmp_path, cli):
    target = tmp_path / "b.db"
    assert cli("db", "backup", target).exit_code == 0
    backed_up = snapshot(str(register_db))
    assert cli("resident", "add", "刘建国").exit_code == 0
    replaced = snapshot(str(register_db))
    result = cli("db", "restore", target, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert snapshot(str(register_db)) == backed_up
    kept = [p for p in tmp_path.iterdir() if ".before-restore-" in p.name]
    assert len(kept) == 1 and snapshot(str(kept[0])) == replaced
    assert stat.S_IMODE(kept[0].stat().st_mode) == 0o600
    assert_sound(str(register_db))
    assert cli("db", "check").exit_code == 0


def test_restore_waits_for_the_register_to_be_free(register_db, tmp_path, cli):
    """Restore replaces the live file under its exclusive lock: while another program has it
    open, restore waits; past the busy timeout it exits 3 and nothing is changed or kept."""
    target = tmp_path / "b.db"
    assert cli("db", "backup", target).exit_code == 0
    assert cli("resident", "add", "刘建国").exit_code == 0
    before = snapshot(str(register_db))
    reader = sqlite3.connect(register_db, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM residents").fetchone()
    try:
        done = run(str(register_db), "db", "restore", str(target), timeout="0.3")
    finally:
        reader.execute("ROLLBACK")
        reader.close()
    assert done.returncode == 3 and one_line(done.stderr) and "locked" in done.stderr
    assert snapshot(str(register_db)) == before
    assert not [p for p in tmp_path.iterdir() if "restore" in p.name]


@pytest.mark.parametrize("kind", ["text", "foreign sqlite", "damaged commcare", "newer commcare"])
def test_restore_refuses_what_it_cannot_trust(register_db, tmp_path, cli, kind):
    bad = tmp_path / "bad.db"
    if kind == "text":
        bad.write_text("not a database\n" * 50)
    elif kind == "foreign sqlite":
        con = sqlite3.connect(bad)
        con.execute("CREATE TABLE notes (x)")
        con.commit()
        con.close()
    else:
        assert cli("db", "backup", bad).exit_code == 0
        con = sqlite3.connect(bad)
        con.execute("PRAGMA foreign_keys = OFF")
        if kind == "damaged commcare":
            con.execute("INSERT INTO resident_tags (resident_id, tag, community_id) VALUES (999, 'elderly', 1)")
        else:
            con.execute("UPDATE alembic_version SET version_num = '9999'")
        con.commit()
        con.close()
    before = files(register_db)
    result = cli("db", "restore", bad)
    assert result.exit_code == 3 and one_line(result.stderr), result.stderr
    assert files(register_db) == before
    assert not [p for p in tmp_path.iterdir() if "restore" in p.name]


# --- check ------------------------------------------------------------------------------------


def test_check_passes_on_a_sound_register(register_db, cli):
    result = cli("db", "check", "-f", "json")
    assert result.exit_code == 0, result.stderr
    import json

    checks = {row["check"]: row["ok"] for row in json.loads(result.stdout)}
    assert {"integrity", "foreign_keys", "schema", "journal_mode", "mode register.db"} <= set(checks)
    assert all(checks.values())


@pytest.mark.parametrize("problem", ["mode", "journal", "foreign keys", "older", "newer"])
def test_check_exits_3_saying_what_is_wrong(register_db, cli, monkeypatch, problem):
    con = sqlite3.connect(register_db)
    if problem == "mode":
        os.chmod(register_db, 0o644)
        said = "mode register.db"
    elif problem == "journal":
        con.execute("PRAGMA journal_mode = DELETE")
        said = "journal_mode"
    elif problem == "foreign keys":
        con.execute("PRAGMA foreign_keys = OFF")
        con.execute("INSERT INTO resident_tags (resident_id, tag, community_id) VALUES (999, 'elderly', 1)")
        said = "foreign key"
    elif problem == "older":
        load_fixture("with_test_revision").install(monkeypatch)
        said = "schema"
    else:
        con.execute("UPDATE alembic_version SET version_num = '9999'")
        said = "newer"
    con.commit()
    con.close()
    result = cli("db", "check")
    assert result.exit_code == 3 and said in (result.stdout + result.stderr), (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr


# --- older and newer databases ----------------------------------------------------------------

COMMANDS = [
    ("resident", "list"),
    ("resident", "add", "新人"),
    ("add-request", "#1", "-c", "trash"),
    ("call", "log", "#1", "--outcome", "ok"),
    ("report", "today"),
    ("audit",),
    ("retention", "run"),
]


def _set_revision(url: str, revision: str) -> None:
    from commcare.db import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{revision}'")
    finally:
        engine.dispose()


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_an_older_database_asks_for_db_upgrade_and_is_left_alone(register, cli, monkeypatch, args):
    """The program knows one more revision (test-only); the register is at the shipped head."""
    load_fixture("with_test_revision").install(monkeypatch)
    before = snapshot(register)
    result = cli(*args)
    assert result.exit_code == 3 and one_line(result.stderr), result.stderr
    assert "commcare db upgrade" in result.stderr and result.stdout == ""
    assert snapshot(register) == before
    assert_sound(register)


@pytest.mark.parametrize("args", COMMANDS + [("db", "upgrade")], ids=" ".join)
def test_a_newer_database_exits_3_and_writes_nothing(register, cli, args):
    _set_revision(register, "9999")
    before = snapshot(register)
    sqlite = "://" not in register
    raw = files(Path(register)) if sqlite else None
    result = cli(*args)
    assert result.exit_code == 3 and one_line(result.stderr), result.stderr
    assert "newer" in result.stderr
    assert snapshot(register) == before
    if sqlite:
        assert files(Path(register)) == raw
    assert_sound(register)


# --- faults -----------------------------------------------------------------------------------


def roster(path: Path, rows: int = 1000) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["姓名", "联系电话", "小区", "住址", "人群类别"])
        for i in range(rows):
            out.writerow(
                [f"居民{i}", f"137{i:08d}", "阳光小区", f"{i // 3 + 1}-{i % 3 + 1}01", "独居" if i % 2 else ""]
            )
    return path


def test_an_import_of_1000_rows_runs_to_the_end(register, tmp_path):
    """The control for the kill tests: the same import, not killed, brings all 1,000."""
    before = snapshot(register)
    done = run(register, "resident", "import", roster(tmp_path / "r.csv"))
    assert done.returncode == 0, done.stderr
    assert len(snapshot(register)["residents"]) == len(before["residents"]) + 1000
    assert_sound(register)


@pytest.mark.parametrize("fault", ["kill-after-insert", "kill-before-commit"])
def test_an_import_killed_midway_leaves_nothing(register, tmp_path, fault):
    """kill -9 while a 1,000-row import is written (after its first resident insert, or with
    every row written and only the COMMIT to come): none of it is there afterwards, and the
    register is sound and usable."""
    before = snapshot(register)
    done = run(register, "resident", "import", roster(tmp_path / "r.csv"), fault=fault)
    assert done.returncode == -9, done.stderr
    assert snapshot(register) == before
    assert_sound(register)
    assert run(register, "resident", "list").returncode == 0


@pytest.mark.parametrize(
    "args",
    [
        ("resident", "add", "x" * 150, "--phone", "13700001234", "--note", NOTE + "y" * 3900),
        ("resident", "import", "{roster}"),
    ],
    ids=["resident add", "import"],
)
def test_a_full_disk_is_exit_3_and_keeps_earlier_data(register_db, tmp_path, args):
    """max_page_count caps the file at its current size: the next write needing a page fails.
    The file is vacuumed first: a migration that rebuilds a table (0007 rebuilds resident_tags)
    leaves its old pages free, and a full disk has no free pages to give."""
    args = [str(roster(tmp_path / "r.csv")) if a == "{roster}" else a for a in args]
    con = sqlite3.connect(register_db)
    con.execute("VACUUM")
    con.close()
    before = snapshot(str(register_db))
    done = run(str(register_db), *args, fault="full-disk")
    assert done.returncode == 3, done.stderr
    assert one_line(done.stderr) and "full" in done.stderr
    for secret in ("13700001234", NOTE, "居民1"):
        assert secret not in done.stderr
    assert snapshot(str(register_db)) == before
    assert_sound(str(register_db))


def test_locked_past_the_timeout_is_exit_3_one_line(register_db):
    before = snapshot(str(register_db))
    holder = sqlite3.connect(register_db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        done = run(str(register_db), "resident", "add", "刘建国", "--phone", "13700001234", timeout="0.3")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 3 and one_line(done.stderr) and "locked" in done.stderr
    assert "13700001234" not in done.stderr and "刘建国" not in done.stderr
    assert snapshot(str(register_db)) == before
    assert_sound(str(register_db))


def test_a_postgresql_table_locked_past_the_timeout_is_exit_3(register):
    if not register.startswith("postgresql"):
        pytest.skip("SQLite: test_locked_past_the_timeout_is_exit_3_one_line")
    import psycopg

    before = snapshot(register)
    with psycopg.connect(register.replace("postgresql+psycopg://", "postgresql://")) as holder:
        holder.execute("LOCK TABLE residents IN ACCESS EXCLUSIVE MODE")
        done = run(register, "resident", "add", "刘建国", "--phone", "13700001234", timeout="0.2")
        holder.rollback()
    assert done.returncode == 3 and one_line(done.stderr) and "locked" in done.stderr
    assert "13700001234" not in done.stderr and "刘建国" not in done.stderr
    assert snapshot(register) == before


def test_sql_errors_never_carry_parameters(register):
    """hide_parameters=True on every engine: what SQLAlchemy adds to a failed statement's
    text (the statement and its parameters) has no values. PostgreSQL's own DETAIL line may
    quote the failing row, which is why the error boundary never prints an exception's text
    (next test)."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from commcare.db import make_engine

    engine = make_engine(register)
    try:
        with pytest.raises(DBAPIError) as info, engine.begin() as conn:
            conn.execute(
                text("INSERT INTO residents (id, name, phone) VALUES (:id, :name, :phone)"),
                {"id": 1, "name": "张桂兰", "phone": PHONE},
            )
    finally:
        engine.dispose()
    added = str(info.value).split("[SQL:", 1)[1]
    assert "SQL parameters hidden due to hide_parameters=True" in added
    assert PHONE not in added and "张桂兰" not in added


def test_an_unexpected_database_error_shows_no_resident_data(register, cli, monkeypatch):
    """A failure the boundary does not know (here a constraint broken by a bug) is one line
    naming its kind, never the statement's values."""
    from sqlalchemy import text

    from commcare import db

    def buggy(self, fn, *args, **kwargs):
        with self.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO residents (id, name, phone, note) VALUES (1, :name, :phone, :note)"),
                {"name": "张桂兰", "phone": PHONE, "note": NOTE},
            )

    monkeypatch.setattr(db.Database, "transact", buggy)
    monkeypatch.setattr(db.Database, "transact", buggy)
    before = snapshot(register)
    result = cli("resident", "add", "刘建国", "--phone", "13700001234")
    assert result.exit_code != 0 and one_line(result.stderr), result.stderr
    for secret in (PHONE, NOTE, "张桂兰", "13700001234", "刘建国"):
        assert secret not in result.stderr
    assert snapshot(register) == before
