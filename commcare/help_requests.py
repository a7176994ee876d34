"""Requests for help: opening, the lifecycle, recurrence and overdue.

Lifecycle: open -> assigned -> in_progress -> resolved; cancelled (with a reason) from any
open state; reopen from resolved or cancelled. A recurring request (``--every``) opens its
next occurrence when resolved, due one interval after the previous due time (no drift);
``--every-after`` counts from the resolution. The next occurrence points at the one before
(``previous_id`` is UNIQUE), so it can never be created twice.

A request is a row; a change is an UPDATE that checks the row's ``version``, so two people
changing one request at once cannot both succeed.
"""

from __future__ import annotations

import datetime as dt
import re

from commcare import audit, identity, lookup
from commcare.errors import Conflict, InvalidValue, NotFound, Refused
from commcare.storage import sql
from commcare.storage.sql import statement
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
# the columns a new request is inserted with (every one, always: one statement)
NEW_REQUEST = (
    "assignee_id",
    "category",
    "channel",
    "community_id",
    "due_at",
    "note",
    "opened_at",
    "opened_by",
    "previous_id",
    "repeat_interval",
    "repeat_kind",
    "repeat_until",
    "resident_id",
    "status",
    "urgency",
    "version",
)


# --- the statements (commcare.storage.sql: declared once, run from the cache) ---------------------


def _binds(table, keys):
    """``{column: bindparam(column)}`` for ``keys``, each typed as its column."""
    from sqlalchemy import bindparam

    return {k: bindparam(k, type_=table.c[k].type) for k in keys}


@statement
def _open_of_category():
    """The open requests of ``:category`` that the residents ``:ids`` have."""
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import requests

    r = requests.c
    return (
        select(r.id, r.resident_id, r.due_at, r.status)
        .where(
            r.resident_id.in_(bindparam("ids", expanding=True)),
            r.category == bindparam("category"),
            r.status.in_(OPEN_STATES),
        )
        .order_by(r.id)
    )


@statement
def _staff_named():
    """A staff member's number and name, by number."""
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import staff

    return select(staff.c.id, staff.c.name).where(staff.c.id == bindparam("staff_id"))


@statement
def _liaison_of():
    """The liaison (number, name) of the household of the resident ``:resident_id``."""
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import households, residents, staff

    return (
        select(staff.c.id, staff.c.name)
        .join(households, households.c.liaison_id == staff.c.id)
        .join(residents, residents.c.household_id == households.c.id)
        .where(residents.c.id == bindparam("resident_id"))
    )


@statement
def _insert_request():
    """A new request (every column of ``NEW_REQUEST``); its number."""
    from sqlalchemy import insert

    from commcare.storage.tables import requests

    return insert(requests).values(**_binds(requests, NEW_REQUEST)).returning(requests.c.id)


@statement
def _insert_event():
    """A line of a request's timeline."""
    from sqlalchemy import insert

    from commcare.storage.tables import request_events

    keys = ("request_id", "at", "actor", "kind", "from_status", "to_status", "note")
    return insert(request_events).values(**_binds(request_events, keys))


@statement
def _opened_lines(assigned: bool):
    """A new request's first lines of its timeline, in one statement: opened (``:opened_note``)
    and, when ``assigned``, assigned (``:assigned_note``, the assignee's name), in that order."""
    from sqlalchemy import bindparam, insert

    from commcare.storage.tables import request_events

    shared = _binds(request_events, ("request_id", "at", "actor"))
    text = request_events.c.note.type
    lines = [
        {
            **shared,
            "kind": "opened",
            "from_status": None,
            "to_status": "open",
            "note": bindparam("opened_note", type_=text),
        }
    ]
    if assigned:
        note = bindparam("assigned_note", type_=text)
        lines.append({**shared, "kind": "assigned", "from_status": "open", "to_status": "assigned", "note": note})
    return insert(request_events).values(lines)


@statement
def _requests_by_id():
    """The requests ``:ids``."""
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import requests

    return select(requests).where(requests.c.id.in_(bindparam("ids", expanding=True)))


@statement
def _request_in_community():
    """The request ``:id`` of the community ``:cid``."""
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import requests

    return select(requests).where(requests.c.id == bindparam("id"), requests.c.community_id == bindparam("cid"))


@statement
def _change_request(keys: tuple):
    """Set the columns ``keys`` (each bound as ``new_<column>``) and the next version of the
    request ``:req_id``, if it is still at ``:old_version``. (No value is named as a column:
    SQLAlchemy would take it for one more column to set.)"""
    from sqlalchemy import bindparam, update

    from commcare.storage.tables import requests

    return (
        update(requests)
        .where(requests.c.id == bindparam("req_id"), requests.c.version == bindparam("old_version"))
        .values(
            version=bindparam("new_version", type_=requests.c.version.type),
            **{k: bindparam(f"new_{k}", type_=requests.c[k].type) for k in keys},
        )
    )


