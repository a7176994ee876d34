"""Engine and sessions, SQLite pragmas, the schema-version check, init and upgrade.

Every write runs in ``Database.transact(fn)``: one transaction (``BEGIN IMMEDIATE`` on
SQLite, so a read-then-write never fails half-way with SQLITE_BUSY_SNAPSHOT), retried a
bounded number of times with jitter when the database is busy or PostgreSQL reports a
serialization failure or deadlock. Alembic is imported only by ``init`` and ``upgrade``:
the everyday version check reads ``alembic_version`` directly.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

from commcare.errors import Damaged, DatabaseError

# The migration revisions in order; the last is the head. A test checks this against Alembic.
REVISIONS = ("0001", "0002", "0003")
HEAD = REVISIONS[-1]
RETRY_SQLSTATES = {"40001", "40P01", "55P03"}
RETRIES = 8
# How a SQLite transaction begins, by the ``commcare_write`` execution option: reads are
# deferred, writes take the write lock at once, migrations take the whole file.
BEGIN = {None: "BEGIN", False: "BEGIN", True: "BEGIN IMMEDIATE", "exclusive": "BEGIN EXCLUSIVE"}


def busy_timeout() -> float:
    """Seconds to wait for a lock held by someone else (``COMMCARE_BUSY_TIMEOUT``, default 10)."""
    text = os.environ.get("COMMCARE_BUSY_TIMEOUT", "10")
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:
        from commcare.errors import ConfigError

        raise ConfigError("config.bad_env", field="COMMCARE_BUSY_TIMEOUT", value=text[:40], low=0, high=3600)
    return seconds


def is_url(database: str) -> bool:
    return "://" in database


def to_url(database: str) -> str:
    if is_url(database):
        return database
    return "sqlite:///" + str(Path(database).expanduser().resolve())


def display_url(database: str) -> str:
    """The database as it may be shown: a URL without its password."""
    if not is_url(database):
        return database
    from sqlalchemy.engine import make_url

    try:
        return make_url(database).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - whatever it is, never show the password
        return database.split("@")[-1]


def sqlite_path(database: str) -> Path | None:
    """The file of a SQLite database, or None for a server (or in-memory) database."""
    if not is_url(database):
        return Path(database).expanduser().resolve()
    if database.startswith("sqlite") and ":///" in database:
        rest = database.split(":///", 1)[1].split("?", 1)[0]
        return Path(rest).resolve() if rest and rest != ":memory:" else None
    return None


def create_private_file(path: Path) -> None:
    """Create an empty file readable by its owner only (SQLite's own default is 0644)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


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


# --- engines ---------------------------------------------------------------------------------

# Every SQLite connection's settings. cell_size_check: SQLite checks each cell's size against
# its page as it reads it, so more of a damaged page is reported (SQLITE_CORRUPT) than read
# as something else (its cost is in bench/bench_integrity.py).
PRAGMAS = ["foreign_keys = ON", "secure_delete = ON", "synchronous = NORMAL", "cell_size_check = ON",
           "journal_mode = WAL"]


def _sqlite_events(engine, timeout: float) -> None:
    from sqlalchemy import event

    timeout_ms = int(timeout * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
        try:
            for pragma in (f"busy_timeout = {timeout_ms}", *PRAGMAS):
                dbapi_conn.execute(f"PRAGMA {pragma}")
        except BaseException:
            # Closed here whatever the pool's release does with it: left open in exclusive
            # locking mode it would keep its shared lock, and the next try would wait for it.
            dbapi_conn.close()
            raise

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql(BEGIN[conn.get_execution_options().get("commcare_write")])


def make_engine(database: str, timeout: float | None = None, server_timeout: float | None = None):
    """An engine whose connections wait ``timeout`` seconds for a lock (default: the busy
    timeout); on PostgreSQL no wait for the server lasts past ``server_timeout`` (config
    ``db_timeout``, default 30 s: ``commcare.server_wait``)."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    quiet_driver_logs()
    url = to_url(database)
    timeout = busy_timeout() if timeout is None else timeout
    if url.startswith("sqlite"):
        engine = create_engine(
            url, poolclass=NullPool, hide_parameters=True, connect_args={"timeout": timeout},
        )
        _sqlite_events(engine, timeout)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    seconds = server_timeout
    try:
        args = _server_args(url, seconds, timeout)
        engine = create_engine(url, hide_parameters=True, pool_pre_ping=False, connect_args=args)
    except ModuleNotFoundError:
        raise DatabaseError("db.driver_missing", path=display_url(database))
    except Exception as exc:  # noqa: BLE001 - a malformed URL or an unknown dialect
        raise DatabaseError("db.bad_url", path=display_url(database), problem=type(exc).__name__)
    if args:
        from commcare import server_wait

        server_wait.bound(engine, server_wait.DEFAULT_TIMEOUT if seconds is None else seconds)
    return engine


def _server_args(url: str, seconds: float | None, lock_timeout: float) -> dict:
    """psycopg's connection parameters: the bounded waits of ``commcare.server_wait``, and a
    lock_timeout, so that a row or table held by someone else fails with 55P03 after the busy
    timeout (and is retried) instead of waiting for ever, as on SQLite."""
    from sqlalchemy.engine import make_url

    if make_url(url).drivername != "postgresql+psycopg":
        return {}
    from commcare import server_wait

    seconds = server_wait.DEFAULT_TIMEOUT if seconds is None else seconds
    return server_wait.connect_args(seconds, int(lock_timeout * 1000))


def quiet_driver_logs() -> None:
    """SQLAlchemy's pool and psycopg log, rather than raise, the failures that follow another
    one: a Ctrl-C in the middle of an executemany leaves psycopg's pipeline busy, and psycopg
    then logs "error ignored terminating <psycopg.Pipeline …>" and the pool "Exception during
    reset or similar" with a traceback. With no handler anywhere, Python printed those on
    standard error under the user's one line. They go nowhere now (the error boundary in
    ``commcare.cli`` reports the failure itself), except with ``COMMCARE_DEBUG=1``."""
    import logging

    if os.environ.get("COMMCARE_DEBUG") == "1":
        return
    for name in ("sqlalchemy", "psycopg"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())


# --- errors ----------------------------------------------------------------------------------

def is_retryable(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", exc)
    state = getattr(orig, "sqlstate", None)
    if state in RETRY_SQLSTATES:
        return True
    msg = str(orig).lower()
    return isinstance(orig, sqlite3.OperationalError) and ("locked" in msg or "busy" in msg)


def translate(exc: BaseException, where: str) -> DatabaseError | None:
    """A DB-API failure as the user-facing DatabaseError (exit 3), or None if it is not one."""
    from sqlalchemy import exc as sa_exc

    if not isinstance(exc, (sa_exc.OperationalError, sa_exc.DatabaseError, sa_exc.InterfaceError)):
        return None
    if isinstance(exc, sa_exc.IntegrityError):
        return None
    orig = getattr(exc, "orig", exc)
    msg = str(orig).lower()
    if is_corrupt(exc):
        return Damaged("integrity.corrupt", path=where)
    if is_retryable(exc):
        return DatabaseError("db.locked", path=where)
    trouble = sqlite_trouble(orig, where)
    if trouble is not None:
        return trouble
    silent = getattr(orig, "seconds", None)
    if silent is not None or getattr(orig, "sqlstate", None) == "57014":
        return DatabaseError("db.no_answer", path=where, seconds=f"{silent:g}" if silent is not None else "db_timeout")
    if "disk is full" in msg or "disk full" in msg or "no space" in msg:
        return DatabaseError("db.full", path=where)
    if "readonly" in msg or "read-only" in msg:
        return DatabaseError("db.readonly", path=where)
    if isinstance(exc, sa_exc.OperationalError) and not where.startswith("sqlite") and "://" in where:
        return DatabaseError("db.unreachable", path=where, problem=_first_line(orig))
    return DatabaseError("db.failed", path=where, problem=type(orig).__name__)


SQLITE_CORRUPT = 11
SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN = 10, 13, 14
SQLITE_IOERR_SHMSIZE = SQLITE_IOERR | (19 << 8)


def sqlite_trouble(orig: BaseException, where: str) -> DatabaseError | None:
    """A SQLite failure that comes from where the file lies, each told with what to do: a
    full disk (the -shm file beside a WAL database must grow even for a read), a folder where
    SQLite cannot create its -wal and -shm files, a disk that fails."""
    code = getattr(orig, "sqlite_errorcode", None)
    if not isinstance(orig, sqlite3.Error) or code is None:
        return None
    if code == SQLITE_IOERR_SHMSIZE:
        return DatabaseError("db.shm_full", path=where)
    if code & 0xFF == SQLITE_FULL:
        return DatabaseError("db.full", path=where)
    if code & 0xFF == SQLITE_CANTOPEN:
        path = sqlite_path(where)
        if path is not None and path.exists() and not _writable(path.parent):
            return DatabaseError("db.dir_readonly", path=where, dir=str(path.parent))
        return DatabaseError("db.unreadable", path=where, problem=str(orig))
    if code & 0xFF == SQLITE_IOERR:
        return DatabaseError("db.io_error", path=where)
    return None


def _writable(folder: Path) -> bool:
    """Whether files can be created in ``folder``: its permissions (for root as well, whom
    they do not stop) and a file system mounted read-only."""
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return False
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def is_corrupt(exc: BaseException) -> bool:
    """SQLite's own "database disk image is malformed" (SQLITE_CORRUPT and its variants), or
    stored text that is not UTF-8 (commcare writes none: garbled bytes in a record)."""
    return _corruption(exc) is not None


def _corruption(exc: BaseException) -> str | None:
    """What is damaged, in words that carry no stored value (the driver's message for text
    that is not UTF-8 quotes the garbled text: a phone number, a name)."""
    orig = getattr(exc, "orig", exc)
    if not isinstance(orig, sqlite3.DatabaseError):
        return None
    msg = str(orig)
    code = getattr(orig, "sqlite_errorcode", None)
    if (code is not None and code & 0xFF == SQLITE_CORRUPT) or "malformed" in msg.lower():
        return "database disk image is malformed"
    if msg.startswith("Could not decode to UTF-8 column"):
        return f"column {msg.split(chr(39))[1]!r} holds bytes that are not UTF-8"
    return None


def is_damage(exc: BaseException) -> bool:
    return isinstance(exc, Damaged) or is_corrupt(exc)


def damage_summary(exc: BaseException) -> str:
    """One line for the damage marker: what was found, never a stored value."""
    if isinstance(exc, Damaged):
        return exc.message("en")
    return _corruption(exc) or type(exc).__name__


# --- a register known to be damaged -----------------------------------------------------------
#
# When a command finds a SQLite register damaged (SQLite's own SQLITE_CORRUPT, or counts that
# do not agree: commcare.integrity), it writes NAME.damaged beside the file (0600: when, and
# what was found; never resident data). Until it is gone, every command but ``db check``,
# ``db restore`` and ``db backup`` refuses the register (exit 3). A ``db check`` that finds the
# register sound removes it, and so does a restore or a new register made in its place.

def damage_marker(database: str) -> Path | None:
    path = sqlite_path(database)
    return None if path is None else path.with_name(path.name + ".damaged")


def mark_damaged(database: str, what: str) -> None:
    """Remember that the register is damaged (the first finding is kept)."""
    import datetime as dt

    marker = damage_marker(database)
    if marker is None or marker.exists():
        return
    stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    line = " ".join(what.split())[:300]
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"{stamp}\t{line}\n")
    except OSError:  # a read-only directory: the finding is still reported, not remembered
        pass


def known_damage(database: str) -> tuple[str, str] | None:
    """(when, what) of a recorded finding, or None."""
    marker = damage_marker(database)
    if marker is None:
        return None
    try:
        text = marker.read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return None
    except OSError:
        text = ""
    when, _, what = text.partition("\t")
    return when or "?", what or "?"


def clear_damage(database: str) -> None:
    marker = damage_marker(database)
    if marker is not None:
        marker.unlink(missing_ok=True)


def refuse_if_damaged(database: str) -> None:
    found = known_damage(database)
    if found is not None:
        raise Damaged("integrity.known_damaged", path=display_url(database), when=found[0], what=found[1])


def _first_line(orig) -> str:
    text = str(orig).strip().splitlines()
    return text[0][:200] if text else type(orig).__name__


class Database:
    """An open, checked commcare database."""

    def __init__(self, database: str, engine, created: bool = False) -> None:
        self.database = database
        self.engine = engine
        self.created = created
        self.dialect = engine.dialect.name
        self.where = display_url(database)

    @contextmanager
    def session(self):
        """A read session (a plain deferred transaction, rolled back at the end)."""
        from sqlalchemy.orm import Session

        with self.watching(), Session(self.engine, expire_on_commit=False) as s:
            yield s

    @contextmanager
    def connect(self):
        """A read connection for Core queries, without the ORM (rolled back at the end)."""
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
        """Run ``fn(session, *args, **kwargs)`` in one write transaction, retried when busy."""
        from sqlalchemy.orm import Session

        def in_session(engine):
            with Session(engine, expire_on_commit=False) as s, s.begin():
                return fn(s, *args, **kwargs)

        return self._retrying(in_session)

    def transact_core(self, fn, *args, **kwargs):
        """``transact`` for Core code: ``fn(connection, …)``, without loading the ORM."""
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
                time.sleep(random.uniform(0.02, 0.1) * (2 ** min(attempt, 4)))

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(database: str, *, create: bool = False, allow_old: bool = False,
                  server_timeout: float | None = None) -> Database:
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
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
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


def _migrate(conn, step, revision: str) -> None:
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:  # only outside a transaction does this pragma take effect
        conn.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
    try:
        with conn.execution_options(commcare_write="exclusive").begin():
            if not sqlite:
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            _step_without_counting(conn, step, revision)
            if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                raise DatabaseError("maint.migration_broke_keys", revision=revision)
    finally:
        if sqlite:
            conn.connection.driver_connection.execute("PRAGMA foreign_keys = ON")


def _step_without_counting(conn, step, revision: str) -> None:
    """Migrate with the counting triggers (``commcare.integrity``) set aside and put back
    after, if their table is there: SQLite drops a table's triggers with the table when a
    batch migration rebuilds it, and refuses to rename a table while another one's trigger
    names a table that is, for that moment, not there. A migration that adds, removes or
    archives residents recounts (``integrity.recount``)."""
    from sqlalchemy import inspect

    from commcare import integrity

    if inspect(conn).has_table("register_counts"):
        integrity.uninstall(conn)
    step(alembic_config(conn), revision)
    if inspect(conn).has_table("register_counts"):
        integrity.install(conn)


def migrate_locked(database: str, before_migrating=None) -> tuple[str | None, str]:
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
                return _upgrade_server(conn), HEAD
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

                _migrate(conn, command.upgrade, "head")
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


def _upgrade_server(conn) -> str:
    """PostgreSQL: lock, read the revision and migrate in one transaction; returns the
    revision found. The lock waits at most the busy timeout (lock_timeout)."""
    from alembic import command

    with conn.begin():
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        before = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        if before != HEAD:
            _step_without_counting(conn, command.upgrade, "head")
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
