"""The office's other daily logs: staff health reports, donations, the directory.

Each lives plainly in its own table (health_reports, donations + donation_items, directory),
with UTC times, so the evening report counts them with SQL by day."""

from __future__ import annotations

import re

from sqlalchemy import func, insert, select

from commcare import audit, identity, lookup
from commcare.calls import backfill_time
from commcare.errors import ImportRejected, InvalidValue
from commcare.tables import directory, donation_items, donations, health_reports, staff
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
    member = lookup.staff_member(s, ctx, staff_ref)
    when = backfill_time(ctx, at)
    values = {"staff_id": member.id, "at": when, "temperature": round(temp, 1),
              "test": identity.parse_choice(test, TESTS, "test") if test else None, "actor": ctx.operator}
    report_id = s.execute(insert(health_reports).values(**values).returning(health_reports.c.id)).scalar_one()
    audit.record(s, ctx, "health.log", "health_report", report_id, ["temperature"] + (["test"] if test else []),
                 detail=f"staff #{member.id}")
    return {"id": report_id, "staff": member.name, "temp": values["temperature"], "test": values["test"],
            "at": iso(when, ctx.tz)}


def list_health(s, ctx, date_from=None, date_to=None, member=None) -> list[dict]:
    """Temperature reports between two days (default today), oldest first."""
    start, end = _range(ctx, date_from or ctx.today().isoformat(), date_to or date_from or ctx.today().isoformat())
    h = health_reports.c
    query = (select(h.id, staff.c.name, h.at, h.temperature, h.test, h.actor)
             .join(staff, h.staff_id == staff.c.id)
             .where(staff.c.community_id == ctx.community_id(s), h.at >= start, h.at < end)
             .order_by(h.at, h.id))
    if member:
        query = query.where(staff.c.id == lookup.staff_member(s, ctx, member).id)
    return [{"id": i, "staff": name, "at": iso(at, ctx.tz), "temp": temp, "test": test, "by": actor}
            for i, name, at, temp, test, actor in s.execute(query)]


def health_due(s, ctx, day=None) -> list[dict]:
    """Active staff with fewer than two temperature reports on ``day``."""
    start, end = day_bounds(day or ctx.today(), ctx.tz)
    h = health_reports.c
    count = (select(func.count(h.id)).where(h.staff_id == staff.c.id, h.at >= start, h.at < end)
             .correlate(staff).scalar_subquery())
    query = (select(staff.c.id, staff.c.name, count.label("reports"))
             .where(staff.c.community_id == ctx.community_id(s), staff.c.active.is_(True), count < 2)
             .order_by(staff.c.id))
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
    donation = s.execute(insert(donations).values(
        community_id=ctx.community_id(s, create=True), donor=identity.normalize_name(donor, "donor"),
        at=backfill_time(ctx, at), recipients=identity.parse_choice(recipients, RECIPIENTS, "for"),
        note=identity.normalize_text(note), actor=ctx.operator).returning(*donations.c)).one()
    s.execute(insert(donation_items), [{"donation_id": donation.id, "name": n, "quantity": q, "unit": u}
                                       for n, q, u in parsed])
    audit.record(s, ctx, "donation.add", "donation", donation.id, ["donor", "items"])
    return donation_row(donation, parsed, ctx.tz)


def donation_row(d, items: list[tuple[str, float, str]], tz) -> dict:
    return {"id": d.id, "donor": d.donor, "at": iso(d.at, tz), "for": d.recipients,
            "items": [f"{name} {quantity:g}{unit}" for name, quantity, unit in items], "note": d.note}


def list_donations(s, ctx, date_from=None, date_to=None) -> list[dict]:
    start, end = _range(ctx, date_from, date_to)
    d, i = donations.c, donation_items.c
    query = select(donations).where(d.community_id == ctx.community_id(s)).order_by(d.at, d.id)
    if start:
        query = query.where(d.at >= start)
    if end:
        query = query.where(d.at < end)
    found = s.execute(query).all()
    items: dict[int, list] = {}
    ids = [x.id for x in found]
    for part in range(0, len(ids), 500):
        for donation_id, name, quantity, unit in s.execute(
                select(i.donation_id, i.name, i.quantity, i.unit)
                .where(i.donation_id.in_(ids[part:part + 500])).order_by(i.id)):
            items.setdefault(donation_id, []).append((name, quantity, unit))
    return [donation_row(x, items.get(x.id, []), ctx.tz) for x in found]


def donation_totals(s, ctx, date_from=None, date_to=None) -> list[dict]:
    """Totals per item and unit (the monthly sum offices add up by hand)."""
    start, end = _range(ctx, date_from, date_to)
    d, i = donations.c, donation_items.c
    query = (select(i.name, i.unit, func.sum(i.quantity), func.count(func.distinct(d.id)))
             .join(donations, i.donation_id == d.id)
             .where(d.community_id == ctx.community_id(s))
             .group_by(i.name, i.unit).order_by(i.name, i.unit))
    if start:
        query = query.where(d.at >= start)
    if end:
        query = query.where(d.at < end)
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
    entry_id = s.execute(insert(directory).values(community_id=ctx.community_id(s, create=True), **entry)
                         .returning(directory.c.id)).scalar_one()
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


def directory_row(entry) -> dict:
    """An entry (a mapping of the directory's columns) as lists and JSON show it."""
    return {key: entry[key] for key in ("name", "phone", "kind", "hours", "address")}


def list_directory(s, ctx, kind=None, search=None) -> list[dict]:
    """By kind, then name. ``search``: pinyin or initials (``sqws``), digits of the phone, or
    part of the name."""
    d = directory.c
    query = select(directory).where(d.community_id == ctx.community_id(s)).order_by(d.kind, d.name, d.id)
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
    return [{"id": e.id, **directory_row(e._mapping)} for e in s.execute(query)]


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
        s.execute(insert(directory), [{**r, "community_id": cid} for r in rows])
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
    return s.execute(select(directory.c.name, directory.c.phone)
                     .where(directory.c.community_id == ctx.community_id(s))).all()
