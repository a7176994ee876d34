"""The hot commands run both ways on the same register: through the statement cache and the
DB-API driver (``commcare.storage.fast``), and through SQLAlchemy (``COMMCARE_FAST=0``); the
answers must be the same, field by field, and so must every table afterwards.

``both_ways(db, *args)`` runs the command on copies of the register: one through the cache —
which must then import no SQLAlchemy; a run that had to compile a statement into the cache
(which imports it) is run once more on a fresh copy, which must compile nothing — and one
through SQLAlchemy. Works on a SQLite
file and on a PostgreSQL database (copied with ``CREATE DATABASE … TEMPLATE``)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXED_NOW = "2026-05-08 16:30"
# what a register of ``hot_register`` is run with, by database: its audit key (each test has a
# key file of its own; the demo's audit trail needs the one it was written with)
REGISTER_ENV: dict[str, dict] = {}
_BASES: set[str] = set()  # the registers ``hot_register`` built (their home stays until the module ends)


@dataclass
class Run:
    code: int
    out: str
    err: str
    imported: list[str]
    tables: dict
    compiled: list[str]

    def json(self):
        return json.loads(self.out)


def run(
    db: str, *args, env: dict | None = None, fast: bool = True, note: Path | None = None, compiled: bool = False
) -> Run:
    """``commcare *args`` on ``db`` in a subprocess, through the cache or not; ``compiled``:
    note the statements it had to compile into the cache (``Run.compiled``)."""
    env = {**REGISTER_ENV.get(db, {}), **(env or {})}
    full = {**os.environ, "COMMCARE_DB": db, "COMMCARE_NOW": os.environ.get("COMMCARE_NOW", FIXED_NOW), **(env or {})}
    full["COMMCARE_FAST"] = "1" if fast else "0"
    note = note or Path(full.get("COMMCARE_CACHE_DIR", "/tmp")) / f"imports-{uuid.uuid4().hex}"
    full["COMMCARE_NOTE_IMPORTS"] = str(note)
    misses = note.with_name(note.name + ".compiled")
    if compiled:
        full["COMMCARE_SQL_COMPILED"] = str(misses)
    done = subprocess.run(
        [sys.executable, str(HERE / "noting_imports.py"), *map(str, args)],
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    imported = note.read_text().split() if note.exists() else []
    made = misses.read_text().splitlines() if misses.exists() else []
    for path in (note, misses):
        path.unlink(missing_ok=True)
    return Run(done.returncode, done.stdout, done.stderr, imported, dump(db), made)


def both_ways(db: str, *args, env: dict | None = None, setup=()) -> tuple[Run, Run]:
    """The command run through the cache and through SQLAlchemy on two copies of ``db``; the
    exit codes, standard output (JSON compared as data), standard error and every table after
    must be the same, and the run through the cache must not import SQLAlchemy.

    ``setup``: commands (each a sequence of arguments) that must succeed, run first (through
    SQLAlchemy) on a copy of ``db`` that the copies are then made from — ``db`` itself is
    never changed."""
    env = {**REGISTER_ENV.get(db, {}), **(env or {})}
    base = copy(db) if setup else None
    try:
        for step in setup:
            done = run(base, *step, env=env, fast=False)
            assert done.code == 0, (step, done.err)
        source = base or db
        fast_db, slow_db = copy(source), copy(source)
        again = None
        try:
            fast = run(fast_db, *args, env=env, fast=True, compiled=True)
            if fast.compiled:  # it filled the cache (importing SQLAlchemy): once more, warm
                again = copy(source)
                fast = run(again, *args, env=env, fast=True, compiled=True)
                assert not fast.compiled, (args, "compiled again with a warm cache", fast.compiled)
            slow = run(slow_db, *args, env=env, fast=False)
        finally:
            for name in (fast_db, slow_db, again):
                if name is not None:
                    drop(name)
    finally:
        if base is not None:
            drop(base)
    assert fast.code == slow.code, (args, fast.code, slow.code, fast.err, slow.err)
    assert same(fast.out, slow.out), (args, fast.out[:2000], slow.out[:2000])
    assert fast.err == slow.err, (args, fast.err, slow.err)
    assert_same_tables(fast.tables, slow.tables)
    if os.environ.get("HOTCHECK_SKIP_IMPORTS") != "1":  # while a command's modules are half converted
        assert "sqlalchemy" not in fast.imported, (args, "the fast path imported", fast.imported)
    return fast, slow


def same(a: str, b: str) -> bool:
    try:
        return json.loads(a) == json.loads(b)
    except ValueError:
        return a == b


def assert_same_tables(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for table in a:
        assert a[table] == b[table], (table, _first_difference(a[table], b[table]))


def _first_difference(x: list, y: list):
    for i, (p, q) in enumerate(zip(x, y, strict=False)):
        if p != q:
            return i, p, q
    return len(x), len(y)


# --- copies and dumps -----------------------------------------------------------------------------


def is_server(db: str) -> bool:
    return "://" in db and not db.startswith("sqlite")


def copy(db: str) -> str:
    if not is_server(db):
        target = str(Path(db).with_name(f"copy-{uuid.uuid4().hex[:8]}.db"))
        with sqlite3.connect(db) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        os.chmod(target, 0o600)
        _same_home(db, target)
        return target
    import psycopg

    base, name = db.rsplit("/", 1)
    new = f"{name}_c{uuid.uuid4().hex[:6]}"
    with psycopg.connect(_libpq(base + "/postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{new}" TEMPLATE "{name}"')
    _same_home(db, f"{base}/{new}")
    return f"{base}/{new}"


def _same_home(db: str, copied: str) -> None:
    """A copy is run with its register's home (audit key, config, anchors)."""
    if db in REGISTER_ENV:
        REGISTER_ENV[copied] = REGISTER_ENV[db]


