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

from commcare import audit, identity, lookup
from commcare.errors import InvalidValue, Refused
from commcare.storage import integrity
from commcare.storage.sql import statement
from commcare.timeparse import day_bounds, iso, parse_when

OUTCOMES = ("ok", "needs-help", "no-answer", "unreachable")
REACHED = ("ok", "needs-help")
ESCALATE_AFTER = 2
FUTURE_SLACK = dt.timedelta(minutes=5)


def log_call(conn, ctx, ref: str, outcome: str, note=None, request_category=None, at=None) -> dict:
    """Record a call by ``ctx.operator`` (and the staff member of that name, if any).

    ``needs-help`` with a category opens a request in the same transaction: if the request
    cannot be opened (a bad category), the call is not recorded either."""
    outcome = identity.parse_choice(outcome, OUTCOMES, "outcome")
    if request_category is not None and outcome != "needs-help":
        raise InvalidValue("call.request_needs_help", field="request")
    when = backfill_time(ctx, at)
    note = identity.normalize_text(note)
    resident = lookup.resident(conn, ctx, ref)
    if resident.archived_at is not None:
        raise Refused("call.resident_archived", field="resident", ref=resident.id)
    request = None
    if request_category is not None:
        from commcare.help_requests import open_request

        request = open_request(conn, ctx, resident, request_category, note=note, channel="phone", at=at)
    staff_id = _staff_named().scalar(conn, cid=ctx.community_id(conn), name=ctx.operator)
    call_id = _insert_call().scalar_one(
        conn,
        community_id=ctx.community_id(conn, create=True),
        resident_id=resident.id,
        staff_id=staff_id,
        actor=ctx.operator,
        at=when,
        outcome=outcome,
        note=note,
        request_id=request.id if request else None,
    )
    audit.record(
        conn,
        ctx,
        "call.log",
        "call",
        call_id,
        ["outcome"] + (["note"] if note else []),
        detail=f"resident #{resident.id}" + (f", request #{request.id}" if request else ""),
    )
    return {
        "id": call_id,
        "resident": resident.name,
        "resident_id": resident.id,
        "outcome": outcome,
        "at": iso(when, ctx.tz),
        "by": ctx.operator,
        "note": note,
        "request": request.id if request else None,
    }


@statement
def _staff_named():
    """The first staff member of community ``cid`` called ``name`` (the caller)."""
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import staff

    return (
        select(staff.c.id)
        .where(staff.c.community_id == bindparam("cid"), staff.c.name == bindparam("name"))
        .order_by(staff.c.id)
        .limit(1)
    )


_CALL_COLUMNS = ("community_id", "resident_id", "staff_id", "actor", "at", "outcome", "note", "request_id")


@statement
def _insert_call():
    from sqlalchemy import bindparam, insert

    from commcare.storage.tables import calls

    values = {name: bindparam(name, type_=calls.c[name].type) for name in _CALL_COLUMNS}
    return insert(calls).values(**values).returning(calls.c.id)


def backfill_time(ctx, at) -> dt.datetime:
    """``--at`` backfills from a paper log; a time in the future is a typing mistake."""
    now = ctx.now()
    if not at:
        return now
    when = parse_when(at, ctx.tz, now, "at")
    if when > now + FUTURE_SLACK:
        raise InvalidValue("value.future", field="at", value=at)
    return when


def due_calls(conn, ctx, liaison=None, day=None, for_round=False) -> list[dict]:
    """``due_list`` with the acting person's own households first: a liaison who opens the
    list (``--as 李金芳``) sees her own group at the top, then everyone else's, grouped by
    liaison as before. With ``--liaison`` only that liaison's are listed."""
    return [row for batch in due_batches(conn, ctx, liaison, day, for_round, size=None) for row in batch]


def due_batches(conn, ctx, liaison=None, day=None, for_round=False, size: int | None = 1000):
    """``due_calls``'s rows in lists of at most ``size`` (None: one list), each made when it
    is asked for: the rows are read and put in order at once (the order is Python's, see
    ``due_list``), then turned into the contract's rows a batch at a time, so a streamed
    ``call due`` never holds every row's dictionary and its text besides the rows read."""
    found, day, limit = _due_found(conn, ctx, liaison, day, for_round)
    me = ctx.operator
    if not liaison and me and any(r[7] == me for r in found):
        found = [r for r in found if r[7] == me] + [r for r in found if r[7] != me]
    tz, size = ctx.tz, size or max(len(found), 1)
    for at in range(0, len(found), size):
        yield [_due_row(row, day, tz, limit, for_round) for row in found[at : at + size]]


