"""The audit trail: who did what, when, to which record. Field names, never values of
phones or ID numbers. Each entry carries the hash of the one before it, so an edited or
deleted entry is found by ``verify``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from sqlalchemy import select

from commcare.models import AuditEntry


def entry_hash(prev_hash: str, at: dt.datetime, actor: str, action: str, entity: str,
               entity_id: int | None, community_id: int | None, fields: str, detail: str) -> str:
    payload = json.dumps(
        [prev_hash, at.astimezone(dt.UTC).isoformat(timespec="microseconds"), actor,
         action, entity, entity_id, community_id, fields, detail],
        ensure_ascii=False, separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def record(session, ctx, action: str, entity: str, entity_id: int | None = None,
           fields: list[str] | tuple[str, ...] = (), detail: str = "") -> AuditEntry:
    """Append one entry, chained to the last one (in the caller's write transaction)."""
    if session.bind is not None and session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import text

        session.execute(text("SELECT pg_advisory_xact_lock(727272)"))
    prev = session.scalar(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)) or ""
    at = ctx.now()
    community_id = ctx.community_id(session)
    field_text = ",".join(fields)
    entry = AuditEntry(
        at=at, actor=ctx.operator, action=action, entity=entity, entity_id=entity_id,
        community_id=community_id, fields=field_text, detail=detail, prev_hash=prev,
        hash=entry_hash(prev, at, ctx.operator, action, entity, entity_id, community_id, field_text, detail),
    )
    session.add(entry)
    return entry


def entries(session, ctx, since: dt.datetime | None = None, entity: str | None = None,
            entity_id: int | None = None, limit: int | None = None) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id)
    community_id = ctx.community_id(session)
    query = query.where(AuditEntry.community_id == community_id)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if entity is not None:
        query = query.where(AuditEntry.entity == entity)
    if entity_id is not None:
        query = query.where(AuditEntry.entity_id == entity_id)
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def as_row(entry: AuditEntry, tz) -> dict:
    from commcare.timeparse import iso

    return {"id": entry.id, "at": iso(entry.at, tz), "actor": entry.actor, "action": entry.action,
            "entity": entry.entity, "entity_id": entry.entity_id,
            "fields": [f for f in entry.fields.split(",") if f], "detail": entry.detail}


def verify(session) -> dict:
    """Walk the whole chain; the first entry whose hash or link does not hold is reported
    (an edited entry breaks its own hash, a deleted one breaks the next entry's link)."""
    prev = ""
    count = 0
    for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.id)).yield_per(2000):
        expected = entry_hash(prev, entry.at, entry.actor, entry.action, entry.entity, entry.entity_id,
                              entry.community_id, entry.fields, entry.detail)
        if entry.prev_hash != prev or entry.hash != expected:
            from commcare.errors import Refused

            raise Refused("audit.broken", id=entry.id, count=count)
        prev = entry.hash
        count += 1
    return {"verified": count}
