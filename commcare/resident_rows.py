"""Residents as ``resident list``, ``resident show`` and the JSON of ``resident add/edit`` show
them: the resident, their household and liaison, their special groups, phones masked unless
asked.

Every statement here is declared (``commcare.storage.sql.statement``): ``resident list`` and
``resident show`` take the driver path of the hot commands (docs/hot-path.md), so this module
imports no SQLAlchemy. The filters are the statements' *shape*; the values are bound.
"""

from __future__ import annotations

import re

from commcare import audit, identity, lookup
from commcare.patterns import Pattern
from commcare.storage import integrity
from commcare.storage.sql import statement

LETTERS = Pattern(r"[a-z]+", re.ASCII)
DIGITS = Pattern(r"[0-9]{3,}", re.ASCII)
TAGS_AT_ONCE = 500  # residents whose tags one statement reads


@statement
def _rows(
    by_id: bool,
    archived: bool = False,
    tag: bool = False,
    compound: bool = False,
    liaison: bool = False,
    search: str = "",
):
    """Residents with their household and liaison (every column of ``residents``, then
    ``compound``, ``address``, ``liaison``), in number order: the one numbered ``:rid``
    (``by_id``), or the community ``:cid``'s active (or ``archived``) residents, narrowed to
    those of the special group ``:tag``, of the compound ``:compound``, of the households of
    the liaison ``:liaison_id``, and those ``search`` finds (``letters``: initials or pinyin
    from ``:lo`` up to ``:hi``; ``phone`` or ``name``: containing ``:pattern``, a LIKE pattern
    escaped with ``/``)."""
    from sqlalchemy import bindparam, or_, select

    from commcare.storage.tables import households, resident_tags, residents, staff

    r, h, rt = residents.c, households.c, resident_tags.c
    joined = residents.outerjoin(households, r.household_id == h.id).outerjoin(staff, h.liaison_id == staff.c.id)
    query = select(*residents.c, h.compound, h.address, staff.c.name.label("liaison")).select_from(joined)
    if by_id:
        return query.where(r.id == bindparam("rid")).order_by(r.id)
    cid = bindparam("cid", type_=r.community_id.type)
    where = [r.community_id == cid, r.archived_at.is_not(None) if archived else r.archived_at.is_(None)]
    if tag:
        where.append(r.id.in_(select(rt.resident_id).where(rt.community_id == cid, rt.tag == bindparam("tag"))))
    if compound:
        where.append(h.compound == bindparam("compound_is"))
    if liaison:
        where.append(r.household_id.in_(select(h.id).where(h.liaison_id == bindparam("liaison_id"))))
    if search == "letters":
        lo, hi = bindparam("lo", type_=r.name_initials.type), bindparam("hi", type_=r.name_initials.type)
        where.append(
            or_((r.name_initials >= lo) & (r.name_initials < hi), (r.name_pinyin >= lo) & (r.name_pinyin < hi))
        )
    elif search:
        where.append(r[search].like(bindparam("pattern", type_=r.name.type), escape="/"))
    return query.where(*where).order_by(r.id)


@statement
def _tags_of():
    """(resident, tag) of the residents ``:ids``, in that order."""
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import resident_tags

    rt = resident_tags.c
    return (
        select(rt.resident_id, rt.tag)
        .where(rt.resident_id.in_(bindparam("ids", expanding=True)))
        .order_by(rt.resident_id, rt.tag)
    )


def resident_rows(conn, ctx, found: list, unmask: bool = False) -> list[dict]:
    """The rows ``found`` (of ``_rows``) as lists, exports and JSON show them (phones masked
    unless ``unmask``), with their special groups."""
    tags = _tags_of_many(conn, [r.id for r in found])
    return [resident_row(r, tags.get(r.id, []), ctx.tz, unmask) for r in found]


