"""Likely duplicates in the register: same name and phone, or same name and household.
A person merges them (``resident merge``) or says they are two people (``--dismiss``)."""

from __future__ import annotations

from sqlalchemy import and_, select, update
from sqlalchemy.orm import aliased

from commcare import audit, register
from commcare.errors import Refused
from commcare.models import Call, DuplicateDismissal, HelpRequest, Resident, ResidentTag


def find(s, ctx) -> list[dict]:
    a, b = aliased(Resident), aliased(Resident)
    same = and_(a.name == b.name, a.id < b.id, a.community_id == ctx.community_id(s),
                b.community_id == a.community_id, a.archived_at.is_(None), b.archived_at.is_(None))
    why = ((a.phone.is_not(None)) & (a.phone == b.phone)) | ((a.household_id.is_not(None)) & (a.household_id == b.household_id))
    dismissed = select(DuplicateDismissal.resident_a).where(
        DuplicateDismissal.resident_a == a.id, DuplicateDismissal.resident_b == b.id).exists()
    rows = s.execute(select(a.id, b.id, a.name, a.phone == b.phone).where(same, why, ~dismissed).order_by(a.id, b.id))
    return [{"a": x, "b": y, "name": n, "reason": "same phone" if p else "same address"} for x, y, n, p in rows]


def dismiss(s, ctx, ref_a, ref_b) -> None:
    a, b = sorted((register.find_resident(s, ctx, ref_a).id, register.find_resident(s, ctx, ref_b).id))
    s.merge(DuplicateDismissal(resident_a=a, resident_b=b, at=ctx.now(), actor=ctx.operator))
    audit.record(s, ctx, "resident.not_duplicate", "resident", a, [], detail=f"#{b}")


def merge(s, ctx, keep_ref, drop_ref) -> Resident:
    """Keep A; move B's calls, requests and tags to A, fill A's empty fields from B, archive B."""
    keep, drop = register.find_resident(s, ctx, keep_ref), register.find_resident(s, ctx, drop_ref)
    if keep.id == drop.id:
        raise Refused("roster.merge_same")
    for model in (Call, HelpRequest):
        s.execute(update(model).where(model.resident_id == drop.id).values(resident_id=keep.id))
    have = {t.tag for t in keep.tags}
    keep.tags += [ResidentTag(tag=t.tag) for t in drop.tags if t.tag not in have]
    filled = []
    for field in ("phone", "sex", "born", "emergency_name", "emergency_phone", "note", "household_id"):
        if getattr(keep, field) is None and getattr(drop, field) is not None:
            setattr(keep, field, getattr(drop, field))
            filled.append(field)
    if keep.id_number is None and drop.id_number is not None:
        number, drop.id_number = drop.id_number, None
        s.flush()
        keep.id_number = number
        filled.append("id_number")
    drop.archived_at, drop.archive_reason = ctx.now(), f"merged into #{keep.id}"
    audit.record(s, ctx, "resident.merge", "resident", keep.id, filled, detail=f"#{drop.id}")
    return keep
