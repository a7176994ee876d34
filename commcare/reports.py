"""The reports: a day's (``day_report``), a span of days' (``range_report``, ``week_report``)
and every community's at once (``all_communities``), each a function(connection, ctx, …) -> data.

Every figure is an SQL aggregate over indexes on the day's slice; nothing loads the history
into Python, so the evening report costs the same at a million requests as at a thousand.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, exists, func, or_, select

from commcare import audit, identity
from commcare.calls import REACHED, by_liaison, escalated, in_community
from commcare.donations import quantity
from commcare.health import fever_at
from commcare.help_requests import OPEN_STATES
from commcare.storage import integrity
from commcare.storage.tables import (
    calls,
    donation_items,
    donations,
    health_reports,
    households,
    requests,
    resident_tags,
    residents,
    staff,
)
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
    special = _special_residents(conn, ctx, cid, start, end)
    requests_part, open_by_assignee = _requests(conn, ctx, cid, start, end, at, live)
    return {
        "date": day.isoformat(),
        "community": ctx.community,
        "as_of": iso(at, ctx.tz),
        "requests": requests_part,
        "calls": _calls(special, _escalated_of(conn, cid, start, end, special)),
        "liaisons": _liaisons(conn, cid, special, open_by_assignee),
        "staff_health": _health(conn, cid, start, end, fever_at(ctx)),
        "donations": _donations(conn, cid, start, end),
        "audit": audit.head(conn),
    }


def _requests(conn, ctx, cid, start, end, at, live) -> tuple[dict, dict]:
    """Each figure from its own index: opened_at, resolved_at, and (community, status, due);
    the open requests are counted once, by category and assignee together."""
    r = requests.c
    mine = r.community_id == cid
    is_open = _open_at(at, live)
    by_cat: dict[str, dict] = {}

    def count(key, category, n):
        by_cat.setdefault(category, {"category": category, "opened": 0, "resolved": 0, "open": 0})[key] += n

    for key, column in (("opened", r.opened_at), ("resolved", r.resolved_at)):
        for category, n in conn.execute(
            select(r.category, func.count()).where(mine, column >= start, column < end).group_by(r.category)
        ).all():
            count(key, category, n)
    open_by_assignee: dict = {}
    for category, assignee, n in conn.execute(
        select(r.category, r.assignee_id, func.count()).where(mine, is_open).group_by(r.category, r.assignee_id)
    ).all():
        count("open", category, n)
        open_by_assignee[assignee] = open_by_assignee.get(assignee, 0) + n
    by_category = [by_cat[c] for c in sorted(by_cat)]
    urgent_first = (r.urgency == "urgent").desc()
    overdue = conn.execute(
        select(r.id, residents.c.name, r.category, r.due_at, r.urgency)
        .join(residents, r.resident_id == residents.c.id)
        .where(mine, is_open, r.due_at < at)
        .order_by(urgent_first, r.due_at, r.id)
    ).all()
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


def _open_at(at, live):
    """Open at ``at``. For the live day the status column says it through the
    (community, status, due) index; for a past moment the timestamps say it."""
    r = requests.c
    if live:
        return r.status.in_(OPEN_STATES)
    return and_(
        r.opened_at < at,
        or_(r.resolved_at.is_(None), r.resolved_at >= at),
        or_(r.closed_at.is_(None), r.closed_at >= at),
    )


def _special_residents(conn, ctx, cid, start, end) -> list:
    """(id, name, liaison id, liaison name, reached) of every special-group resident
    registered by ``end`` and not archived before it, in one query: the residents by their key
    from the tag index, "reached" from the day's calls on ``ix_calls_community_at``. In no
    order: only those not reached are listed, and sorted (``_calls``)."""
    res, c = residents.c, calls.c
    tagged = select(resident_tags.c.resident_id).where(
        resident_tags.c.community_id == cid, resident_tags.c.tag.in_(identity.call_tags(ctx.extra_tags))
    )
    reached = select(c.resident_id).where(c.community_id == cid, c.at >= start, c.at < end, c.outcome.in_(REACHED))
    return conn.execute(
        select(res.id, res.name, households.c.liaison_id, staff.c.name, res.id.in_(reached))
        .select_from(residents)
        .outerjoin(households, res.household_id == households.c.id)
        .outerjoin(staff, households.c.liaison_id == staff.c.id)
        .where(
            in_community(conn, residents, cid),
            res.id.in_(tagged),
            res.created_at < end,
            or_(res.archived_at.is_(None), res.archived_at >= end),
        )
    ).all()


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


def _liaisons(conn, cid, special: list, open_by_assignee: dict) -> list[dict]:
    from collections import Counter
    from operator import itemgetter

    liaison_of = itemgetter(2)
    residents_of = Counter(map(liaison_of, special))  # counted in C: 25,000 rows at 100,000 residents
    reached_of = Counter(map(liaison_of, filter(itemgetter(4), special)))
    is_liaison = exists().where(households.c.liaison_id == staff.c.id)
    out = []
    for sid, name in conn.execute(
        select(staff.c.id, staff.c.name).where(staff.c.community_id == cid, is_liaison).order_by(staff.c.id)
    ).all():
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


def _health(conn, cid, start, end, fever_limit: float) -> dict:
    h, st = health_reports.c, staff.c
    reports = (
        select(func.count(h.id))
        .where(h.staff_id == st.id, h.at >= start, h.at < end)
        .correlate(staff)
        .scalar_subquery()
    )
    active = and_(st.community_id == cid, st.active.is_(True))
    due = conn.scalar(select(func.count(st.id)).where(active)) or 0
    missing = conn.execute(select(st.name).where(active, reports < 2).order_by(st.id)).scalars().all()
    feverish = and_(st.community_id == cid, h.at >= start, h.at < end, h.temperature >= fever_limit)
    fever = conn.scalar(select(func.count(h.id)).join(staff, h.staff_id == st.id).where(feverish)) or 0
    who = conn.execute(
        select(st.name)
        .join(health_reports, h.staff_id == st.id)
        .where(feverish)
        .group_by(st.id, st.name)
        .order_by(st.id)
    )
    return {"due": due, "missing": list(missing), "fever": list(who.scalars()), "fever_reports": fever}


def _donations(conn, cid, start, end) -> dict:
    d, i = donations.c, donation_items.c
    window = and_(d.community_id == cid, d.at >= start, d.at < end)
    received = conn.scalar(select(func.count(d.id)).where(window)) or 0
    items = conn.execute(
        select(i.name, func.sum(i.quantity), i.unit)
        .join(donations, i.donation_id == d.id)
        .where(window)
        .group_by(i.name, i.unit)
        .order_by(i.name)
    ).all()
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
    the summary a district reads, without anyone's name. Each row is counted, not listed: a
    statement of counts per community on the indexes that lead with the community (the
    overdue requests and the residents not reached are counted, never read into Python), so
    the summary's memory does not grow with the city and its time grows with the number of
    communities only (bench/results.md). On PostgreSQL the special groups of every community
    are counted in one statement (``_special_counts``). Every community's special groups are checked to be
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
    special = _special_counts(conn, cids, tags, start, end)
    rows = []
    for cid, name in every:
        opened, resolved, open_, overdue = conn.execute(_request_counts(cid, start, end, at, live)).one()
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


def _request_counts(cid, start, end, at, live):
    """One statement: a community's requests opened, resolved, open and overdue, each counted
    on its own community-first index, with the same conditions as ``day_report``'s."""
    r = requests.c
    mine = r.community_id == cid

    def count(*where):
        return select(func.count()).select_from(requests).where(mine, *where).scalar_subquery()

    is_open = _open_at(at, live)
    return select(
        count(r.opened_at >= start, r.opened_at < end),
        count(r.resolved_at >= start, r.resolved_at < end),
        count(is_open),
        count(is_open, r.due_at < at),
    )