def _tags_of_many(conn, ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for start in range(0, len(ids), TAGS_AT_ONCE):
        for rid, tag in _tags_of().all(conn, ids=ids[start : start + TAGS_AT_ONCE]):
            out.setdefault(rid, []).append(tag)
    return out


def row_of(conn, ctx, rid: int, unmask: bool = False) -> dict:
    """The resident numbered ``rid`` as a row (``resident_row``)."""
    return resident_rows(conn, ctx, _rows(True).all(conn, rid=rid), unmask)[0]


def show_resident(conn, ctx, ref, unmask: bool = False) -> dict:
    """One resident, named by ``ref``, as a row (``resident_row``), with the phone in full (the
    liaison needs it to call); the ID number only with ``unmask`` (audited)."""
    rid = lookup.resident(conn, ctx, ref).id
    row = row_of(conn, ctx, rid, unmask=True)
    if unmask:
        audit.unmasked(conn, ctx, "resident", "resident.show", 1)
    else:
        row.pop("id_number", None)
    return row


def list_residents(
    conn, ctx, tag=None, compound=None, liaison=None, search=None, archived: bool = False, unmask: bool = False
) -> list[dict]:
    """The residents that match, after checking that the register reads whole
    (``integrity.verify``: the active residents, and those of ``tag``; exit 3 if not)."""
    slug = identity.parse_tag(tag, ctx.extra_tags) if tag else None
    cid = ctx.community_id(conn)
    integrity.verify(conn, cid, [slug] if slug else ())
    values: dict = {"cid": cid}
    if slug:
        values["tag"] = slug
    if compound:
        values["compound_is"] = identity.normalize_text(compound, "compound")
    if liaison:
        values["liaison_id"] = lookup.staff_member(conn, ctx, liaison, "liaison").id
    kind = ""
    if search:
        kind, found = search_values(search)
        values.update(found)
    shape = _rows(False, archived, bool(slug), bool(compound), bool(liaison), kind)
    rows = resident_rows(conn, ctx, shape.all(conn, **values), unmask)
    if unmask:
        audit.unmasked(conn, ctx, "resident", "resident.list", len(rows))
    return rows


def search_values(text: str) -> tuple[str, dict]:
    """What ``--search`` looks for: name, pinyin or pinyin initials (``zgl`` finds 张桂兰) as a
    prefix range on the stored keys (an index serves it, not a scan in Python), phone digits
    or a part of the name; (the kind of search, its bound values)."""
    raw = identity.nfkc(text).strip()
    low = raw.lower().replace(" ", "")
    if LETTERS.fullmatch(low):
        return "letters", {"lo": low, "hi": low[:-1] + chr(ord(low[-1]) + 1)}
    if DIGITS.fullmatch(low):
        return "phone", {"pattern": f"%{_escape_like(low)}%"}
    return "name", {"pattern": f"%{_escape_like(identity.normalize_name(text, 'search'))}%"}


def _escape_like(text: str) -> str:
    """``text`` matched literally by LIKE … ESCAPE '/' (as SQLAlchemy's ``autoescape``)."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def resident_row(r, tags: list[str], tz, unmask: bool = False) -> dict:
    """A resident (a row of ``_rows``) as lists, exports and JSON show it (phones masked
    unless ``unmask``)."""
    from commcare.timeparse import iso

    phone = r.phone if unmask else identity.mask_phone(r.phone)
    emergency_phone = r.emergency_phone if unmask else identity.mask_phone(r.emergency_phone)
    row = {
        "id": r.id,
        "name": r.name,
        "sex": r.sex,
        "born": r.born.isoformat() if r.born else None,
        "phone": phone,
        "compound": r.compound,
        "address": r.address,
        "tags": tags,
        "liaison": r.liaison,
        "emergency_contact": " ".join(p for p in (r.emergency_name, emergency_phone) if p) or None,
        "note": r.note,
        "archived": r.archived_at is not None,
        "archive_reason": r.archive_reason,
        "created_at": iso(r.created_at, tz),
    }
    if unmask:
        row["id_number"] = r.id_number
    return row
