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

from commcare import audit
from commcare.storage import audit_files
from commcare.storage.sql import statement


def identity(database: str) -> str:
    """What names one database, whatever URL or path reached it: a SQLite file's real path;
    a server's host, port and database (not the login: staff logins share one anchor). Read
    with ``urllib.parse`` as SQLAlchemy's ``make_url`` reads it (no SQLAlchemy to import)."""
    from urllib.parse import unquote, urlsplit

    from commcare.db import sqlite_path, to_url

    path = sqlite_path(database)
    if path is not None:
        return f"sqlite:{Path(path).resolve()}"
    url = to_url(database)
    parts = urlsplit(url, allow_fragments=False)
    hostinfo = parts.netloc.rpartition("@")[2]
    if hostinfo.startswith("["):
        host, _, after = hostinfo[1:].partition("]")
        port = after[1:]
    else:
        host, _, port = hostinfo.partition(":")
    name = unquote(parts.path[1:]) if parts.path else ""
    backend = url.split("://", 1)[0].split("+")[0]
    return f"{backend}://{host}:{(int(port) if port else 0) or ''}/{name}"


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


@statement
def _hash_at():
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import audit as AUDIT

    return select(AUDIT.c.hash).where(AUDIT.c.seq == bindparam("seq", type_=AUDIT.c.seq.type))


@statement
def _policy_hides_audit():
    from sqlalchemy import func, select

    return select(func.row_security_active("audit"))


def holds(conn, anchor: dict) -> bool:
    """Does the trail still have the anchor's entry, with the anchor's hash?

    A staff login on PostgreSQL sees only its communities' entries (row-level security), and
    the anchor, shared by every login of the database, often names another community's entry.
    What such a login can check it checks: the trail still reaches the anchor's number
    (``commcare_audit_head()`` sees the whole table). It cannot delete or change an entry (the
    table is append-only for every login but the owner), and the owner, who sees every entry,
    checks the hash whenever the owner writes and in ``audit verify``; a hidden entry is not
    called missing, which every write of a liaison in a city would otherwise say."""
    if anchor["entries"] == 0:
        return True
    found = _hash_at().scalar(conn, seq=anchor["entries"])
    if found is not None:
        return found == anchor["head"]
    if conn.dialect.name == "postgresql" and _policy_hides_audit().scalar(conn):
        return audit.head(conn)["entries"] >= anchor["entries"]
    return False


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
