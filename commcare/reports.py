"""The reports: a day's (``day_report``), a span of days' (``range_report``, ``week_report``)
and every community's at once (``all_communities``), each a function(connection, ctx, …) -> data.

Every figure is an SQL aggregate over indexes on the day's slice; nothing loads the history
into Python, so the evening report costs the same at a million requests as at a thousand.
Each statement is declared once (``@statement``, ``commcare.storage.sql``): ``report today``
and ``report day`` run them from the statement cache through the driver alone, without
importing SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt

from commcare import audit, identity
from commcare.calls import REACHED, by_liaison, escalated, households_and_staff
from commcare.donations import quantity
from commcare.health import fever_at
from commcare.help_requests import OPEN_STATES
from commcare.storage import integrity
from commcare.storage.sql import statement
from commcare.timeparse import day_bounds, iso


def moment_of(ctx, day: dt.date) -> tuple[dt.datetime, dt.datetime, dt.datetime, bool]:
    """(start, end, as-of moment, live) of ``day``: the end of the day, or now for today
    (``live``: the report is of the day in progress, read once, at the start)."""
    start, end = day_bounds(day, ctx.tz)
    now = ctx.now()
    live = start <= now < end
    return start, end, min(end, now) if live else end, live


def day_report(conn, ctx, day: dt.date, verify: bool = True) -> dict:
    """The report of ``day``: the contract's figures, as they stood at its end (or now). The
    special groups are first checked to be read whole (``integrity.verify``, exit 3) unless the
    caller did."""
    cid = ctx.community_id(conn)
    if verify:
        integrity.verify(conn, cid, identity.call_tags(ctx.extra_tags), everyone=False)
    start, end, at, live = moment_of(ctx, day)
    window = {"cid": cid, "start": start, "end": end}
    special = _special_residents(conn, ctx, window)
    requests_part, open_by_assignee = _requests(conn, ctx, window, at, live)
    return {
        "date": day.isoformat(),
        "community": ctx.community,
        "as_of": iso(at, ctx.tz),
        "requests": requests_part,
        "calls": _calls(special, _escalated_of(conn, cid, start, end, special)),
        "liaisons": _liaisons(conn, cid, special, open_by_assignee),
        "staff_health": _health(conn, window, fever_at(ctx)),
        "donations": _donations(conn, window),
        "audit": audit.head(conn),
    }


# --- the statements: declared once (``commcare.storage.sql``), the day's bounds (``start``,
# ``end``), the as-of moment (``at``) and the community (``cid``) given as they run.


def _utc(name: str):
    """A parameter of the UTC time columns' type (converted as they are)."""
    from sqlalchemy import bindparam

    from commcare.storage.tables import requests

    return bindparam(name, type_=requests.c.opened_at.type)


def _in_day(column):
    return (column >= _utc("start"), column < _utc("end"))


def _of_community(dialect: str, column):
    """``column`` is community ``cid``, as ``integrity.of_community`` asks it of the register's
    reads: on SQLite through no index (``+ 0``: the plan starts from the special groups on the
    tag index), on PostgreSQL as the planner chooses."""
    from sqlalchemy import bindparam

    cid = bindparam("cid", type_=column.type)
    return column + 0 == cid if dialect == "sqlite" else column == cid


def _open_at(live: bool):
    """Open at ``at``. For the live day the status column says it through the
    (community, status, due) index; for a past moment the timestamps say it."""
    from sqlalchemy import and_, or_

    from commcare.storage.tables import requests

    r = requests.c
    if live:
        return r.status.in_(OPEN_STATES)
    at = _utc("at")
    return and_(
        r.opened_at < at,
        or_(r.resolved_at.is_(None), r.resolved_at >= at),
        or_(r.closed_at.is_(None), r.closed_at >= at),
    )


def _mine(table):
    from sqlalchemy import bindparam

    return table.c.community_id == bindparam("cid", type_=table.c.community_id.type)


@statement
def _requests_in_day(column: str):
    """The community's requests by category whose ``column`` (opened_at, resolved_at) falls
    in the day, on that column's index."""
    from sqlalchemy import func, select

    from commcare.storage.tables import requests

    r = requests.c
    return select(r.category, func.count()).where(_mine(requests), *_in_day(r[column])).group_by(r.category)


@statement
def _open_requests(live: bool):
    """The requests open at ``at``, counted by category and assignee together."""
    from sqlalchemy import func, select

    from commcare.storage.tables import requests

    r = requests.c
    return (
        select(r.category, r.assignee_id, func.count())
        .where(_mine(requests), _open_at(live))
        .group_by(r.category, r.assignee_id)
    )


