"""Retention: erase the personal fields of residents archived longer than ``retention_days``.

The name and the anonymous facts (tags, household, requests and calls) stay, so past
reports still count them; the ID number, phone, notes and emergency contact are erased.
SQLite's ``secure_delete`` zeroes the freed bytes and the WAL is checkpointed and truncated,
so the erased values are no longer in the database file.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from commcare import audit
from commcare.errors import InvalidValue
from commcare.storage.tables import residents

ERASED = ("id_number", "phone", "note", "emergency_name", "emergency_phone")


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
    if not dry_run:
        for rid in found:
            conn.execute(
                update(residents)
                .where(residents.c.id == rid)
                .values(erased_at=ctx.now(), version=residents.c.version + 1, **dict.fromkeys(ERASED))
            )
            audit.record(conn, ctx, "resident.erase", "resident", rid, list(ERASED))
    return {"days": days, "residents": found, "erased": 0 if dry_run else len(found), "dry_run": dry_run}


def scrub_file(database) -> None:
    """After erasing: fold the WAL back into the file and truncate it (SQLite)."""
    if database.dialect != "sqlite":
        return
    with database.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
