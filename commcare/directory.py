"""The directory of useful numbers: hospitals, clinics, pharmacies, hotlines, utilities. Found
by kind, by name, by its pinyin or initials, or by the digits of the phone; imported from a
CSV or XLSX list whose header words are in ``data/headers.toml`` (``[directory]``)."""

from __future__ import annotations

import re

from sqlalchemy import insert, select

from commcare import audit, identity
from commcare.errors import ImportRejected, InvalidValue
from commcare.storage.tables import directory

KINDS = ("hospital", "clinic", "pharmacy", "hotline", "utility", "other")


def add_directory(conn, ctx, name, phone, kind, hours=None, address=None) -> dict:
    entry = _directory_fields(ctx, name, phone, kind, hours, address)
    entry_id = conn.execute(
        insert(directory).values(community_id=ctx.community_id(conn, create=True), **entry).returning(directory.c.id)
    ).scalar_one()
    audit.record(
        conn,
        ctx,
        "directory.add",
        "directory",
        entry_id,
        ["name", "phone", "kind"] + [f for f in ("hours", "address") if entry[f]],
    )
    return {"id": entry_id, **directory_row(entry)}


def _directory_fields(ctx, name, phone, kind, hours, address) -> dict:
    name = identity.normalize_name(name)
    full, initials = identity.pinyin_keys(name)
    return {
        "name": name,
        "name_pinyin": full,
        "name_initials": initials,
        "phone": _directory_phone(phone),
        "kind": parse_kind(kind),
        "hours": identity.normalize_text(hours, "hours", 100),
        "address": identity.normalize_text(address, "address", 300),
        "created_at": ctx.now(),
    }


def parse_kind(raw: str | None) -> str:
    """A kind by its slug or the Chinese word an office list uses (医院, 药店, 热线 …)."""
    text = identity.nfkc(raw or "").strip()
    return identity.parse_choice(text, KINDS, "kind")


def _directory_phone(raw: str) -> str:
    """Service numbers are short (12345, 120, 95598, 96677): accepted as digits, and with an
    area code (``0371-96677``, the same service dialled from another city); phones and
    landlines are validated as for residents. Only the directory takes these: a resident's
    phone is a number one can call them on."""
    text = re.sub(r"[\s\-]", "", identity.nfkc(raw or ""))
    if re.fullmatch(r"[0-9]{3,6}", text, re.ASCII) and not text.startswith("0"):
        return text
    try:
        return identity.normalize_phone(raw)
    except InvalidValue:
        service = _area_service(text)
        if service is None:
            raise
        return service


def _area_service(digits: str) -> str | None:
    """``037196677`` as ``0371-96677``: an area code, then a five-digit service number."""
    if not re.fullmatch(r"0[0-9]{5,9}", digits, re.ASCII):
        return None
    area_len = 3 if identity.THREE_DIGIT_AREAS.match(digits) else 4
    local = digits[area_len:]
    if re.fullmatch(r"[1-9][0-9]{4}", local, re.ASCII):
        return f"{digits[:area_len]}-{local}"
    return None


def directory_row(entry) -> dict:
    """An entry (a mapping of the directory's columns) as lists and JSON show it."""
    return {key: entry[key] for key in ("name", "phone", "kind", "hours", "address")}


def list_directory(conn, ctx, kind=None, search=None) -> list[dict]:
    """By kind, then name. ``search``: any part of the name, of its pinyin or of its initials
    (``sqws``, ``weisheng``), or digits of the phone."""
    d = directory.c
    query = select(directory).where(d.community_id == ctx.community_id(conn)).order_by(d.kind, d.name, d.id)
    if kind:
        query = query.where(d.kind == parse_kind(kind))
    if search:
        low = identity.nfkc(search).strip().lower().replace(" ", "")
        if re.fullmatch(r"[a-z]+", low, re.ASCII):  # any part: sqws finds 如意湖社区卫生服务中心
            query = query.where(
                d.name_initials.contains(low, autoescape=True)
                | d.name_pinyin.contains(low, autoescape=True)
                | d.name.contains(low, autoescape=True)
            )
        elif re.fullmatch(r"[0-9\-]+", low, re.ASCII):
            query = query.where(d.phone.contains(low.replace("-", ""), autoescape=True))
        else:
            query = query.where(d.name.contains(identity.normalize_name(search, "search"), autoescape=True))
    return [{"id": e.id, **directory_row(e._mapping)} for e in conn.execute(query)]


FIELDS = ("name", "phone", "kind", "hours", "address")


def import_directory(conn, ctx, path: str) -> dict:
    """A CSV (or XLSX) list of useful numbers. Every row is checked first: any bad row and
    nothing is written (each reported by its spreadsheet row number, the header being row 1).
    A row naming an entry already listed (same name and phone) is skipped."""
    from commcare.roster.read import read_table

    table = read_table(path)
    columns = _directory_columns(table[0] if table else [])
    rows, problems, seen = [], [], {tuple(r) for r in _listed(conn, ctx)}
    skipped = 0
    for number, raw in enumerate(table[1:], start=2):
        values = {f: (raw[i].strip() if i < len(raw) else "") for f, i in columns.items()}
        if not any(values.values()):
            continue
        try:
            entry = _directory_fields(
                ctx,
                values["name"],
                values["phone"],
                values.get("kind") or "other",
                values.get("hours") or None,
                values.get("address") or None,
            )
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
        cid = ctx.community_id(conn, create=True)
        conn.execute(insert(directory), [{**r, "community_id": cid} for r in rows])
    audit.record(
        conn,
        ctx,
        "directory.import",
        "directory",
        None,
        ["name", "phone", "kind"],
        detail=f"{len(rows)} imported, {skipped} already listed",
    )
    return {"imported": len(rows), "skipped": skipped}


def _directory_columns(header: list[str]) -> dict[str, int]:
    """field -> column index, by the directory's header words (the roster's reader)."""
    from commcare.roster.read import map_headers

    mapping, _unknown = map_headers(header, FIELDS, section="directory", required=())
    columns = {field: i for i, field in mapping.items()}
    missing = [f for f in ("name", "phone") if f not in columns]
    if missing:
        raise InvalidValue("directory.import_header", field="FILE", missing=", ".join(missing))
    return columns


def _listed(conn, ctx):
    return conn.execute(
        select(directory.c.name, directory.c.phone).where(directory.c.community_id == ctx.community_id(conn))
    ).all()
