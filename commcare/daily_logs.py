"""The office's other daily logs: staff health reports, donations, the directory."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from commcare import audit, identity, register
from commcare.errors import InvalidValue
from commcare.models import DirectoryEntry, Donation, DonationItem, HealthReport, Staff
from commcare.timeparse import day_bounds, iso, parse_date, parse_when

TESTS = ("negative", "positive", "pending")
KINDS = ("hospital", "clinic", "pharmacy", "hotline", "utility", "other")
RECIPIENTS = ("staff", "residents")
TEMP_RANGE = (35.0, 42.0)


def log_health(s, ctx, staff_ref: str, temp: float, test=None, at=None) -> dict:
    if not TEMP_RANGE[0] <= temp <= TEMP_RANGE[1]:
        raise InvalidValue("health.bad_temp", field="temp", value=temp)
    staff = register.find_staff(s, ctx, staff_ref)
    when = parse_when(at, ctx.tz, ctx.now(), "at") if at else ctx.now()
    report = HealthReport(staff_id=staff.id, at=when, temperature=round(temp, 1),
                          test=identity.parse_choice(test, TESTS, "test") if test else None, actor=ctx.operator)
    s.add(report)
    s.flush()
    audit.record(s, ctx, "health.log", "staff", staff.id, ["temperature"] + (["test"] if test else []))
    return {"id": report.id, "staff": staff.name, "temp": report.temperature, "test": report.test,
            "at": iso(when, ctx.tz)}


def health_due(s, ctx, day=None) -> list[dict]:
    """Active staff with fewer than two temperature reports on ``day``."""
    start, end = day_bounds(day or ctx.today(), ctx.tz)
    count = (select(func.count(HealthReport.id)).where(
        HealthReport.staff_id == Staff.id, HealthReport.at >= start, HealthReport.at < end)
        .correlate(Staff).scalar_subquery())
    query = (select(Staff.id, Staff.name, count.label("reports"))
             .where(Staff.community_id == ctx.community_id(s), Staff.active.is_(True), count < 2)
             .order_by(Staff.id))
    return [{"id": r.id, "staff": r.name, "reports": r.reports} for r in s.execute(query)]


ITEM = re.compile(r"(?P<name>[^:：]+)[:：](?P<qty>[0-9]+(?:\.[0-9]+)?)(?:[:：](?P<unit>.+))?", re.ASCII)


def parse_item(spec: str) -> tuple[str, float, str]:
    """``矿泉水:50:箱`` -> ("矿泉水", 50.0, "箱")."""
    m = ITEM.fullmatch(identity.nfkc(spec).strip()) if spec else None
    if not m or not m["name"].strip() or float(m["qty"]) <= 0:
        raise InvalidValue("donation.bad_item", field="item", value=spec)
    return identity.normalize_name(m["name"], "item"), float(m["qty"]), (m["unit"] or "").strip()


def add_donation(s, ctx, donor: str, items: list[str], recipients="residents", at=None, note=None) -> dict:
    if not items:
        raise InvalidValue("value.empty", field="item")
    parsed = [parse_item(i) for i in items]
    donation = Donation(community_id=ctx.community_id(s, create=True), donor=identity.normalize_name(donor, "donor"),
                        at=parse_when(at, ctx.tz, ctx.now(), "at") if at else ctx.now(),
                        recipients=identity.parse_choice(recipients, RECIPIENTS, "for"),
                        note=identity.normalize_text(note), actor=ctx.operator)
    donation.items = [DonationItem(name=n, quantity=q, unit=u) for n, q, u in parsed]
    s.add(donation)
    s.flush()
    audit.record(s, ctx, "donation.add", "donation", donation.id, ["donor", "items"])
    return donation_row(donation, ctx.tz)


def donation_row(d: Donation, tz) -> dict:
    return {"id": d.id, "donor": d.donor, "at": iso(d.at, tz), "for": d.recipients,
            "items": [f"{i.name} {i.quantity:g}{i.unit}" for i in d.items], "note": d.note}


def list_donations(s, ctx, date_from=None, date_to=None) -> list[dict]:
    start, end = _range(ctx, date_from, date_to)
    query = select(Donation).where(Donation.community_id == ctx.community_id(s)).order_by(Donation.at)
    if start:
        query = query.where(Donation.at >= start)
    if end:
        query = query.where(Donation.at < end)
    return [donation_row(d, ctx.tz) for d in s.scalars(query)]


def donation_totals(s, ctx, date_from=None, date_to=None) -> list[dict]:
    """Totals per item and unit (the monthly sum offices add up by hand)."""
    start, end = _range(ctx, date_from, date_to)
    query = (select(DonationItem.name, DonationItem.unit, func.sum(DonationItem.quantity), func.count(func.distinct(Donation.id)))
             .join(Donation, DonationItem.donation_id == Donation.id)
             .where(Donation.community_id == ctx.community_id(s))
             .group_by(DonationItem.name, DonationItem.unit).order_by(DonationItem.name, DonationItem.unit))
    if start:
        query = query.where(Donation.at >= start)
    if end:
        query = query.where(Donation.at < end)
    return [{"item": n, "quantity": q, "unit": u, "donations": c} for n, u, q, c in s.execute(query)]


def _range(ctx, date_from, date_to):
    now = ctx.now()
    start = day_bounds(parse_date(date_from, ctx.tz, now, "from"), ctx.tz)[0] if date_from else None
    end = day_bounds(parse_date(date_to, ctx.tz, now, "to"), ctx.tz)[1] if date_to else None
    return start, end


def add_directory(s, ctx, name, phone, kind, hours=None, address=None) -> dict:
    name = identity.normalize_name(name)
    full, initials = identity.pinyin_keys(name)
    entry = DirectoryEntry(community_id=ctx.community_id(s, create=True), name=name, name_pinyin=full,
                           name_initials=initials, phone=_directory_phone(phone),
                           kind=identity.parse_choice(kind, KINDS, "kind"),
                           hours=identity.normalize_text(hours, "hours", 100),
                           address=identity.normalize_text(address, "address", 300), created_at=ctx.now())
    s.add(entry)
    s.flush()
    audit.record(s, ctx, "directory.add", "directory", entry.id, ["name", "phone", "kind"])
    return directory_row(entry)


def _directory_phone(raw: str) -> str:
    """Hotlines are short numbers (12345, 120, 95598): accepted as digits; others validated."""
    text = re.sub(r"[\s\-]", "", identity.nfkc(raw or ""))
    if re.fullmatch(r"[0-9]{3,6}", text, re.ASCII) and not text.startswith("0"):
        return text
    return identity.normalize_phone(raw)


def directory_row(e: DirectoryEntry) -> dict:
    return {"id": e.id, "name": e.name, "phone": e.phone, "kind": e.kind, "hours": e.hours, "address": e.address}


def list_directory(s, ctx, kind=None, search=None) -> list[dict]:
    query = select(DirectoryEntry).where(DirectoryEntry.community_id == ctx.community_id(s)).order_by(DirectoryEntry.kind, DirectoryEntry.name)
    if kind:
        query = query.where(DirectoryEntry.kind == identity.parse_choice(kind, KINDS, "kind"))
    if search:
        low = identity.nfkc(search).strip().lower().replace(" ", "")
        if re.fullmatch(r"[a-z]+", low, re.ASCII):
            query = query.where(DirectoryEntry.name_initials.startswith(low) | DirectoryEntry.name_pinyin.startswith(low))
        else:
            query = query.where(DirectoryEntry.name.contains(identity.normalize_name(search, "search"), autoescape=True))
    return [directory_row(e) for e in s.scalars(query)]
