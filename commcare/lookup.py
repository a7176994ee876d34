"""Naming things (the contract's *Naming things*): which resident or staff member a reference
names — a number (``12``, ``#12``), a resident ID number, a phone number, or a name.

Every command that names a resident or a staff member finds them here.
"""

from __future__ import annotations

import re

from commcare import audit, identity
from commcare.errors import Ambiguous, InvalidValue, NotFound
from commcare.patterns import Pattern
from commcare.storage.sql import statement

NUMBER = Pattern(r"#?([0-9]{1,9})", re.ASCII)
ID_NUMBER = Pattern(r"[0-9]{17}[0-9xX]", re.ASCII)


@statement
def _residents(by: str):
    """The community's residents whose ``by`` (id, id_number, phone or name) is ``:value``, in
    number order: enough to describe each and to find the liaison (id, name, archived_at,
    household_id, compound, address, liaison_id)."""
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import households, residents

    return (
        select(
            residents.c.id,
            residents.c.name,
            residents.c.archived_at,
            residents.c.household_id,
            households.c.compound,
            households.c.address,
            households.c.liaison_id,
        )
        .outerjoin(households, residents.c.household_id == households.c.id)
        .where(residents.c.community_id == bindparam("cid"), residents.c[by] == bindparam("value"))
        .order_by(residents.c.id)
    )


@statement
def _staff(by: str):
    """The community's staff members whose ``by`` (id, name or phone) is ``:value`` (whole
    rows of the staff table), in number order."""
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import staff

    return (
        select(staff)
        .where(staff.c.community_id == bindparam("cid"), staff.c[by] == bindparam("value"))
        .order_by(staff.c.id)
    )


def resident(conn, ctx, ref, field: str = "resident"):
    """The one resident ``ref`` names (a row of ``_residents``); an active one is preferred
    when a phone or name is shared with an archived resident. Before saying that no resident
    matches, the register is checked to read whole (a damaged page is exit 3, not "not found")."""
    try:
        return _resident(conn, ctx, ref, field)
    except NotFound:
        from commcare.storage import integrity

        integrity.verify(conn, ctx.community_id(conn))
        raise


def _resident(conn, ctx, ref, field: str):
    text = identity.nfkc(str(ref)).strip()
    if not text:
        raise InvalidValue("value.empty", field=field)
    cid = ctx.community_id(conn)
    m = NUMBER.fullmatch(text)
    if m:
        return one(_residents("id").all(conn, cid=cid, value=int(m[1])), "resident", ref, describe_resident)
    if ID_NUMBER.fullmatch(text):
        found = _residents("id_number").all(conn, cid=cid, value=text.upper())
        audit.looked_up(ctx, text.upper(), found)  # found or not: a loop over candidates is seen
        return one(found, "resident", ref, describe_resident)
    found = _by_phone(conn, _residents, cid, text)
    if not found and _is_phone(text):
        # a hotline caller not yet registered: say how to register them, in one command
        raise NotFound("resident.phone_not_found", ref=ref, register_line=register_line(text))
    if not found:
        found = _residents("name").all(conn, cid=cid, value=identity.normalize_name(ref, field))
    active = [r for r in found if r.archived_at is None]
    return one(active or found, "resident", ref, describe_resident)


def staff_member(conn, ctx, ref, field: str = "staff"):
    """The one staff member ``ref`` names: number, name or phone (a row of the staff table)."""
    text = identity.nfkc(str(ref)).strip()
    if not text:
        raise InvalidValue("value.empty", field=field)
    cid = ctx.community_id(conn)
    m = NUMBER.fullmatch(text)
    if m:
        found = _staff("id").all(conn, cid=cid, value=int(m[1]))
    else:
        found = _staff("name").all(conn, cid=cid, value=identity.normalize_name(ref, field))
        if not found:
            found = _by_phone(conn, _staff, cid, text)
    return one(found, "staff", ref, describe_staff)


def _is_phone(text: str) -> bool:
    try:
        identity.normalize_phone(text)
    except InvalidValue:
        return False
    return True


def register_line(text: str) -> str:
    """The command that registers the caller of ``text`` (the name left for the person)."""
    from commcare.i18n import t

    return f"commcare resident add {t('resident.name_placeholder')} --phone {identity.normalize_phone(text)}"


def _by_phone(conn, query, cid, text: str) -> list:
    """The rows of ``query`` (``_residents`` or ``_staff``) with the phone ``text`` names."""
    try:
        phone = identity.normalize_phone(text)
    except InvalidValue:
        return []
    return query("phone").all(conn, cid=cid, value=phone)


def one(found: list, kind: str, ref, describe):
    """The single match, or exit 1: not found, or ambiguous with the candidates listed."""
    if not found:
        raise NotFound(f"{kind}.not_found", ref=ref)
    if len(found) > 1:
        raise Ambiguous(f"{kind}.ambiguous", ref=ref, candidates="; ".join(describe(x) for x in found[:20]))
    return found[0]


def describe(number: int, name: str, compound: str | None = None, address: str | None = None) -> str:
    """``#12 张桂兰 (幸福小区 3-2-101)``: how a resident is told apart from a namesake."""
    where = " ".join(p for p in (compound, address) if p)
    return f"#{number} {name}" + (f" ({where})" if where else "")


def describe_resident(row) -> str:
    return describe(row.id, row.name, row.compound, row.address)


def describe_staff(row) -> str:
    return f"#{row.id} {row.name}" + (f" ({row.role})" if row.role else "")
