"""The database as commands use it: opened and checked (the schema-version gate), its read
connection and its retried write transaction, created at head, and migrated under a lock. The
engines themselves (pragmas, URLs, the driver's failures) are ``commcare.storage.engine``.

Every write runs in ``Database.transact(fn)``: one transaction (``BEGIN IMMEDIATE`` on
SQLite, so a read-then-write never fails half-way with SQLITE_BUSY_SNAPSHOT), retried a
bounded number of times with jitter when the database is busy or PostgreSQL reports a
serialization failure or deadlock. Alembic is imported only by ``init`` and ``upgrade``:
the everyday version check reads ``alembic_version`` directly.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

from commcare.errors import Damaged, DatabaseError
from commcare.storage.damage import clear_damage, mark_damaged, refuse_if_damaged
from commcare.storage.engine import (
    busy_timeout,
    create_private_file,
    damage_summary,
    display_url,
    is_corrupt,
    is_damage,
    is_retryable,
    is_url,
    make_engine,
    sqlite_path,
    sqlite_trouble,
    to_url,
    translate,
)

# What the rest of commcare takes from here: the engine-level helpers are this module's API too.
__all__ = [
    "HEAD",
    "REVISIONS",
    "Database",
    "busy_timeout",
    "clear_damage",
    "create_private_file",
    "damage_summary",
    "display_url",
    "downgrade",
    "exclusive_sqlite",
    "is_corrupt",
    "is_retryable",
    "is_url",
    "make_engine",
    "mark_damaged",
    "migrate_locked",
    "open_database",
    "refuse_if_damaged",
    "sqlite_path",
    "to_url",
    "translate",
    "upgrade",
]

# The migration revisions in order; the last is the head. A test checks this against Alembic.
REVISIONS = (
    "0001",
    "0002",
    "0003",
    "0004_city_indexes",
    "0005_audit_chain",
    "0006_access",
    "0007_tags_community",
    "0008_tags_policy",
    "0009_tag_counts_by_key",
    "0010_city_covering",
)
MIGRATIONS = Path(__file__).parent / "storage" / "migrations"
HEAD = REVISIONS[-1]
RETRIES = 8


# --- probing an existing database without changing it -------------------------------------


def probe_sqlite(path: Path) -> str | None:
    """The schema revision of a SQLite file; None if the file is new or empty.

    Opens the file read-only, so a foreign or damaged file is left exactly as it was.
    """
    if path.is_dir():
        raise DatabaseError("db.is_folder", path=str(path))
    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=busy_timeout())
    except sqlite3.Error as exc:
        raise sqlite_trouble(exc, str(path)) or DatabaseError("db.unreadable", path=str(path), problem=str(exc))
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return None
        if "alembic_version" not in tables or "residents" not in tables:
            raise DatabaseError("db.foreign", path=str(path))
        row = con.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise DatabaseError("db.locked", path=str(path))
        if is_corrupt(exc):
            mark_damaged(str(path), damage_summary(exc))
            raise Damaged("integrity.corrupt", path=str(path))
        raise sqlite_trouble(exc, str(path)) or DatabaseError("db.not_database", path=str(path), problem=str(exc))
    finally:
        con.close()
    if row is None:
        raise DatabaseError("db.foreign", path=str(path))
    return row[0]


def probe_server(engine) -> str | None:
    from sqlalchemy import inspect, text

    with engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
        if not names:
            return None
        if "alembic_version" not in names or "residents" not in names:
            raise DatabaseError("db.foreign", path=display_url(str(engine.url)))
        row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    if row is None:
        raise DatabaseError("db.foreign", path=display_url(str(engine.url)))
    return row[0]


def check_revision(revision: str | None, where: str, allow_old: bool = False) -> None:
    if revision == HEAD:
        return
    if revision in REVISIONS:
        if not allow_old:
            raise DatabaseError("db.needs_upgrade", path=where, revision=revision, head=HEAD)
        return
    raise DatabaseError("db.too_new", path=where, revision=revision, head=HEAD)


def back_off(attempt: int) -> None:
    """Wait before the next try of a write that met a busy register: a random pause (so that
    two writers do not meet again), doubling with each attempt. ``random`` is imported here,
    when a write has met another: most commands never need it."""
    import random

    time.sleep(random.uniform(0.02, 0.1) * (2 ** min(attempt, 4)))


class Database:
    """An open, checked commcare database."""

    def __init__(self, database: str, engine, created: bool = False) -> None:
        self.database = database
        self.engine = engine
        self.created = created
        self.dialect = engine.dialect.name
        self.where = display_url(database)

    @contextmanager
    def connect(self):
        """A read connection (a plain deferred transaction, rolled back at the end)."""
        with self.watching(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def watching(self):
        """Remember (``mark_damaged``) a damage found while the block runs, and let it go on."""
        try:
            yield
        except Exception as exc:
            if is_damage(exc):
                mark_damaged(self.database, damage_summary(exc))
            raise

    def transact(self, fn, *args, **kwargs):
        """Run ``fn(connection, *args, **kwargs)`` in one write transaction, retried when busy."""

        def in_connection(engine):
            with engine.begin() as conn:
                return fn(conn, *args, **kwargs)

        return self._retrying(in_connection)

    def _retrying(self, run):
        refuse_if_damaged(self.database)
        with self.watching():
            return self._retry(run)

    def _retry(self, run):
        from sqlalchemy import exc as sa_exc

        engine = self.engine.execution_options(commcare_write=True)
        # The busy timeout bounds the whole wait: a lock held past it has made SQLite wait it
        # out once already, and retrying would wait it again, up to RETRIES times.
        give_up = time.monotonic() + busy_timeout()
        for attempt in range(RETRIES):
            try:
                return run(engine)
            except sa_exc.DBAPIError as exc:
                if not is_retryable(exc) or attempt == RETRIES - 1 or time.monotonic() >= give_up:
                    raise
                back_off(attempt)

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(
    database: str, *, create: bool = False, allow_old: bool = False, server_timeout: float | None = None
) -> Database:
    """Open and check a database. A SQLite file that does not exist yet (or is empty) is
    created at head; a server database must have been made by ``commcare init`` unless
    ``create`` is true. ``server_timeout``: config db_timeout (``make_engine``)."""
    path = sqlite_path(database)
    where = display_url(database)
    if path is not None:
        revision = probe_sqlite(path)
        if revision is None:
            clear_damage(database)  # it told of a file that is no longer there
            return _create_sqlite(database, path)
        refuse_if_damaged(database)
        check_revision(revision, where, allow_old)
        return Database(database, make_engine(database))
    engine = make_engine(database, server_timeout=server_timeout)
    try:
        revision = probe_server(engine)
    except DatabaseError:
        raise
    except Exception as exc:  # noqa: BLE001 - the driver's own errors, told as exit 3
        raise translate(exc, where) or DatabaseError("db.unreachable", path=where, problem=type(exc).__name__)
    if revision is None:
        if not create:
            raise DatabaseError("db.not_initialised", path=where)
        upgrade(engine)
        return Database(database, engine, created=True)
    check_revision(revision, where, allow_old)
    return Database(database, engine)


def _create_sqlite(database: str, path: Path) -> Database:
    create_private_file(path)
    engine = make_engine(database)
    try:
        upgrade(engine)
    except Exception:
        engine.dispose()
        raise
    return Database(database, engine, created=True)


def alembic_config(connection=None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


# --- migrations --------------------------------------------------------------------------------
#
# Every migration runs in one transaction that begins EXCLUSIVE on SQLite (so two first
# commands on a new file, or two upgrades, cannot interleave) and under an advisory lock on
# PostgreSQL. On SQLite foreign keys are switched off while it runs and checked before it
# commits: a batch migration rebuilds a table (copy, DROP, rename), and with foreign keys on
# that DROP would delete the rows that point at it (ON DELETE CASCADE) or fail.

MIGRATION_LOCK = 727271


def upgrade(engine, revision: str = "head") -> None:
    """Migrate to ``revision`` in one transaction (Alembic, inside the package)."""
    from alembic import command

    with engine.connect() as conn:
        _migrate(conn, command.upgrade, revision)


def downgrade(engine, revision: str) -> None:
    from alembic import command

    with engine.connect() as conn:
        _migrate(conn, command.downgrade, revision)


def _migrate(conn, step, revision: str, audit_key=None) -> None:
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:  # only outside a transaction does this pragma take effect
        conn.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
    try:
        with conn.execution_options(commcare_write="exclusive").begin():
            if not sqlite:
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            _step_without_counting(conn, step, revision, audit_key)
            if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                raise DatabaseError("maint.migration_broke_keys", revision=revision)
    finally:
        if sqlite:
            conn.connection.driver_connection.execute("PRAGMA foreign_keys = ON")


def _step_without_counting(conn, step, revision: str, audit_key=None) -> None:
    """Migrate with the counting triggers (``commcare.storage.integrity``) set aside and put back
    after, if their table is there: SQLite drops a table's triggers with the table when a
    batch migration rebuilds it, and refuses to rename a table while another one's trigger
    names a table that is, for that moment, not there. A migration that adds, removes or
    archives residents recounts (``integrity.recount``)."""
    from sqlalchemy import inspect

    from commcare.storage import integrity

    if inspect(conn).has_table("register_counts"):
        integrity.uninstall(conn)
    cfg = alembic_config(conn)
    # a function that gives the audit trail's key, for a migration that chains the entries
    # already there (0005_audit_chain)
    cfg.attributes["audit_key"] = audit_key
    step(cfg, revision)
    if inspect(conn).has_table("register_counts"):
        integrity.install(conn)


def migrate_locked(database: str, before_migrating=None, audit_key=None) -> tuple[str | None, str]:
    """``commcare db upgrade``: bring a database to head under a lock no other process can
    pass, and return (revision before, revision after).

    The revision is read again once the lock is held, so a second upgrade that waited for
    the first finds nothing to do. ``before_migrating(sqlite3_connection)`` runs under the
    lock only when there is something to migrate (SQLite: the backup).

    SQLite: the connection is in exclusive locking mode from before its first read, so from
    that read until it closes it holds the file's exclusive lock (in WAL mode without shared
    memory): no other process reads or writes between the backup and the migration, or
    during it. Others wait their busy timeout (see ``exclusive_tries``). PostgreSQL: an
    advisory lock; a reader sees the old schema (and is told to upgrade) until the
    migration commits.
    """
    if not to_url(database).startswith("sqlite"):
        engine = make_engine(database)
        try:
            with engine.connect() as conn:
                return _upgrade_server(conn, audit_key), HEAD
        finally:
            engine.dispose()
    engine, conn = exclusive_tries(lambda wait: _locked_connection(database, wait))
    try:  # closing the connection releases the lock (a killed process's too)
        with conn:
            before = conn.info["revision"]
            if before != HEAD:
                if before_migrating is not None:
                    before_migrating(conn.connection.driver_connection)
                from alembic import command

                _migrate(conn, command.upgrade, "head", audit_key)
    finally:
        engine.dispose()
    return before, HEAD


# How long one try for a SQLite file's exclusive lock waits, at most (seconds, at random).
EXCLUSIVE_TRY = (0.2, 1.0)


def exclusive_tries(take):
    """``take(wait)``, which asks for a SQLite file's exclusive lock waiting at most ``wait``
    seconds and lets go of everything when it fails, tried again until the busy timeout.

    One long wait could deadlock: a connection in exclusive locking mode takes a shared lock
    and keeps it while it waits for the exclusive one, so two of them waiting at once (two
    upgrades, an upgrade and a restore) each wait for the other for the whole busy timeout
    once the last plain reader has gone, and both fail. Short tries at random lengths, each
    letting go, let one of them through."""
    import random

    give_up = time.monotonic() + busy_timeout()
    while True:
        wait = max(0.0, min(give_up - time.monotonic(), random.uniform(*EXCLUSIVE_TRY)))
        try:
            return take(wait)
        except Exception as exc:
            if not is_retryable(exc) or time.monotonic() >= give_up:
                raise
        time.sleep(random.uniform(0.01, 0.1))


def _locked_connection(database: str, wait: float):
    """SQLite: (engine, connection) with the file's exclusive lock held by the connection
    and the revision read under it in ``conn.info["revision"]``; nothing left open if not."""
    from sqlalchemy import event

    engine = make_engine(database, timeout=wait)
    event.listen(engine, "connect", _exclusive_locking_mode, insert=True)
    try:
        conn = engine.connect()
        try:
            conn.info["revision"] = _locked_revision(conn)
        except BaseException:
            conn.close()
            raise
    except BaseException:
        engine.dispose()
        raise
    return engine, conn


def _locked_revision(conn) -> str:
    """SQLite: the first read in exclusive locking mode; the lock stays after it commits."""
    with conn.execution_options(commcare_write="exclusive").begin():
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def _upgrade_server(conn, audit_key=None) -> str:
    """PostgreSQL: lock, read the revision and migrate in one transaction; returns the
    revision found. The lock waits at most the busy timeout (lock_timeout)."""
    from alembic import command

    with conn.begin():
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        before = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        if before != HEAD:
            _step_without_counting(conn, command.upgrade, "head", audit_key)
    return before


def _exclusive_locking_mode(dbapi_conn, _record) -> None:
    dbapi_conn.execute("PRAGMA locking_mode = EXCLUSIVE")


@contextmanager
def exclusive_sqlite(path: Path):
    """A plain sqlite3 connection (autocommit) that holds the file's exclusive lock from
    entry until the block ends, as ``migrate_locked`` does: it waits up to the busy
    timeout for every other connection to close (see ``exclusive_tries``), then nobody
    else reads or writes."""

    def take(wait: float) -> sqlite3.Connection:
        con = sqlite3.connect(path, timeout=wait, isolation_level=None)
        try:
            con.execute("PRAGMA locking_mode = EXCLUSIVE")
            con.execute("BEGIN EXCLUSIVE")
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
            con.execute("COMMIT")
        except BaseException:
            con.close()
            raise
        return con

    try:
        con = exclusive_tries(take)
    except sqlite3.OperationalError as exc:
        if is_retryable(exc):
            raise DatabaseError("db.locked", path=str(path))
        raise DatabaseError("db.not_database", path=str(path), problem=str(exc))
    try:
        yield con
    finally:
        con.close()
