"""Donated supplies: who gave what (items with quantity and unit), for staff or residents, and
the totals per item that offices add up by hand."""

from __future__ import annotations

import re

from commcare import identity
from commcare.errors import InvalidValue
from commcare.timeparse import days_bounds, iso

RECIPIENTS = ("staff", "residents")

# compiled on first use (``re``'s cache): the reports import this module for ``quantity`` alone
ITEM = r"(?P<name>[^:：]+)[:：](?P<qty>[0-9]+(?:\.[0-9]+)?)(?:[:：](?P<unit>.+))?"


def parse_item(spec: str) -> tuple[str, float, str]:
    """``矿泉水:50:箱`` -> ("矿泉水", 50.0, "箱")."""
    m = re.fullmatch(ITEM, identity.nfkc(spec).strip(), re.ASCII) if spec else None
    unit = (m["unit"] or "").strip() if m else ""
    if not m or not m["name"].strip() or float(m["qty"]) <= 0 or len(unit) > 20:
        raise InvalidValue("donation.bad_item", field="item", value=spec)
    return identity.normalize_name(m["name"], "item"), float(m["qty"]), unit


def add_donation(conn, ctx, donor: str, items: list[str], recipients="residents", at=None, note=None) -> dict:
    from sqlalchemy import insert

    from commcare import audit
    from commcare.calls import backfill_time
    from commcare.storage.tables import donation_items, donations

    if not items:
        raise InvalidValue("value.empty", field="item")
    parsed = [parse_item(i) for i in items]
    donation = conn.execute(
        insert(donations)
        .values(
            community_id=ctx.community_id(conn, create=True),
            donor=identity.normalize_name(donor, "donor"),
            at=backfill_time(ctx, at),
            recipients=identity.parse_choice(recipients, RECIPIENTS, "for"),
            note=identity.normalize_text(note),
            actor=ctx.operator,
        )
        .returning(*donations.c)
    ).one()
    conn.execute(
        insert(donation_items),
        [{"donation_id": donation.id, "name": n, "quantity": q, "unit": u} for n, q, u in parsed],
    )
    audit.record(conn, ctx, "donation.add", "donation", donation.id, ["donor", "items"])
    return donation_row(donation, parsed, ctx.tz)


def donation_row(d, items: list[tuple[str, float, str]], tz) -> dict:
    return {
        "id": d.id,
        "donor": d.donor,
        "at": iso(d.at, tz),
        "for": d.recipients,
        "items": [f"{name} {quantity:g}{unit}" for name, quantity, unit in items],
        "note": d.note,
    }


def list_donations(conn, ctx, date_from=None, date_to=None) -> list[dict]:
    from sqlalchemy import select

    from commcare.storage.tables import donation_items, donations

    start, end = days_bounds(date_from, date_to, ctx.tz, ctx.now())
    d, i = donations.c, donation_items.c
    query = select(donations).where(d.community_id == ctx.community_id(conn)).order_by(d.at, d.id)
    if start:
        query = query.where(d.at >= start)
    if end:
        query = query.where(d.at < end)
    found = conn.execute(query).all()
    items: dict[int, list] = {}
    ids = [x.id for x in found]
    for part in range(0, len(ids), 500):
        for donation_id, name, quantity, unit in conn.execute(
            select(i.donation_id, i.name, i.quantity, i.unit)
            .where(i.donation_id.in_(ids[part : part + 500]))
            .order_by(i.id)
        ):
            items.setdefault(donation_id, []).append((name, quantity, unit))
    return [donation_row(x, items.get(x.id, []), ctx.tz) for x in found]


def donation_totals(conn, ctx, date_from=None, date_to=None) -> list[dict]:
    """Totals per item and unit (the monthly sum offices add up by hand)."""
    from sqlalchemy import func, select

    from commcare.storage.tables import donation_items, donations

    start, end = days_bounds(date_from, date_to, ctx.tz, ctx.now())
    d, i = donations.c, donation_items.c
    query = (
        select(i.name, i.unit, func.sum(i.quantity), func.count(func.distinct(d.id)))
        .join(donations, i.donation_id == d.id)
        .where(d.community_id == ctx.community_id(conn))
        .group_by(i.name, i.unit)
        .order_by(i.name, i.unit)
    )
    if start:
        query = query.where(d.at >= start)
    if end:
        query = query.where(d.at < end)
    return [{"item": n, "quantity": quantity(q), "unit": u, "donations": c} for n, u, q, c in conn.execute(query)]


def quantity(q: float | None) -> float | int | None:
    """A quantity as it is shown: 50, not 50.0; 2.5 as it is."""
    return int(q) if q is not None and float(q).is_integer() else q