def drop(db: str) -> None:
    if db not in _BASES:
        REGISTER_ENV.pop(db, None)
    if not is_server(db):
        for suffix in ("", "-wal", "-shm"):
            Path(db + suffix).unlink(missing_ok=True)
        return
    import psycopg

    base, name = db.rsplit("/", 1)
    with psycopg.connect(_libpq(base + "/postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _libpq(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def query(db: str, sql: str) -> list:
    """Rows of ``sql`` on the register (the test's own look at the demo data, read only)."""
    if not is_server(db):
        with sqlite3.connect(db) as con:
            return con.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(_libpq(db)) as con:
        return con.execute(sql).fetchall()


def dump(db: str) -> dict:
    """Every table's rows, in order (times as UTC text on both backends)."""
    if not is_server(db):
        with sqlite3.connect(db) as con:
            names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
            return {n: sorted(con.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}
    import psycopg

    with psycopg.connect(_libpq(db)) as con:
        names = [
            r[0]
            for r in con.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            ).fetchall()
        ]
        out = {}
        for n in names:
            rows = con.execute(f'SELECT * FROM "{n}"').fetchall()
            out[n] = sorted((tuple(_plain(v) for v in row) for row in rows), key=repr)
        return out


def _plain(value):
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    return value


__all__ = ["both_ways", "copy", "drop", "dump", "run", "shutil"]


# --- a register to run them on ---------------------------------------------------------------------

import pytest  # noqa: E402 - the fixture below is the module's second half


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hot_register(request, tmp_path_factory):
    """A small demo community (120 residents, 600 requests, fixed seed) on SQLite and on
    PostgreSQL, built once per test module; yields (database, acting staff member). Tests
    must not change it: ``both_ways`` runs every command on copies."""
    if request.param == "sqlite":
        db = str(tmp_path_factory.mktemp("hot") / "register.db")
    else:
        pg = os.environ.get("COMMCARE_TEST_PG_URL")
        if not pg:
            pytest.skip("COMMCARE_TEST_PG_URL is unset: the PostgreSQL variant is skipped")
        import psycopg

        name = f"commcare_hot_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(pg, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        db = "postgresql+psycopg://" + pg.split("://", 1)[1].rsplit("/", 1)[0] + "/" + name
    # a home of its own: the module-scoped fixture runs before each test's ``isolated_env``,
    # and must never write the user's config, audit key or anchors
    home = tmp_path_factory.mktemp("hot-home")
    own = {
        "COMMCARE_CONFIG": str(home / "commcare.toml"),
        "COMMCARE_AUDIT_KEY": str(home / "audit.key"),
        "XDG_DATA_HOME": str(home / "xdg-data"),
        "XDG_CONFIG_HOME": str(home / "xdg-config"),
    }
    env = {**os.environ, "COMMCARE_DB": db, "COMMCARE_NOW": FIXED_NOW, **own}
    exe = Path(sys.executable).with_name("commcare")
    made = subprocess.run(
        [str(exe), "--db", db, "demo", "--residents", "120", "--requests", "600", "--seed", "7"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert made.returncode == 0, made.stderr
    actor = _first_staff(db)
    REGISTER_ENV[db] = own
    _BASES.add(db)
    yield db, actor
    REGISTER_ENV.pop(db, None)
    if is_server(db):
        drop(db)


def _first_staff(db: str) -> str:
    query = "SELECT name FROM staff WHERE active ORDER BY id LIMIT 1"
    if not is_server(db):
        with sqlite3.connect(db) as con:
            return con.execute(query).fetchone()[0]
    import psycopg

    with psycopg.connect(_libpq(db)) as con:
        return con.execute(query).fetchone()[0]
