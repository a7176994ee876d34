"""The office's other daily logs: staff health reports, donations, the directory.

Each lives plainly in its own table (health_reports, donations + donation_items, directory),
with UTC times, so the evening report counts them with SQL by day."""

from __future__ import annotations

import re

from sqlalchemy import func, insert, select

from commcare import audit, identity, register
from commcare.calls import backfill_time
from commcare.errors import ImportRejected, InvalidValue
from commcare.models import DirectoryEntry, Donation, DonationItem, HealthReport, Staff
from commcare.timeparse import day_bounds, iso, parse_date

TESTS = ("negative", "positive", "pending")
KINDS = ("hospital", "clinic", "pharmacy", "hotline", "utility", "other")
KIND_WORDS = {"医院": "hospital", "诊所": "clinic", "卫生院": "clinic", "卫生服务中心": "clinic",
              "社区卫生服务中心": "clinic", "卫生室": "clinic", "药店": "pharmacy", "药房": "pharmacy",
              "热线": "hotline", "公用事业": "utility", "水电气": "utility", "供水": "utility", "供电": "utility",
              "燃气": "utility", "物业": "utility", "其他": "other", "其它": "other"}
RECIPIENTS = ("staff", "residents")
TEMP_RANGE = (35.0, 42.0)


def log_health(s, ctx, staff_ref: str, temp: float, test=None, at=None) -> dict:
    if not TEMP_RANGE[0] <= temp <= TEMP_RANGE[1]:
        raise InvalidValue("health.bad_temp", field="temp", value=temp)
    staff = register.find_staff(s, ctx, staff_ref)
    when = backfill_time(ctx, at)
    report = HealthReport(staff_id=staff.id, at=when, temperature=round(temp, 1),
                          test=identity.parse_choice(test, TESTS, "test") if test else None, actor=ctx.operator)
    s.add(report)
    s.flush()
    audit.record(s, ctx, "health.log", "health_report", report.id, ["temperature"] + (["test"] if test else []),
                 detail=f"staff #{staff.id}")
    return {"id": report.id, "staff": staff.name, "temp": report.temperature, "test": report.test,
            "at": iso(when, ctx.tz)}


def list_health(s, ctx, date_from=None, date_to=None, staff=None) -> list[dict]:
    """Temperature reports between two days (default today), oldest first."""
    start, end = _range(ctx, date_from or ctx.today().isoformat(), date_to or date_from or ctx.today().isoformat())
    query = (select(HealthReport, Staff.name).join(Staff, HealthReport.staff_id == Staff.id)
             .where(Staff.community_id == ctx.community_id(s), HealthReport.at >= start, HealthReport.at < end)
             .order_by(HealthReport.at, HealthReport.id))
    if staff:
        query = query.where(Staff.id == register.find_staff(s, ctx, staff).id)
    return [{"id": h.id, "staff": name, "at": iso(h.at, ctx.tz), "temp": h.temperature, "test": h.test,
             "by": h.actor} for h, name in s.execute(query)]


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
    unit = (m["unit"] or "").strip() if m else ""
    if not m or not m["name"].strip() or float(m["qty"]) <= 0 or len(unit) > 20:
        raise InvalidValue("donation.bad_item", field="item", value=spec)
    return identity.normalize_name(m["name"], "item"), float(m["qty"]), unit


