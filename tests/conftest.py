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


@pytest.fixture(scope="session")
def statement_cache(tmp_path_factory):
    """One statement cache for the session (``commcare.storage.sql``): built from this
    checkout's code as the tests first need each statement, never the user's."""
    return tmp_path_factory.mktemp("statements")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch, statement_cache):
    """Point commcare at tmp_path; fix the language and the operator (王秀英, who must be an
    active staff member to write once a test's register has staff: tests add her first)."""
    monkeypatch.setenv("COMMCARE_DB", str(tmp_path / "commcare.db"))
    monkeypatch.setenv("COMMCARE_CONFIG", str(tmp_path / "commcare.toml"))
    monkeypatch.setenv("COMMCARE_LANG", "en")
    monkeypatch.setenv("COMMCARE_STRICT_I18N", "1")  # a message key missing from data/messages fails
    # the register's secretary: most tests add her as their first staff member
    monkeypatch.setenv("COMMCARE_USER", "王秀英")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("COMMCARE_AUDIT_KEY", str(tmp_path / "audit.key"))  # anchors: in XDG_DATA_HOME
    monkeypatch.setenv("COMMCARE_CACHE_DIR", str(statement_cache))
    monkeypatch.delenv("COMMCARE_FAST", raising=False)
    for var in ("COMMCARE_NOW", "COMMCARE_COMMUNITY", "COMMCARE_TZ", "COMMCARE_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    from commcare import helptext, i18n

    i18n.set_lang("en")
    helptext.install_click_words("en")  # an in-process Chinese help before must not leak into this test
    yield


def pytest_collection_modifyitems(config, items):
    """The declared markers, applied where they belong: ``pg`` on every PostgreSQL variant,
    so ``pytest -m "not pg"`` runs the SQLite suite alone."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("db_url") == "postgresql":
            item.add_marker(pytest.mark.pg)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """One register migrated to head for the whole session; each test gets a copy of it
    (running every migration for each test's fresh file cost about 0.3 s a test)."""
    from commcare.db import open_database

    path = tmp_path_factory.mktemp("template") / "register.db"
    open_database(str(path), create=True).dispose()
    return path


@pytest.fixture(scope="session")
def pg_template():
    """A PostgreSQL database migrated to head once; each test's database is created from it
    (``CREATE DATABASE … TEMPLATE``, a file copy on the server)."""
    if not PG_URL:
        pytest.skip("COMMCARE_TEST_PG_URL is unset: the PostgreSQL variant is skipped")
    import importlib.util

    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("the postgres extra (psycopg) is not installed: the PostgreSQL variant is skipped")
    from commcare.db import open_database

    name = f"commcare_template_{uuid.uuid4().hex[:12]}"
    admin, base = _pg_admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    open_database(base.set(database=name).render_as_string(hide_password=False), create=True).dispose()
    yield name
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _pg_admin():
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    base = make_url(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    return create_engine(base, isolation_level="AUTOCOMMIT"), base


def _fresh_pg_database(template: str | None = None) -> tuple[str, callable]:
    name = f"commcare_test_{uuid.uuid4().hex[:12]}"
    admin, base = _pg_admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))

    def drop():
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, monkeypatch):
    """A new, initialised commcare database on each backend (a copy of the session's
    template); COMMCARE_DB points at it."""
    if request.param == "sqlite":
        import shutil

        url = str(tmp_path / "register.db")
        shutil.copyfile(request.getfixturevalue("sqlite_template"), url)
        os.chmod(url, 0o600)
        drop = None
    else:
        url, drop = _fresh_pg_database(request.getfixturevalue("pg_template"))
    monkeypatch.setenv("COMMCARE_DB", url)
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
        with database.connect() as s:
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


from hotcheck import hot_register  # noqa: E402,F401 - the hot commands' register, a fixture for every test module