@statement
def _following_id():
    """The number of the occurrence after the request ``:id``, if there is one."""
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import requests

    return select(requests.c.id).where(requests.c.previous_id == bindparam("id"))


@statement
def _resident_number():
    """A resident's number (the row a new occurrence is opened for)."""
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import residents

    return select(residents.c.id).where(residents.c.id == bindparam("id"))


@statement
def _listed(
    by_status: bool, overdue: bool, category: bool, assignee: bool, resident: bool, compound: bool, limit: bool
):
    """The community's requests, soonest due first, with the filters the flags say (their
    values bound: ``:states``, ``:now``, ``:category``, ``:assignee_id``, ``:resident_id``,
    ``:compound``, ``:limit``)."""
    from sqlalchemy import Integer, bindparam, select

    from commcare.storage.tables import households, requests, residents

    r = requests.c
    query = select(requests).where(r.community_id == bindparam("cid")).order_by(r.due_at, r.id)
    if by_status:
        query = query.where(r.status.in_(bindparam("states", expanding=True)))
    if overdue:
        query = query.where(r.status.in_(OPEN_STATES), r.due_at < bindparam("now", type_=r.due_at.type))
    if category:
        query = query.where(r.category == bindparam("category"))
    if assignee:
        query = query.where(r.assignee_id == bindparam("assignee_id"))
    if resident:
        query = query.where(r.resident_id == bindparam("resident_id"))
    if compound:
        query = query.where(
            r.resident_id.in_(
                select(residents.c.id)
                .join(households, residents.c.household_id == households.c.id)
                .where(households.c.compound == bindparam("compound"))
            )
        )
    if limit:
        query = query.limit(bindparam("limit", type_=Integer()))
    return query


@statement
def _following_open():
    """The open next occurrences of the requests ``:ids``."""
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import requests

    return select(requests).where(
        requests.c.previous_id.in_(bindparam("ids", expanding=True)), requests.c.status.in_(("open", "assigned"))
    )


@statement
def _resident_names():
    """Residents' numbers and names, for the numbers ``:ids``."""
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import residents

    return select(residents.c.id, residents.c.name).where(residents.c.id.in_(bindparam("ids", expanding=True)))


@statement
def _staff_names():
    """Staff members' numbers and names, for the numbers ``:ids``."""
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import staff

    return select(staff.c.id, staff.c.name).where(staff.c.id.in_(bindparam("ids", expanding=True)))


@statement
def _timeline():
    """The timeline of the request ``:id``, oldest first."""
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import request_events

    return (
        select(request_events)
        .where(request_events.c.request_id == bindparam("id"))
        .order_by(request_events.c.at, request_events.c.id)
    )


# --- opening ---------------------------------------------------------------------------------


def open_request(
    s,
    ctx,
    resident,
    category: str,
    *,
    note=None,
    urgency="normal",
    due=None,
    every=None,
    every_after=None,
    until=None,
    channel=None,
    assign=None,
    at=None,
):
    """Open one request for ``resident`` (anything with ``.id`` and ``.name``); values are
    as the user typed them. Returns the new request's row."""
    spec = _clean_spec(ctx, category, note, urgency, due, every, every_after, until, channel, at)
    return _fetch(s, [_insert(s, ctx, resident, spec, _assignee(s, ctx, resident.id, assign))])[0]


def open_requests(s, ctx, refs: list[str], category: str, again: bool = False, **options) -> list:
    """One request for each resident named (the gas station's 26 households), all or none.
    A resident who already has an open request of the category is refused (exit 1, the
    request named) unless ``again``: a second call about the same errand is not a new one."""
    if not refs:
        raise InvalidValue("value.empty", field="resident")
    found = [lookup.resident(s, ctx, ref) for ref in refs]
    for r in found:
        if r.archived_at is not None:
            raise Refused("request.resident_archived", ref=r.id, name=r.name)
    if not again:
        _refuse_duplicates(s, ctx, found, identity.parse_category(category))
    spec = _clean_spec(
        ctx,
        category,
        options.get("note"),
        options.get("urgency") or "normal",
        options.get("due"),
        options.get("every"),
        options.get("every_after"),
        options.get("until"),
        options.get("channel"),
        options.get("at"),
    )
    assign = options.get("assign")
    chosen = _staff(s, ctx, assign, "assign") if assign else None
    ids = [_insert(s, ctx, r, spec, chosen if assign else _liaison(s, r.liaison_id)) for r in found]
    return _fetch(s, ids)


