"""Keeping the database sound: backup, restore, check and upgrade.

A backup is a consistent snapshot of the live SQLite file (the backup API), written to a
temporary file created 0600, verified (integrity, foreign keys, schema version), then moved
into place. PostgreSQL databases are backed up with the server's own tools (pg_dump).

Every copy of the register is first written to a hidden temporary file beside its target,
``.NAME.tmp-PID`` (0600 from its creation). One left by a command that was killed (its PID is
no longer running) is removed by the next backup into that folder, the next restore or
upgrade of that database, and ``db check`` (``remove_stale_temporaries``).
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path

from commcare import db as dbm
from commcare import outfile
from commcare.errors import Damaged, DatabaseError, InvalidValue, Refused
from commcare.patterns import Pattern

TEMPORARY = Pattern(r"\..+\.tmp-(?P<pid>[0-9]+)(?:-journal|-wal|-shm)?")
SQLITE_MAGIC = b"SQLite format 3\0"


def _sqlite_only(database: str) -> Path:
    path = dbm.sqlite_path(database)
    if path is None:
        raise Refused("maint.pg_backup", url=dbm.display_url(database))
    return path


def verify_file(path: Path) -> dict:
    """Integrity, foreign keys and schema version of a SQLite file; raises if it is unusable."""
    revision = dbm.probe_sqlite(path)
    if revision is None:
        raise DatabaseError("db.foreign", path=str(path))
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        damage = integrity_problems(con)
        fk = [] if damage else _foreign_key_problems(con)
    finally:
        con.close()
    if damage or fk:
        raise Damaged("maint.damaged", path=str(path), problem="; ".join(damage) or f"{len(fk)} foreign key violations")
    return {"revision": revision, "integrity": "ok", "foreign_keys": "ok"}


def nightly_check(database: str) -> None:
    """The scheduled summary's check of the whole file before it reports (SQLite): SQLite's
    full integrity check, which also finds what the daily commands' counts cannot see (an
    index of calls that no longer agrees with its table, a requests page no report reaches).
    Damage found is remembered (``NAME.damaged``) and is exit 3, so the evening's run is
    recorded as failed and every command says so until the register is checked or restored."""
    path = dbm.sqlite_path(database)
    if path is None:
        return
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=dbm.busy_timeout())
    try:
        found = integrity_problems(con)
    finally:
        con.close()
    if found:
        from commcare.storage import damage

        damage.mark_damaged(database, "; ".join(found))
        raise Damaged("maint.nightly_damaged", path=str(path), problem="; ".join(found))


def integrity_problems(con: sqlite3.Connection) -> list[str]:
    """What SQLite's integrity check finds, one finding per damaged table (its indexes
    included), each naming it ("residents: database disk image is malformed"); [] when the
    file is sound. The whole file is checked first; only when that fails is each table
    checked alone, to name it (the whole check may stop at its first malformed page)."""
    found = _integrity_check(con, "")
    if found == ["ok"]:
        return []
    try:
        tables = [row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    except sqlite3.DatabaseError as exc:
        return [f"sqlite_master: {dbm.damage_summary(exc)}"]
    named = []
    for table in tables:
        lines = _integrity_check(con, table)
        if lines != ["ok"]:
            named.append(f"{table}: {lines[0]}")
    return named or found[:1]


def _integrity_check(con: sqlite3.Connection, table: str) -> list[str]:
    quoted = '"' + table.replace('"', '""') + '"' if table else "20"
    try:
        found = [row[0] for row in con.execute(f"PRAGMA integrity_check({quoted})")]
    except sqlite3.DatabaseError as exc:
        return [dbm.damage_summary(exc) if dbm.is_corrupt(exc) else str(exc)]
    return [line for line in found if not line.startswith("*** in database")] or ["ok"]


def _foreign_key_problems(con: sqlite3.Connection) -> list:
    try:
        return con.execute("PRAGMA foreign_key_check").fetchall()
    except sqlite3.DatabaseError as exc:
        if dbm.is_corrupt(exc):
            return [dbm.damage_summary(exc)]
        raise


def backup(database: str, target: str, force: bool = False) -> dict:
    source = _sqlite_only(database)
    dbm.probe_sqlite(source)
    target_path = Path(target).expanduser().resolve()
    remove_stale_temporaries(target_path.parent)
    if target_path == source:
        raise InvalidValue("maint.same_file", field="PATH", path=str(target_path))
    if target_path.exists() and not force:
        raise Refused("maint.target_exists", path=str(target_path))
    return _write_verified(target_path, lambda tmp: _copy(source, tmp), source)


def _write_verified(target_path: Path, copy, source: Path) -> dict:
    """``copy(tmp)`` into a temporary file created 0600 beside the target, verify it, then
    move it into place (the target is never half-written). A copy that fails the check
    means the source is damaged: the error names it, not the temporary file."""

    def verified(tmp: Path) -> dict:
        try:
            copy(tmp)
            return verify_file(tmp)
        except (DatabaseError, sqlite3.DatabaseError) as exc:
            raise _source_damaged(exc, source) from exc

    result = _write_private(target_path, verified)
    return {"backup": str(target_path), "bytes": target_path.stat().st_size, **result}


def _source_damaged(exc: Exception, source: Path) -> Exception:
    """A copy that fails, or fails its check, tells of the register it was copied from."""
    if isinstance(exc, DatabaseError):
        if exc.key == "maint.damaged":
            exc.values["path"] = str(source)
            dbm.mark_damaged(str(source), exc.message("en"))
        return exc
    if dbm.is_corrupt(exc):
        dbm.mark_damaged(str(source), dbm.damage_summary(exc))
        return Damaged("integrity.corrupt", path=str(source))
    return exc


@contextmanager
def _writing(target: Path):
    """A target that cannot be written (a folder, a read-only place, no such folder) is a bad
    PATH (exit 2), not an internal error."""
    try:
        yield
    except OSError as exc:
        raise InvalidValue(
            "maint.cannot_write", field="PATH", path=str(target), problem=exc.strerror or type(exc).__name__
        ) from exc


def remove_stale_temporaries(folder: Path) -> list[str]:
    """Remove the ``.NAME.tmp-PID`` copies in ``folder`` that a killed commcare left: the PID is
    no longer running, the file is ours (same owner, a plain file) and a SQLite file, empty
    (killed before its first page) or a journal beside one. Returns the names removed."""
    removed: list[str] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for file in entries:
        found = TEMPORARY.fullmatch(file.name)
        pid = int(found["pid"]) if found else os.getpid()
        if pid != os.getpid() and not outfile.alive(pid) and _our_copy(file):
            try:
                file.unlink()
            except OSError:
                continue
            removed.append(file.name)
    return removed


def _our_copy(file: Path) -> bool:
    try:
        st = file.lstat()
        if not file.is_file() or file.is_symlink() or st.st_uid != os.getuid():
            return False
        if file.name.endswith(("-journal", "-wal", "-shm")):
            return True
        with open(file, "rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except OSError:
        return False
    return head in (b"", SQLITE_MAGIC) or not head.strip(b"\0")


def _copy(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=dbm.busy_timeout())
    try:
        _copy_from(src, target)
    finally:
        src.close()


def _copy_from(src: sqlite3.Connection, target: Path) -> None:
    """The SQLite backup API from an open connection into ``target``, as one plain file."""
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode = DELETE")
    finally:
        dst.close()
    os.chmod(target, 0o600)


def restore(database: str, source: str) -> dict:
    """Replace the register with a verified backup, keeping a private copy of what it held.

    An existing register is replaced in place, under its exclusive lock (no other process
    reads or writes until it is done): the copy is taken, then the backup's pages are written
    into the live file with the backup API, one transaction, still in WAL mode. Nothing is
    unlinked under the feet of another process.
    """
    current = _sqlite_only(database)
    source_path = Path(source).expanduser().resolve()
    remove_stale_temporaries(current.parent)
    if not source_path.exists():
        raise Refused("maint.no_file", path=str(source_path))
    info = verify_file(source_path)
    dbm.check_revision(info["revision"], str(source_path), allow_old=True)
    kept = None
    if current.exists() and current.stat().st_size:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        kept = current.with_name(f"{current.name}.before-restore-{stamp}")
        if kept.exists():
            raise Refused("maint.target_exists", path=str(kept))
        with dbm.exclusive_sqlite(current) as locked:
            _write_private(kept, lambda tmp: _copy_from(locked, tmp))
            source_con = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
            try:
                source_con.backup(locked)
            finally:
                source_con.close()
    else:
        _write_private(current, lambda tmp: _copy(source_path, tmp))
    dbm.clear_damage(database)
    return {
        "restored": str(current),
        "from": str(source_path),
        "kept": str(kept) if kept else None,
        "revision": info["revision"],
    }


def _write_private(target: Path, copy):
    """``copy(tmp)`` into a temporary file created 0600 beside ``target`` (its folder made if
    need be), then moved into place (``outfile.through_temporary``): ``target`` is never
    half-written. Returns what ``copy`` returned."""
    with _writing(target):
        if target.is_dir():
            raise IsADirectoryError(21, os.strerror(21))
        target.parent.mkdir(parents=True, exist_ok=True)
        return outfile.through_temporary(target, copy)


def check(database: str) -> list[dict]:
    """Every check with ok true/false; the caller exits 3 when one fails (``failures``).

    SQLite: stale temporary copies beside the database are removed first; then SQLite's
    integrity check (every page of every table and index), the foreign keys, the schema
    version, the counts the round and the reports are checked against (``integrity``), the
    journal mode and the files' modes. Damage found is remembered (``db.mark_damaged``); a
    register found sound is no longer refused."""
    path = dbm.sqlite_path(database)
    if path is None:
        return _check_server(database)
    rows = [{"check": "temporaries", "ok": True, "detail": ", ".join(remove_stale_temporaries(path.parent)) or "-"}]
    if not path.exists():
        from commcare.i18n import t

        return rows + [{"check": "database", "ok": False, "detail": t("maint.no_file", path=str(path))}]
    try:
        revision = dbm.probe_sqlite(path)
        if revision is None:
            raise DatabaseError("db.foreign", path=str(path))
    except DatabaseError as exc:
        return rows + [{"check": "database", "ok": False, "detail": exc.message()}]
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows += _sqlite_rows(con, path, revision)
    finally:
        con.close()
    damaged = [r for r in rows if r["check"] in DAMAGE and not r["ok"]]
    if damaged:
        dbm.mark_damaged(database, "; ".join(f"{r['check']}: {r['detail']}" for r in damaged))
    else:
        dbm.clear_damage(database)
    return rows


DAMAGE = ("integrity", "foreign_keys", "counts")  # the checks whose failure means damage


def _sqlite_rows(con: sqlite3.Connection, path: Path, revision: str) -> list[dict]:
    from commcare.i18n import t

    damage = integrity_problems(con)
    fk = [] if damage else _foreign_key_problems(con)
    rows = [
        {"check": "integrity", "ok": not damage, "detail": "; ".join(damage) or "ok"},
        {"check": "foreign_keys", "ok": not fk, "detail": t("maint.fk_violations", count=len(fk)) if fk else "ok"},
        _schema_row(revision),
    ]
    if not damage and revision not in ("0001", "0002"):
        rows.append(_counts_row(lambda: _read_only_engine(path)))
    mode = con.execute("PRAGMA journal_mode").fetchone()[0]
    rows.append({"check": "journal_mode", "ok": mode == "wal", "detail": mode})
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if file.exists():
            bits = file.stat().st_mode & 0o777
            rows.append({"check": f"mode {file.name}", "ok": bits & 0o077 == 0, "detail": oct(bits)})
    return rows


def _read_only_engine(path: Path):
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    return create_engine(
        "sqlite://", poolclass=NullPool, creator=lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    )


def _counts_row(make_engine) -> dict:
    """The counts kept beside the register against a fresh count (``integrity.differences``)."""
    from commcare.storage import integrity

    engine = make_engine()
    try:
        with engine.connect() as conn:
            problems = integrity.differences(conn)
    except Exception as exc:  # a page SQLite cannot read is damage, said as such
        if not dbm.is_corrupt(exc):
            raise
        problems = [dbm.damage_summary(exc)]
    finally:
        engine.dispose()
    return {"check": "counts", "ok": not problems, "detail": "; ".join(problems) or "ok"}


def _check_server(database: str) -> list[dict]:
    db = dbm.open_database(database)
    try:
        return [{"check": "schema", "ok": True, "detail": dbm.HEAD}, _counts_row(lambda: db.engine)]
    finally:
        db.dispose()


def failures(rows: list[dict]) -> str:
    """The failed checks for the one line on stderr, naming what is damaged (in words)."""
    from commcare.words import label

    out = []
    for row in rows:
        if not row["ok"]:
            detail = row["detail"] if row["check"] in DAMAGE + ("database",) else ""
            name = label("check", row["check"])
            out.append(f"{name} ({detail[:400]})" if detail else name)
    return "; ".join(out)


def _schema_row(revision: str) -> dict:
    from commcare.i18n import t

    if revision == dbm.HEAD:
        return {"check": "schema", "ok": True, "detail": revision}
    key = "maint.schema_older" if revision in dbm.REVISIONS else "maint.schema_newer"
    return {"check": "schema", "ok": False, "detail": t(key, revision=revision, head=dbm.HEAD)}


def upgrade(database: str, audit_key=None) -> dict:
    """Migrate an older database to head under the migration lock (see ``db.migrate_locked``);
    a SQLite file is backed up first, under the same lock, beside the database.

    A second upgrade started meanwhile waits for the first (up to the busy timeout), then
    finds the database at head and says there was nothing to do.
    """
    dbm.open_database(database, allow_old=True).dispose()  # a newer or foreign database: exit 3
    path = dbm.sqlite_path(database)
    if path is not None:
        remove_stale_temporaries(path.parent)
    saved: list[str] = []

    def backup_first(locked: sqlite3.Connection) -> None:
        assert path is not None  # only SQLite files are backed up before a migration
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        target = path.with_name(f"{path.name}.before-upgrade-{stamp}")
        if target.exists():
            raise Refused("maint.target_exists", path=str(target))
        saved.append(_write_verified(target, lambda tmp: _copy_from(locked, tmp), path)["backup"])

    before, after = dbm.migrate_locked(database, backup_first if path is not None else None, audit_key)
    return {"from": before, "to": after, "backup": saved[0] if saved else None}
