"""Retention: erase the personal fields of residents archived longer than ``retention_days``.

The name and the anonymous facts (tags, household, requests and calls) stay, so past
reports still count them; the ID number, phone, notes, emergency contact and archive reason
are erased, and so is the free text written about them elsewhere: the notes of their calls,
of their requests (and a cancellation's reason) and of the requests' timelines.

Erasing a value in a table is not erasing its bytes. After the erasing transaction:

- SQLite (``secure_delete`` zeroes freed cells): the write-ahead log is folded back into the
  file and truncated (``wal_checkpoint(TRUNCATE)``). A reader that still holds a snapshot from
  before (an open read transaction) keeps the old pages in use; the checkpoint is tried again
  for a few seconds, and if the reader is still there the run says so and exits 1 (running it
  again later finishes the job).
- PostgreSQL: an UPDATE leaves the old row versions in the table and index files until they
  are vacuumed, so the touched tables are rewritten (``VACUUM FULL``: new files, the old ones
  emptied). Only the tables' owner can; a session whose snapshot is older than the erasure
  can make the rewrite keep the old versions. Either is said plainly, exit 1. What no
  command can reach is said too: the server's write-ahead log (pg_wal), WAL archives, base
  backups and replicas keep the old values until they are recycled or deleted.
- Backups: copies of a SQLite register in its folder (``db backup`` there, the copies
  ``db upgrade`` and ``db restore`` keep) are opened read-only and those that still hold
  the personal fields of an erased resident are listed.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from pathlib import Path

from sqlalchemy import or_, select, update

from commcare import audit
from commcare.errors import InvalidValue
from commcare.storage.tables import calls, request_events, requests, residents

ERASED = ("id_number", "phone", "note", "emergency_name", "emergency_phone", "archive_reason")
NOTES = ("calls.note", "requests.note", "requests.cancel_reason", "request_events.note")
TOUCHED = ("residents", "calls", "requests", "request_events")
CHECKPOINT_FOR = 3.0  # seconds the checkpoint is tried while a reader holds an old snapshot


def due_for_erasure(conn, ctx, days: int) -> list[int]:
    """The residents archived more than ``days`` ago whose personal fields are still there."""
    cutoff = ctx.now() - dt.timedelta(days=days)
    r = residents.c
    return list(
        conn.scalars(
            select(r.id)
            .where(
                r.community_id == ctx.community_id(conn),
                r.archived_at.is_not(None),
                r.archived_at < cutoff,
                r.erased_at.is_(None),
            )
            .order_by(r.id)
        )
    )


def run(conn, ctx, dry_run: bool = False) -> dict:
    days = ctx.settings.retention_days
    if days is None:
        raise InvalidValue("retention.not_set", field="retention_days")
    found = due_for_erasure(conn, ctx, days)
    notes = 0
    if not dry_run:
        for rid in found:
            conn.execute(
                update(residents)
                .where(residents.c.id == rid)
                .values(erased_at=ctx.now(), version=residents.c.version + 1, **dict.fromkeys(ERASED))
            )
            audit.record(conn, ctx, "resident.erase", "resident", rid, list(ERASED + NOTES))
        notes = erase_notes(conn, ctx)
    pg = conn.dialect.name == "postgresql" and not dry_run
    xid = conn.exec_driver_sql("SELECT txid_current()").scalar() if pg else None
    return {
        "erase_xid": xid,
        "days": days,
        "residents": found,
        "erased": 0 if dry_run else len(found),
        "notes_erased": notes,
        "dry_run": dry_run,
    }


def erase_notes(conn, ctx) -> int:
    """The free text about every erased resident of the community: their calls' notes, their
    requests' notes and cancellation reasons, their requests' timeline notes (residents
    erased before this was done included). Returns how many rows were changed."""
    erased = select(residents.c.id).where(
        residents.c.community_id == ctx.community_id(conn), residents.c.erased_at.is_not(None)
    )
    their_requests = select(requests.c.id).where(requests.c.resident_id.in_(erased))
    changed = conn.execute(
        update(calls).where(calls.c.resident_id.in_(erased), calls.c.note.is_not(None)).values(note=None)
    ).rowcount
    changed += conn.execute(
        update(requests)
        .where(
            requests.c.resident_id.in_(erased), or_(requests.c.note.is_not(None), requests.c.cancel_reason.is_not(None))
        )
        .values(note=None, cancel_reason=None)
    ).rowcount
    changed += conn.execute(
        update(request_events)
        .where(request_events.c.request_id.in_(their_requests), request_events.c.note.is_not(None))
        .values(note=None)
    ).rowcount
    return changed


# --- the bytes --------------------------------------------------------------------------------


def scrub(database, erase_xid: int | None = None) -> dict:
    """After erasing, make the old values leave the files. ``{"scrubbed": bool, "problem": key or
    None, "remains": message key of what no command can reach, or None}``. ``erase_xid``: the
    erasing transaction's id (PostgreSQL)."""
    if database.dialect == "sqlite":
        from commcare.db import sqlite_path

        path = sqlite_path(database.database)
        assert path is not None
        return {"scrubbed": checkpoint(path), "problem": "retention.reader_holds", "remains": None}
    return rewrite_server(database.engine, erase_xid)


