"""Staff health reports: each active staff member is due two temperature reports a day; a
temperature of ``FEVER_AT`` or more is a fever (the day report counts them)."""

from __future__ import annotations

from commcare import audit, identity, lookup
from commcare.calls import backfill_time
from commcare.errors import InvalidValue
from commcare.storage.sql import statement
from commcare.timeparse import day_bounds, days_bounds, iso

TESTS = ("negative", "positive", "pending")
TEMP_RANGE = (35.0, 42.0)
FEVER_AT = 37.3


def fever_at(ctx) -> float:
    """Config ``fever_at`` (checked to be a number from 34 to 43 when the config is read), else
    37.3 ℃."""
    value = ctx.settings.file.get("fever_at", FEVER_AT)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else FEVER_AT


def log_health(conn, ctx, staff_ref: str, temp: float, test=None, at=None) -> dict:
    if not TEMP_RANGE[0] <= temp <= TEMP_RANGE[1]:
        raise InvalidValue("health.bad_temp", field="temp", value=temp)
    member = lookup.staff_member(conn, ctx, staff_ref)
    when = backfill_time(ctx, at)
    values = {
        "staff_id": member.id,
        "at": when,
        "temperature": round(temp, 1),
        "test": identity.parse_choice(test, TESTS, "test") if test else None,
        "actor": ctx.operator,
    }
    report_id = _insert_report().scalar_one(conn, **values)
    audit.record(
        conn,
        ctx,
        "health.log",
        "health_report",
        report_id,
        ["temperature"] + (["test"] if test else []),
        detail=f"staff #{member.id}",
    )
    return {
        "id": report_id,
        "staff": member.name,
        "temp": values["temperature"],
        "test": values["test"],
        "at": iso(when, ctx.tz),
        "fever": values["temperature"] >= fever_at(ctx),
        "fever_at": fever_at(ctx),
    }


@statement
def _insert_report():
    from sqlalchemy import bindparam, insert

    from commcare.storage.tables import health_reports

    c = health_reports.c
    names = ("staff_id", "at", "temperature", "test", "actor")
    return insert(health_reports).values(**{n: bindparam(n, type_=c[n].type) for n in names}).returning(c.id)


def list_health(conn, ctx, date_from=None, date_to=None, member=None) -> list[dict]:
    """Temperature reports between two days (default today), oldest first."""
    from sqlalchemy import select

    from commcare.storage.tables import health_reports, staff

    today = ctx.today().isoformat()
    start, end = days_bounds(date_from or today, date_to or date_from or today, ctx.tz, ctx.now())
    h = health_reports.c
    query = (
        select(h.id, staff.c.name, h.at, h.temperature, h.test, h.actor)
        .join(staff, h.staff_id == staff.c.id)
        .where(staff.c.community_id == ctx.community_id(conn), h.at >= start, h.at < end)
        .order_by(h.at, h.id)
    )
    if member:
        query = query.where(staff.c.id == lookup.staff_member(conn, ctx, member).id)
    limit = fever_at(ctx)
    return [
        {"id": i, "staff": name, "at": iso(at, ctx.tz), "temp": temp, "fever": temp >= limit, "test": test, "by": actor}
        for i, name, at, temp, test, actor in conn.execute(query)
    ]


def fever_today(conn, ctx, day=None) -> list[dict]:
    """The staff whose highest temperature on ``day`` (default today) is a fever, with it."""
    from sqlalchemy import func, select

    from commcare.storage.tables import health_reports, staff

    start, end = day_bounds(day or ctx.today(), ctx.tz)
    h = health_reports.c
    query = (
        select(staff.c.name, func.max(h.temperature))
        .join(staff, h.staff_id == staff.c.id)
        .where(staff.c.community_id == ctx.community_id(conn), h.at >= start, h.at < end)
        .where(h.temperature >= fever_at(ctx))
        .group_by(staff.c.id, staff.c.name)
        .order_by(staff.c.id)
    )
    return [{"staff": name, "temp": temp} for name, temp in conn.execute(query)]


def health_due(conn, ctx, day=None) -> list[dict]:
    """Active staff with fewer than two temperature reports on ``day``."""
    from sqlalchemy import func, select

    from commcare.storage.tables import health_reports, staff

    start, end = day_bounds(day or ctx.today(), ctx.tz)
    h = health_reports.c
    count = (
        select(func.count(h.id))
        .where(h.staff_id == staff.c.id, h.at >= start, h.at < end)
        .correlate(staff)
        .scalar_subquery()
    )
    query = (
        select(staff.c.id, staff.c.name, count.label("reports"))
        .where(staff.c.community_id == ctx.community_id(conn), staff.c.active.is_(True), count < 2)
        .order_by(staff.c.id)
    )
    return [{"id": r.id, "staff": r.name, "reports": r.reports} for r in conn.execute(query)]
