"""Many writers at once, communities kept apart, and the database server's failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

WORKER = """
import sys
from commcare.cli import app
from typer.testing import CliRunner
n = int(sys.argv[1])
runner = CliRunner()
for i in range(8):
    for args in (["add-request", "#1", "-c", "trash", "--again", "--note", f"w{n}-{i}"],
                 ["call", "log", "#1", "--outcome", "no-answer", "--note", f"w{n}-{i}"],
                 ["resident", "add", f"居民{n}-{i}"]):
        r = runner.invoke(app, args)
        if r.exit_code != 0:
            print(r.stderr, file=sys.stderr)
            sys.exit(r.exit_code)
"""


@pytest.mark.slow
def test_eight_processes_writing_at_once_lose_nothing(db_url, cli):
    assert cli("resident", "add", "张桂兰", "--tag", "老人").exit_code == 0
    env = {**os.environ, "COMMCARE_DB": db_url}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(n)], env=env, stderr=subprocess.PIPE, text=True)
        for n in range(8)
    ]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert all(code == 0 for code, _ in results), results
    assert not any("locked" in err for _, err in results)
    requests = json.loads(cli("request", "list", "-f", "json").stdout)
    assert len(requests) == 64
    assert len(json.loads(cli("resident", "list", "-f", "json").stdout)) == 65
    assert json.loads(cli("call", "due", "-f", "json").stdout)[0]["calls_today"] == 64


def test_communities_in_one_database_do_not_see_each_other(db_url, cli):
    assert cli("--community", "幸福社区", "staff", "add", "王秀英").exit_code == 0
    assert cli("--community", "幸福社区", "resident", "add", "张桂兰", "--tag", "老人").exit_code == 0
    assert cli("community", "add", "阳光社区").exit_code == 0  # communities are made on purpose
    assert cli("--community", "阳光社区", "resident", "add", "刘建国", "--tag", "老人").exit_code == 0
    names = lambda c: [r["name"] for r in json.loads(cli("--community", c, "resident", "list", "-f", "json").stdout)]
    assert names("幸福社区") == ["张桂兰"] and names("阳光社区") == ["刘建国"]
    assert cli("--community", "阳光社区", "resident", "show", "张桂兰").exit_code == 1
    assert cli("--community", "阳光社区", "staff", "list", "-f", "json").stdout.strip() == "[]"
    report = json.loads(cli("--community", "幸福社区", "report", "today", "-f", "json").stdout)
    assert report["calls"]["due"] == 1


def test_commcare_connects_to_postgresql_without_jit_on_both_paths(db_url):
    """A command's statements read one community through its indexes: compiling a plan to
    machine code cost more than running it (docs/scale.md), so every connection commcare
    makes, through the driver alone or through SQLAlchemy, turns PostgreSQL's JIT off."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's setting")
    from commcare.db import open_database
    from commcare.storage.fast import open_fast

    fast = open_fast(db_url)
    assert fast is not None
    with fast.connect() as conn:
        assert conn.exec_driver_sql("SHOW jit").scalar() == "off"
    fast.dispose()
    db = open_database(db_url)
    with db.connect() as conn:
        assert conn.exec_driver_sql("SHOW jit").scalar() == "off"
    db.dispose()


