"""The audit trail: who did what, when, to which record. Field names, never values of
phones or ID numbers. Each entry carries the hash of the one before it, so an edited or
deleted entry is found by ``verify``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from sqlalchemy import insert, select

from commcare.storage.tables import audit as AUDIT


def entry_hash(
    prev_hash: str,
    at: dt.datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: int | None,
    community_id: int | None,
    fields: str,
    detail: str,
) -> str:
    payload = json.dumps(
        [
            prev_hash,
            at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
            actor,
            action,
            entity,
            entity_id,
            community_id,
            fields,
            detail,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def record(
    conn,
    ctx,
    action: str,
    entity: str,
    entity_id: int | None = None,
    fields: list[str] | tuple[str, ...] = (),
    detail: str = "",
) -> None:
    """Append one entry, chained to the last one, in the caller's write transaction.

    On PostgreSQL an advisory lock held to the end of the transaction orders the writers, so
    the chain follows the order of the commits.
    """
    from sqlalchemy import text

    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(727272)"))
        # A staff login sees only its communities' entries: the chain's head comes from a
        # function that reads the whole table for it (commcare.storage.access_sql).
        prev = conn.scalar(text("SELECT head_hash FROM commcare_audit_head()")) or ""
    else:
        prev = conn.scalar(select(AUDIT.c.hash).order_by(AUDIT.c.id.desc()).limit(1)) or ""
    at = ctx.now()
    community_id = ctx.community_id(conn)
    field_text = ",".join(fields)
    conn.execute(
        insert(AUDIT).values(
            at=at,
            actor=ctx.operator,
            action=action,
            entity=entity,
            entity_id=entity_id,
            community_id=community_id,
            fields=field_text,
            detail=detail,
            prev_hash=prev,
            hash=entry_hash(prev, at, ctx.operator, action, entity, entity_id, community_id, field_text, detail),
        )
    )


def unmasked(conn, ctx, entity: str, what: str, count: int) -> None:
    """Every ``--unmask`` is recorded: full phone and ID numbers were shown (``what``, how many
    rows), in the caller's write transaction."""
    record(conn, ctx, "unmask", entity, None, ["phone", "id_number"], detail=f"{what}: {count} rows")


def entries(
    conn,
    ctx,
    since: dt.datetime | None = None,
    entity: str | None = None,
    entity_id: int | None = None,
    limit: int | None = None,
) -> list:
    """The entries (rows with the table's columns as attributes), newest first (``limit``:
    the latest so many)."""
    query = select(AUDIT).order_by(AUDIT.c.id.desc())
    community_id = ctx.community_id(conn)
    query = query.where(AUDIT.c.community_id == community_id)
    if since is not None:
        query = query.where(AUDIT.c.at >= since)
    if entity is not None:
        query = query.where(AUDIT.c.entity == entity)
    if entity_id is not None:
        query = query.where(AUDIT.c.entity_id == entity_id)
    if limit:
        query = query.limit(limit)
    return list(conn.execute(query))


def as_row(entry, tz) -> dict:
    from commcare.timeparse import iso

    return {
        "id": entry.id,
        "at": iso(entry.at, tz),
        "actor": entry.actor,
        "action": entry.action,
        "entity": entry.entity,
        "entity_id": entry.entity_id,
        "fields": [f for f in entry.fields.split(",") if f],
        "detail": entry.detail,
    }


def verify(conn) -> dict:
    """Walk the whole chain; the first entry whose hash or link does not hold is reported
    (an edited entry breaks its own hash, a deleted one breaks the next entry's link)."""
    prev = ""
    count = 0
    rows = conn.execute(select(AUDIT).order_by(AUDIT.c.id).execution_options(yield_per=2000))
    for entry in rows:
        expected = entry_hash(
            prev,
            entry.at,
            entry.actor,
            entry.action,
            entry.entity,
            entry.entity_id,
            entry.community_id,
            entry.fields,
            entry.detail,
        )
        if entry.prev_hash != prev or entry.hash != expected:
            from commcare.errors import Refused

            raise Refused("audit.broken", id=entry.id, count=count)
        prev = entry.hash
        count += 1
    return {"verified": count}
