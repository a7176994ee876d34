"""Requests for help: opening, the lifecycle, recurrence and overdue.

Lifecycle: open -> assigned -> in_progress -> resolved; cancelled (with a reason) from any
open state; reopen from resolved or cancelled. A recurring request (``--every``) opens its
next occurrence when resolved, due one interval after the previous due time (no drift);
``--every-after`` counts from the resolution. The next occurrence points at the one before
(``previous_id`` is UNIQUE), so it can never be created twice.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from commcare import audit, identity, register
from commcare.errors import Conflict, InvalidValue, NotFound, Refused
from commcare.models import HelpRequest, Household, RequestEvent, Resident, Staff
from commcare.timeparse import iso, parse_date, parse_interval, parse_when

URGENCIES = ("low", "normal", "high", "urgent")
CHANNELS = ("phone", "hotline", "visit", "wechat", "walk-in")
OPEN_STATES = ("open", "assigned", "in_progress")
URGENT_MAX = dt.timedelta(hours=4)
# action -> (states it may start from, state it leads to)
TRANSITIONS = {
    "assign": (("open", "assigned", "in_progress"), "assigned"),
    "start": (("open", "assigned"), "in_progress"),
    "resolve": (OPEN_STATES, "resolved"),
    "cancel": (OPEN_STATES, "cancelled"),
    "reopen": (("resolved", "cancelled"), "open"),
}


def open_request(s, ctx, resident: Resident, category: str, *, note=None, urgency="normal",
                 due=None, every=None, every_after=None, until=None, channel=None, assign=None,
                 at=None) -> HelpRequest:
    """Open one request for ``resident``; values are as the user typed them."""
    spec = _clean_spec(ctx, category, note, urgency, due, every, every_after, until, channel, at)
    assignee = _assignee(s, ctx, resident, assign)
    return _insert(s, ctx, resident, spec, assignee)


def open_requests(s, ctx, refs: list[str], category: str, **options) -> list[HelpRequest]:
    """One request for each resident named (the gas station's 26 households), all or none."""
    if not refs:
        raise InvalidValue("value.empty", field="resident")
    residents = [register.find_resident(s, ctx, ref) for ref in refs]
    for r in residents:
        if r.archived_at is not None:
            raise Refused("request.resident_archived", ref=r.id, name=r.name)
    spec = _clean_spec(ctx, category, options.get("note"), options.get("urgency") or "normal",
                       options.get("due"), options.get("every"), options.get("every_after"),
                       options.get("until"), options.get("channel"), options.get("at"))
    return [_insert(s, ctx, r, spec, _assignee(s, ctx, r, options.get("assign"))) for r in residents]


def _clean_spec(ctx, category, note, urgency, due, every, every_after, until, channel, at) -> dict:
    now = ctx.now()
    slug = identity.parse_category(category)
    urgency = identity.parse_choice(urgency or "normal", URGENCIES, "urgency")
    opened = parse_when(at, ctx.tz, now, "at") if at else now
    if at and opened > now + dt.timedelta(minutes=5):
        raise InvalidValue("value.future", field="at", value=at)
    if every and every_after:
        raise InvalidValue("request.every_both", field="every")
    repeat = ("every", every) if every else ("every_after", every_after) if every_after else (None, None)
    interval = parse_interval(repeat[1], "every" if every else "every-after")[0] if repeat[1] else None
    due_at = parse_when(due, ctx.tz, opened, "due", date_time=dt.time(18, 0)) if due else _default_due(slug, opened)
    if urgency == "urgent" and not due:
        due_at = min(due_at, opened + URGENT_MAX)
    return {
        "category": slug, "urgency": urgency, "note": identity.normalize_text(note),
        "channel": identity.parse_choice(channel, CHANNELS, "channel") if channel else None,
        "opened_at": opened, "due_at": due_at, "repeat_kind": repeat[0] if interval else None,
        "repeat_interval": interval,
        "repeat_until": parse_date(until, ctx.tz, now, "until") if until else None,
    }


def _default_due(slug: str, opened: dt.datetime) -> dt.datetime:
    hours = identity.categories()[slug].get("due_hours", 24)
    return opened + dt.timedelta(hours=hours)


def _assignee(s, ctx, resident: Resident, assign) -> Staff | None:
    if assign:
        return register.find_staff(s, ctx, assign, "assign")
    house = resident.household
    return house.liaison if house is not None else None


def _insert(s, ctx, resident, spec: dict, assignee: Staff | None, previous_id=None) -> HelpRequest:
    req = HelpRequest(
        community_id=ctx.community_id(s, create=True), resident_id=resident.id,
        status="assigned" if assignee else "open", assignee_id=assignee.id if assignee else None,
        previous_id=previous_id, opened_by=ctx.operator, **spec)
    s.add(req)
    s.flush()
    _event(s, ctx, req, "opened", None, "open", spec.get("note"), at=spec["opened_at"])
    if assignee:
        _event(s, ctx, req, "assigned", "open", "assigned", assignee.name, at=spec["opened_at"])
    audit.record(s, ctx, "request.open", "request", req.id,
                 [k for k in ("category", "urgency", "note", "due", "assignee") if spec.get(k) or k in ("category", "due")],
                 detail=f"resident #{resident.id}")
    return req


def _event(s, ctx, req, kind, from_status, to_status, note=None, at=None) -> None:
    s.add(RequestEvent(request_id=req.id, at=at or ctx.now(), actor=ctx.operator, kind=kind,
                       from_status=from_status, to_status=to_status, note=note))


# --- the lifecycle ---------------------------------------------------------------------------

def find_request(s, ctx, ref) -> HelpRequest:
    text = identity.nfkc(str(ref)).strip().lstrip("#")
    if not text.isascii() or not text.isdigit():
        raise InvalidValue("request.bad_number", field="id", value=ref)
    req = s.scalar(select(HelpRequest).where(
        HelpRequest.id == int(text), HelpRequest.community_id == ctx.community_id(s)))
    if req is None:
        raise NotFound("request.not_found", ref=ref)
    return req


def transition(s, ctx, refs, action: str, note=None, staff=None) -> list[HelpRequest]:
    """Apply ``action`` to each request named, all or none; a refused one refuses them all."""
    allowed, target = TRANSITIONS[action]
    if action == "cancel" and not (note and note.strip()):
        raise InvalidValue("request.reason_required", field="reason")
    note = identity.normalize_text(note)
    assignee = register.find_staff(s, ctx, staff, "staff") if staff else None
    done = []
    for ref in dict.fromkeys(refs):
        req = find_request(s, ctx, ref)
        if req.status not in allowed:
            raise Refused("request.bad_transition", id=req.id, status=req.status, action=action)
        _apply(s, ctx, req, action, target, note, assignee)
        done.append(req)
    try:
        s.flush()
    except StaleDataError:
        raise Conflict("request.changed_meanwhile")
    except IntegrityError:
        raise Conflict("request.occurrence_exists")
    return done


def _apply(s, ctx, req, action, target, note, assignee) -> None:
    now = ctx.now()
    before = req.status
    if action == "assign":
        req.assignee_id = assignee.id
    req.status = target
    if action == "resolve":
        req.resolved_at = now
    elif action == "cancel":
        req.closed_at, req.cancel_reason = now, note
    elif action == "reopen":
        req.resolved_at = req.closed_at = req.cancel_reason = None
        req.status = "assigned" if req.assignee_id else "open"
    detail = assignee.name if assignee else note
    _event(s, ctx, req, {"assign": "assigned", "start": "started", "resolve": "resolved",
                         "cancel": "cancelled", "reopen": "reopened"}[action], before, req.status, detail)
    audit.record(s, ctx, f"request.{action}", "request", req.id, ["status"] + (["assignee"] if assignee else []))
    if action == "resolve" and req.repeat_interval:
        _next_occurrence(s, ctx, req, now)


def _next_occurrence(s, ctx, req: HelpRequest, resolved: dt.datetime) -> HelpRequest | None:
    """Open the next occurrence of a recurring request, unless the series has ended or it
    already exists (a reopened and again resolved occurrence does not open a second one)."""
    if s.scalar(select(HelpRequest.id).where(HelpRequest.previous_id == req.id)) is not None:
        return None
    step = parse_interval(req.repeat_interval)[1]
    base = req.due_at if req.repeat_kind == "every" else resolved
    due = base + step
    if req.repeat_until and due.astimezone(ctx.tz).date() > req.repeat_until:
        return None
    spec = {"category": req.category, "urgency": req.urgency, "note": req.note, "channel": req.channel,
            "opened_at": resolved, "due_at": due, "repeat_kind": req.repeat_kind,
            "repeat_interval": req.repeat_interval, "repeat_until": req.repeat_until}
    resident = s.get(Resident, req.resident_id)
    assignee = s.get(Staff, req.assignee_id) if req.assignee_id else None
    return _insert(s, ctx, resident, spec, assignee, previous_id=req.id)


def add_note(s, ctx, ref, text: str) -> HelpRequest:
    req = find_request(s, ctx, ref)
    body = identity.normalize_text(text)
    if not body:
        raise InvalidValue("value.empty", field="note")
    _event(s, ctx, req, "note", req.status, req.status, body)
    audit.record(s, ctx, "request.note", "request", req.id, ["note"])
    return req


# --- reading ---------------------------------------------------------------------------------

def list_requests(s, ctx, status=None, category=None, assignee=None, compound=None,
                  overdue=False, resident=None, limit=None) -> list[HelpRequest]:
    now = ctx.now()
    query = (select(HelpRequest).where(HelpRequest.community_id == ctx.community_id(s))
             .order_by(HelpRequest.due_at, HelpRequest.id))
    if status:
        states = OPEN_STATES if status == "active" else (identity.parse_choice(
            status, OPEN_STATES + ("resolved", "cancelled", "active", "all"), "status"),)
        if states != ("all",):
            query = query.where(HelpRequest.status.in_(states))
    elif not overdue:
        query = query.where(HelpRequest.status.in_(OPEN_STATES))
    if overdue:
        query = query.where(HelpRequest.status.in_(OPEN_STATES), HelpRequest.due_at < now)
    if category:
        query = query.where(HelpRequest.category == identity.parse_category(category))
    if assignee:
        query = query.where(HelpRequest.assignee_id == register.find_staff(s, ctx, assignee, "assignee").id)
    if resident:
        query = query.where(HelpRequest.resident_id == register.find_resident(s, ctx, resident).id)
    if compound:
        query = query.where(HelpRequest.resident_id.in_(
            select(Resident.id).join(Household, Resident.household_id == Household.id)
            .where(Household.compound == identity.normalize_text(compound, "compound"))))
    if limit:
        query = query.limit(limit)
    return list(s.scalars(query))


def request_rows(s, ctx, requests: list[HelpRequest]) -> list[dict]:
    """The contract's request rows, with names looked up in two queries, not one per row."""
    res_ids = {r.resident_id for r in requests}
    staff_ids = {r.assignee_id for r in requests if r.assignee_id}
    names = dict(s.execute(select(Resident.id, Resident.name).where(Resident.id.in_(res_ids))).all()) if res_ids else {}
    staff = dict(s.execute(select(Staff.id, Staff.name).where(Staff.id.in_(staff_ids))).all()) if staff_ids else {}
    now = ctx.now()
    return [request_row(r, ctx.tz, names.get(r.resident_id), staff.get(r.assignee_id), now) for r in requests]


def request_row(req: HelpRequest, tz, resident_name=None, assignee_name=None, now=None) -> dict:
    return {
        "id": req.id, "resident": resident_name, "resident_id": req.resident_id,
        "category": req.category, "status": req.status, "urgency": req.urgency,
        "due": iso(req.due_at, tz), "assignee": assignee_name, "opened_at": iso(req.opened_at, tz),
        "resolved_at": iso(req.resolved_at, tz), "channel": req.channel, "note": req.note,
        "overdue": bool(now and req.status in OPEN_STATES and req.due_at < now),
        "every": req.repeat_interval if req.repeat_kind == "every" else None,
        "every_after": req.repeat_interval if req.repeat_kind == "every_after" else None,
        "until": req.repeat_until.isoformat() if req.repeat_until else None,
        "previous": req.previous_id, "cancel_reason": req.cancel_reason,
    }


def show_request(s, ctx, ref) -> dict:
    req = find_request(s, ctx, ref)
    row = request_rows(s, ctx, [req])[0]
    events = s.scalars(select(RequestEvent).where(RequestEvent.request_id == req.id).order_by(RequestEvent.at, RequestEvent.id))
    row["timeline"] = [{"at": iso(e.at, ctx.tz), "by": e.actor, "event": e.kind, "from": e.from_status,
                        "to": e.to_status, "note": e.note} for e in events]
    return row