def _refuse_duplicates(s, ctx, found: list, slug: str) -> None:
    """Exit 1 naming each open request of ``slug`` the residents already have (``--again``)."""
    from commcare.render.times import human_time

    open_ = _open_of_category().all(s, ids=[x.id for x in found], category=slug)
    if not open_:
        return
    names = {x.id: x.name for x in found}
    year = ctx.today().year
    shown = "; ".join(f"#{i} {names[rid]} ({human_time(iso(due, ctx.tz), year)})" for i, rid, due, _ in open_[:10])
    from commcare.i18n import get_lang

    label = identity.categories()[slug].get(get_lang(), slug)
    raise Refused("request.duplicate", field="category", category=label, requests=shown, count=len(open_))


def expand_ranges(refs: list[str], limit: int = 1000) -> list[str]:
    """``1-26``, ``3,5,9-12`` and single numbers as the request numbers they name, in order.
    A range backwards, empty or longer than ``limit`` is a bad value (exit 2)."""
    out: list[str] = []
    for ref in refs:
        for part in re.split(r"[,，、]", identity.nfkc(str(ref))):
            part = part.strip()
            m = re.fullmatch(r"#?([0-9]+)\s*[-–—~]\s*#?([0-9]+)", part, re.ASCII)
            if m:
                first, last = int(m[1]), int(m[2])
                if last < first or last - first >= limit:
                    raise InvalidValue("request.bad_range", field="id", value=part, limit=limit)
                out += [str(n) for n in range(first, last + 1)]
            elif part:
                out.append(part)
            else:
                raise InvalidValue("request.bad_range", field="id", value=ref, limit=limit)
    return out


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
        "category": slug,
        "urgency": urgency,
        "note": identity.normalize_text(note),
        "channel": identity.parse_choice(channel, CHANNELS, "channel") if channel else None,
        "opened_at": opened,
        "due_at": due_at,
        "repeat_kind": repeat[0] if interval else None,
        "repeat_interval": interval,
        "repeat_until": parse_date(until, ctx.tz, now, "until") if until else None,
    }


def _default_due(slug: str, opened: dt.datetime) -> dt.datetime:
    hours = identity.categories()[slug].get("due_hours", 24)
    return opened + dt.timedelta(hours=hours)


def _staff(s, ctx, ref, field):
    return lookup.staff_member(s, ctx, ref, field)


def _liaison(s, liaison_id):
    return _staff_named().first(s, staff_id=liaison_id) if liaison_id else None


def _assignee(s, ctx, resident_id: int, assign):
    """The staff member named by ``--assign``, else the household's liaison (or None)."""
    if assign:
        return _staff(s, ctx, assign, "assign")
    return _liaison_of().first(s, resident_id=resident_id)


def _insert(s, ctx, resident, spec: dict, assignee, previous_id=None) -> int:
    """Insert one request with its timeline's first lines and the audit entry; its number."""
    values = {
        "community_id": ctx.community_id(s, create=True),
        "resident_id": resident.id,
        "status": "assigned" if assignee else "open",
        "assignee_id": assignee.id if assignee else None,
        "previous_id": previous_id,
        "opened_by": ctx.operator,
        "version": 1,
        **spec,
    }
    try:
        rid = _insert_request().scalar(s, **values)
    except Exception as exc:
        if previous_id is None or not sql.integrity_error(exc):
            raise
        raise Conflict("request.occurrence_exists")
    _opened_lines(bool(assignee)).execute(
        s,
        request_id=rid,
        at=spec["opened_at"],
        actor=ctx.operator,
        opened_note=spec.get("note"),
        **({"assigned_note": assignee.name} if assignee else {}),
    )
    audit.record(
        s,
        ctx,
        "request.open",
        "request",
        rid,
        [k for k in ("category", "urgency", "note", "due", "assignee") if spec.get(k) or k in ("category", "due")],
        detail=f"resident #{resident.id}",
    )
    return rid


def _event(s, ctx, request_id, kind, from_status, to_status, note=None, at=None) -> None:
    _insert_event().execute(
        s,
        request_id=request_id,
        at=at or ctx.now(),
        actor=ctx.operator,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        note=note,
    )


def _fetch(s, ids: list[int]) -> list:
    """The rows of these requests, in the order given."""
    rows = {r.id: r for r in _requests_by_id().all(s, ids=ids)}
    return [rows[i] for i in ids]


# --- the lifecycle ---------------------------------------------------------------------------