def checkpoint(path: Path, seconds: float = CHECKPOINT_FOR) -> bool:
    """Fold the WAL into the file and truncate it; tried for ``seconds`` while a reader holds
    an older snapshot. True when done."""
    give_up = time.monotonic() + seconds
    con = sqlite3.connect(path, timeout=0.5, isolation_level=None)
    try:
        while True:
            busy = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                return True
            if time.monotonic() >= give_up:
                return False
            time.sleep(0.2)
    except sqlite3.OperationalError:  # locked past the short timeout: the same answer
        return False
    finally:
        con.close()


def rewrite_server(engine, erase_xid: int | None) -> dict:
    """PostgreSQL: rewrite the touched tables (``VACUUM FULL``, outside a transaction), if this
    login owns them. The rewrite keeps a row version that a transaction begun before the
    erasure may still see: any such transaction still running on the server (in any database:
    its id holds every snapshot back) or a session of this database with an older snapshot
    is told."""
    result = {"scrubbed": False, "problem": None, "remains": "retention.pg_wal"}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        owned = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_class WHERE relname = ANY(%(t)s) AND relkind = 'r' "
            "AND pg_has_role(current_user, relowner, 'USAGE')",
            {"t": list(TOUCHED)},
        ).scalar()
        if owned != len(TOUCHED):
            return {**result, "problem": "retention.pg_not_owner"}
        conn.exec_driver_sql("SET lock_timeout = '5s'")
        try:
            for table in TOUCHED:
                conn.exec_driver_sql(f"VACUUM FULL {table}")
        except Exception as exc:
            from commcare.db import is_retryable

            if "lock" not in str(exc).lower() and not is_retryable(exc):
                raise
            return {**result, "problem": "retention.pg_locked"}
        if erase_xid is not None and _older_than(conn, erase_xid):
            return {**result, "problem": "retention.pg_snapshot"}
    return {**result, "scrubbed": True}


def _older_than(conn, xid: int) -> bool:
    """Is a transaction that began before ``xid`` still running on the server, or does a
    session of this database hold a snapshot from before it committed?"""
    running = conn.exec_driver_sql("SELECT txid_snapshot_xmin(txid_current_snapshot())").scalar()
    if running <= xid:
        return True
    return bool(
        conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL "
            "AND age(backend_xmin) >= age((%(x)s %% 4294967296)::text::xid)",
            {"x": xid},
        ).scalar()
    )


def backups_holding(database, erased: dict[int, tuple]) -> list[dict]:
    """The copies of a SQLite register in its folder (any SQLite file there with a residents
    table) that still hold the personal fields of a resident the register has erased
    (``erased``: number -> (name, registered at), all three must match: a copy of this
    register, not another register that also has a #1 张桂兰): ``[{"file": path, "residents": n}]``."""
    from commcare.db import sqlite_path

    path = sqlite_path(database.database)
    if path is None or not erased:
        return []
    found = []
    for file in sorted(Path(path).resolve().parent.iterdir()):
        if file.resolve() == Path(path).resolve() or not file.is_file() or file.name.endswith(("-wal", "-shm")):
            continue
        held = _held_in(file, erased)
        if held:
            found.append({"file": str(file), "residents": held})
    return found


def _held_in(file: Path, erased: dict[int, tuple]) -> int:
    try:
        with open(file, "rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                return 0
        con = sqlite3.connect(f"file:{file}?mode=ro&immutable=1", uri=True)
    except OSError:
        return 0
    try:
        held = 0
        ids = list(erased)
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = con.execute(
                f"SELECT id, name, created_at FROM residents WHERE id IN ({marks}) AND "
                "(id_number IS NOT NULL OR phone IS NOT NULL OR note IS NOT NULL OR emergency_phone IS NOT NULL)",
                part,
            ).fetchall()
            held += sum(1 for rid, name, at in rows if erased.get(rid) == (name, _utc(at)))
        return held
    except sqlite3.DatabaseError:
        return 0
    finally:
        con.close()


def _utc(text) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(text)).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def erased_residents(conn, ctx) -> dict[int, tuple]:
    """Every erased resident of the community: number -> (name, registered at)."""
    r = residents.c
    found = conn.execute(
        select(r.id, r.name, r.created_at).where(r.community_id == ctx.community_id(conn), r.erased_at.is_not(None))
    )
    return {row.id: (row.name, row.created_at) for row in found}
