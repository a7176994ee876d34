"""Naming things (the contract's *Naming things*): which resident or staff member a reference
names — a number (``12``, ``#12``), a resident ID number, a phone number, or a name.

Every command that names a resident or a staff member finds them here.
"""

import re

from sqlalchemy import select

from commcare import audit, identity
from commcare.errors import Ambiguous, InvalidValue, NotFound
from commcare.storage import integrity
from commcare.storage.tables import households, residents, staff

NUMBER = re.compile(r"#?([0-9]{1,9})", re.ASCII)
ID_NUMBER = re.compile(r"[0-9]{17}[0-9xX]", re.ASCII)

# What a resident lookup returns: enough to describe the resident and to find the liaison.
RESIDENT = (
    residents.c.id,
    residents.c.name,
    residents.c.archived_at,
    residents.c.household_id,
    households.c.compound,
    households.c.address,
    households.c.liaison_id,
)


def resident(conn, ctx, ref, field: str = "resident"):
    """The one resident ``ref`` names (a row of ``RESIDENT``); an active one is preferred
    when a phone or name is shared with an archived resident. Before saying that no resident
    matches, the register is checked to read whole (a damaged page is exit 3, not "not found")."""
    try:
        return _resident(conn, ctx, ref, field)
    except NotFound:
        integrity.verify(conn, ctx.community_id(conn))
        raise


def _resident(conn, ctx, ref, field: str):
    text = identity.nfkc(str(ref)).strip()
    if not text:
        raise InvalidValue("value.empty", field=field)
    query = (
        select(*RESIDENT)
        .outerjoin(households, residents.c.household_id == households.c.id)
        .where(residents.c.community_id == ctx.community_id(conn))
        .order_by(residents.c.id)
    )
    m = NUMBER.fullmatch(text)
    if m:
        return one(conn.execute(query.where(residents.c.id == int(m[1]))).all(), "resident", ref, describe_resident)
    if ID_NUMBER.fullmatch(text):
        found = conn.execute(query.where(residents.c.id_number == text.upper())).all()
        audit.looked_up(ctx, text.upper(), found)  # found or not: a loop over candidates is seen
        return one(found, "resident", ref, describe_resident)
    found = _by_phone(conn, query, residents.c.phone, text)
    if not found and _is_phone(text):
        # a hotline caller not yet registered: say how to register them, in one command
        raise NotFound("resident.phone_not_found", ref=ref, register_line=register_line(text))
    if not found:
        found = conn.execute(query.where(residents.c.name == identity.normalize_name(ref, field))).all()
    active = [r for r in found if r.archived_at is None]
    return one(active or found, "resident", ref, describe_resident)


def staff_member(conn, ctx, ref, field: str = "staff"):
    """The one staff member ``ref`` names: number, name or phone (a row of the staff table)."""
    text = identity.nfkc(str(ref)).strip()
    if not text:
        raise InvalidValue("value.empty", field=field)
    query = select(staff).where(staff.c.community_id == ctx.community_id(conn)).order_by(staff.c.id)
    m = NUMBER.fullmatch(text)
    if m:
        found = conn.execute(query.where(staff.c.id == int(m[1]))).all()
    else:
        found = conn.execute(query.where(staff.c.name == identity.normalize_name(ref, field))).all()
        if not found:
            found = _by_phone(conn, query, staff.c.phone, text)
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


def _by_phone(conn, query, column, text: str) -> list:
    try:
        phone = identity.normalize_phone(text)
    except InvalidValue:
        return []
    return conn.execute(query.where(column == phone)).all()


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