@statement
def _overdue_requests(live: bool):
    """The requests open and past due at ``at``: urgent first, then by due time.

    Each resident's name is looked up by key for each request found (a scalar subquery), not
    joined: PostgreSQL estimates "past due" from the whole table's due times, most of them
    past, so it expects a community's every open request to be overdue (370 where 29 were,
    in a city of 20 communities) and hashed the whole city's residents for the join (28 ms
    against 0.2 ms: bench/plans/, bench/results.md)."""
    from sqlalchemy import select

    from commcare.storage.tables import requests, residents

    r = requests.c
    name = select(residents.c.name).where(residents.c.id == r.resident_id).scalar_subquery()
    return (
        select(r.id, name.label("name"), r.category, r.due_at, r.urgency)
        .where(_mine(requests), _open_at(live), r.due_at < _utc("at"))
        .order_by((r.urgency == "urgent").desc(), r.due_at, r.id)
    )


def _requests(conn, ctx, window: dict, at, live) -> tuple[dict, dict]:
    """Each figure from its own index: opened_at, resolved_at, and (community, status, due);
    the open requests are counted once, by category and assignee together."""
    by_cat: dict[str, dict] = {}

    def count(key, category, n):
        by_cat.setdefault(category, {"category": category, "opened": 0, "resolved": 0, "open": 0})[key] += n

    for key, column in (("opened", "opened_at"), ("resolved", "resolved_at")):
        for category, n in _requests_in_day(column).all(conn, **window):
            count(key, category, n)
    moment = {"cid": window["cid"]} if live else {"cid": window["cid"], "at": at}
    open_by_assignee: dict = {}
    for category, assignee, n in _open_requests(live).all(conn, **moment):
        count("open", category, n)
        open_by_assignee[assignee] = open_by_assignee.get(assignee, 0) + n
    by_category = [by_cat[c] for c in sorted(by_cat)]
    overdue = _overdue_requests(live).all(conn, cid=window["cid"], at=at)
    tz = ctx.tz
    return {
        "opened": sum(x["opened"] for x in by_category),
        "resolved": sum(x["resolved"] for x in by_category),
        "open": sum(x["open"] for x in by_category),
        "overdue": len(overdue),
        "by_category": by_category,
        "overdue_items": [
            {"id": i, "resident": n, "category": c, "due": iso(d, tz), "urgency": u} for i, n, c, d, u in overdue
        ],
    }, open_by_assignee


def _alive_tagged(of_communities: bool = False):
    """The special-group residents (tags ``tags``) of community ``cid`` (or of the communities
    ``cids``) registered by ``end`` and not archived before it: found from the community's own
    tags (``ix_resident_tags_community_tag``), so a community's report does not grow with the
    city's."""
    from sqlalchemy import bindparam, or_, select

    from commcare.storage.tables import resident_tags, residents

    res, t = residents.c, resident_tags.c
    mine = (
        t.community_id.in_(bindparam("cids", expanding=True)) if of_communities else t.community_id == bindparam("cid")
    )
    tagged = select(t.resident_id).where(mine, t.tag.in_(bindparam("tags", expanding=True)))
    end = _utc("end")
    return (res.id.in_(tagged), res.created_at < end, or_(res.archived_at.is_(None), res.archived_at >= end))


def _reached_in_day():
    """The day's calls that reached their resident."""
    from commcare.storage.tables import calls

    return (*_in_day(calls.c.at), calls.c.outcome.in_(REACHED))


@statement
def _special(dialect: str):
    """(id, name, liaison id, liaison name, reached) of community ``cid``'s special groups."""
    from sqlalchemy import select

    from commcare.storage.tables import calls, residents

    res, c = residents.c, calls.c
    reached = select(c.resident_id).where(_mine(calls), *_reached_in_day())
    homes, workers = households_and_staff(dialect, "liaison_id")
    return (
        select(res.id, res.name, homes.c.liaison_id, workers.c.name, res.id.in_(reached))
        .select_from(residents)
        .outerjoin(homes, res.household_id == homes.c.id)
        .outerjoin(workers, homes.c.liaison_id == workers.c.id)
        .where(_of_community(dialect, res.community_id), *_alive_tagged())
    )


def _special_residents(conn, ctx, window: dict) -> list:
    """(id, name, liaison id, liaison name, reached) of every special-group resident
    registered by ``end`` and not archived before it, in one query: the residents by their key
    from the tag index, "reached" from the day's calls on ``ix_calls_community_at``. In no
    order: only those not reached are listed, and sorted (``_calls``)."""
    tags = identity.call_tags(ctx.extra_tags)
    return _special(conn.dialect.name).all(conn, tags=tags, **window)


