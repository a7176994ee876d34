"""Rosters in: the office's CSV (UTF-8, UTF-8 with BOM, GBK/GB18030) or XLSX (first sheet).

Every row is validated before anything is written, with the same rules as ``resident add``
(commcare.register.clean_resident_fields); a bad row is reported by its spreadsheet row number
(the header is row 1) and field. The valid rows go in with bulk Core inserts in the caller's
one transaction.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from pathlib import Path

from sqlalchemy import insert, select

from commcare import audit, identity, register
from commcare.errors import ImportRejected, InvalidValue, NotFound
from commcare.models import Household, Resident, ResidentTag, Staff

FIELDS = ("name", "sex", "id_number", "phone", "compound", "address", "tags", "liaison", "note",
          "born", "emergency_contact", "emergency_phone")


def read_table(path: str) -> list[list[str]]:
    """The rows of a CSV or XLSX file as lists of strings (the first row is the header)."""
    file = Path(path)
    if not file.exists():
        raise NotFound("roster.no_file", path=path)
    if file.suffix.lower() in (".xlsx", ".xlsm"):
        return _read_xlsx(file)
    if file.suffix.lower() not in (".csv", ".txt"):
        raise InvalidValue("roster.bad_type", field="FILE", path=path)
    return [row for row in csv.reader(io.StringIO(decode(file.read_bytes(), path)))]


def decode(data: bytes, path: str = "") -> str:
    """UTF-8 (with or without BOM), else GB18030 (a superset of GBK, as Excel on a Chinese
    system writes it). Text that is neither is refused, never imported as mojibake."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text and not any(unicodedata.category(c) == "Co" for c in text[:5000]):
            return text
    raise InvalidValue("roster.encoding", field="FILE", path=path)


def _read_xlsx(file: Path) -> list[list[str]]:
    from openpyxl import load_workbook

    book = load_workbook(file, read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        return [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def _cell(value) -> str:
    import datetime as dt

    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dt.datetime, dt.date)):
        return value.strftime("%Y-%m-%d")
    return str(value)


def map_headers(header: list[str], overrides: dict | None = None) -> tuple[dict[int, str], list[str]]:
    """column index -> field, and the unknown headers (ignored with a warning)."""
    from commcare.resources import load_toml

    aliases = {identity.nfkc(a).strip().lower(): field for field, names in load_toml("headers").items() for a in names}
    aliases.update({identity.nfkc(k).strip().lower(): v for k, v in (overrides or {}).items()})
    mapping, unknown = {}, []
    for i, raw in enumerate(header):
        key = identity.nfkc(raw or "").strip().lower()
        field = aliases.get(key)
        if field in FIELDS and field not in mapping.values():
            mapping[i] = field
        elif key:
            unknown.append(raw)
    if "name" not in mapping.values():
        raise InvalidValue("roster.no_name_column", field="FILE")
    return mapping, unknown


class Plan:
    """The outcome of validating a roster: rows to insert and problems by row."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.problems: list[tuple[int, str, str]] = []
        self.unknown: list[str] = []
        self.households: dict[tuple[str, str], int | None] = {}


def validate(s, ctx, table: list[list[str]], overrides=None) -> Plan:
    plan = Plan()
    if not table:
        raise InvalidValue("roster.empty", field="FILE")
    mapping, plan.unknown = map_headers(table[0], overrides)
    staff = _staff_by_name(s, ctx)
    known = _known_households(s, ctx)
    seen_ids: dict[str, int] = {}
    for number, raw in enumerate(table[1:], start=2):
        values = {field: _unneutralise(raw[i].strip() if i < len(raw) else "") for i, field in mapping.items()}
        if not any(values.values()):
            continue
        row = _check_row(ctx, number, values, staff, plan)
        if row is None:
            continue
        if row.get("id_number"):
            if row["id_number"] in seen_ids:
                plan.problems.append((number, "id_number", _t("roster.id_repeated", row=seen_ids[row["id_number"]])))
                continue
            seen_ids[row["id_number"]] = number
        if _liaison_conflict(number, row, known, plan):
            continue
        plan.rows.append(row)
    _refuse_registered_ids(s, plan, seen_ids)
    return plan


def _unneutralise(value: str) -> str:
    """Undo the ``'`` an export puts before a formula-like cell, so a round trip is exact."""
    from commcare.render import FORMULA_START

    return value[1:] if value[:1] == "'" and value[1:2] in FORMULA_START and value[1:2] else value


def _t(key, **values):
    from commcare.i18n import t

    return t(key, **values)


def _check_row(ctx, number, values, staff, plan) -> dict | None:
    try:
        contact = " ".join(p for p in (values.get("emergency_contact"), values.get("emergency_phone")) if p) or None
        clean = register.clean_resident_fields(
            ctx, name=values.get("name", ""), phone=values.get("phone") or None,
            id_number=values.get("id_number") or None, sex=values.get("sex") or None,
            born=values.get("born") or None, tags=values.get("tags") or None,
            emergency_contact=contact, note=values.get("note") or None)
    except InvalidValue as exc:
        plan.problems.append((number, exc.field, exc.message()))
        return None
    liaison = values.get("liaison") or ""
    if liaison:
        ids = staff.get(unicodedata.normalize("NFC", liaison), [])
        if len(ids) != 1:
            key = "roster.unknown_liaison" if not ids else "roster.ambiguous_liaison"
            plan.problems.append((number, "liaison", _t(key, name=liaison)))
            return None
        clean["liaison_id"] = ids[0]
    clean["compound"] = identity.normalize_text(values.get("compound"), "compound", 200) or ""
    clean["address"] = identity.normalize_text(values.get("address"), "address", 300) or ""
    clean.setdefault("tags", [])
    return clean


