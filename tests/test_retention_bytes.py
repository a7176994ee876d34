"""Retention erases for real: the erased residents' call, request and timeline notes too; a
reader holding an old snapshot is told (exit 1) rather than the file keeping the values
silently; backups beside the register that still hold them are listed; on PostgreSQL the
table and index files no longer hold them (read from the server's data directory)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from usercli import commcare, ok

ID = "11010519491231002X"
SECRETS = (ID.encode(), b"13912345678", b"resident-note-5521", b"call-note-7781", b"req-note-3307", b"event-note-9154")


@pytest.fixture
def register(tmp_path, monkeypatch):
    """张桂兰, with notes on a call, a request and its timeline, archived on 2026-01-01 and due
    for erasure on 2026-03-01 (retention_days = 30); 刘建国 stays."""
    cfg = tmp_path / "c.toml"
    cfg.write_text("retention_days = 30\n", encoding="utf-8")
    monkeypatch.setenv("COMMCARE_CONFIG", str(cfg))
    monkeypatch.setenv("COMMCARE_NOW", "2026-01-01T09:00:00+08:00")

    def fill():
        ok("resident", "add", "张桂兰", "--id-number", ID, "--phone", "13912345678", "--note", "resident-note-5521")
        ok("resident", "add", "刘建国", "--phone", "13800002222")
        ok("call", "log", "张桂兰", "--outcome", "needs-help", "--note", "call-note-7781")
        ok("add-request", "张桂兰", "--category", "groceries", "--note", "req-note-3307")
        ok("request", "note", "1", "event-note-9154")
        ok("resident", "archive", "张桂兰", "--reason", "搬走")
        monkeypatch.setenv("COMMCARE_NOW", "2026-03-01T09:00:00+08:00")

    return fill


def sqlite_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(db.parent.glob(db.name + "*")))


@pytest.mark.slow
def test_a_reader_holding_a_snapshot_is_told_then_the_bytes_go(register, tmp_path, monkeypatch):
    db = tmp_path / "r.db"
    monkeypatch.setenv("COMMCARE_DB", str(db))
    register()
    backup = tmp_path / "before.db"
    ok("db", "backup", backup)
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM residents").fetchone()[0] == 2  # its snapshot starts here
    result = commcare("retention", "run")
    assert result.returncode == 1, result.stderr
    assert "reader" in result.stderr and "Traceback" not in result.stderr
    assert ID.encode() in sqlite_bytes(db)  # what it said: the old values are still in the file
    reader.execute("COMMIT")
    reader.close()
    result = ok("retention", "run")
    data = sqlite_bytes(db)
    for secret in SECRETS:
        assert secret not in data, secret
    assert b"13800002222" in data  # the other resident is untouched
    assert str(backup) in result.stderr and "1 erased" in result.stderr  # the backup still holds her
    shown = ok("request", "show", "1", "-f", "json").stdout
    assert "req-note-3307" not in shown and "event-note-9154" not in shown


def test_notes_of_an_erased_resident_are_erased_without_a_reader(register, tmp_path, monkeypatch):
    db = tmp_path / "r.db"
    monkeypatch.setenv("COMMCARE_DB", str(db))
    register()
    result = ok("retention", "run")
    assert "notes" in result.stderr
    data = sqlite_bytes(db)
    for secret in SECRETS:
        assert secret not in data, secret
    ok("audit", "verify")


@pytest.mark.slow
def test_on_postgresql_the_relation_files_no_longer_hold_the_values(register, monkeypatch):
    """A session holding a snapshot from before is told (exit 1); once it has ended, the
    tables are rewritten and the heap, index and TOAST files hold none of the values."""
    from conftest import PG_URL, _fresh_pg_database, _pg_admin
    from sqlalchemy import create_engine

    if not PG_URL:
        pytest.skip("COMMCARE_TEST_PG_URL is unset")
    url, drop = _fresh_pg_database()
    admin, _ = _pg_admin()
    reader_engine = create_engine(url)
    try:
        monkeypatch.setenv("COMMCARE_DB", url)
        ok("init", "--community", "幸福社区")
        register()
        files = _database_files(admin, url)
        assert ID.encode() in _read(files())  # the rows as they lie on disk, before
        with reader_engine.connect() as reader:
            reader.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            assert reader.exec_driver_sql("SELECT count(*) FROM residents").scalar() == 2
            result = commcare("retention", "run")
            assert result.returncode == 1, result.stderr  # its lock, or its snapshot, is told
            assert "using the tables" in result.stderr or "still running" in result.stderr, result.stderr
            assert ID.encode() in _read(files())  # as it said
        result = commcare("retention", "run")
        assert "pg_wal" in result.stderr
        if result.returncode == 1 and "still running" in result.stderr:
            pytest.skip(f"another transaction on the shared server holds every snapshot back: {_oldest(admin)}")
        assert result.returncode == 0, result.stderr
        data = _read(files())
        for secret in SECRETS:
            assert secret not in data, secret
    finally:
        reader_engine.dispose()
        admin.dispose()
        drop()


def _oldest(admin) -> str:
    with admin.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT datname, now() - xact_start FROM pg_stat_activity WHERE backend_xid IS NOT NULL "
            "ORDER BY xact_start LIMIT 1"
        ).first()
    return f"{row[0]}, running {row[1]}" if row else "gone since"


def _database_files(admin, url: str):
    """A function giving the files of the test database on the server (after a CHECKPOINT, so
    what is in shared buffers is on disk); skips when the data directory is not readable."""
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    with admin.connect() as conn:
        data_dir = Path(conn.exec_driver_sql("SHOW data_directory").scalar())
        oid = conn.exec_driver_sql("SELECT oid FROM pg_database WHERE datname = %(n)s", {"n": name}).scalar()
    folder = data_dir / "base" / str(oid)
    try:
        list(folder.iterdir())
    except OSError as exc:
        pytest.skip(f"the server's data directory is not readable here ({exc.strerror}): bytes not checked")

    def files() -> list[Path]:
        with admin.connect() as conn:
            conn.exec_driver_sql("CHECKPOINT")
        return [p for p in folder.iterdir() if p.is_file()]

    return files


def _read(files: list[Path]) -> bytes:
    out = []
    for p in files:
        try:
            out.append(p.read_bytes())
        except FileNotFoundError:  # unlinked meanwhile
            continue
    return b"".join(out)
