"""Statements written once, in SQLAlchemy Core, and run without it.

A domain module declares each statement with ``@statement``: a builder that returns a Core
construct whose run-time values are all ``bindparam``\\ s. Its arguments (the statement's
*shape*: which filters, how many columns) must be plain hashable values; they are part of the
statement's key, so a builder never bakes a run-time value into a statement another call reuses.

    @statement
    def overdue(with_category: bool):
        from sqlalchemy import bindparam, select
        ...
        return select(...).where(requests.c.due < bindparam("now", type_=requests.c.due.type))

    rows = overdue(True).all(conn, now=ctx.now(), category="gas-topup")

On a SQLAlchemy connection the construct is built (once per process) and executed by
SQLAlchemy as before. On a driver connection (``commcare.storage.fast``) it is looked up in the
statement cache: the SQL text, the parameters' and the columns' kinds, compiled by
SQLAlchemy for that dialect the first time it is needed and kept in a file keyed by the
package's version, its source files and SQLAlchemy's version (``StatementCache``). Run-time
values are converted as SQLAlchemy's types would (``commcare.storage.convert``); rows come
back as named tuples with SQLAlchemy's ``Row`` attributes (``row.name``, ``row[0]``,
``row._mapping``), so the domain code reads both the same way.

A statement that is not declared (a Core construct passed to ``conn.execute``) still runs on a
driver connection: it is compiled on the spot, which imports SQLAlchemy — correct, and slow.
"""

from __future__ import annotations

import os
from typing import Any

from commcare.patterns import Pattern
from commcare.storage import convert

_POSTCOMPILE = Pattern(r"(NOT )?IN \(__\[POSTCOMPILE_(\w+)\]\)")


class Statement:
    """A statement's builder and its name in the cache."""

    def __init__(self, build) -> None:
        self.build = build
        self.key = f"{build.__module__}.{build.__qualname__}"
        self._built: dict[tuple, Any] = {}
        self.__doc__ = build.__doc__

    def __call__(self, *shape) -> Bound:
        return Bound(self, shape)

    def construct(self, shape: tuple):
        """The Core construct for ``shape`` (built once per process)."""
        found = self._built.get(shape)
        if found is None:
            found = self._built[shape] = self.build(*shape)
        return found


def statement(build) -> Statement:
    return Statement(build)


class Bound:
    """A statement of one shape, ready to run with its values."""

    __slots__ = ("shape", "stmt")

    def __init__(self, stmt: Statement, shape: tuple) -> None:
        self.stmt, self.shape = stmt, shape

    @property
    def key(self) -> str:
        return f"{self.stmt.key}{self.shape!r}" if self.shape else self.stmt.key

    def construct(self):
        return self.stmt.construct(self.shape)

    def execute(self, conn, **values):
        """The result (``all()``, ``first()``, ``scalar()``, ``rowcount`` …) of running it."""
        run = getattr(conn, "run_bound", None)
        if run is not None:
            return run(self, values)
        return conn.execute(self.construct(), values)

    def all(self, conn, **values) -> list:
        return self.execute(conn, **values).all()

    def first(self, conn, **values):
        return self.execute(conn, **values).first()

    def one(self, conn, **values):
        return self.execute(conn, **values).one()

    def scalar(self, conn, **values):
        return self.execute(conn, **values).scalar()

    def scalar_one(self, conn, **values):
        return self.execute(conn, **values).scalar_one()

    def scalars(self, conn, **values) -> list:
        return self.execute(conn, **values).scalars().all()

    def stream(self, conn, size: int, **values):
        """The rows in lists of at most ``size``, fetched as they are read, never all held at
        once: a list whose length has no bound (every open request of a community). Through
        SQLAlchemy with ``yield_per`` (a server-side cursor on PostgreSQL)."""
        run = getattr(conn, "stream_bound", None)
        if run is not None:
            return run(self, values, size)
        return conn.execute(self.construct(), values, execution_options={"yield_per": size}).partitions()


# --- compiled statements -------------------------------------------------------------------------


