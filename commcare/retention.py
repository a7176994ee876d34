"""Retention: erase the personal fields of residents archived longer than ``retention_days``.

The name and the anonymous facts (tags, household, requests and calls) stay, so past
reports still count them; the ID number, phone, notes and emergency contact are erased.
SQLite's ``secure_delete`` zeroes the freed bytes and the WAL is checkpointed and truncated,
so the erased values are no longer in the database file.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from commcare import audit
from commcare.errors import InvalidValue
from commcare.models import Resident

ERASED = ("id_number", "phone", "note", "emergency_name", "emergency_phone")


def due_for_erasure(s, ctx, days: int) -> list[Resident]:
    cutoff = ctx.now() - dt.timedelta(days=days)
    return list(s.scalars(select(Resident).where(
        Resident.community_id == ctx.community_id(s), Resident.archived_at.is_not(None),
        Resident.archived_at < cutoff, Resident.erased_at.is_(None)).order_by(Resident.id)))


def run(s, ctx, dry_run: bool = False) -> dict:
    days = ctx.settings.retention_days
    if days is None:
        raise InvalidValue("retention.not_set", field="retention_days")
    found = due_for_erasure(s, ctx, days)
    if not dry_run:
        for resident in found:
            for field in ERASED:
                setattr(resident, field, None)
            resident.erased_at = ctx.now()
            audit.record(s, ctx, "resident.erase", "resident", resident.id, list(ERASED))
    return {"days": days, "residents": [r.id for r in found], "erased": 0 if dry_run else len(found),
            "dry_run": dry_run}


def scrub_file(database) -> None:
    """After erasing: fold the WAL back into the file and truncate it (SQLite)."""
    if database.dialect != "sqlite":
        return
    with database.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