def due_list(conn, ctx, liaison=None, day=None, for_round=False) -> list[dict]:
    """The special-group residents not yet reached on ``day`` (default today), by liaison.

    One Core query: the special groups as a semi-join on the tag index, "not reached" as an
    anti-join (NOT EXISTS) on ``ix_calls_resident_at``, the tries of the day and the last time
    reached as correlated look-ups on the same index. Phones in full: the liaison calls them.
    ``for_round`` adds each resident's emergency contact (always) and the last call's note.

    The rows are put in order here, not by the database: SQLite sorts 15,000 wide rows in a
    temporary file (60 ms), Python in memory (10 ms), and the order is then the same on every
    backend (PostgreSQL would sort names by its collation and NULLs last).

    The special groups are first checked to be read whole (``integrity.verify``, exit 3)."""
    found, day, limit = _due_found(conn, ctx, liaison, day, for_round)
    return [_due_row(row, day, ctx.tz, limit, for_round) for row in found]


def _due_found(conn, ctx, liaison, day, for_round) -> tuple[list, dt.date, int]:
    """``due_list``'s rows as read (tuples), in order; the day and ``unreached_days``."""
    day = day or ctx.today()
    call_tags = identity.call_tags(ctx.extra_tags)
    integrity.verify(conn, ctx.community_id(conn), call_tags, everyone=False)
    start, end = day_bounds(day, ctx.tz)
    values = {"cid": ctx.community_id(conn), "tags": list(call_tags), "start": start, "end": end}
    if liaison:
        values["liaison_id"] = lookup.staff_member(conn, ctx, liaison, "liaison").id
    # read by position below: a Row's names cost a µs each. Read a thousand at a time: the
    # driver's rows and their converted copies are never both held whole (25,000 residents
    # due on a morning at 100,000).
    query = _due_rows(conn.dialect.name, for_round, bool(liaison))
    found = [row for batch in query.stream(conn, 1000, **values) for row in batch]
    return by_liaison(found, 7, (5, 6, 0)), day, unreached_days(ctx)


@statement
def _due_rows(dialect: str, for_round: bool, by_liaison: bool):
    """``due_list``'s one query: the residents of community ``cid`` carrying one of ``tags``,
    not reached in [``start``, ``end``) (of ``liaison_id``'s households when ``by_liaison``)."""
    from sqlalchemy import and_, bindparam, exists, func, select

    from commcare.storage.tables import calls, resident_tags, residents

    r, c = residents, calls
    h, st = households_and_staff(dialect, "compound", "address", "liaison_id")
    start = bindparam("start", type_=c.c.at.type)
    end = bindparam("end", type_=c.c.at.type)
    same = c.c.resident_id == r.c.id
    today = and_(same, c.c.at >= start, c.c.at < end)
    tagged = select(resident_tags.c.resident_id).where(
        resident_tags.c.community_id == bindparam("cid"), resident_tags.c.tag.in_(bindparam("tags", expanding=True))
    )
    tries = select(func.count()).select_from(c).where(today).scalar_subquery()
    last_reached = (
        select(c.c.at)
        .where(same, c.c.at < end, c.c.outcome.in_(REACHED))
        .order_by(c.c.at.desc())
        .limit(1)
        .scalar_subquery()
    )
    columns = [
        r.c.id,
        r.c.name,
        r.c.phone,
        r.c.emergency_name,
        r.c.emergency_phone,
        h.c.compound,
        h.c.address,
        st.c.name.label("liaison"),
        tries.label("tries"),
        func.coalesce(last_reached, r.c.created_at).label("since"),
    ]
    if for_round:
        columns.append(
            select(c.c.note)
            .where(same, c.c.note.is_not(None))
            .order_by(c.c.at.desc())
            .limit(1)
            .scalar_subquery()
            .label("last_note")
        )
    # "not reached": on PostgreSQL not among the community's calls of the day that reached
    # someone (the community's entries of ix_calls_community_at, which carries outcome and
    # resident), read once and hashed: NOT IN (a resident's key is never NULL), which the
    # planner runs as a hashed subplan whatever it estimates, where NOT EXISTS became a join
    # whose kind hung on the estimate (a look-up per resident in a city); on SQLite, one file a
    # community, a look-up on ix_calls_resident_at for each resident
    cid = bindparam("cid", type_=c.c.community_id.type)
    reached = select(c.c.resident_id).where(c.c.community_id == cid, c.c.at >= start, c.c.at < end)
    not_reached = (
        r.c.id.not_in(reached.where(c.c.outcome.in_(REACHED)))
        if dialect == "postgresql"
        else ~exists().where(today, c.c.outcome.in_(REACHED))
    )
    query = (
        select(*columns)
        .select_from(r)
        .outerjoin(h, r.c.household_id == h.c.id)
        .outerjoin(st, h.c.liaison_id == st.c.id)
        .where(
            integrity.of_community(dialect, r.c.community_id, bindparam("cid", type_=r.c.community_id.type)),
            r.c.archived_at.is_(None),
            r.c.created_at < end,
            r.c.id.in_(tagged),
            not_reached,
        )
    )
    if by_liaison:
        query = query.where(h.c.liaison_id == bindparam("liaison_id"))
    return query