def find_request(s, ctx, ref):
    text = identity.nfkc(str(ref)).strip().lstrip("#")
    if not text.isascii() or not text.isdigit():
        raise InvalidValue("request.bad_number", field="id", value=ref)
    if int(text) > 2**63 - 1:  # no such row, and more than the database's integer holds
        raise NotFound("request.not_found", ref=ref)
    req = _request_in_community().first(s, id=int(text), cid=ctx.community_id(s))
    if req is None:
        raise NotFound("request.not_found", ref=ref)
    return req


def transition(s, ctx, refs, action: str, note=None, staff=None) -> list:
    """Apply ``action`` to each request named, all or none; a refused one refuses them all."""
    allowed, target = TRANSITIONS[action]
    if action == "cancel" and not (note and note.strip()):
        raise InvalidValue("request.reason_required", field="reason")
    note = identity.normalize_text(note)
    assignee = _staff(s, ctx, staff, "staff") if staff else None
    done = []
    for ref in dict.fromkeys(refs):
        req = find_request(s, ctx, ref)
        if req.status not in allowed:
            from commcare.words import label

            raise Refused(
                "request.bad_transition", id=req.id, status=label("status", req.status), action=label("verb", action)
            )
        _apply(s, ctx, req, action, target, note, assignee)
        done.append(req.id)
    return _fetch(s, done)


def _apply(s, ctx, req, action, target, note, assignee) -> None:
    now = ctx.now()
    changes = {"status": target}
    if action == "assign":
        changes["assignee_id"] = assignee.id
    elif action == "resolve":
        changes["resolved_at"] = now
    elif action == "cancel":
        changes.update(closed_at=now, cancel_reason=note)
    elif action == "reopen":
        changes.update(
            resolved_at=None, closed_at=None, cancel_reason=None, status="assigned" if req.assignee_id else "open"
        )
    changed = _change_request(tuple(sorted(changes))).execute(
        s,
        req_id=req.id,
        old_version=req.version,
        new_version=req.version + 1,
        **{f"new_{k}": v for k, v in changes.items()},
    )
    if changed.rowcount != 1:
        raise Conflict("request.changed_meanwhile")
    detail = assignee.name if assignee else note
    _event(
        s,
        ctx,
        req.id,
        {"assign": "assigned", "start": "started", "resolve": "resolved", "cancel": "cancelled", "reopen": "reopened"}[
            action
        ],
        req.status,
        changes["status"],
        detail,
    )
    audit.record(s, ctx, f"request.{action}", "request", req.id, ["status"] + (["assignee"] if assignee else []))
    if action == "resolve" and req.repeat_interval:
        _next_occurrence(s, ctx, req, now)


def _next_occurrence(s, ctx, req, resolved: dt.datetime) -> int | None:
    """Open the next occurrence of a recurring request, unless the series has ended or it
    already exists (a reopened and again resolved occurrence does not open a second one)."""
    if _following_id().scalar(s, id=req.id) is not None:
        return None
    step = parse_interval(req.repeat_interval)[1]
    base = req.due_at if req.repeat_kind == "every" else resolved
    due = base + step
    if req.repeat_until and due.astimezone(ctx.tz).date() > req.repeat_until:
        return None
    spec = {
        "category": req.category,
        "urgency": req.urgency,
        "note": req.note,
        "channel": req.channel,
        "opened_at": resolved,
        "due_at": due,
        "repeat_kind": req.repeat_kind,
        "repeat_interval": req.repeat_interval,
        "repeat_until": req.repeat_until,
    }
    assignee = _liaison(s, req.assignee_id)
    resident = _resident_number().first(s, id=req.resident_id)
    return _insert(s, ctx, resident, spec, assignee, previous_id=req.id)


def add_note(s, ctx, ref, text: str):
    req = find_request(s, ctx, ref)
    body = identity.normalize_text(text)
    if not body:
        raise InvalidValue("value.empty", field="note")
    _event(s, ctx, req.id, "note", req.status, req.status, body)
    audit.record(s, ctx, "request.note", "request", req.id, ["note"])
    return req


# --- reading ---------------------------------------------------------------------------------


def list_requests(s, ctx, **filters) -> list:
    """The community's requests that ``filters`` (``list_plan``'s) keep, soonest due first."""
    shape, values = list_plan(s, ctx, **filters)
    return _listed(*shape).all(s, **values)


def stream_request_rows(s, ctx, plan: tuple, size: int):
    """The contract's rows of ``plan``'s requests (``list_plan``), soonest due first, in lists
    of at most ``size``: each read from the database, named (two look-ups) and handed on
    before the next is read, so every open request of a city is never held at once."""
    shape, values = plan
    now = ctx.now()
    for batch in _listed(*shape).stream(s, size, **values):
        yield request_rows(s, ctx, batch, now, pad=True)


