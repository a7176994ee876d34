"""The database of a hot command, through the DB-API driver alone (sqlite3, or psycopg on
PostgreSQL): the same connection settings, transactions, retries and failures as
``commcare.db.Database``, without importing SQLAlchemy.

``open_fast`` opens it only where everything is as a working register has it — a SQLite file
that exists, is not marked damaged, and is at the head revision; a PostgreSQL database at the
head revision. Anything else (a new file, an old or foreign one, a damage marker, a driver
error while opening) returns None, and the command opens ``commcare.db.open_database`` as
every other command does, which says what is wrong in the usual words.

One connection serves the whole command (``connect`` and ``transact`` reuse it): a read is a
deferred transaction rolled back at its end; a write begins ``BEGIN IMMEDIATE`` on SQLite and
is retried with jitter while the database is busy, as ``Database.transact`` does.

``COMMCARE_SQL_TRACE=FILE`` appends every statement sent to the driver, as JSON lines
(``bench/limit.py`` replays them: the physical limit of the same work).
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

from commcare.db import Database, back_off
from commcare.storage import sql
from commcare.storage.damage import refuse_if_damaged
from commcare.storage.engine import (
    BEGIN,
    PRAGMAS,
    busy_timeout,
    display_url,
    is_retryable,
    sqlite_path,
)

RETRIES = 8


class Dialect:
    """What the domain code asks of ``conn.dialect``."""

    def __init__(self, name: str, driver: str) -> None:
        self.name, self.driver = name, driver


class FastResult:
    """A statement's result, read the way SQLAlchemy's ``Result`` is."""

    def __init__(self, cursor, compiled: sql.Compiled | None, dialect: str) -> None:
        self.cursor, self.compiled, self.dialect = cursor, compiled, dialect
        self.rowcount = cursor.rowcount

    def all(self) -> list:
        cur = self.cursor
        if cur.description is None:
            return []
        return self._rows(cur.fetchall())

    def partitions(self, size: int):
        """The rows in lists of at most ``size``, each fetched from the driver as it is asked
        for (``fetchmany``): a long list is never held whole."""
        cur = self.cursor
        if cur.description is None:
            return
        while True:
            rows = cur.fetchmany(size)
            if not rows:
                return
            yield self._rows(rows)

    def _rows(self, rows: list) -> list:
        cur = self.cursor
        compiled = self.compiled
        if compiled is None or compiled.row is None:
            cls = sql.row_class(tuple(d[0] for d in cur.description))
            return [cls._make(r) for r in rows]
        make, readers = compiled.row._make, compiled.readers
        if not readers:
            return [make(r) for r in rows]
        out = []
        for r in rows:
            values = list(r)
            for i, read in readers:
                values[i] = read(values[i])
            out.append(make(values))
        return out

    def first(self):
        rows = self.all()
        return rows[0] if rows else None

    def one(self):
        rows = self.all()
        if len(rows) != 1:
            raise LookupError(f"expected one row, found {len(rows)}")
        return rows[0]

    def scalar(self):
        row = self.first()
        return None if row is None else row[0]

    def scalar_one(self):
        return self.one()[0]

    def scalars(self) -> _Scalars:
        return _Scalars([r[0] for r in self.all()])

    def __iter__(self):
        return iter(self.all())


class _Scalars(list):
    def all(self) -> list:
        return list(self)

    def first(self):
        return self[0] if self else None


class FastConn:
    """A driver connection that runs declared statements from the cache, and any other Core
    construct by compiling it on the spot."""

    def __init__(self, raw, dialect: str, trace) -> None:
        self.raw = raw
        self.dialect = Dialect(dialect, "pysqlite" if dialect == "sqlite" else "psycopg")
        self.info: dict = {}
        self._trace = trace

    def run_bound(self, bound: sql.Bound, values: dict) -> FastResult:
        compiled = sql.CACHE.get(bound, self.dialect.name)
        return self._run(compiled, values)

    def stream_bound(self, bound: sql.Bound, values: dict, size: int):
        """The rows of a declared statement in lists of at most ``size``, fetched as they are
        read: on SQLite the cursor steps through them; on PostgreSQL a server-side cursor
        (psycopg's named cursor, in the read's transaction) sends ``size`` at a time, where an
        ordinary cursor would receive every row into memory before the first is read."""
        compiled = sql.CACHE.get(bound, self.dialect.name)
        if self.dialect.name == "sqlite":
            yield from self._run(compiled, values).partitions(size)
            return
        text, params = compiled.parameters(values, self.dialect.name)
        if self._trace is not None:
            self._trace(self.dialect.name, text, params)
        cur = self.raw.cursor(name="commcare_stream")
        try:
            cur.execute(text, params)
            yield from FastResult(cur, compiled, self.dialect.name).partitions(size)
        except BaseException:
            try:
                cur.close()
            except Exception:  # noqa: BLE001 - the transaction failed already: that is the error to tell
                pass
            raise
        cur.close()

    def execute(self, construct, values: dict | None = None) -> FastResult:
        if isinstance(construct, sql.Bound):
            return self.run_bound(construct, values or {})
        if os.environ.get("COMMCARE_SQL_ONSPOT"):
            _note_onspot(os.environ["COMMCARE_SQL_ONSPOT"])
        compiled = sql.Compiled(sql.compile_entry(construct, self.dialect.name), self.dialect.name)
        return self._run(compiled, values or {})

    def scalar(self, construct, values: dict | None = None):
        return self.execute(construct, values).scalar()

    def scalars(self, construct, values: dict | None = None):
        return self.execute(construct, values).scalars()

    def exec_driver_sql(self, text: str, params=None) -> FastResult:
        return FastResult(self.send(text, params), None, self.dialect.name)

    def _run(self, compiled: sql.Compiled, values: dict) -> FastResult:
        text, params = compiled.parameters(values, self.dialect.name)
        return FastResult(self.send(text, params), compiled, self.dialect.name)

    def send(self, text: str, params=None):
        """Send one statement to the driver (and to the trace)."""
        if self._trace is not None:
            self._trace(self.dialect.name, text, params)
        if self.dialect.name == "sqlite":
            return self.raw.execute(text, params if params is not None else ())
        cur = self.raw.cursor()
        cur.execute(text, params)
        return cur


def _note_onspot(path: str) -> None:
    """Append where an undeclared statement was run (``COMMCARE_SQL_ONSPOT``): the hot paths'
    statements still to be declared."""
    import sys
    from types import FrameType

    frame: FrameType | None = sys._getframe(2)
    while frame is not None and "commcare/storage/fast" in frame.f_code.co_filename:
        frame = frame.f_back
    where = f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}" if frame else "?"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(where + "\n")


# --- opening -------------------------------------------------------------------------------------


def open_fast(database: str, server_timeout: float | None = None) -> FastDatabase | None:
    """The database through its driver alone, or None where the usual way must open it."""
    if os.environ.get("COMMCARE_FAST") == "0":
        return None
    from commcare.db import HEAD

    path = sqlite_path(database)
    if path is not None:
        if "://" in database and not database.startswith("sqlite:///"):
            return None
        return _open_sqlite(database, path, HEAD)
    if not database.startswith(("postgresql://", "postgresql+psycopg://")):
        return None
    return _open_server(database, server_timeout, HEAD)


def _open_sqlite(database: str, path: Path, head: str) -> FastDatabase | None:
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return None
    except OSError:
        return None
    if _damage_marked(database):
        return None
    trace = tracer()
    try:
        raw = sqlite3.connect(path, timeout=busy_timeout(), isolation_level=None, check_same_thread=False)
    except sqlite3.Error:
        return None
    try:
        for pragma in (f"busy_timeout = {int(busy_timeout() * 1000)}", *PRAGMAS):
            if trace is not None:
                trace("sqlite", f"PRAGMA {pragma}", None)
            raw.execute(f"PRAGMA {pragma}")
        if _revision(raw, "sqlite", trace) != head:
            raw.close()
            return None
    except sqlite3.Error:
        raw.close()
        return None
    return FastDatabase(database, str(path), FastConn(raw, "sqlite", trace))


def _open_server(database: str, server_timeout: float | None, head: str) -> FastDatabase | None:
    try:
        from commcare.storage import server_wait  # imports psycopg: the postgres extra
    except ImportError:  # not installed: the usual way says which extra to install
        return None

    seconds = server_wait.DEFAULT_TIMEOUT if server_timeout is None else server_timeout
    args = server_wait.connect_args(seconds, int(busy_timeout() * 1000))
    conninfo = "postgresql://" + database.split("://", 1)[1]
    trace = tracer()
    try:
        raw = server_wait.connection_class(seconds + server_wait.MARGIN).connect(conninfo, **args)
    except Exception:  # noqa: BLE001 - the usual way connects again and says what is wrong
        return None
    try:
        # The transaction psycopg began for this read is left open: the command's first
        # transaction goes on in it (a ROLLBACK and a BEGIN fewer, each a round trip to a
        # server process that must be scheduled for it). Under READ COMMITTED each statement
        # reads its own snapshot whenever the transaction began.
        revision = _revision(raw, "postgresql", trace)
    except Exception:  # noqa: BLE001 - likewise
        raw.close()
        return None
    if revision != head:
        raw.close()
        return None
    return FastDatabase(database, display_url(database), FastConn(raw, "postgresql", trace))


def _revision(raw, dialect: str, trace) -> str | None:
    query = "SELECT version_num FROM alembic_version"
    if trace is not None:
        trace(dialect, query, None)
    if dialect == "sqlite":
        row = raw.execute(query).fetchone()
    else:
        cur = raw.cursor()
        cur.execute(query)
        row = cur.fetchone()
    return None if row is None else row[0]


def _damage_marked(database: str) -> bool:
    from commcare.errors import Damaged

    try:
        refuse_if_damaged(database)
    except Damaged:
        return True
    return False


class FastDatabase:
    """An open, checked database, as ``commcare.db.Database`` is to every other command."""

    created = False
    engine = None

    def __init__(self, database: str, where: str, conn: FastConn) -> None:
        self.database = database
        self.where = where
        self.conn = conn
        self.dialect = conn.dialect.name

    @contextmanager
    def connect(self):
        """A read: a deferred transaction, rolled back at its end."""
        conn = self.conn
        with self.watching():
            self._begin(False)
            try:
                yield conn
            finally:
                self._end(commit=False)

    watching = Database.watching  # a damage found while a block runs is remembered, as there

    def transact(self, fn, *args, **kwargs):
        """``fn(connection, …)`` in one write transaction, retried while the database is busy."""
        refuse_if_damaged(self.database)
        with self.watching():
            give_up = time.monotonic() + busy_timeout()
            for attempt in range(RETRIES):
                try:
                    return self._once(fn, args, kwargs)
                except Exception as exc:
                    if not _driver_error(exc) or not is_retryable(exc):
                        raise
                    if attempt == RETRIES - 1 or time.monotonic() >= give_up:
                        raise
                back_off(attempt)
        raise AssertionError("unreachable")

    def _once(self, fn, args, kwargs):
        self._begin(True)
        try:
            result = fn(self.conn, *args, **kwargs)
        except BaseException:
            self._end(commit=False)
            raise
        self._end(commit=True)
        return result

    def _begin(self, write: bool) -> None:
        if self.dialect == "sqlite":
            self.conn.send(BEGIN[write])
        elif self.conn._trace is not None:
            self.conn._trace("postgresql", "BEGIN", None)  # psycopg begins by itself

    def _end(self, commit: bool) -> None:
        conn = self.conn
        if self.dialect == "sqlite":
            if conn.raw.in_transaction:
                conn.send("COMMIT" if commit else "ROLLBACK")
            return
        if conn._trace is not None:
            conn._trace("postgresql", "COMMIT" if commit else "ROLLBACK", None)
        if commit:
            conn.raw.commit()
        elif not conn.raw.closed:
            conn.raw.rollback()

    def dispose(self) -> None:
        try:
            self.conn.raw.close()
        except Exception:  # noqa: BLE001 - closing a connection that already failed
            pass


def _driver_error(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        return True
    return type(exc).__module__.startswith("psycopg")


# --- the trace -----------------------------------------------------------------------------------


def tracer():
    """A function that appends one statement to ``COMMCARE_SQL_TRACE``, or None."""
    path = os.environ.get("COMMCARE_SQL_TRACE")
    if not path:
        return None
    import json

    def default(value):
        import datetime as dt

        if isinstance(value, dt.datetime):
            return {"$dt": value.isoformat()}
        if isinstance(value, dt.date):
            return {"$date": value.isoformat()}
        return repr(value)

    def trace(dialect: str, text: str, params) -> None:
        fetch = text.lstrip().upper().startswith(("SELECT", "WITH", "PRAGMA")) or " RETURNING " in text.upper()
        line = {"dialect": dialect, "sql": text, "params": params, "fetch": fetch}
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, default=default, ensure_ascii=False) + "\n")

    return trace