def _liaison_conflict(number, row, known, plan) -> bool:
    key = (row["compound"], row["address"])
    if key == ("", ""):
        if row.get("liaison_id"):
            plan.problems.append((number, "liaison", _t("register.liaison_needs_address")))
            return True
        return False
    wanted = row.get("liaison_id")
    current = plan.households.get(key, known.get(key))
    if wanted and current and current != wanted:
        plan.problems.append((number, "liaison", _t("roster.liaison_conflict", address=" ".join(k for k in key if k))))
        return True
    plan.households[key] = wanted or current
    return False


def _staff_by_name(s, ctx) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for sid, name in s.execute(select(Staff.id, Staff.name).where(Staff.community_id == ctx.community_id(s))):
        out.setdefault(name, []).append(sid)
    return out


def _known_households(s, ctx) -> dict[tuple[str, str], int | None]:
    rows = s.execute(select(Household.compound, Household.address, Household.liaison_id)
                     .where(Household.community_id == ctx.community_id(s)))
    return {(c, a): lid for c, a, lid in rows}


def _refuse_registered_ids(s, plan: Plan, seen: dict[str, int]) -> None:
    ids = list(seen)
    taken = set()
    for i in range(0, len(ids), 500):
        taken.update(s.scalars(select(Resident.id_number).where(Resident.id_number.in_(ids[i:i + 500]))))
    if taken:
        plan.problems += [(seen[n], "id_number", _t("roster.id_registered")) for n in taken]
        plan.rows = [r for r in plan.rows if r.get("id_number") not in taken]


def write(s, ctx, plan: Plan, source: str) -> dict:
    """Insert the plan's rows (households first) with bulk Core inserts."""
    cid = ctx.community_id(s, create=True)
    now = ctx.now()
    houses = _ensure_households(s, ctx, cid, plan, now)
    records = []
    for row in plan.rows:
        rec = {k: row.get(k) for k in ("name", "name_pinyin", "name_initials", "sex", "born", "id_number",
                                         "phone", "emergency_name", "emergency_phone", "note")}
        rec.update(community_id=cid, household_id=houses.get((row["compound"], row["address"])),
                   created_at=now, updated_at=now, version=1)
        records.append(rec)
    ids = _reserve_ids(s, len(records))
    for rec, rid in zip(records, ids):
        rec["id"] = rid
    if records:
        s.execute(insert(Resident.__table__), records)
    tags = [{"resident_id": rid, "tag": tag} for rid, row in zip(ids, plan.rows) for tag in row["tags"]]
    if tags:
        s.execute(insert(ResidentTag.__table__), tags)
    audit.record(s, ctx, "resident.import", "resident", None, ["rows"],
                 detail=f"{Path(source).name}: {len(ids)} imported, {len(plan.problems)} invalid")
    return {"imported": len(ids), "households": len(houses)}


def _reserve_ids(s, count: int) -> list[int]:
    """Resident numbers for ``count`` new rows, so one executemany can insert them all (an
    INSERT … RETURNING in parameter order goes row by row here). PostgreSQL hands them out from
    the sequence; on SQLite the write transaction (BEGIN IMMEDIATE) holds the lock, so the
    numbers after the highest are ours."""
    if not count:
        return []
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy import text

        return list(s.scalars(text("SELECT nextval(pg_get_serial_sequence('residents', 'id')) "
                                   "FROM generate_series(1, :n)"), {"n": count}))
    from sqlalchemy import func

    top = s.scalar(select(func.max(Resident.id))) or 0
    return list(range(top + 1, top + 1 + count))


def _ensure_households(s, ctx, cid, plan: Plan, now) -> dict[tuple[str, str], int]:
    existing = {(c, a): (hid, lid) for hid, c, a, lid in s.execute(
        select(Household.id, Household.compound, Household.address, Household.liaison_id)
        .where(Household.community_id == cid))}
    new = [{"community_id": cid, "compound": c, "address": a, "liaison_id": lid, "created_at": now}
           for (c, a), lid in plan.households.items() if (c, a) not in existing]
    if new:
        s.execute(insert(Household.__table__), new)
    for (c, a), lid in plan.households.items():
        if (c, a) in existing and lid and existing[(c, a)][1] is None:
            s.get(Household, existing[(c, a)][0]).liaison_id = lid
    return {(c, a): hid for hid, c, a in s.execute(
        select(Household.id, Household.compound, Household.address).where(Household.community_id == cid))}


def import_roster(s, ctx, path: str, dry_run=False, skip_invalid=False, overrides=None) -> dict:
    plan = validate(s, ctx, read_table(path), overrides)
    lines = [_t("roster.problem", row=r, problem=p if p.startswith(f"{f}:") else f"{f}: {p}")
             for r, f, p in sorted(plan.problems)]
    if plan.problems and not skip_invalid:
        raise ImportRejected("roster.rejected", problems=lines, count=len(plan.problems))
    summary = {"valid": len(plan.rows), "invalid": len(plan.problems), "problems": lines,
               "unknown_columns": plan.unknown, "imported": 0, "dry_run": dry_run}
    if not dry_run:
        summary.update(write(s, ctx, plan, path))
    return summary
