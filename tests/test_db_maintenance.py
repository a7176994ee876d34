"""Backup, restore, check, upgrade gates, and the faults a laptop register meets."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys

import pytest


@pytest.fixture
def register_db(tmp_path, cli, monkeypatch):
    path = tmp_path / "register.db"
    monkeypatch.setenv("COMMCARE_DB", str(path))
    assert cli("staff", "add", "王秀英").exit_code == 0
    assert cli("resident", "add", "张桂兰", "--phone", "13912345678", "--compound", "幸福小区",
               "--address", "1-101", "--liaison", "王秀英", "--tag", "独居").exit_code == 0
    return path


def rows(path):
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT id, name, phone FROM residents ORDER BY id").fetchall()
    finally:
        con.close()


def test_backup_is_private_verified_and_never_overwrites(register_db, tmp_path, cli):
    target = tmp_path / "backups" / "b.db"
    result = cli("db", "backup", target)
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert rows(target) == rows(register_db)
    assert sqlite3.connect(target).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    before = target.read_bytes()
    assert cli("db", "backup", target).exit_code == 1
    assert target.read_bytes() == before
    assert cli("db", "backup", target, "--force").exit_code == 0


def test_restore_keeps_the_database_it_replaces(register_db, tmp_path, cli):
    target = tmp_path / "b.db"
    cli("db", "backup", target)
    cli("resident", "add", "刘建国")
    result = cli("db", "restore", target, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert [r[1] for r in rows(register_db)] == ["张桂兰"]
    kept = [p for p in tmp_path.iterdir() if ".before-restore-" in p.name]
    assert len(kept) == 1 and [r[1] for r in rows(kept[0])] == ["张桂兰", "刘建国"]


def test_restore_refuses_a_file_that_is_not_a_commcare_database(register_db, tmp_path, cli):
    junk = tmp_path / "junk.db"
    junk.write_text("not a database\n" * 50)
    before = register_db.read_bytes()
    assert cli("db", "restore", junk).exit_code == 3
    assert register_db.read_bytes() == before


def test_check_passes_and_then_finds_a_readable_file(register_db, cli):
    assert cli("db", "check").exit_code == 0
    os.chmod(register_db, 0o644)
    result = cli("db", "check")
    assert result.exit_code == 3 and "mode" in result.stderr


def test_newer_schema_exits_3_and_writes_nothing(register_db, cli):
    con = sqlite3.connect(register_db)
    con.execute("UPDATE alembic_version SET version_num = '9999'")
    con.commit()
    con.close()
    before = rows(register_db)
    result = cli("resident", "add", "新人")
    assert result.exit_code == 3 and "newer" in result.stderr
    assert rows(register_db) == before


def test_older_schema_asks_for_db_upgrade(register_db, cli, monkeypatch):
    from commcare import db

    monkeypatch.setattr(db, "REVISIONS", ("0000",) + db.REVISIONS)
    con = sqlite3.connect(register_db)
    con.execute("UPDATE alembic_version SET version_num = '0000'")
    con.commit()
    con.close()
    result = cli("resident", "list")
    assert result.exit_code == 3 and "commcare db upgrade" in result.stderr


def test_locked_past_the_timeout_is_exit_3_one_line(register_db, tmp_path):
    holder = sqlite3.connect(register_db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        env = {**os.environ, "COMMCARE_DB": str(register_db), "COMMCARE_BUSY_TIMEOUT": "0.3"}
        done = subprocess.run([sys.executable, "-m", "commcare", "resident", "add", "刘建国"],
                              env=env, capture_output=True, text=True, timeout=120)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 3
    assert len(done.stderr.strip().splitlines()) == 1 and "locked" in done.stderr
    assert "Traceback" not in done.stderr
    assert [r[1] for r in rows(register_db)] == ["张桂兰"]


def test_a_full_disk_is_exit_3_and_keeps_earlier_data(register_db, tmp_path):
    """max_page_count caps the file at its current size: the next large write cannot fit."""
    script = (
        "import sys, sqlite3\n"
        "from commcare import db\n"
        "orig = db.make_engine\n"
        "def capped(database):\n"
        "    engine = orig(database)\n"
        "    from sqlalchemy import event\n"
        "    @event.listens_for(engine, 'connect')\n"
        "    def cap(conn, rec):\n"
        "        n = conn.execute('PRAGMA page_count').fetchone()[0]\n"
        "        conn.execute(f'PRAGMA max_page_count = {n}')\n"
        "    return engine\n"
        "db.make_engine = capped\n"
        "from commcare.cli import main\n"
        "sys.argv = ['commcare', 'resident', 'add', 'x' * 150, '--note', 'y' * 4000]\n"
        "main()\n"
    )
    env = {**os.environ, "COMMCARE_DB": str(register_db)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    assert "full" in done.stderr and "Traceback" not in done.stderr
    assert [r[1] for r in rows(register_db)] == ["张桂兰"]
    assert sqlite3.connect(register_db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_killed_midway_leaves_all_or_nothing(register_db):
    """kill -9 during a 1,000-resident write transaction: none of them is there afterwards."""
    script = (
        "import os, signal\n"
        "from commcare.config import load_settings\nfrom commcare.context import Ctx\n"
        "from commcare.db import open_database\nfrom commcare import register\n"
        "ctx = Ctx(load_settings()); db = open_database(ctx.settings.database)\n"
        "def work(s):\n"
        "    for i in range(1000):\n"
        "        register.add_resident(s, ctx, f'居民{i}')\n"
        "        if i == 700:\n"
        "            s.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
        "db.transact(work)\n"
    )
    env = {**os.environ, "COMMCARE_DB": str(register_db)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert done.returncode == -9
    assert [r[1] for r in rows(register_db)] == ["张桂兰"]
    assert sqlite3.connect(register_db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
