"""Shared fixtures. Every test gets its own database and config under tmp_path (never the
user's real data); ``db_url`` runs a test on SQLite and, when COMMCARE_TEST_PG_URL is set,
on a fresh PostgreSQL database too."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest

PG_URL = os.environ.get("COMMCARE_TEST_PG_URL")
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Point commcare at tmp_path; fix the language and the operator."""
    monkeypatch.setenv("COMMCARE_DB", str(tmp_path / "commcare.db"))
    monkeypatch.setenv("COMMCARE_CONFIG", str(tmp_path / "commcare.toml"))
    monkeypatch.setenv("COMMCARE_LANG", "en")
    monkeypatch.setenv("COMMCARE_USER", "tester")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    for var in ("COMMCARE_NOW", "COMMCARE_COMMUNITY", "COMMCARE_TZ", "COMMCARE_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    from commcare import i18n

    i18n.set_lang("en")
    yield


def _fresh_pg_database() -> tuple[str, callable]:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    base = make_url(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"commcare_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop():
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, monkeypatch):
    """A new, initialised commcare database on each backend; COMMCARE_DB points at it."""
    if request.param == "sqlite":
        url = str(tmp_path / "register.db")
        drop = None
    else:
        if not PG_URL:
            pytest.skip("COMMCARE_TEST_PG_URL is unset: the PostgreSQL variant is skipped")
        url, drop = _fresh_pg_database()
    monkeypatch.setenv("COMMCARE_DB", url)
    from commcare.db import open_database

    open_database(url, create=True).dispose()
    yield url
    if drop:
        drop()


@pytest.fixture
def settings(db_url, tmp_path):
    from commcare.config import load_settings

    return load_settings(database=db_url)


class Clock:
    """A clock tests can set and move (aware datetimes)."""

    def __init__(self, start: dt.datetime) -> None:
        self.moment = start

    def __call__(self) -> dt.datetime:
        return self.moment

    def set(self, text_or_dt) -> None:
        self.moment = dt.datetime.fromisoformat(text_or_dt) if isinstance(text_or_dt, str) else text_or_dt

    def advance(self, **delta) -> None:
        self.moment += dt.timedelta(**delta)


@pytest.fixture
def clock():
    return Clock(dt.datetime(2026, 5, 8, 9, 0, tzinfo=SHANGHAI))


@pytest.fixture
def ctx(settings, clock):
    from commcare.context import Ctx

    return Ctx(settings, clock=clock)


@pytest.fixture
def database(db_url):
    from commcare.db import open_database

    db = open_database(db_url)
    yield db
    db.dispose()


@pytest.fixture
def write(database, ctx):
    """``write(fn, *args)`` runs ``fn(session, ctx, *args)`` in one write transaction."""
    def run(fn, *args, **kwargs):
        ctx._community_id = None
        return database.transact(lambda s: fn(s, ctx, *args, **kwargs))

    return run


@pytest.fixture
def read(database, ctx):
    def run(fn, *args, **kwargs):
        ctx._community_id = None
        with database.session() as s:
            return fn(s, ctx, *args, **kwargs)

    return run


@pytest.fixture
def cli():
    """Run the CLI in-process: ``cli("resident", "add", …)`` -> Result with stdout/stderr apart."""
    from typer.testing import CliRunner

    from commcare.cli import app

    runner = CliRunner()

    def invoke(*args, input=None, env=None):
        return runner.invoke(app, [str(a) for a in args], input=input, env=env, catch_exceptions=False)

    return invoke