def _escalated_of(conn, cid, start, end, special: list) -> dict:
    """The escalations among the special-group residents not reached (``calls.escalated``)."""
    return escalated(conn, cid, start, end, {r[0] for r in special if not r[4]})


def _calls(special: list, escalations: dict) -> dict:
    """The residents not reached, by liaison (those without one last), then number; among
    them (``escalated``) those with two or more unanswered calls, and what to do: ring the
    emergency contact, or visit (上门查看) when there is none."""
    missed = by_liaison([r for r in special if not r[4]], 3, (0,))
    return {
        "due": len(special),
        "made": len(special) - len(missed),
        "missed": [{"id": i, "resident": n, "liaison": liaison} for i, n, _, liaison, _ in missed],
        "escalated": [
            {"id": i, "resident": n, "liaison": liaison, "unanswered": escalations[i][0], "action": escalations[i][1]}
            for i, n, _, liaison, _ in missed
            if i in escalations
        ],
    }


@statement
def _liaisons_of():
    """The community's staff who are some household's liaison, by number."""
    from sqlalchemy import exists, select

    from commcare.storage.tables import households, staff

    is_liaison = exists().where(households.c.liaison_id == staff.c.id)
    return select(staff.c.id, staff.c.name).where(_mine(staff), is_liaison).order_by(staff.c.id)


def _liaisons(conn, cid, special: list, open_by_assignee: dict) -> list[dict]:
    from collections import Counter
    from operator import itemgetter

    liaison_of = itemgetter(2)
    residents_of = Counter(map(liaison_of, special))  # counted in C: 25,000 rows at 100,000 residents
    reached_of = Counter(map(liaison_of, filter(itemgetter(4), special)))
    out = []
    for sid, name in _liaisons_of().all(conn, cid=cid):
        n, made = residents_of[sid], reached_of[sid]
        out.append(
            {
                "staff": name,
                "residents": n,
                "calls_made": made,
                "calls_missing": n - made,
                "open_requests": open_by_assignee.get(sid, 0),
            }
        )
    return out


def _active_staff():
    from sqlalchemy import and_

    from commcare.storage.tables import staff

    return and_(_mine(staff), staff.c.active.is_(True))


def _feverish():
    """The day's health reports of the community's staff at ``fever`` or above."""
    from sqlalchemy import and_, bindparam

    from commcare.storage.tables import health_reports, staff

    h = health_reports.c
    fever = bindparam("fever", type_=h.temperature.type)
    return and_(_mine(staff), *_in_day(h.at), h.temperature >= fever)


@statement
def _health_due():
    """The community's active staff: each due two temperature reports a day."""
    from sqlalchemy import func, select

    from commcare.storage.tables import staff

    return select(func.count(staff.c.id)).where(_active_staff())


@statement
def _health_missing():
    """The active staff with fewer than two reports in the day, by number."""
    from sqlalchemy import func, select

    from commcare.storage.tables import health_reports, staff

    h, st = health_reports.c, staff.c
    reports = select(func.count(h.id)).where(h.staff_id == st.id, *_in_day(h.at)).correlate(staff).scalar_subquery()
    return select(st.name).where(_active_staff(), reports < 2).order_by(st.id)


@statement
def _fever_reports():
    from sqlalchemy import func, select

    from commcare.storage.tables import health_reports, staff

    h = health_reports.c
    return select(func.count(h.id)).join(staff, h.staff_id == staff.c.id).where(_feverish())


@statement
def _fever_staff():
    """The staff with a fever in the day, by number."""
    from sqlalchemy import select

    from commcare.storage.tables import health_reports, staff

    st = staff.c
    return (
        select(st.name)
        .join(health_reports, health_reports.c.staff_id == st.id)
        .where(_feverish())
        .group_by(st.id, st.name)
        .order_by(st.id)
    )


def _health(conn, window: dict, fever_limit: float) -> dict:
    due = _health_due().scalar(conn, cid=window["cid"]) or 0
    missing = _health_missing().scalars(conn, **window)
    fever = _fever_reports().scalar(conn, fever=fever_limit, **window) or 0
    who = _fever_staff().scalars(conn, fever=fever_limit, **window)
    return {"due": due, "missing": list(missing), "fever": list(who), "fever_reports": fever}


def _donated_in_day():
    from sqlalchemy import and_

    from commcare.storage.tables import donations

    return and_(_mine(donations), *_in_day(donations.c.at))


