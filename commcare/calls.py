"""Check-in calls: logging a call, and who is still due a call today.

A special-group resident (a tag whose ``daily_call`` is true) is due one call a day; a call
with outcome ``ok`` or ``needs-help`` reaches them, ``no-answer``/``unreachable`` leave them
due. Two or more unanswered calls in a day mark them for escalation, with their emergency
contact.
"""

from __future__ import annotations

from sqlalchemy import and_, exists, func, select

from commcare import audit, identity, register
from commcare.models import Call, Household, Resident, ResidentTag, Staff
from commcare.timeparse import day_bounds, iso, parse_when

OUTCOMES = ("ok", "needs-help", "no-answer", "unreachable")
REACHED = ("ok", "needs-help")
ESCALATE_AFTER = 2


def log_call(s, ctx, ref: str, outcome: str, note=None, request_category=None, at=None) -> dict:
    """Record a call; ``needs-help`` with a category opens a request in the same transaction."""
    outcome = identity.parse_choice(outcome, OUTCOMES, "outcome")
    resident = register.find_resident(s, ctx, ref)
    when = parse_when(at, ctx.tz, ctx.now(), "at") if at else ctx.now()
    note = identity.normalize_text(note)
    request = None
    if request_category:
        if outcome != "needs-help":
            from commcare.errors import InvalidValue

            raise InvalidValue("call.request_needs_help", field="request")
        from commcare.help_requests import open_request

        request = open_request(s, ctx, resident, request_category, note=note, channel="phone",
                               at=at)
    staff = s.scalar(select(Staff).where(Staff.community_id == ctx.community_id(s), Staff.name == ctx.operator))
    call = Call(community_id=ctx.community_id(s, create=True), resident_id=resident.id,
                staff_id=staff.id if staff else None, actor=ctx.operator, at=when, outcome=outcome,
                note=note, request_id=request.id if request else None)
    s.add(call)
    s.flush()
    audit.record(s, ctx, "call.log", "call", call.id, ["outcome"] + (["note"] if note else []),
                 detail=f"resident #{resident.id}")
    return {"id": call.id, "resident": resident.name, "resident_id": resident.id, "outcome": outcome,
            "at": iso(when, ctx.tz), "request": request.id if request else None}


def due_calls(s, ctx, liaison=None, day=None) -> list[dict]:
    """The special-group residents not yet reached on ``day`` (default today): one query
    with an anti-join, phones in full (the liaison needs them)."""
    start, end = day_bounds(day or ctx.today(), ctx.tz)
    today = and_(Call.resident_id == Resident.id, Call.at >= start, Call.at < end)
    reached = exists().where(today, Call.outcome.in_(REACHED))
    special = exists().where(ResidentTag.resident_id == Resident.id,
                             ResidentTag.tag.in_(identity.call_tags(ctx.extra_tags)))
    tries = select(func.count(Call.id)).where(today).correlate(Resident).scalar_subquery()
    last_reached = (select(func.max(Call.at)).where(Call.resident_id == Resident.id, Call.outcome.in_(REACHED))
                    .correlate(Resident).scalar_subquery())
    last_note = (select(Call.note).where(Call.resident_id == Resident.id, Call.note.is_not(None))
                 .order_by(Call.at.desc()).limit(1).correlate(Resident).scalar_subquery())
    query = (select(Resident.id, Resident.name, Resident.phone, Resident.emergency_name,
                    Resident.emergency_phone, Household.compound, Household.address,
                    Staff.name.label("liaison"), tries.label("tries"), last_note.label("last_note"),
                    last_reached.label("last_reached"), Resident.created_at)
             .outerjoin(Household, Resident.household_id == Household.id)
             .outerjoin(Staff, Household.liaison_id == Staff.id)
             .where(Resident.community_id == ctx.community_id(s), Resident.archived_at.is_(None),
                    special, ~reached)
             .order_by(Staff.name, Household.compound, Household.address, Resident.id))
    if liaison:
        query = query.where(Household.liaison_id == register.find_staff(s, ctx, liaison, "liaison").id)
    today = day or ctx.today()
    limit = _unreached_days(ctx)
    return [_due_row(r, today, ctx.tz, limit) for r in s.execute(query)]


def _unreached_days(ctx) -> int:
    value = ctx.settings.file.get("unreached_days", 2)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 2


def _due_row(r, today, tz, limit) -> dict:
    """``days_unreached``: whole days since the resident was last reached (or registered);
    ``unreached_flag`` once that reaches ``unreached_days`` (config, default 2)."""
    since = (r.last_reached or r.created_at).astimezone(tz).date()
    days = (today - since).days
    escalate = (r.tries or 0) >= ESCALATE_AFTER
    contact = " ".join(p for p in (r.emergency_name, r.emergency_phone) if p) or None
    return {"id": r.id, "resident": r.name, "phone": r.phone, "liaison": r.liaison,
            "compound": r.compound, "address": r.address, "calls_today": r.tries or 0,
            "escalate": escalate, "emergency_contact": contact if escalate else None,
            "last_note": r.last_note, "days_unreached": days, "unreached_flag": days >= limit}


def call_rows(s, ctx, day=None, resident=None) -> list[dict]:
    start, end = day_bounds(day or ctx.today(), ctx.tz)
    query = (select(Call, Resident.name).join(Resident, Call.resident_id == Resident.id)
             .where(Call.community_id == ctx.community_id(s), Call.at >= start, Call.at < end)
             .order_by(Call.at))
    if resident:
        query = query.where(Call.resident_id == register.find_resident(s, ctx, resident).id)
    return [{"id": c.id, "resident": name, "outcome": c.outcome, "at": iso(c.at, ctx.tz), "by": c.actor,
             "note": c.note, "request": c.request_id} for c, name in s.execute(query)]
