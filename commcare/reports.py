"""Report definitions (taskwarrior's idea): name -> function(session, ctx, …) -> data.

Every figure is an SQL aggregate over indexes on the day's slice; nothing loads the history
into Python, so the evening report costs the same at a million requests as at a thousand.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, exists, func, or_, select

from commcare import identity
from commcare.calls import REACHED
from commcare.help_requests import OPEN_STATES
from commcare.models import (
    Call,
    Community,
    Donation,
    DonationItem,
    HealthReport,
    HelpRequest,
    Household,
    Resident,
    ResidentTag,
    Staff,
)
from commcare.timeparse import day_bounds, iso


def moment_of(ctx, day: dt.date) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """(start, end, as-of moment) of ``day``: the end of the day, or now for today."""
    start, end = day_bounds(day, ctx.tz)
    now = ctx.now()
    return start, end, min(end, now) if start <= now < end else end


def day_report(s, ctx, day: dt.date) -> dict:
    cid = ctx.community_id(s)
    start, end, at = moment_of(ctx, day)
    per_liaison = _per_liaison(s, ctx, cid, start, end)
    return {
        "date": day.isoformat(),
        "community": ctx.community,
        "as_of": iso(at, ctx.tz),
        "requests": _requests(s, ctx, cid, start, end, at),
        "calls": _calls(s, ctx, cid, start, end, per_liaison),
        "liaisons": _liaisons(s, ctx, cid, at, per_liaison),
        "staff_health": _health(s, cid, start, end),
        "donations": _donations(s, cid, start, end),
    }


def _requests(s, ctx, cid, start, end, at) -> dict:
    """Each figure from its own index: opened_at, resolved_at, and (community, status, due)."""
    mine = HelpRequest.community_id == cid
    is_open = _open_now(at, ctx)
    by_cat: dict[str, dict] = {}
    for key, where in (("opened", and_(HelpRequest.opened_at >= start, HelpRequest.opened_at < end)),
                       ("resolved", and_(HelpRequest.resolved_at >= start, HelpRequest.resolved_at < end)),
                       ("open", is_open)):
        counted = s.execute(select(HelpRequest.category, func.count(HelpRequest.id))
                            .where(mine, where).group_by(HelpRequest.category)).all()
        for category, n in counted:
            by_cat.setdefault(category, {"category": category, "opened": 0, "resolved": 0, "open": 0})[key] = n
    by_category = [by_cat[c] for c in sorted(by_cat)]
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
    tagged = select(ResidentTag.resident_id).where(ResidentTag.tag.in_(identity.call_tags(ctx.extra_tags)))
    return and_(Resident.id.in_(tagged), Resident.created_at < end,
                or_(Resident.archived_at.is_(None), Resident.archived_at >= end))


def _reached(start, end):
    return exists().where(Call.resident_id == Resident.id, Call.at >= start, Call.at < end,
                          Call.outcome.in_(REACHED))


def _per_liaison(s, ctx, cid, start, end) -> dict:
    """liaison id -> (special-group residents, reached), in one grouped query."""
    rows = s.execute(
        select(Household.liaison_id, func.count(Resident.id), func.sum(_case(_reached(start, end))))
        .select_from(Resident).outerjoin(Household, Resident.household_id == Household.id)
        .where(Resident.community_id == cid, _special(ctx, end)).group_by(Household.liaison_id)).all()
    return {lid: (n, int(made or 0)) for lid, n, made in rows}


def _calls(s, ctx, cid, start, end, per_liaison) -> dict:
    due = sum(n for n, _ in per_liaison.values())
    made = sum(m for _, m in per_liaison.values())
    missed = s.execute(
        select(Resident.id, Resident.name, Staff.name)
        .outerjoin(Household, Resident.household_id == Household.id)
        .outerjoin(Staff, Household.liaison_id == Staff.id)
        .where(Resident.community_id == cid, _special(ctx, end), ~_reached(start, end))
        .order_by(Staff.name, Resident.id)).all()
    return {"due": due, "made": made,
            "missed": [{"id": i, "resident": n, "liaison": l} for i, n, l in missed]}


def _liaisons(s, ctx, cid, at, per_liaison) -> list[dict]:
    open_counts = dict(s.execute(
        select(HelpRequest.assignee_id, func.count(HelpRequest.id))
        .where(HelpRequest.community_id == cid, _open_now(at, ctx)).group_by(HelpRequest.assignee_id)).all())
    is_liaison = exists().where(Household.liaison_id == Staff.id)
    staff = s.execute(select(Staff.id, Staff.name).where(Staff.community_id == cid, is_liaison).order_by(Staff.id)).all()
    out = []
    for sid, name in staff:
        n, made = per_liaison.get(sid, (0, 0))
        out.append({"staff": name, "residents": n, "calls_made": made, "calls_missing": n - made,
                    "open_requests": open_counts.get(sid, 0)})
    return out


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
