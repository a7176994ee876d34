"""Check-in calls: logging a call, and who is still due a call today.

A special-group resident (a tag whose ``daily_call`` is true, in ``data/tags.toml`` or the
config's ``[tags.NAME]``) is due one call a day. A call with outcome ``ok`` or ``needs-help``
reaches them; ``no-answer``/``unreachable`` leave them due. Two or more unanswered calls in a
day mark them for escalation, with their emergency contact. "Today" is the day in the
configured zone (``day_bounds``), so a call at 23:59 and one at 00:01 fall on two days
whatever zone the machine runs in.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, exists, func, select

from commcare import audit, identity, register
from commcare.errors import InvalidValue, Refused
from commcare.models import Call, Household, Resident, ResidentTag, Staff
from commcare.timeparse import day_bounds, iso, parse_when

OUTCOMES = ("ok", "needs-help", "no-answer", "unreachable")
REACHED = ("ok", "needs-help")
ESCALATE_AFTER = 2
FUTURE_SLACK = dt.timedelta(minutes=5)


def log_call(s, ctx, ref: str, outcome: str, note=None, request_category=None, at=None) -> dict:
    """Record a call by ``ctx.operator`` (and the staff member of that name, if any).

    ``needs-help`` with a category opens a request in the same transaction: if the request
    cannot be opened (a bad category), the call is not recorded either."""
    outcome = identity.parse_choice(outcome, OUTCOMES, "outcome")
    if request_category is not None and outcome != "needs-help":
        raise InvalidValue("call.request_needs_help", field="request")
    when = backfill_time(ctx, at)
    note = identity.normalize_text(note)
    resident = register.find_resident(s, ctx, ref)
    if resident.archived_at is not None:
        raise Refused("call.resident_archived", field="resident", ref=resident.id)
    request = None
    if request_category is not None:
        from commcare.help_requests import open_request

        request = open_request(s, ctx, resident, request_category, note=note, channel="phone", at=at)
    staff_id = s.scalar(select(Staff.id).where(Staff.community_id == ctx.community_id(s),
                                               Staff.name == ctx.operator).order_by(Staff.id).limit(1))
    call = Call(community_id=ctx.community_id(s, create=True), resident_id=resident.id, staff_id=staff_id,
                actor=ctx.operator, at=when, outcome=outcome, note=note,
                request_id=request.id if request else None)
    s.add(call)
    s.flush()
    audit.record(s, ctx, "call.log", "call", call.id, ["outcome"] + (["note"] if note else []),
                 detail=f"resident #{resident.id}" + (f", request #{request.id}" if request else ""))
    return {"id": call.id, "resident": resident.name, "resident_id": resident.id, "outcome": outcome,
            "at": iso(when, ctx.tz), "by": ctx.operator, "note": note,
            "request": request.id if request else None}


def backfill_time(ctx, at) -> dt.datetime:
    """``--at`` backfills from a paper log; a time in the future is a typing mistake."""
    now = ctx.now()
    if not at:
        return now
    when = parse_when(at, ctx.tz, now, "at")
    if when > now + FUTURE_SLACK:
        raise InvalidValue("value.future", field="at", value=at)
    return when


def due_calls(s, ctx, liaison=None, day=None, for_round=False) -> list[dict]:
    """The special-group residents not yet reached on ``day`` (default today), by liaison.

    One Core query: the special groups as a semi-join on the tag index, "not reached" as an
    anti-join (NOT EXISTS) on ``ix_calls_resident_at``, the tries of the day and the last time
    reached as correlated look-ups on the same index. Phones in full: the liaison calls them.
    ``for_round`` adds each resident's emergency contact (always) and the last call's note."""
    day = day or ctx.today()
    start, end = day_bounds(day, ctx.tz)
    r, h, st, c = Resident.__table__, Household.__table__, Staff.__table__, Call.__table__
    same = c.c.resident_id == r.c.id
    today = and_(same, c.c.at >= start, c.c.at < end)
    tagged = select(ResidentTag.__table__.c.resident_id).where(
        ResidentTag.__table__.c.tag.in_(identity.call_tags(ctx.extra_tags)))
    tries = select(func.count()).select_from(c).where(today).scalar_subquery()
    last_reached = (select(c.c.at).where(same, c.c.at < end, c.c.outcome.in_(REACHED))
                    .order_by(c.c.at.desc()).limit(1).scalar_subquery())
    columns = [r.c.id, r.c.name, r.c.phone, r.c.emergency_name, r.c.emergency_phone, h.c.compound,
               h.c.address, st.c.name.label("liaison"), tries.label("tries"),
               func.coalesce(last_reached, r.c.created_at).label("since")]
    if for_round:
        columns.append(select(c.c.note).where(same, c.c.note.is_not(None)).order_by(c.c.at.desc())
                       .limit(1).scalar_subquery().label("last_note"))
    query = (select(*columns).select_from(r)
             .outerjoin(h, r.c.household_id == h.c.id).outerjoin(st, h.c.liaison_id == st.c.id)
             .where(r.c.community_id == ctx.community_id(s), r.c.archived_at.is_(None), r.c.created_at < end,
                    r.c.id.in_(tagged), ~exists().where(today, c.c.outcome.in_(REACHED)))
             .order_by(st.c.name.is_(None), st.c.name, h.c.compound, h.c.address, r.c.id))
    if liaison:
        query = query.where(h.c.liaison_id == register.find_staff(s, ctx, liaison, "liaison").id)
    limit, tz = unreached_days(ctx), ctx.tz
    return [_due_row(row, day, tz, limit, for_round) for row in s.connection().execute(query).all()]


def unreached_days(ctx) -> int:
    """Config ``unreached_days``: flag residents not reached this many days running (default 2)."""
    value = ctx.settings.file.get("unreached_days", 2)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 2


def _due_row(r, today: dt.date, tz, limit: int, for_round: bool) -> dict:
    """``days_unreached``: whole days since the resident was last reached (or registered);
    ``unreached_flag`` once that reaches ``unreached_days``."""
    days = (today - r.since.astimezone(tz).date()).days
    tries = r.tries or 0
    escalate = tries >= ESCALATE_AFTER
    contact = " ".join(p for p in (r.emergency_name, r.emergency_phone) if p) or None
    row = {"id": r.id, "resident": r.name, "phone": r.phone, "liaison": r.liaison, "compound": r.compound,
           "address": r.address, "calls_today": tries, "escalate": escalate,
           "emergency_contact": contact if escalate or for_round else None,
           "days_unreached": days, "unreached_flag": days >= limit}
    if for_round:
        row["last_note"] = r.last_note
    return row


def call_rows(s, ctx, day=None, resident=None) -> list[dict]:
    """The calls made on ``day`` (default today), oldest first."""
    start, end = day_bounds(day or ctx.today(), ctx.tz)
    query = (select(Call, Resident.name).join(Resident, Call.resident_id == Resident.id)
             .where(Call.community_id == ctx.community_id(s), Call.at >= start, Call.at < end)
             .order_by(Call.at, Call.id))
    if resident:
        query = query.where(Call.resident_id == register.find_resident(s, ctx, resident).id)
    return [{"id": c.id, "resident": name, "outcome": c.outcome, "at": iso(c.at, ctx.tz), "by": c.actor,
             "note": c.note, "request": c.request_id} for c, name in s.execute(query)]
