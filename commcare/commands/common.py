"""What every command shares: the global state, the Annotated options, and the output helpers
(render or write to a file or standard output, a confirmation line or the record as JSON,
messages on standard error, a progress bar on a terminal)."""

import os
import sys
from typing import TYPE_CHECKING, Annotated, Literal

import typer

if TYPE_CHECKING:
    from rich.progress import Progress

    from commcare.config import Settings
    from commcare.context import Ctx
    from commcare.db import Database
    from commcare.storage.fast import FastDatabase

FormatOpt = Annotated[
    str | None,
    typer.Option("--format", "-f", help="table, json, csv or markdown (reports also html).", show_default=False),
]
OutputOpt = Annotated[
    str | None,
    typer.Option(
        "--output",
        "-o",
        help="Write to this file instead of standard output: a new file, 0600, "
        "never through a symbolic link, never the database in use.",
        show_default=False,
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Let --output replace an existing file (the new one is 0600).")]
UnmaskOpt = Annotated[
    bool, typer.Option("--unmask", help="Show phone and ID numbers in full (recorded in the audit trail).")
]
AtOpt = Annotated[str | None, typer.Option(help="When it happened (backfill from a paper log).")]


class AppState:
    """The global options, and what is loaded from them on first use."""

    def __init__(self, **options) -> None:
        self.options = options
        self._settings: Settings | None = None
        self._db: Database | FastDatabase | None = None
        self._ctx: Ctx | None = None
        self.schedule_quiet = False  # the scheduled run, and its status, say it themselves
        self.rebuilds_demo = False  # ``demo``: a register the demo made (fictional staff) is rebuilt by anyone
        self.fast = False  # a hot command: its database through the driver alone (``hot``)

    @property
    def settings(self):
        if self._settings is None:
            from commcare import i18n, words
            from commcare.config import load_settings

            self._settings = load_settings(**self.options)
            i18n.set_lang(self._settings.lang)
            words.configure(self._settings.file)
            if not self.schedule_quiet:
                schedule_warning(self._settings)
        return self._settings

    @property
    def ctx(self):
        if self._ctx is None:
            from commcare.context import Ctx

            self._ctx = Ctx(self.settings)
        return self._ctx

    def database(self, create: bool = False, allow_old: bool = False):
        if self._db is None and self.fast and not (create or allow_old):
            from commcare.storage.fast import open_fast

            self._db = open_fast(self.settings.database, self.settings.db_timeout)
            if self._db is not None:
                resume_gc()
        if self._db is None:
            from commcare.db import open_database

            self._db = open_database(
                self.settings.database, create=create, allow_old=allow_old, server_timeout=self.settings.db_timeout
            )
            resume_gc()
            if self._db.created and not create:
                note("db.created_notice", path=self._db.where)
        return self._db

    def read_whole(self, fn, *args, **kwargs):
        """``read`` for an answer that says who is due or who was missed (the round, the
        reports, ``audit verify``): a SQLite register that does not exist is refused (exit 3)
        rather than made empty and reported on. A mistyped ``--db``, a register moved away, a
        drive not mounted when the evening summary runs would otherwise say, with exit 0,
        that nobody was due and nobody missed. (A list of a new file is an empty list, and a
        write makes the register, saying so, as the first ``resident add`` of a laptop does.)"""
        self.refuse_missing_register()
        return self.read(fn, *args, **kwargs)

    def refuse_missing_register(self) -> None:
        if self._db is not None:
            return
        from commcare.storage.engine import sqlite_path

        path = sqlite_path(self.settings.database)
        if path is not None and not path.exists():
            from commcare.errors import DatabaseError

            raise DatabaseError("db.missing", field="--db", path=str(path))

    def read(self, fn, *args, **kwargs):
        """``fn(connection, ctx, …)`` in a read transaction (a staff login on PostgreSQL
        first checked to act as itself: ``commcare.access.check_reader``)."""
        from commcare import access

        def run():
            with self.database().connect() as conn:
                access.check_reader(conn, self.ctx)
                return fn(conn, self.ctx, *args, **kwargs)

        return self._audited(run)

    def write(self, fn, *args, **kwargs):
        """``fn(connection, ctx, …)`` in one write transaction, retried when the database is
        busy. Every write and every ``--unmask`` comes through here, and here the acting person
        is checked first (``commcare.access.check_writer``: an active staff member, once the
        register has staff), in the same transaction."""
        from commcare import access

        noted = len(self.ctx.audit_lookups)

        def run(conn):
            self.ctx._community_id = None  # a retried transaction may have rolled it back
            del self.ctx.audit_lookups[noted:]  # and noted its lookups already
            self.ctx._actor = None
            if not (self.rebuilds_demo and _is_demo(conn)):
                access.check_writer(conn, self.ctx)
            return fn(conn, self.ctx, *args, **kwargs)

        return self._audited(lambda: self.database().transact(run))

    def _audited(self, run):
        """``run()``, then what the audit trail needs after it, whether it succeeded or not: the
        lookups by ID number it made are recorded (found or not) before anything is shown, and
        the anchor is moved forward (``commcare.audit_anchor``)."""
        try:
            result = run()
        except BaseException:
            self._after_audit()
            raise
        self._after_audit()
        return result

    def _after_audit(self) -> None:
        ctx = self.ctx
        if ctx.audit_lookups:
            from commcare import audit

            self.database().transact(lambda conn: audit.record_lookups(conn, ctx))
        if ctx.audit_written:
            ctx.audit_written = False
            from commcare import audit_anchor

            try:
                stale = audit_anchor.advance(self.database())
            except OSError as exc:
                note(
                    "audit.anchor_unwritable", path=str(audit_anchor.path_for(self.settings.database)), problem=str(exc)
                )
                return
            if stale is not None:
                note("audit.anchor_stale", entries=stale["entries"], head=stale["head"][:16])


def _is_demo(conn) -> bool:
    """A register the demo made, with no hand-made entry: its people and staff are fictional,
    and ``demo`` may rebuild it whoever runs it. Any other (one with real residents is refused
    by the demo itself; an empty one may have real staff) goes through the staff check."""
    from commcare.demo.community import check_target

    return check_target(conn) == "demo"


def database_failure(exc: Exception):
    """A driver's or SQLAlchemy's failure as the CommcareError it means (exit 3 mostly), or
    None: the error boundary's reading of it (``cli``), and a scheduled run's record of it."""
    if not type(exc).__module__.startswith(("sqlalchemy", "sqlite3", "psycopg", "commcare.storage.server_wait")):
        return None
    denied = _access_denied(exc)
    if denied is not None:
        return denied
    from commcare.db import display_url, translate

    where = "?"
    state = current()
    if state is not None and state._settings is not None:
        where = display_url(state.settings.database)
    return translate(exc, where)


def _access_denied(exc: Exception):
    """PostgreSQL refused a staff login something its grant does not allow (no privilege, or
    a row outside its communities: SQLSTATE 42501): exit 1, saying so, never the server's
    own words (they may quote a value)."""
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "sqlstate", None) != "42501":
        return None
    from commcare.errors import Refused

    login = "?"
    state = current()
    if state is not None and state._settings is not None:
        from sqlalchemy.engine import make_url

        try:
            login = make_url(state.settings.database).username or "?"
        except Exception:  # noqa: BLE001 - a URL that made a connection is well formed
            pass
    return Refused("access.denied", login=login)


def schedule_warning(settings) -> None:
    """One line on stderr while the last scheduled summary failed or one that was due did not
    run (a small file beside the register; see ``commcare.schedule.history``)."""
    from commcare.errors import CommcareError
    from commcare.schedule import history

    try:
        line = history.warning(settings)
    except (OSError, ValueError, KeyError, TypeError, CommcareError):  # a damaged record: the status command says so
        return
    if line:
        sys.stderr.write(f"commcare: {line}\n")


_current: list[AppState] = []
GC_HELD: list[bool] = []  # set by the console script, which holds the collector off at start


def resume_gc() -> None:
    """Let the garbage collector run again, without walking what start-up left behind."""
    if GC_HELD:
        import gc

        GC_HELD.clear()
        gc.freeze()
        gc.enable()


def start(**options) -> AppState:
    """Called once per invocation by the global options callback."""
    _current[:] = [AppState(**options)]
    return _current[0]


def finish() -> None:
    """The command is over: its database connections are closed (a process that runs several
    commands, as a test or a script does, holds none between them)."""
    if _current and _current[0]._db is not None:
        _current[0]._db.dispose()


def hot() -> AppState:
    """``state()`` for a command a liaison types all day: its database is opened through the
    DB-API driver alone where it can be (``commcare.storage.fast``; ``COMMCARE_FAST=0`` turns
    that off), and its declared statements run from the statement cache."""
    current = state()
    current.fast = True
    return current


def state() -> AppState:
    if not _current:
        start()
    return _current[0]


def current() -> AppState | None:
    return _current[0] if _current else None


def is_terminal() -> bool:
    return sys.stdout.isatty()


def color_enabled() -> bool:
    return is_terminal() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def out_format(fmt: str | None, allowed=("table", "json", "csv", "markdown")) -> str:
    from commcare.errors import InvalidValue

    fmt = (fmt or "table").lower()
    if fmt not in allowed:
        raise InvalidValue("value.bad_choice", field="format", value=fmt, choices="|".join(allowed))
    return fmt


def emit(
    data,
    fmt: str | None = None,
    output: str | None = None,
    columns=None,
    title=None,
    allowed=("table", "json", "csv", "markdown"),
    force: bool = False,
    labels: dict | None = None,
) -> None:
    """Render ``data`` and write it to stdout or ``output``; ``labels``: message keys for
    column headers other than ``col.<column>``."""
    from commcare.render import formats

    fmt = out_format(fmt, allowed)
    if fmt == "json":  # JSON keeps the slugs (the scripts' contract), as UTF-8 bytes
        write_out(formats.json_bytes(data), output, force)
        return
    from commcare import words

    data = words.display(data)  # people read the words
    headers = column_headers(columns or _keys(data), fmt, labels)
    color = output is None and color_enabled()
    width = None
    if output is None and is_terminal():
        import shutil

        width = shutil.get_terminal_size().columns
    text = formats.render(data, fmt, columns, headers, title, color, width, this_year())
    write_out(text.encode("utf-8-sig") if output and fmt == "csv" else text, output, force)


def column_headers(columns, fmt: str, labels: dict | None = None) -> dict:
    """The headers people read for ``columns`` in the current language (``labels``: message
    keys other than ``col.<column>``); none for English CSV, which keeps the column keys its
    readers' scripts know."""
    from commcare import i18n

    if fmt == "csv" and i18n.get_lang() == "en":
        return {}
    return {c: i18n.column(c, (labels or {}).get(c)) for c in columns}


def this_year() -> int:
    """The year of today in the configured zone (``COMMCARE_NOW`` included): a table writes
    this year's times without it."""
    import datetime as dt

    st = current()
    if st is not None and st._settings is not None:
        return st.ctx.today().year
    return dt.date.today().year


def check_output(output: str | None, force: bool = False) -> None:
    """Refuse a bad ``--output`` before the command does anything (an ``--unmask`` is
    recorded in the audit trail: a command whose file is then refused must not have been)."""
    if output:
        from commcare import outfile

        outfile.check_target(output, force, outfile.database_files(state().settings.database))


def write_out(data: str | bytes, output: str | None, force: bool = False) -> None:
    """``data`` to standard output, or to the file ``output`` through ``outfile.write_file``
    (0600, whole or not at all, never over an existing file without ``force``, never a
    symbolic link or the database in use)."""
    if output:
        from commcare import outfile

        outfile.write_file(output, data, force, outfile.database_files(state().settings.database))
    elif isinstance(data, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        sys.stdout.write(data)


def _keys(data) -> list[str]:
    if isinstance(data, dict):
        return list(data)
    keys: dict = {}
    for row in data:
        keys.update(dict.fromkeys(row))
    return list(keys)


def label(field: str, slug):
    """``slug`` of ``field`` (status, outcome, …) in the words of the command's language."""
    from commcare import words

    return words.label(field, slug)


def note(key: str, **values) -> None:
    """A message for the person (stderr), never mixed into the data on stdout; a stored
    value in it (a name) has its control characters shown escaped."""
    from commcare.i18n import t
    from commcare.render.terminal_text import printable

    sys.stderr.write(printable(t(key, **values), "\n") + "\n")


def say(key: str, **values) -> None:
    """A confirmation on stdout for table output (e.g. "added resident #12"), control
    characters of stored values shown escaped."""
    from commcare.i18n import t
    from commcare.render.terminal_text import printable

    sys.stdout.write(printable(t(key, **values), "\n") + "\n")


def confirm(row: dict, fmt: str | None, key: str, **values) -> None:
    """What a command that adds or changes one record prints: the record in the format asked
    for, or (as a table, the default) one confirmation line."""
    if fmt and fmt != "table":
        emit(row, fmt)
    else:
        say(key, **values)


class ProgressBar:
    """A Rich progress bar on standard error while the steps of a long command report
    ``(step, done, total)`` (each labelled by the message ``PREFIX.STEP``), only when it is a
    terminal; otherwise nothing at all (the context manager then gives ``None``, and the
    domain code reports to no one)."""

    def __init__(self, prefix: str, stream=None) -> None:
        self.prefix = prefix
        self.stream = stream if stream is not None else sys.stderr
        self.bar: Progress | None = None
        self.tasks: dict = {}  # step -> the bar's task

    def __enter__(self):
        if not self.stream.isatty() or os.environ.get("TERM") == "dumb":
            return None
        from rich.console import Console
        from rich.progress import Progress

        self.bar = Progress(console=Console(file=self.stream), transient=True)
        self.bar.start()
        return self.update

    def update(self, step: str, done: int, total: int) -> None:
        from commcare.i18n import t

        assert self.bar is not None  # only handed out once the bar is started
        if step not in self.tasks:
            self.tasks[step] = self.bar.add_task(t(f"{self.prefix}.{step}"), total=total)
        self.bar.update(self.tasks[step], completed=done, total=max(total, done))

    def __exit__(self, *exc) -> Literal[False]:
        if self.bar is not None:
            self.bar.stop()
        return False