def households_and_staff(dialect: str, *household_columns: str) -> tuple:
    """(households, staff) as the round and the day report join them to the residents of
    community ``cid``: on SQLite the tables (one community a file: each row fetched by its
    key); on PostgreSQL the community's own households (``id`` and ``household_columns``) and
    staff, each read once from its entries in a community-first index
    (``ix_households_community``, ``ix_staff_community_id``) and kept (``MATERIALIZED``).

    A household and its liaison are always of their residents' community (every write path
    finds them in the acting community). In a city the planner cannot know it: it expects a
    community's special groups to be a few dozen rows (it estimates the tags' semi-join from
    the whole city's residents), and fetched each household and liaison by key, 506 times
    each, every one on a page of its own among the other communities' (bench/results.md,
    issue 20). Read this way the statement reads what it reads alone, whatever the estimate."""
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import households, staff

    if dialect != "postgresql":
        return households, staff
    h, st = households.c, staff.c
    cid = bindparam("cid", type_=h.community_id.type)
    homes = select(h.id, *(h[n] for n in household_columns)).where(h.community_id == cid)
    workers = select(st.id, st.name).where(st.community_id == cid)
    return (
        homes.cte("community_households").prefix_with("MATERIALIZED"),
        workers.cte("community_staff").prefix_with("MATERIALIZED"),
    )


def by_liaison(rows: list, liaison: int, then: tuple[int, ...]) -> list:
    """``rows`` by the liaison's name (column ``liaison``), then the columns ``then``; the
    residents without a liaison last, and among them a missing value (no household) first, as
    SQLite orders NULL. A row with a liaison has a household, so none of its ``then`` is
    missing: those rows, nearly all, are sorted by a C key (``itemgetter``)."""
    from operator import itemgetter

    placed = [r for r in rows if r[liaison] is not None]
    placed.sort(key=itemgetter(liaison, *then))
    unplaced = [r for r in rows if r[liaison] is None]
    unplaced.sort(key=lambda r: [(r[i] is not None, r[i] or "") for i in then[:-1]] + [r[then[-1]]])
    return placed + unplaced


def in_community(dialect, r, cid):
    """The residents of community ``cid``, as the check of the counts reads them
    (``integrity.of_community``: on SQLite through the tag index, on PostgreSQL as the planner
    chooses: from the community's residents in a city). ``dialect``: its name or a
    connection; ``cid``: a value or a ``bindparam``."""
    return integrity.of_community(dialect, r.c.community_id, cid)


def unreached_days(ctx) -> int:
    """Config ``unreached_days``: flag residents not reached this many days running (default 2)."""
    value = ctx.settings.file.get("unreached_days", 2)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 2