class Compiled:
    """A statement as one driver runs it: its SQL text, the kinds of its parameters, the
    values of its constant parameters, the names of the lists it expands, its columns."""

    __slots__ = ("columns", "constants", "expanding", "kinds", "readers", "row", "sql")

    def __init__(self, entry: dict, dialect: str) -> None:
        self.sql: str = entry["sql"]
        self.kinds: dict[str, str] = entry["kinds"]
        self.constants: dict[str, Any] = entry["constants"]
        self.expanding: list[str] = entry["expanding"]
        self.columns: list[list[str]] = entry["columns"]
        self.readers = [(i, convert.reader(dialect, kind)) for i, (_, kind) in enumerate(self.columns)]
        self.readers = [(i, f) for i, f in self.readers if f is not None]
        self.row = row_class(tuple(name for name, _ in self.columns)) if self.columns else None

    def parameters(self, values: dict, dialect: str) -> tuple[str, dict]:
        """The SQL text with its lists expanded, and the driver's parameters."""
        params = {**self.constants, **values}
        for name, kind in self.kinds.items():
            bind = convert.binder(dialect, kind)
            if bind is not None and name in params:
                value = params[name]
                params[name] = [bind(v) for v in value] if name in self.expanding else bind(value)
        sql = self.sql
        if self.expanding:
            lists = {name: list(params.pop(name)) for name in self.expanding if name in params}
            sql = _POSTCOMPILE.sub(lambda m: _expand(m, lists, params, dialect), sql)
        return sql, params


def _expand(match, lists: dict, params: dict, dialect: str) -> str:
    """``IN (__[POSTCOMPILE_x])`` for this call's list: ``= ANY(%(x)s)`` on PostgreSQL (one
    array parameter), ``IN (:x__1, :x__2, …)`` on SQLite; an empty list is never true (``NOT
    IN``: always true), as SQLAlchemy renders it. A list used twice is sent once."""
    negated, name = match.group(1), match.group(2)
    items = lists[name]
    if dialect == "postgresql":
        params[name] = items
        return f"{'<> ALL' if negated else '= ANY'}(%({name})s)"
    if not items:
        return f"{negated or ''}IN (SELECT NULL WHERE 0)"
    names = []
    for i, item in enumerate(items, 1):
        params[f"{name}__{i}"] = item
        names.append(f":{name}__{i}")
    return f"{negated or ''}IN ({', '.join(names)})"


_ROWS: dict[tuple, type] = {}


class Row(tuple):
    """A row as the driver path returns it: a tuple whose columns are also its attributes, with
    the ``_mapping`` of SQLAlchemy's ``Row`` (what commcare reads of it). One subclass per list
    of columns (``row_class``): made with ``type``, not ``namedtuple``, whose generated code took
    a quarter of a millisecond a statement of every command's start (issue #22)."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()
    _make: Any = classmethod(tuple.__new__)

    @property
    def _mapping(self) -> dict:
        return dict(zip(self._fields, self, strict=True))


def row_class(names: tuple) -> Any:
    """The ``Row`` class of these column names, renamed as ``namedtuple(rename=True)`` does: a
    name that is not an identifier, a keyword, begins with ``_`` or repeats one becomes ``_i``."""
    cls = _ROWS.get(names)
    if cls is None:
        import keyword

        fields: list[str] = []
        for i, name in enumerate(names):
            bad = not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_") or name in fields
            fields.append(f"_{i}" if bad else name)
        attrs: dict[str, Any] = {"__slots__": (), "_fields": tuple(fields)}
        attrs.update((name, _getter(i)) for i, name in enumerate(fields))
        cls = _ROWS[names] = type("Row", (Row,), attrs)
    return cls


def _getter(index: int):
    """namedtuple's own accessor (C) where this Python has it, else an itemgetter property."""
    try:
        from collections import _tuplegetter  # type: ignore[attr-defined]

        return _tuplegetter(index, None)
    except ImportError:  # pragma: no cover - another Python
        from operator import itemgetter

        return property(itemgetter(index))


def compile_entry(construct, dialect: str) -> dict:
    """What the cache keeps of a Core construct compiled for ``dialect`` (imports SQLAlchemy)."""
    compiled = construct.compile(dialect=_dialect(dialect))
    kinds, constants, expanding = {}, {}, []
    defaults = _column_defaults(compiled)
    for name in compiled.params:
        bind = compiled.binds[name]
        kinds[name] = convert.kind_of(bind.type)
        if bind.expanding:
            expanding.append(name)
        if name in defaults:
            constants[name] = defaults[name]
        elif not bind.required:
            if bind.callable is not None:
                raise TypeError(f"{name}: a bound value computed at run time cannot be cached")
            constants[name] = bind.value
    columns = [[entry.keyname, convert.kind_of(entry.type)] for entry in compiled._result_columns]
    return {"sql": compiled.string, "kinds": kinds, "constants": constants, "expanding": expanding, "columns": columns}