def test_a_hot_command_on_postgresql_goes_on_in_the_transaction_of_its_version_check(db_url):
    """The driver path reads the register's version in the transaction psycopg begins, and
    the command's first transaction goes on in it: no ROLLBACK then BEGIN between them, two
    round trips fewer (each one a server process to be scheduled, on a busy server)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's transactions")
    from psycopg.pq import TransactionStatus

    from commcare.storage.fast import open_fast

    fast = open_fast(db_url)
    assert fast is not None
    try:
        raw = fast.conn.raw
        assert raw.info.transaction_status == TransactionStatus.INTRANS
        with fast.connect() as conn:
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        assert raw.info.transaction_status == TransactionStatus.IDLE
        with fast.connect() as conn:  # the next one begins as psycopg begins any
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
        assert raw.info.transaction_status == TransactionStatus.IDLE
    finally:
        fast.dispose()


def test_unreachable_server_is_exit_3_without_the_password(cli):
    import importlib.util

    result = cli("--db", "postgresql+psycopg://clerk:s3cret@127.0.0.1:1/commcare", "resident", "list")
    assert result.exit_code == 3
    assert "s3cret" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    if importlib.util.find_spec("psycopg") is None:  # without the postgres extra: says which to install
        assert "commcare[postgres]" in result.stderr
    else:
        assert "127.0.0.1" in result.stderr


def test_serialization_failures_are_retried_then_exit_3(db_url, monkeypatch):
    """A forced SQLSTATE 40001 on every attempt: bounded retries, then the user's exit 3."""
    from sqlalchemy.exc import OperationalError

    from commcare import db as dbm

    class Serialization(Exception):
        sqlstate = "40001"

    database = dbm.open_database(db_url)
    attempts = []

    def always_conflicts(s):
        attempts.append(1)
        raise OperationalError("UPDATE …", {}, Serialization("could not serialize access"))

    monkeypatch.setattr(dbm.time, "sleep", lambda _: None)
    with pytest.raises(OperationalError) as info:
        database.transact(always_conflicts)
    assert len(attempts) == dbm.RETRIES
    assert dbm.translate(info.value, "db").exit_code == 3
    flaky = iter([True, True, False])

    def conflicts_twice(s):
        if next(flaky):
            raise OperationalError("UPDATE …", {}, Serialization("could not serialize access"))
        return "done"

    assert database.transact(conflicts_twice) == "done"
    database.dispose()


def test_a_lock_held_past_the_busy_timeout_is_waited_out_once_not_once_per_retry(db_url, monkeypatch):
    """The busy timeout is what a user waits at most: once SQLite has waited it out (or
    PostgreSQL's lock_timeout has run), the write is not tried again RETRIES times over."""
    from sqlalchemy.exc import OperationalError

    from commcare import db as dbm

    monkeypatch.setenv("COMMCARE_BUSY_TIMEOUT", "0.3")
    database = dbm.open_database(db_url)
    retries = []
    monkeypatch.setattr(dbm.time, "sleep", retries.append)
    if db_url.startswith("postgresql"):
        import psycopg

        holder = psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"))
        holder.execute("LOCK TABLE residents IN ACCESS EXCLUSIVE MODE")
    else:
        import sqlite3

        holder = sqlite3.connect(db_url, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    from sqlalchemy import text

    try:
        with pytest.raises(OperationalError) as info:
            database.transact(lambda conn: conn.execute(text("UPDATE residents SET note = 'x'")))
    finally:
        holder.rollback()
        holder.close()
        database.dispose()
    assert dbm.translate(info.value, "db").exit_code == 3
    assert len(retries) <= 1


def test_a_postgresql_table_locked_past_the_timeout_is_exit_3(db_url, cli):
    """Someone holds the residents table: the write waits the busy timeout, is retried a
    bounded number of times, then exits 3 in one line with nothing changed."""
    if not db_url.startswith("postgresql"):
        pytest.skip("the SQLite lock is tested in test_db_maintenance.py")
    import psycopg

    assert cli("resident", "add", "张桂兰").exit_code == 0
    plain = db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as holder:
        holder.execute("LOCK TABLE residents IN ACCESS EXCLUSIVE MODE")
        env = {**os.environ, "COMMCARE_DB": db_url, "COMMCARE_BUSY_TIMEOUT": "0.2"}
        done = subprocess.run(
            [sys.executable, "-m", "commcare", "resident", "add", "刘建国"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        holder.rollback()
    assert done.returncode == 3, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert [r["name"] for r in json.loads(cli("resident", "list", "-f", "json").stdout)] == ["张桂兰"]
