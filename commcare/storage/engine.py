"""Engines and connections: the database named by a path or a URL, SQLite's pragmas on every
connection (WAL, foreign keys, secure_delete, a busy timeout, ``BEGIN IMMEDIATE`` for writes),
and the driver's failures told as the user's errors (exit 3) or as worth retrying.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from commcare.errors import Damaged, DatabaseError

RETRY_SQLSTATES = {"40001", "40P01", "55P03"}
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
    """The database as it may be shown: a URL without its password, written as SQLAlchemy's
    ``make_url(...).render_as_string(hide_password=True)`` writes it (user and database
    quoted, the query's keys sorted), read with ``urllib.parse`` (no SQLAlchemy to import)."""
    if not is_url(database):
        return database
    import re
    from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

    try:
        scheme = database.split("://", 1)[0]
        if not re.fullmatch(r"[\w+]+", scheme):
            raise ValueError(scheme)
        parts = urlsplit(database, allow_fragments=False)
        userinfo, at, hostinfo = parts.netloc.rpartition("@")
        shown = scheme + "://"
        if at:
            user, colon, _ = userinfo.partition(":")
            shown += quote(unquote(user), safe=" +") + (":***" if colon else "") + "@"
        if hostinfo.startswith("["):
            host, _, after = hostinfo[1:].partition("]")
            colon, port = after[:1], after[1:]
        else:
            host, colon, port = hostinfo.partition(":")
        shown += f"[{host}]" if ":" in host else host
        if colon:
            shown += f":{int(port)}"
        if parts.path:
            shown += "/" + quote(unquote(parts.path[1:]), safe=" +/")
        query = sorted(parse_qsl(parts.query), key=lambda pair: pair[0])
        if query:
            shown += "?" + "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in query)
        return shown
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


# --- engines ---------------------------------------------------------------------------------

# Every SQLite connection's settings. cell_size_check: SQLite checks each cell's size against
# its page as it reads it, so more of a damaged page is reported (SQLITE_CORRUPT) than read
# as something else (its cost is in bench/bench_integrity.py).
PRAGMAS = [
    "foreign_keys = ON",
    "secure_delete = ON",
    "synchronous = NORMAL",
    "cell_size_check = ON",
    "journal_mode = WAL",
]


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
    ``db_timeout``, default 30 s: ``commcare.storage.server_wait``)."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    quiet_driver_logs()
    url = to_url(database)
    timeout = busy_timeout() if timeout is None else timeout
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            poolclass=NullPool,
            hide_parameters=True,
            connect_args={"timeout": timeout},
        )
        _sqlite_events(engine, timeout)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    seconds = server_timeout
    try:
        args = _server_args(url, seconds, timeout)
        engine = create_engine(url, hide_parameters=True, pool_pre_ping=False, connect_args=args)
    except ModuleNotFoundError:
        raise DatabaseError("db.driver_missing", path=display_url(database))
    except Exception as exc:  # noqa: BLE001 - a malformed URL or an unknown dialect
        raise DatabaseError("db.bad_url", path=display_url(database), problem=type(exc).__name__)
    if args:
        from commcare.storage import server_wait

        server_wait.bound(engine, server_wait.DEFAULT_TIMEOUT if seconds is None else seconds)
    return engine


def _server_args(url: str, seconds: float | None, lock_timeout: float) -> dict:
    """psycopg's connection parameters: the bounded waits of ``commcare.storage.server_wait``,
    and a lock_timeout, so that a row or table held by someone else fails with 55P03 after the
    busy timeout (and is retried) instead of waiting for ever, as on SQLite."""
    from sqlalchemy.engine import make_url

    if make_url(url).drivername != "postgresql+psycopg":
        return {}
    from commcare.storage import server_wait

    seconds = server_wait.DEFAULT_TIMEOUT if seconds is None else seconds
    return server_wait.connect_args(seconds, int(lock_timeout * 1000))


def quiet_driver_logs() -> None:
    """SQLAlchemy's pool and psycopg log, rather than raise, the failures that follow another
    one: a Ctrl-C in the middle of an executemany leaves psycopg's pipeline busy, and psycopg
    then logs "error ignored terminating <psycopg.Pipeline …>" and the pool "Exception during
    reset or similar" with a traceback, which Python would print on standard error under the
    user's one line. They go nowhere (the error boundary in ``commcare.cli`` reports the
    failure itself), except with ``COMMCARE_DEBUG=1``."""
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


def _silence(exc: BaseException | None) -> float | None:
    """The db_timeout of a server that went silent, if that is what this failure, or the
    failure it happened while handling, was: a COPY cut short by silence fails again as
    "the connection is closed" when its block ends on the closed connection."""
    for _ in range(6):
        if exc is None:
            return None
        for candidate in (exc, getattr(exc, "orig", None)):
            seconds = getattr(candidate, "seconds", None)
            if isinstance(seconds, (int, float)):
                return float(seconds)
        exc = exc.__cause__ or exc.__context__
    return None


def translate(exc: BaseException, where: str) -> DatabaseError | None:
    """A DB-API failure as the user-facing DatabaseError (exit 3), or None if it is not one."""
    operational = _operational(exc)
    if operational is None:
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
    silent = _silence(exc)
    if silent is not None or getattr(orig, "sqlstate", None) == "57014":
        return DatabaseError("db.no_answer", path=where, seconds=f"{silent:g}" if silent is not None else "db_timeout")
    if "disk is full" in msg or "disk full" in msg or "no space" in msg:
        return DatabaseError("db.full", path=where)
    if "readonly" in msg or "read-only" in msg:
        return DatabaseError("db.readonly", path=where)
    if operational and not where.startswith("sqlite") and "://" in where:
        return DatabaseError("db.unreachable", path=where, problem=_first_line(orig))
    return DatabaseError("db.failed", path=where, problem=type(orig).__name__)


def _operational(exc: BaseException) -> bool | None:
    """Whether a database failure is an operational one (the connection, the server, the
    file), whether it came through SQLAlchemy or straight from the driver (the fast path,
    ``commcare.storage.fast``); None when it is not a failure ``translate`` tells (not the
    driver's, or a constraint's: those are the domain's to tell)."""
    module = type(exc).__module__
    if module.startswith("sqlalchemy"):
        from sqlalchemy import exc as sa_exc

        if not isinstance(exc, (sa_exc.OperationalError, sa_exc.DatabaseError, sa_exc.InterfaceError)):
            return None
        if isinstance(exc, sa_exc.IntegrityError):
            return None
        return isinstance(exc, sa_exc.OperationalError)
    if isinstance(exc, sqlite3.Error):
        if isinstance(exc, sqlite3.IntegrityError):
            return None
        return isinstance(exc, sqlite3.OperationalError)
    if module.startswith("psycopg") or module.startswith("commcare.storage.server_wait"):
        import psycopg

        if not isinstance(exc, psycopg.Error) or isinstance(exc, psycopg.IntegrityError):
            return None
        return isinstance(exc, psycopg.OperationalError)
    return None


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


def _first_line(orig) -> str:
    text = str(orig).strip().splitlines()
    return text[0][:200] if text else type(orig).__name__