def _column_defaults(compiled) -> dict:
    """Columns left out of an INSERT or UPDATE whose table gives a constant default."""
    found = {}
    for column in [*getattr(compiled, "insert_prefetch", ()), *getattr(compiled, "update_prefetch", ())]:
        default = column.default if column in getattr(compiled, "insert_prefetch", ()) else column.onupdate
        if default is None or not default.is_scalar:
            raise TypeError(f"{column.key}: a default computed at run time cannot be cached")
        found[column.key] = default.arg
    return found


def _dialect(name: str):
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

        dialect = SQLiteDialect_pysqlite(paramstyle="named")
        dialect.insert_returning = dialect.update_returning = dialect.delete_returning = True
        return dialect
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    return PGDialect_psycopg()


# --- the cache file ------------------------------------------------------------------------------


class StatementCache:
    """Compiled statements, by dialect and key, in one JSON file per package build.

    The file's name carries the package's version, a stamp of its source files (their names,
    sizes and modification times: an edited module makes a new file) and SQLAlchemy's version
    as the first compile found it, so a cache is never trusted across versions. It lives in the
    user cache dir (``COMMCARE_CACHE_DIR`` first). A missing or unreadable file is rebuilt,
    one statement at a time, as statements are first needed."""

    def __init__(self) -> None:
        self._entries: dict[str, dict] | None = None
        self._compiled: dict[tuple[str, str], Compiled] = {}
        self._dirty = False

    def get(self, bound: Bound, dialect: str) -> Compiled:
        key = (dialect, bound.key)
        found = self._compiled.get(key)
        if found is not None:
            return found
        entries = self._load()
        name = f"{dialect} {bound.key}"
        entry = entries.get(name)
        if entry is None:
            entry = entries[name] = compile_entry(bound.construct(), dialect)
            self._dirty = True
            self.save()
            _note_compiled(name)
        found = self._compiled[key] = Compiled(entry, dialect)
        return found

    def _load(self) -> dict:
        if self._entries is None:
            self._entries = {}
            try:
                data = _loads(cache_path().read_bytes())
                if isinstance(data, dict):
                    self._entries = data
            except (OSError, ValueError):
                pass
        return self._entries

    def save(self) -> None:
        """Write the file (to a temporary file, renamed: a reader never sees half of it)."""
        if not self._dirty or self._entries is None:
            return
        path = cache_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(_dumps(self._entries))
            os.replace(tmp, path)
            self._dirty = False
        except OSError:  # a cache that cannot be written is compiled again next time
            pass


def _note_compiled(name: str) -> None:
    """``COMMCARE_SQL_COMPILED=FILE``: append each statement compiled into the cache (the
    tests tell a run that filled the cache from one that ran from it)."""
    path = os.environ.get("COMMCARE_SQL_COMPILED")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(name + "\n")


def _loads(data: bytes):
    import orjson

    return orjson.loads(data)


def _dumps(value) -> bytes:
    import orjson

    return orjson.dumps(value)


_STAMP: list[str] = []


def cache_path():
    """The statement cache of this package build (see ``StatementCache``)."""
    from pathlib import Path

    if not _STAMP:
        _STAMP.append(_source_stamp())
    base = os.environ.get("COMMCARE_CACHE_DIR")
    if base:
        folder = Path(base)
    else:
        import platformdirs

        folder = Path(platformdirs.user_cache_dir("commcare", appauthor=False))
    return folder / f"statements-{_STAMP[0]}.json"


def _source_stamp() -> str:
    """The package's version and checksums of its source files' names, sizes and times, and of
    the installed SQLAlchemy's (found on the path without importing it: that is what the cache
    saves)."""
    import sys
    import zlib
    from pathlib import Path

    from commcare import __version__

    root = Path(__file__).resolve().parent.parent
    # two 32-bit checksums (zlib: no OpenSSL to load on every command; this names a build of
    # the package, it guards against no one)
    parts: list[bytes] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                st = os.stat(os.path.join(folder, name))
                parts.append(f"{folder}/{name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    for entry in sys.path:
        init = os.path.join(entry or ".", "sqlalchemy", "__init__.py")
        try:
            st = os.stat(init)
        except OSError:
            continue
        parts.append(f"{init}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        break
    data = b"".join(parts)
    return f"{__version__}-{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


CACHE = StatementCache()


def integrity_error(exc: BaseException) -> bool:
    """A unique or foreign-key violation, from SQLAlchemy or straight from the driver."""
    orig = getattr(exc, "orig", exc)
    import sqlite3

    if isinstance(orig, sqlite3.IntegrityError):
        return True
    return str(getattr(orig, "sqlstate", "") or "").startswith("23")