def _special_counts(conn, cids: list, tags, start, end) -> dict:
    """community -> (special-group residents due a call, those reached), with the same
    conditions as ``_special_residents``. On SQLite a statement per community, planned as the
    community's own report is; on PostgreSQL one statement grouped by community: the special
    groups are found by tag, and a statement per community would read the whole city's tags
    for each (``resident_tags`` carries no community: docs/scale.md)."""
    from sqlalchemy import case

    res, c = residents.c, calls.c
    tagged = select(resident_tags.c.resident_id).where(
        resident_tags.c.community_id.in_(cids), resident_tags.c.tag.in_(tags)
    )
    window = (c.at >= start, c.at < end, c.outcome.in_(REACHED))
    alive = (res.id.in_(tagged), res.created_at < end, or_(res.archived_at.is_(None), res.archived_at >= end))
    if conn.dialect.name == "sqlite":
        out = {}
        for cid in cids:
            reached = select(c.resident_id).where(c.community_id == cid, *window)
            due, made = conn.execute(
                select(func.count(), func.sum(case((res.id.in_(reached), 1), else_=0)))
                .select_from(residents)
                .where(in_community(conn, residents, cid), *alive)
            ).one()
            out[cid] = (due, made or 0)
        return out
    reached_today = exists().where(c.resident_id == res.id, *window)
    return {
        cid: (due, made)
        for cid, due, made in conn.execute(
            select(res.community_id, func.count(), func.count().filter(reached_today))
            .select_from(residents)
            .where(res.community_id.in_(cids), *alive)
            .group_by(res.community_id)
        ).all()
    }


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