@statement
def _donations_received():
    from sqlalchemy import func, select

    from commcare.storage.tables import donations

    return select(func.count(donations.c.id)).where(_donated_in_day())


@statement
def _donated_items():
    """The day's donated items, summed by name and unit."""
    from sqlalchemy import func, select

    from commcare.storage.tables import donation_items, donations

    i = donation_items.c
    return (
        select(i.name, func.sum(i.quantity), i.unit)
        .join(donations, i.donation_id == donations.c.id)
        .where(_donated_in_day())
        .group_by(i.name, i.unit)
        .order_by(i.name)
    )


def _donations(conn, window: dict) -> dict:
    received = _donations_received().scalar(conn, **window) or 0
    items = _donated_items().all(conn, **window)
    return {"received": received, "items": [{"name": n, "quantity": quantity(q), "unit": u} for n, q, u in items]}


def week_report(conn, ctx, last_day: dt.date) -> dict:
    days = [last_day - dt.timedelta(days=i) for i in range(6, -1, -1)]
    return range_report(conn, ctx, days[0], days[-1])


def range_report(conn, ctx, first: dt.date, last: dt.date) -> dict:
    """One row per day with the headline figures, and the last day's full report."""
    if last < first:
        from commcare.errors import InvalidValue

        raise InvalidValue("report.bad_range", field="to", value=last.isoformat())
    integrity.verify(conn, ctx.community_id(conn), identity.call_tags(ctx.extra_tags), everyone=False)
    days, day = [], first
    while day <= last:
        full = day_report(conn, ctx, day, verify=False)
        days.append(
            {
                "date": day.isoformat(),
                "opened": full["requests"]["opened"],
                "resolved": full["requests"]["resolved"],
                "open": full["requests"]["open"],
                "overdue": full["requests"]["overdue"],
                "calls_due": full["calls"]["due"],
                "calls_made": full["calls"]["made"],
                "donations": full["donations"]["received"],
            }
        )
        day += dt.timedelta(days=1)
    totals = {k: sum(d[k] for d in days) for k in ("opened", "resolved", "calls_made", "donations")}
    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "community": ctx.community,
        "days": days,
        "totals": totals,
        "audit": audit.head(conn),
    }


# The headline figures of one community's day, as a row of the all-communities summary.
SUMMARY_KEYS = ("opened", "resolved", "open", "overdue", "calls_due", "calls_made", "missed")


def all_communities(conn, ctx, day: dt.date) -> dict:
    """Every community's headline figures for ``day`` (a row each) and their sum (``total``):
    the summary a district reads, without anyone's name. Each row is counted, not listed, on
    the indexes that lead with the community (the overdue requests and the residents not
    reached are counted, never read into Python), so the summary's memory does not grow with
    the city. Every community's requests are counted in one statement grouped by community
    (``_request_counts``); on PostgreSQL the special groups of every community are counted in
    one statement too (``_special_counts``). Every community's special groups are checked to be
    read whole first (``integrity.verify_all``), as in its own report. A district login on
    PostgreSQL can read no table with people in it: the database sums the figures for it
    (``commcare.access.district_summary``)."""
    from commcare import access, communities

    if access.is_district(conn):
        rows = access.district_summary(conn, ctx, day)
        return {
            "date": day.isoformat(),
            "communities": rows,
            "total": {k: sum(r[k] for r in rows) for k in SUMMARY_KEYS},
        }
    tags = identity.call_tags(ctx.extra_tags)
    start, end, at, live = moment_of(ctx, day)
    every = communities.rows(conn)
    cids = [cid for cid, _ in every]
    integrity.verify_all(conn, cids, tags)
    special = _special_counts(conn, cids, {"tags": tags, "start": start, "end": end})
    counted = _request_counts(conn, cids, live, {"start": start, "end": end, "at": at})
    rows = []
    for cid, name in every:
        opened, resolved, open_, overdue = counted.get(cid, (0, 0, 0, 0))
        due, made = special.get(cid, (0, 0))
        rows.append(
            {
                "community": name,
                "opened": opened,
                "resolved": resolved,
                "open": open_,
                "overdue": overdue,
                "calls_due": due,
                "calls_made": made,
                "missed": due - made,
            }
        )
    total = {k: sum(r[k] for r in rows) for k in SUMMARY_KEYS}
    return {"date": day.isoformat(), "communities": rows, "total": total, "audit": audit.head(conn)}


