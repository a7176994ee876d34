"""Likely duplicates in the register: same name and phone, or same name and household.
A person merges them (``resident merge``) or says they are two people (``--dismiss``)."""

from __future__ import annotations

from sqlalchemy import and_, insert, select, update

from commcare import audit, lookup, register
from commcare.errors import Refused
from commcare.storage.tables import calls, duplicate_dismissals, requests, resident_tags, residents


def find(conn, ctx) -> list[dict]:
    a, b = residents.alias("a"), residents.alias("b")
    same = and_(
        a.c.name == b.c.name,
        a.c.id < b.c.id,
        a.c.community_id == ctx.community_id(conn),
        b.c.community_id == a.c.community_id,
        a.c.archived_at.is_(None),
        b.c.archived_at.is_(None),
    )
    why = (a.c.phone.is_not(None) & (a.c.phone == b.c.phone)) | (
        a.c.household_id.is_not(None) & (a.c.household_id == b.c.household_id)
    )
    d = duplicate_dismissals.c
    dismissed = select(d.resident_a).where(d.resident_a == a.c.id, d.resident_b == b.c.id).exists()
    rows = conn.execute(
        select(a.c.id, b.c.id, a.c.name, a.c.phone == b.c.phone).where(same, why, ~dismissed).order_by(a.c.id, b.c.id)
    )
    return [{"a": x, "b": y, "name": n, "reason": "same phone" if p else "same address"} for x, y, n, p in rows]


def dismiss(conn, ctx, ref_a, ref_b) -> None:
    a, b = sorted((lookup.resident(conn, ctx, ref_a).id, lookup.resident(conn, ctx, ref_b).id))
    d = duplicate_dismissals.c
    if conn.scalar(select(d.resident_a).where(d.resident_a == a, d.resident_b == b)) is None:
        conn.execute(insert(duplicate_dismissals).values(resident_a=a, resident_b=b, at=ctx.now(), actor=ctx.operator))
    else:
        conn.execute(
            update(duplicate_dismissals)
            .where(d.resident_a == a, d.resident_b == b)
            .values(at=ctx.now(), actor=ctx.operator)
        )
    audit.record(conn, ctx, "resident.not_duplicate", "resident", a, [], detail=f"#{b}")


FILLED = ("phone", "sex", "born", "emergency_name", "emergency_phone", "note", "household_id")


def merge(conn, ctx, keep_ref, drop_ref) -> int:
    """Keep A; move B's calls, requests and tags to A, fill A's empty fields from B, archive B.
    Returns A's number."""
    keep_id, drop_id = lookup.resident(conn, ctx, keep_ref).id, lookup.resident(conn, ctx, drop_ref).id
    if keep_id == drop_id:
        raise Refused("roster.merge_same")
    for table in (calls, requests):
        conn.execute(update(table).where(table.c.resident_id == drop_id).values(resident_id=keep_id))
    have = set(register.tags_of(conn, keep_id))
    moved = [t for t in register.tags_of(conn, drop_id) if t not in have]
    if moved:
        cid = conn.execute(select(residents.c.community_id).where(residents.c.id == keep_id)).scalar_one()
        conn.execute(insert(resident_tags), [{"resident_id": keep_id, "tag": t, "community_id": cid} for t in moved])
    keep, drop = (conn.execute(select(residents).where(residents.c.id == rid)).one() for rid in (keep_id, drop_id))
    filled = {f: getattr(drop, f) for f in FILLED if getattr(keep, f) is None and getattr(drop, f) is not None}
    if keep.id_number is None and drop.id_number is not None:
        conn.execute(update(residents).where(residents.c.id == drop_id).values(id_number=None))  # unique
        filled["id_number"] = drop.id_number
    changes = {"updated_at": ctx.now(), "version": residents.c.version + 1}
    if filled:
        conn.execute(update(residents).where(residents.c.id == keep_id).values(**filled, **changes))
    conn.execute(
        update(residents)
        .where(residents.c.id == drop_id)
        .values(archived_at=ctx.now(), archive_reason=f"merged into #{keep_id}", **changes)
    )
    audit.record(conn, ctx, "resident.merge", "resident", keep_id, list(filled), detail=f"#{drop_id}")
    return keep_id