def _due_row(r: tuple, today: dt.date, tz, limit: int, for_round: bool) -> dict:
    """``days_unreached``: whole days since the resident was last reached (or registered);
    ``unreached_flag`` once that reaches ``unreached_days``."""
    rid, name, phone, emergency_name, emergency_phone, compound, address, liaison, tries, since = r[:10]
    days = (today - since.astimezone(tz).date()).days
    tries = tries or 0
    escalate = tries >= ESCALATE_AFTER
    show_contact = escalate or for_round
    known = " ".join(p for p in (emergency_name, emergency_phone) if p) or None
    contact = known if show_contact else None
    row = {
        "id": rid,
        "resident": name,
        "phone": phone,
        "liaison": liaison,
        "compound": compound,
        "address": address,
        "calls_today": tries,
        "escalate": escalate,
        "escalate_action": escalate_action(escalate, emergency_phone),
        "emergency_contact": contact,
        "days_unreached": days,
        "unreached_flag": days >= limit,
    }
    if for_round:
        row["last_note"] = r[10]
    return row


def escalate_action(escalate: bool, emergency_phone: str | None) -> str | None:
    """What to do after two unanswered calls: ring the emergency contact, or, when there is
    no number to ring, go and see (``visit``, 上门查看)."""
    if not escalate:
        return None
    return "emergency-contact" if emergency_phone else "visit"


def card_details(conn, ctx, resident_id: int) -> dict:
    """What the round's card adds for one resident: the tags and the open requests."""
    from sqlalchemy import select

    from commcare.help_requests import OPEN_STATES
    from commcare.storage.tables import requests, resident_tags

    tags = conn.execute(
        select(resident_tags.c.tag).where(resident_tags.c.resident_id == resident_id).order_by(resident_tags.c.tag)
    ).scalars()
    q = requests.c
    open_ = conn.execute(
        select(q.id, q.category, q.status, q.due_at)
        .where(q.resident_id == resident_id, q.status.in_(OPEN_STATES))
        .order_by(q.due_at, q.id)
    ).all()
    return {
        "tags": list(tags),
        "requests": [{"id": i, "category": c, "status": st, "due": iso(d, ctx.tz)} for i, c, st, d in open_],
    }


def escalated(conn, cid, start, end, missed_ids: set) -> dict:
    """Of the residents not reached in [start, end): those with two or more unanswered calls,
    id -> (unanswered calls, what to do), from the day's calls on ``ix_calls_community_at``."""
    counts = _unanswered().all(conn, cid=cid, start=start, end=end)
    ids = [rid for rid, _ in counts if rid in missed_ids]
    if not ids:
        return {}
    phones = dict(_emergency_phones().all(conn, ids=ids))
    return {rid: (n, escalate_action(True, phones.get(rid))) for rid, n in counts if rid in phones}


@statement
def _unanswered():
    """The residents with ``ESCALATE_AFTER`` or more unanswered calls in community ``cid``
    in [``start``, ``end``), with their number."""
    from sqlalchemy import bindparam, func, select

    from commcare.storage.tables import calls

    c = calls.c
    start, end = bindparam("start", type_=c.at.type), bindparam("end", type_=c.at.type)
    return (
        select(c.resident_id, func.count())
        .where(c.community_id == bindparam("cid"), c.at >= start, c.at < end, c.outcome.not_in(REACHED))
        .group_by(c.resident_id)
        .having(func.count() >= ESCALATE_AFTER)
    )


@statement
def _emergency_phones():
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import residents

    r = residents.c
    return select(r.id, r.emergency_phone).where(r.id.in_(bindparam("ids", expanding=True)))


def call_rows(conn, ctx, day=None, resident=None) -> list[dict]:
    """The calls made on ``day`` (default today), oldest first."""
    from sqlalchemy import select

    from commcare.storage.tables import calls, residents

    start, end = day_bounds(day or ctx.today(), ctx.tz)
    c = calls
    query = (
        select(c.c.id, residents.c.name, c.c.outcome, c.c.at, c.c.actor, c.c.note, c.c.request_id)
        .join(residents, c.c.resident_id == residents.c.id)
        .where(c.c.community_id == ctx.community_id(conn), c.c.at >= start, c.c.at < end)
        .order_by(c.c.at, c.c.id)
    )
    if resident:
        query = query.where(c.c.resident_id == lookup.resident(conn, ctx, resident).id)
    return [
        {
            "id": r.id,
            "resident": r.name,
            "outcome": r.outcome,
            "at": iso(r.at, ctx.tz),
            "by": r.actor,
            "note": r.note,
            "request": r.request_id,
        }
        for r in conn.execute(query)
    ]
