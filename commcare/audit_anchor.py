"""The anchor of a database's audit trail: how many entries it had and the hash of the
newest, kept outside the database (``commcare.storage.audit_files``), one file per database,
moved forward after every command that wrote an entry.

It only ever moves forward from an entry that still holds: once the trail no longer has the
anchor's entry with the anchor's hash (entries deleted at the end, or the chain rewritten),
the anchor stays where it was — the evidence — and every later write says so on stderr.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from commcare import audit
from commcare.storage import audit_files
from commcare.storage.tables import audit as AUDIT


def identity(database: str) -> str:
    """What names one database, whatever URL or path reached it: a SQLite file's real path;
    a server's host, port and database (not the login: staff logins share one anchor)."""
    from commcare.db import sqlite_path, to_url

    path = sqlite_path(database)
    if path is not None:
        return f"sqlite:{Path(path).resolve()}"
    from sqlalchemy.engine import make_url

    url = make_url(to_url(database))
    return f"{url.get_backend_name()}://{url.host or ''}:{url.port or ''}/{url.database or ''}"


def path_for(database: str) -> Path:
    from commcare.config import audit_anchor_dir

    return audit_files.anchor_path(audit_anchor_dir(), identity(database))


def local(database: str) -> dict | None:
    """This database's anchor as ``audit.verify`` takes it, or None when it has none yet."""
    path = path_for(database)
    found = audit_files.read_anchor(path)
    if found is None:
        return None
    return {"entries": found["entries"], "head": found["head"], "source": str(path)}


def holds(conn, anchor: dict) -> bool:
    """Does the trail still have the anchor's entry, with the anchor's hash?"""
    if anchor["entries"] == 0:
        return True
    return conn.scalar(select(AUDIT.c.hash).where(AUDIT.c.seq == anchor["entries"])) == anchor["head"]


def advance(db) -> dict | None:
    """After a write: move the anchor to the trail's head. Returns the anchor when it no longer
    holds (and is left as it was), else None."""
    path = path_for(db.database)
    with audit_files.anchor_lock(path):
        anchor = audit_files.read_anchor(path)
        with db.connect() as conn:
            if anchor is not None and not holds(conn, anchor):
                return anchor
            now = audit.head(conn)
        if anchor is not None and now["entries"] <= anchor["entries"]:
            return None
        _write(path, db, now)
    return None


def reset(db) -> dict:
    """Set the anchor to the trail as it now is: after ``db restore`` put an older register
    back, or ``demo`` rebuilt its database. Returns the new anchor."""
    path = path_for(db.database)
    with audit_files.anchor_lock(path), db.connect() as conn:
        now = audit.head(conn)
        _write(path, db, now)
    return now


def _write(path: Path, db, now: dict) -> None:
    audit_files.write_anchor(
        path,
        {**now, "database": db.where, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")},
    )