def add_donation(s, ctx, donor: str, items: list[str], recipients="residents", at=None, note=None) -> dict:
    if not items:
        raise InvalidValue("value.empty", field="item")
    parsed = [parse_item(i) for i in items]
    donation = Donation(community_id=ctx.community_id(s, create=True), donor=identity.normalize_name(donor, "donor"),
                        at=backfill_time(ctx, at),
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
    from sqlalchemy.orm import selectinload

    query = (select(Donation).options(selectinload(Donation.items))
             .where(Donation.community_id == ctx.community_id(s)).order_by(Donation.at, Donation.id))
    if start:
        query = query.where(Donation.at >= start)
    if end:
        query = query.where(Donation.at < end)
    return [donation_row(d, ctx.tz) for d in s.scalars(query)]


def donation_totals(s, ctx, date_from=None, date_to=None) -> list[dict]:
    """Totals per item and unit (the monthly sum offices add up by hand)."""
    start, end = _range(ctx, date_from, date_to)
    donations = func.count(func.distinct(Donation.id))
    query = (select(DonationItem.name, DonationItem.unit, func.sum(DonationItem.quantity), donations)
             .join(Donation, DonationItem.donation_id == Donation.id)
             .where(Donation.community_id == ctx.community_id(s))
             .group_by(DonationItem.name, DonationItem.unit).order_by(DonationItem.name, DonationItem.unit))
    if start:
        query = query.where(Donation.at >= start)
    if end:
        query = query.where(Donation.at < end)
    return [{"item": n, "quantity": _number(q), "unit": u, "donations": c} for n, u, q, c in s.execute(query)]


def _number(q: float) -> float | int:
    return int(q) if float(q).is_integer() else q


def _range(ctx, date_from, date_to):
    now = ctx.now()
    start = day_bounds(parse_date(date_from, ctx.tz, now, "from"), ctx.tz)[0] if date_from else None
    end = day_bounds(parse_date(date_to, ctx.tz, now, "to"), ctx.tz)[1] if date_to else None
    return start, end


def add_directory(s, ctx, name, phone, kind, hours=None, address=None) -> dict:
    entry = _directory_fields(ctx, name, phone, kind, hours, address)
    entry_id = s.execute(insert(DirectoryEntry).values(community_id=ctx.community_id(s, create=True), **entry)
                         .returning(DirectoryEntry.id)).scalar_one()
    audit.record(s, ctx, "directory.add", "directory", entry_id, ["name", "phone", "kind"]
                 + [f for f in ("hours", "address") if entry[f]])
    return {"id": entry_id, **directory_row(entry)}


def _directory_fields(ctx, name, phone, kind, hours, address) -> dict:
    name = identity.normalize_name(name)
    full, initials = identity.pinyin_keys(name)
    return {"name": name, "name_pinyin": full, "name_initials": initials, "phone": _directory_phone(phone),
            "kind": parse_kind(kind), "hours": identity.normalize_text(hours, "hours", 100),
            "address": identity.normalize_text(address, "address", 300), "created_at": ctx.now()}


def parse_kind(raw: str | None) -> str:
    """A kind by its slug or the Chinese word an office list uses (医院, 药店, 热线 …)."""
    text = identity.nfkc(raw or "").strip()
    return KIND_WORDS.get(text) or identity.parse_choice(text, KINDS, "kind")


def _directory_phone(raw: str) -> str:
    """Hotlines are short numbers (12345, 120, 95598): accepted as digits; others validated."""
    text = re.sub(r"[\s\-]", "", identity.nfkc(raw or ""))
    if re.fullmatch(r"[0-9]{3,6}", text, re.ASCII) and not text.startswith("0"):
        return text
    return identity.normalize_phone(raw)


def directory_row(e) -> dict:
    get = e.get if isinstance(e, dict) else lambda k: getattr(e, k)
    return {"name": get("name"), "phone": get("phone"), "kind": get("kind"), "hours": get("hours"),
            "address": get("address")}


def list_directory(s, ctx, kind=None, search=None) -> list[dict]:
    """By kind, then name. ``search``: pinyin or initials (``sqws``), digits of the phone, or
    part of the name."""
    d = DirectoryEntry
    query = select(d).where(d.community_id == ctx.community_id(s)).order_by(d.kind, d.name, d.id)
    if kind:
        query = query.where(d.kind == parse_kind(kind))
    if search:
        low = identity.nfkc(search).strip().lower().replace(" ", "")
        if re.fullmatch(r"[a-z]+", low, re.ASCII):
            query = query.where(d.name_initials.startswith(low) | d.name_pinyin.startswith(low))
        elif re.fullmatch(r"[0-9\-]+", low, re.ASCII):
            query = query.where(d.phone.contains(low.replace("-", ""), autoescape=True))
        else:
            query = query.where(d.name.contains(identity.normalize_name(search, "search"), autoescape=True))
    return [{"id": e.id, **directory_row(e)} for e in s.scalars(query)]


DIRECTORY_HEADERS = {"name": ("name", "名称", "单位", "机构", "单位名称"),
                     "phone": ("phone", "电话", "联系电话", "号码", "电话号码"),
                     "kind": ("kind", "类型", "类别", "种类"),
                     "hours": ("hours", "时间", "服务时间", "办公时间", "营业时间"),
                     "address": ("address", "地址", "住址")}


def import_directory(s, ctx, path: str) -> dict:
    """A CSV (or XLSX) list of useful numbers. Every row is checked first: any bad row and
    nothing is written (each reported by its spreadsheet row number, the header being row 1).
    A row naming an entry already listed (same name and phone) is skipped."""
    from commcare.importer import read_table

    table = read_table(path)
    columns = _directory_columns(table[0] if table else [])
    rows, problems, seen = [], [], {tuple(r) for r in _listed(s, ctx)}
    skipped = 0
    for number, raw in enumerate(table[1:], start=2):
        values = {f: (raw[i].strip() if i < len(raw) else "") for f, i in columns.items()}
        if not any(values.values()):
            continue
        try:
            entry = _directory_fields(ctx, values["name"], values["phone"], values.get("kind") or "other",
                                      values.get("hours") or None, values.get("address") or None)
        except InvalidValue as exc:
            problems.append(f"row {number}: {exc.message()}")
            continue
        if (entry["name"], entry["phone"]) in seen:
            skipped += 1
            continue
        seen.add((entry["name"], entry["phone"]))
        rows.append(entry)
    if problems:
        raise ImportRejected("directory.import_rejected", problems=problems, count=len(problems))
    if rows:
        cid = ctx.community_id(s, create=True)
        s.execute(insert(DirectoryEntry), [{**r, "community_id": cid} for r in rows])
    audit.record(s, ctx, "directory.import", "directory", None, ["name", "phone", "kind"],
                 detail=f"{len(rows)} imported, {skipped} already listed")
    return {"imported": len(rows), "skipped": skipped}


def _directory_columns(header: list[str]) -> dict[str, int]:
    words = {w.lower(): f for f, aliases in DIRECTORY_HEADERS.items() for w in aliases}
    columns: dict[str, int] = {}
    for i, cell in enumerate(header):
        field = words.get(identity.nfkc(cell or "").strip().lower())
        if field and field not in columns:
            columns[field] = i
    missing = [f for f in ("name", "phone") if f not in columns]
    if missing:
        raise InvalidValue("directory.import_header", field="FILE", missing=", ".join(missing))
    return columns


def _listed(s, ctx):
    return s.execute(select(DirectoryEntry.name, DirectoryEntry.phone)
                     .where(DirectoryEntry.community_id == ctx.community_id(s))).all()
