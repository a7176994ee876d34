"""Report definitions (taskwarrior's idea): name -> function(session, ctx, …) -> data.

Every figure is an SQL aggregate over indexes on the day's slice; nothing loads the history
into Python, so the evening report costs the same at a million requests as at a thousand.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, exists, func, or_, select

from commcare import identity
from commcare.models import (Call, Community, Donation, DonationItem, HealthReport, HelpRequest,
                             Household, Resident, ResidentTag, Staff)
from commcare.timeparse import day_bounds, iso

OPEN_STATES = ("open", "assigned", "in_progress")
REACHED = ("ok", "needs-help")


def moment_of(ctx, day: dt.date) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """(start, end, as-of moment) of ``day``: the end of the day, or now for today."""
    start, end = day_bounds(day, ctx.tz)
    now = ctx.now()
    return start, end, min(end, now) if start <= now < end else end


def day_report(s, ctx, day: dt.date) -> dict:
    cid = ctx.community_id(s)
    start, end, at = moment_of(ctx, day)
    return {
        "date": day.isoformat(),
        "community": ctx.community,
        "as_of": iso(at, ctx.tz),
        "requests": _requests(s, ctx, cid, start, end, at),
        "calls": _calls(s, ctx, cid, start, end),
        "liaisons": _liaisons(s, ctx, cid, start, end, at),
        "staff_health": _health(s, cid, start, end),
        "donations": _donations(s, cid, start, end),
    }


def _requests(s, ctx, cid, start, end, at) -> dict:
    mine = HelpRequest.community_id == cid
    opened = func.sum(_case(and_(HelpRequest.opened_at >= start, HelpRequest.opened_at < end)))
    resolved = func.sum(_case(and_(HelpRequest.resolved_at >= start, HelpRequest.resolved_at < end)))
    is_open = _open_now(at, ctx)
    still = func.sum(_case(is_open))
    relevant = or_(and_(HelpRequest.opened_at >= start, HelpRequest.opened_at < end),
                   and_(HelpRequest.resolved_at >= start, HelpRequest.resolved_at < end), is_open)
    rows = s.execute(select(HelpRequest.category, opened, resolved, still)
                     .where(mine, relevant).group_by(HelpRequest.category).order_by(HelpRequest.category)).all()
    by_category = [{"category": c, "opened": int(o or 0), "resolved": int(r or 0), "open": int(n or 0)}
                   for c, o, r, n in rows]
    overdue_q = (select(HelpRequest.id, Resident.name, HelpRequest.category, HelpRequest.due_at, HelpRequest.urgency)
                 .join(Resident, HelpRequest.resident_id == Resident.id)
                 .where(mine, is_open, HelpRequest.due_at < at))
    urgent_first = (HelpRequest.urgency == "urgent").desc()
    overdue = s.execute(overdue_q.order_by(urgent_first, HelpRequest.due_at, HelpRequest.id)).all()
    return {
        "opened": sum(r["opened"] for r in by_category),
        "resolved": sum(r["resolved"] for r in by_category),
        "open": sum(r["open"] for r in by_category),
        "overdue": len(overdue),
        "by_category": by_category,
        "overdue_items": [{"id": i, "resident": n, "category": c, "due": iso(d, ctx.tz), "urgency": u}
                          for i, n, c, d, u in overdue],
    }


def _open_now(at, ctx):
    """Open at ``at``. For the live day the status column says it through the
    (community, status, due) index; for a past moment the timestamps say it."""
    if abs((ctx.now() - at).total_seconds()) < 1:
        return HelpRequest.status.in_(OPEN_STATES)
    return and_(HelpRequest.opened_at < at,
                or_(HelpRequest.resolved_at.is_(None), HelpRequest.resolved_at >= at),
                or_(HelpRequest.closed_at.is_(None), HelpRequest.closed_at >= at))


def _case(condition):
    from sqlalchemy import case

    return case((condition, 1), else_=0)


def _special(ctx, end):
    """Active special-group residents registered by ``end`` and not archived before it."""
    return and_(
        exists().where(ResidentTag.resident_id == Resident.id,
                       ResidentTag.tag.in_(identity.call_tags(ctx.extra_tags))),
        Resident.created_at < end,
        or_(Resident.archived_at.is_(None), Resident.archived_at >= end))


def _reached(start, end):
    return exists().where(Call.resident_id == Resident.id, Call.at >= start, Call.at < end,
                          Call.outcome.in_(REACHED))


def _calls(s, ctx, cid, start, end) -> dict:
    base = and_(Resident.community_id == cid, _special(ctx, end))
    due = s.scalar(select(func.count(Resident.id)).where(base)) or 0
    missed = s.execute(
        select(Resident.id, Resident.name, Staff.name)
        .outerjoin(Household, Resident.household_id == Household.id)
        .outerjoin(Staff, Household.liaison_id == Staff.id)
        .where(base, ~_reached(start, end)).order_by(Staff.name, Resident.id)).all()
    return {"due": due, "made": due - len(missed),
            "missed": [{"id": i, "resident": n, "liaison": l} for i, n, l in missed]}


def _liaisons(s, ctx, cid, start, end, at) -> list[dict]:
    special = _special(ctx, end)
    residents = (select(func.count(Resident.id)).join(Household, Resident.household_id == Household.id)
                 .where(Household.liaison_id == Staff.id, special).correlate(Staff).scalar_subquery())
    made = (select(func.count(Resident.id)).join(Household, Resident.household_id == Household.id)
            .where(Household.liaison_id == Staff.id, special, _reached(start, end)).correlate(Staff).scalar_subquery())
    open_requests = (select(func.count(HelpRequest.id)).where(
        HelpRequest.assignee_id == Staff.id, _open_now(at, ctx)).correlate(Staff).scalar_subquery())
    is_liaison = exists().where(Household.liaison_id == Staff.id)
    rows = s.execute(select(Staff.name, residents, made, open_requests)
                     .where(Staff.community_id == cid, is_liaison).order_by(Staff.id)).all()
    return [{"staff": n, "residents": r or 0, "calls_made": m or 0, "calls_missing": (r or 0) - (m or 0),
             "open_requests": o or 0} for n, r, m, o in rows]


def _health(s, cid, start, end) -> dict:
    reports = (select(func.count(HealthReport.id)).where(
        HealthReport.staff_id == Staff.id, HealthReport.at >= start, HealthReport.at < end)
        .correlate(Staff).scalar_subquery())
    active = and_(Staff.community_id == cid, Staff.active.is_(True))
    due = s.scalar(select(func.count(Staff.id)).where(active)) or 0
    missing = s.scalars(select(Staff.name).where(active, reports < 2).order_by(Staff.id)).all()
    fever = s.scalar(select(func.count(HealthReport.id)).join(Staff, HealthReport.staff_id == Staff.id).where(
        Staff.community_id == cid, HealthReport.at >= start, HealthReport.at < end,
        HealthReport.temperature >= 37.3)) or 0
    return {"due": due, "missing": list(missing), "fever_reports": fever}


def _donations(s, cid, start, end) -> dict:
    window = and_(Donation.community_id == cid, Donation.at >= start, Donation.at < end)
    received = s.scalar(select(func.count(Donation.id)).where(window)) or 0
    items = s.execute(select(DonationItem.name, func.sum(DonationItem.quantity), DonationItem.unit)
                      .join(Donation, DonationItem.donation_id == Donation.id).where(window)
                      .group_by(DonationItem.name, DonationItem.unit).order_by(DonationItem.name)).all()
    return {"received": received,
            "items": [{"name": n, "quantity": _num(q), "unit": u} for n, q, u in items]}


def _num(q):
    return int(q) if q is not None and float(q).is_integer() else q


def week_report(s, ctx, last_day: dt.date) -> dict:
    days = [last_day - dt.timedelta(days=i) for i in range(6, -1, -1)]
    return range_report(s, ctx, days[0], days[-1])


def range_report(s, ctx, first: dt.date, last: dt.date) -> dict:
    """One row per day with the headline figures, and the last day's full report."""
    if last < first:
        from commcare.errors import InvalidValue

        raise InvalidValue("report.bad_range", field="to", value=last.isoformat())
    days, day = [], first
    while day <= last:
        full = day_report(s, ctx, day)
        days.append({"date": day.isoformat(), "opened": full["requests"]["opened"],
                     "resolved": full["requests"]["resolved"], "open": full["requests"]["open"],
                     "overdue": full["requests"]["overdue"], "calls_due": full["calls"]["due"],
                     "calls_made": full["calls"]["made"], "donations": full["donations"]["received"]})
        day += dt.timedelta(days=1)
    totals = {k: sum(d[k] for d in days) for k in ("opened", "resolved", "calls_made", "donations")}
    return {"from": first.isoformat(), "to": last.isoformat(), "community": ctx.community,
            "days": days, "totals": totals}


def communities(s) -> list[str]:
    return list(s.scalars(select(Community.name).order_by(Community.id)))


REPORTS = {"day": day_report, "week": week_report, "range": range_report}
