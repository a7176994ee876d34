"""Keeping the database sound: backup, restore, check and upgrade.

A backup is a consistent snapshot of the live SQLite file (the backup API), written to a
temporary file created 0600, verified (integrity, foreign keys, schema version), then moved
into place. PostgreSQL databases are backed up with the server's own tools (pg_dump).
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from pathlib import Path

from commcare import db as dbm
from commcare.errors import DatabaseError, InvalidValue, Refused


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
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
        fk = con.execute("PRAGMA foreign_key_check").fetchall()
    finally:
        con.close()
    if integrity != "ok" or fk:
        raise DatabaseError("maint.damaged", path=str(path), problem=integrity if integrity != "ok" else f"{len(fk)} foreign key violations")
    return {"revision": revision, "integrity": integrity, "foreign_keys": "ok"}


def backup(database: str, target: str, force: bool = False) -> dict:
    source = _sqlite_only(database)
    dbm.probe_sqlite(source)
    target_path = Path(target).expanduser().resolve()
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
            return verify_file(tmp)
        except DatabaseError as exc:
            exc.values["path"] = str(source)
            raise

    target_path.parent.mkdir(parents=True, exist_ok=True)
    result = _write_private(target_path, copy, verified)
    return {"backup": str(target_path), "bytes": target_path.stat().st_size, **result}


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
    return {"restored": str(current), "from": str(source_path), "kept": str(kept) if kept else None,
            "revision": info["revision"]}


def _write_private(target: Path, copy, check=None) -> dict:
    """``copy(tmp)`` into a temporary file created 0600 beside ``target``, ``check(tmp)`` if
    given (its result is returned), then move it into place: ``target`` is never
    half-written, and a failure leaves no temporary file behind."""
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    dbm.create_private_file(tmp)
    try:
        copy(tmp)
        result = check(tmp) if check is not None else {}
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return result


def check(database: str) -> list[dict]:
    """Every check with ok true/false; the caller exits 3 when one fails."""
    path = dbm.sqlite_path(database)
    if path is None:
        db = dbm.open_database(database)
        db.dispose()
        return [{"check": "schema", "ok": True, "detail": dbm.HEAD}]
    rows = []
    try:
        info = verify_file(path)
        rows += [{"check": "integrity", "ok": True, "detail": "ok"},
                 {"check": "foreign_keys", "ok": True, "detail": "ok"}]
        rows.append(_schema_row(info["revision"]))
    except DatabaseError as exc:
        return [{"check": "database", "ok": False, "detail": exc.message()}]
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    mode = con.execute("PRAGMA journal_mode").fetchone()[0]
    con.close()
    rows.append({"check": "journal_mode", "ok": mode == "wal", "detail": mode})
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if file.exists():
            bits = file.stat().st_mode & 0o777
            rows.append({"check": f"mode {file.name}", "ok": bits & 0o077 == 0, "detail": oct(bits)})
    return rows


def _schema_row(revision: str) -> dict:
    from commcare.i18n import t

    if revision == dbm.HEAD:
        return {"check": "schema", "ok": True, "detail": revision}
    key = "maint.schema_older" if revision in dbm.REVISIONS else "maint.schema_newer"
    return {"check": "schema", "ok": False, "detail": t(key, revision=revision, head=dbm.HEAD)}


def upgrade(database: str) -> dict:
    """Migrate an older database to head under the migration lock (see ``db.migrate_locked``);
    a SQLite file is backed up first, under the same lock, beside the database.

    A second upgrade started meanwhile waits for the first (up to the busy timeout), then
    finds the database at head and says there was nothing to do.
    """
    dbm.open_database(database, allow_old=True).dispose()  # a newer or foreign database: exit 3
    path = dbm.sqlite_path(database)
    saved: list[str] = []

    def backup_first(locked: sqlite3.Connection) -> None:
        assert path is not None  # only SQLite files are backed up before a migration
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        target = path.with_name(f"{path.name}.before-upgrade-{stamp}")
        if target.exists():
            raise Refused("maint.target_exists", path=str(target))
        saved.append(_write_verified(target, lambda tmp: _copy_from(locked, tmp), path)["backup"])

    before, after = dbm.migrate_locked(database, backup_first if path is not None else None)
    return {"from": before, "to": after, "backup": saved[0] if saved else None}