def list_plan(
    s, ctx, status=None, category=None, assignee=None, compound=None, overdue=False, resident=None, limit=None
) -> tuple[tuple, dict]:
    """The shape of ``_listed`` and its values for these filters (a staff member or a resident
    named by the filters is looked up here, and a bad value refused), before any row is read."""
    now = ctx.now()
    values: dict = {"cid": ctx.community_id(s)}
    if status:
        states = (
            OPEN_STATES
            if status == "active"
            else (identity.parse_choice(status, OPEN_STATES + ("resolved", "cancelled", "active", "all"), "status"),)
        )
        if states != ("all",):
            values["states"] = list(states)
    elif not overdue:
        values["states"] = list(OPEN_STATES)
    if overdue:
        values["now"] = now
    if category:
        values["category"] = identity.parse_category(category)
    if assignee:
        values["assignee_id"] = _staff(s, ctx, assignee, "assignee").id
    if resident:
        values["resident_id"] = lookup.resident(s, ctx, resident).id
    if compound:
        values["compound"] = identity.normalize_text(compound, "compound")
    if limit:
        values["limit"] = limit
    shape = (
        "states" in values,
        overdue,
        "category" in values,
        "assignee_id" in values,
        "resident_id" in values,
        "compound" in values,
        "limit" in values,
    )
    return shape, values


def next_occurrences(s, ctx, ids: list[int]) -> dict[int, dict]:
    """The open next occurrence of each of the recurring requests ``ids``, by the one before."""
    if not ids:
        return {}
    found = _following_open().all(s, ids=list(ids))
    return {r.previous_id: row for r, row in zip(found, request_rows(s, ctx, found), strict=True)}


def request_rows(s, ctx, rows: list, now=None, pad: bool = False) -> list[dict]:
    """The contract's request rows, with names looked up in two queries, not one per row;
    ``now`` (default: the clock) tells which are overdue.

    ``pad`` (a streamed list's batches): the look-ups' lists of numbers are made as long as
    the next power of two by repeating their last number, so that the batches send a few SQL
    texts, not one per length: SQLite expands a list into one parameter per number, and
    sqlite3 keeps each text it has seen prepared (up to 128 statements) — a new length each
    batch kept 128 statements of a thousand parameters, some 24 MiB."""
    res_ids = sorted({r.resident_id for r in rows})
    staff_ids = sorted({r.assignee_id for r in rows if r.assignee_id})
    names = {r.id: r.name for r in _resident_names().all(s, ids=_padded(res_ids, pad))} if res_ids else {}
    who = {r.id: r.name for r in _staff_names().all(s, ids=_padded(staff_ids, pad))} if staff_ids else {}
    now = now or ctx.now()
    return [request_row(r, ctx.tz, names.get(r.resident_id), who.get(r.assignee_id), now) for r in rows]


PAD_UP_TO = 4096  # a longer list is sent as it is: at most twice as many parameters, and few such texts


def _padded(ids: list, pad: bool) -> list:
    if not pad or not ids or len(ids) > PAD_UP_TO:
        return ids
    return ids + ids[-1:] * ((1 << (len(ids) - 1).bit_length()) - len(ids))


def request_row(req, tz, resident_name=None, assignee_name=None, now=None) -> dict:
    return {
        "id": req.id,
        "resident": resident_name,
        "resident_id": req.resident_id,
        "category": req.category,
        "status": req.status,
        "urgency": req.urgency,
        "due": iso(req.due_at, tz),
        "assignee": assignee_name,
        "opened_at": iso(req.opened_at, tz),
        "resolved_at": iso(req.resolved_at, tz),
        "channel": req.channel,
        "note": req.note,
        "overdue": bool(now and req.status in OPEN_STATES and req.due_at < now),
        "every": req.repeat_interval if req.repeat_kind == "every" else None,
        "every_after": req.repeat_interval if req.repeat_kind == "every_after" else None,
        "until": req.repeat_until.isoformat() if req.repeat_until else None,
        "previous": req.previous_id,
        "cancel_reason": req.cancel_reason,
    }


def show_request(s, ctx, ref) -> dict:
    req = find_request(s, ctx, ref)
    row = request_rows(s, ctx, [req])[0]
    events = _timeline().all(s, id=req.id)
    row["timeline"] = [
        {
            "at": iso(e.at, ctx.tz),
            "by": e.actor,
            "event": e.kind,
            "from": e.from_status,
            "to": e.to_status,
            "note": e.note,
        }
        for e in events
    ]
    return row