def _request_counts(conn, cids: list, live: bool, window: dict) -> dict:
    """community -> (opened, resolved, open, overdue) of the communities ``cids``, in one
    statement (``_requests_by_community``): a round trip for the whole city, not one per
    community. A community with none of them is not in it."""
    out: dict = {}
    if not cids:
        return out
    for kind, cid, n in _requests_by_community(live).all(conn, cids=cids, **window):
        out.setdefault(cid, [0, 0, 0, 0])[kind] = n
    return {cid: tuple(counts) for cid, counts in out.items()}


@statement
def _requests_by_community(live: bool):
    """(figure, community, count) of the communities ``cids``: the requests opened (0), resolved
    (1), open (2) and overdue (3), with the same conditions as ``day_report``'s, each counted
    by community on its own community-first index (``community_id IN (…)`` and the day's
    bounds: each community's entries of the day, or its open ones, and no other). A
    community's row is left out where it counts none."""
    from sqlalchemy import bindparam, func, literal_column, select, union_all

    from commcare.storage.tables import requests

    r = requests.c
    cids = bindparam("cids", type_=r.community_id.type, expanding=True)

    def count(kind: int, *where):
        return (
            select(literal_column(str(kind)).label("kind"), r.community_id, func.count())
            .where(r.community_id.in_(cids), *where)
            .group_by(r.community_id)
        )

    return union_all(
        count(0, *_in_day(r.opened_at)),
        count(1, *_in_day(r.resolved_at)),
        count(2, _open_at(live)),
        count(3, _open_at(live), r.due_at < _utc("at")),
    )


@statement
def _special_count():
    """(due, reached) of community ``cid``'s special groups, planned as its own report's
    (SQLite)."""
    from sqlalchemy import case, func, select

    from commcare.storage.tables import calls, residents

    res, c = residents.c, calls.c
    reached = select(c.resident_id).where(_mine(calls), *_reached_in_day())
    return (
        select(func.count(), func.sum(case((res.id.in_(reached), 1), else_=0)))
        .select_from(residents)
        .where(_of_community("sqlite", res.community_id), *_alive_tagged())
    )


@statement
def _special_by_community():
    """(community, due, reached) of the special groups of the communities ``cids``, in one
    statement (PostgreSQL). "Reached" is found among the day's calls of those communities that
    reached someone, read once from ``ix_calls_community_at`` (which carries the outcome and the
    resident) and hashed, as each community's own report finds it (``_special``): a look-up
    of each special-group resident's calls read 40,000 pages for a city of 20 communities, and
    ten times that for 200 (bench/results.md, issue 20)."""
    from sqlalchemy import bindparam, func, select

    from commcare.storage.tables import calls, residents

    res, c = residents.c, calls.c
    reached = select(c.resident_id).where(c.community_id.in_(bindparam("cids", expanding=True)), *_reached_in_day())
    return (
        select(res.community_id, func.count(), func.count().filter(res.id.in_(reached)))
        .select_from(residents)
        .where(res.community_id.in_(bindparam("cids", expanding=True)), *_alive_tagged(of_communities=True))
        .group_by(res.community_id)
    )


def _special_counts(conn, cids: list, window: dict) -> dict:
    """community -> (special-group residents due a call, those reached), with the same
    conditions as ``_special_residents`` (``window``: tags, start, end). On SQLite a statement
    per community, planned as the community's own report is; on PostgreSQL one statement
    grouped by community (docs/scale.md)."""
    if conn.dialect.name == "sqlite":
        out = {}
        for cid in cids:
            due, made = _special_count().one(conn, cid=cid, **window)
            out[cid] = (due, made or 0)
        return out
    return {cid: (due, made) for cid, due, made in _special_by_community().all(conn, cids=cids, **window)}


FAIL_ON = ("overdue", "missed", "any")


def to_act_on(data: dict, fail_on: str) -> list[str]:
    """What ``--fail-on`` (overdue, missed or any) finds in a day report or in the
    all-communities summary: ``["overdue 3", "missed 2"]``, empty when there is nothing."""
    from commcare import words
    from commcare.identity import parse_choice

    fail_on = parse_choice(fail_on, FAIL_ON, "fail-on")
    if "total" in data:
        overdue, missed = data["total"]["overdue"], data["total"]["missed"]
    else:
        overdue, missed = data["requests"]["overdue"], len(data["calls"]["missed"])
    found = []
    if fail_on in ("overdue", "any") and overdue:
        found.append(f"{words.label('fail_on', 'overdue')} {overdue}")
    if fail_on in ("missed", "any") and missed:
        found.append(f"{words.label('fail_on', 'missed')} {missed}")
    return found
