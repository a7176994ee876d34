"""The register (花名册): residents, households and staff, and how each is named.

A household is the residents at one address (compound + address) and has one fixed liaison.
A resident is named by number (``12``/``#12``), ID number, phone or name (``lookup``); a name
(or a shared phone) that matches several residents is refused, listing them. How residents
are shown (lists, ``resident show``, the JSON of a change) is ``commcare.resident_rows``.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import delete, func, insert, select, update

from commcare import access, audit, identity, lookup
from commcare.errors import Conflict, InvalidValue
from commcare.storage.tables import households, resident_tags, residents, staff

INTERNAL_FIELDS = frozenset({"name_pinyin", "name_initials"})  # kept out of the audit trail


# --- staff -----------------------------------------------------------------------------------


def add_staff(conn, ctx, name: str, phone: str | None = None, role: str | None = None, login: str | None = None):
    """A new staff member; returns their row (the staff table's columns). ``login``: the OS user
    (or database role) that is this staff member, one staff member per login."""
    values = {
        "community_id": ctx.community_id(conn, create=True),
        "name": identity.normalize_name(name),
        "phone": identity.normalize_phone(phone) if phone else None,
        "role": identity.normalize_text(role, "role", 100),
        "active": True,
        "created_at": ctx.now(),
    }
    if login is not None:
        values["login"] = access.normalize_login(login)
        access.refuse_taken_login(conn, values["login"])
    row = conn.execute(insert(staff).values(**values).returning(*staff.c)).one()
    audit.record(conn, ctx, "staff.add", "staff", row.id, _filled(phone=phone, role=role, name=name, login=login))
    return row


def list_staff(conn, ctx, include_inactive: bool = False, unmask: bool = False) -> list[dict]:
    """Staff as rows (``staff_row``); full phones with ``unmask`` (audited)."""
    query = select(staff).where(staff.c.community_id == ctx.community_id(conn)).order_by(staff.c.id)
    if not include_inactive:
        query = query.where(staff.c.active.is_(True))
    rows = [staff_row(member, unmask) for member in conn.execute(query)]
    if unmask:
        audit.unmasked(conn, ctx, "staff", "staff.list", len(rows))
    return rows


def staff_row(member, unmask: bool = False) -> dict:
    return {
        "id": member.id,
        "name": member.name,
        "phone": member.phone if unmask else identity.mask_phone(member.phone),
        "role": member.role,
        "active": member.active,
    }


def edit_staff(conn, ctx, ref, name=None, phone=None, role=None, active=None, login=None):
    member = lookup.staff_member(conn, ctx, ref)
    changes: dict = {}
    if login is not None:
        changes["login"] = access.normalize_login(login) if login.strip() else None
        if changes["login"]:
            access.refuse_taken_login(conn, changes["login"], except_id=member.id)
    if name is not None:
        changes["name"] = identity.normalize_name(name)
    if phone is not None:
        changes["phone"] = identity.normalize_phone(phone) if phone.strip() else None
    if role is not None:
        changes["role"] = identity.normalize_text(role, "role", 100)
    if active is not None:
        changes["active"] = active
    if not changes:
        raise InvalidValue("register.nothing_to_change", field="REF")
    row = conn.execute(update(staff).where(staff.c.id == member.id).values(**changes).returning(*staff.c)).one()
    audit.record(conn, ctx, "staff.edit", "staff", member.id, list(changes))
    return row


# --- households ------------------------------------------------------------------------------

HOUSEHOLD = (households.c.id, households.c.compound, households.c.address, households.c.liaison_id)


def household_at(conn, ctx, compound: str | None, address: str | None, create: bool = True):
    """The household at (compound, address) — a row of ``HOUSEHOLD`` — made if ``create``;
    None for no address at all."""
    compound = identity.normalize_text(compound, "compound", 200) or ""
    address = identity.normalize_text(address, "address", 300) or ""
    if not compound and not address:
        return None
    community_id = ctx.community_id(conn, create=create)
    h = households.c
    house = conn.execute(
        select(*HOUSEHOLD).where(h.community_id == community_id, h.compound == compound, h.address == address)
    ).first()
    if house is None and create:
        house = conn.execute(
            insert(households)
            .values(community_id=community_id, compound=compound, address=address, created_at=ctx.now())
            .returning(*HOUSEHOLD)
        ).one()
    return house


def give_liaison(conn, ctx, house, member, reassign: bool = False) -> None:
    """Set a household's liaison. A different liaison than the one it has is refused unless
    ``reassign`` (``household assign``): one fixed liaison per household."""
    if member is None:
        return
    if house is None:
        raise InvalidValue("register.liaison_needs_address", field="liaison")
    if house.liaison_id not in (None, member.id) and not reassign:
        current = conn.scalar(select(staff.c.name).where(staff.c.id == house.liaison_id))
        raise Conflict(
            "register.household_has_liaison",
            address=describe_household(house),
            liaison=current or house.liaison_id,
            wanted=member.name,
        )
    if house.liaison_id != member.id:
        conn.execute(update(households).where(households.c.id == house.id).values(liaison_id=member.id))
        audit.record(conn, ctx, "household.assign", "household", house.id, ["liaison"], detail=f"staff #{member.id}")


def describe_household(house) -> str:
    if house is None:
        return ""
    return " ".join(p for p in (house.compound, house.address) if p)


# --- residents -------------------------------------------------------------------------------


def add_resident(
    conn,
    ctx,
    name: str,
    *,
    phone=None,
    id_number=None,
    sex=None,
    born=None,
    compound=None,
    address=None,
    tags=(),
    liaison=None,
    emergency_contact=None,
    note=None,
) -> int:
    """A new resident; returns their number."""
    fields = identity.clean_resident_fields(
        ctx,
        name=name,
        phone=phone,
        id_number=id_number,
        sex=sex,
        born=born,
        tags=list(tags),
        emergency_contact=emergency_contact,
        note=note,
    )
    if fields.get("id_number"):
        _refuse_known_id(conn, ctx, fields["id_number"])
    member = lookup.staff_member(conn, ctx, liaison, "liaison") if liaison else None
    house = household_at(conn, ctx, compound, address)
    give_liaison(conn, ctx, house, member)
    tag_list = fields.pop("tags")
    now = ctx.now()
    rid = conn.execute(
        insert(residents)
        .values(
            community_id=ctx.community_id(conn, create=True),
            household_id=house.id if house else None,
            created_at=now,
            updated_at=now,
            **fields,
        )
        .returning(residents.c.id)
    ).scalar_one()
    _set_tags(conn, rid, tag_list)
    named = {k for k, v in fields.items() if v and k not in INTERNAL_FIELDS}
    named |= {"tags"} if tag_list else set()
    named |= {"household"} if house is not None else set()
    audit.record(conn, ctx, "resident.add", "resident", rid, sorted(named))
    return rid


def _set_tags(conn, rid: int, tags) -> None:
    conn.execute(delete(resident_tags).where(resident_tags.c.resident_id == rid))
    if tags:
        cid = conn.execute(select(residents.c.community_id).where(residents.c.id == rid)).scalar_one()
        rows = [{"resident_id": rid, "tag": t, "community_id": cid} for t in sorted(set(tags))]
        conn.execute(insert(resident_tags), rows)


def tags_of(conn, rid: int) -> list[str]:
    rt = resident_tags.c
    return list(conn.scalars(select(rt.tag).where(rt.resident_id == rid).order_by(rt.tag)))


def _refuse_known_id(conn, ctx, id_number: str, except_id: int | None = None) -> None:
    """An ID number is registered once in the whole register. A namesake in this community is
    named (the staff may see it); one in another community is not, nor which community: on
    PostgreSQL a login cannot see it at all, and asks the database only whether it is taken."""
    r = residents.c
    other = conn.execute(select(r.id, r.name, r.community_id).where(r.id_number == id_number)).first()
    if other is not None and other.id != except_id:
        if other.community_id == ctx.community_id(conn):
            raise Conflict("register.id_number_taken", id=other.id, name=other.name)
        raise Conflict("access.id_number_elsewhere")
    if other is None and access.id_number_taken_elsewhere(conn, id_number):
        raise Conflict("access.id_number_elsewhere")


def _filled(**values) -> list[str]:
    return sorted(k for k, v in values.items() if v)


# --- changes ---------------------------------------------------------------------------------


def edit_resident(
    conn, ctx, ref, *, compound=None, address=None, liaison=None, add_tags=(), remove_tags=(), **raw
) -> int:
    """Change what is given; ``tags`` replaces the tags, ``add_tags``/``remove_tags`` adjust them.
    Moving to another address moves the resident into that household (whose liaison holds).
    Returns the resident's number."""
    found = lookup.resident(conn, ctx, ref)
    given = {k: v for k, v in raw.items() if v is not None}
    fields = identity.clean_resident_fields(ctx, **given)
    if fields.get("id_number"):
        _refuse_known_id(conn, ctx, fields["id_number"], except_id=found.id)
    changed = [k for k in fields if k not in ("name_pinyin", "name_initials", "tags")]
    tags = _new_tags(conn, ctx, found.id, fields.pop("tags", None), add_tags, remove_tags)
    if tags is not None:
        _set_tags(conn, found.id, tags)
        changed.append("tags")
    house = _current_household(found)
    if compound is not None or address is not None:
        house = household_at(
            conn,
            ctx,
            found.compound if compound is None and house else compound,
            found.address if address is None and house else address,
        )
        fields["household_id"] = house.id if house else None
        changed.append("household")
    if liaison:
        give_liaison(conn, ctx, house, lookup.staff_member(conn, ctx, liaison, "liaison"))
    if not changed and not liaison:
        raise InvalidValue("register.nothing_to_change", field="REF")
    _update_resident(conn, ctx, found.id, fields)
    audit.record(conn, ctx, "resident.edit", "resident", found.id, sorted(set(changed)))
    return found.id


def _current_household(found):
    """The household of a resident found by ``lookup.resident`` (a row of ``HOUSEHOLD``)."""
    if found.household_id is None:
        return None
    return _House(found.household_id, found.compound, found.address, found.liaison_id)


class _House(NamedTuple):
    id: int
    compound: str
    address: str
    liaison_id: int | None


def _update_resident(conn, ctx, rid: int, values: dict) -> None:
    """Every change to a resident's row counts its ``version`` up (as a request's does)."""
    conn.execute(
        update(residents)
        .where(residents.c.id == rid)
        .values(updated_at=ctx.now(), version=residents.c.version + 1, **values)
    )


def _new_tags(conn, ctx, rid: int, replace, add, remove) -> list[str] | None:
    if replace is None and not add and not remove:
        return None
    tags = set(replace if replace is not None else tags_of(conn, rid))
    tags |= set(identity.parse_tags(list(add), ctx.extra_tags))
    tags -= set(identity.parse_tags(list(remove), ctx.extra_tags))
    return sorted(tags)


def archive_resident(conn, ctx, ref, reason: str):
    """Returns the resident found (a row of ``lookup.RESIDENT``)."""
    found = lookup.resident(conn, ctx, ref)
    text = identity.normalize_text(reason, "reason")
    if not text:
        raise InvalidValue("value.empty", field="reason")
    if found.archived_at is not None:
        raise Conflict("register.already_archived", id=found.id, name=found.name)
    _update_resident(conn, ctx, found.id, {"archived_at": ctx.now(), "archive_reason": text})
    audit.record(conn, ctx, "resident.archive", "resident", found.id, ["archived", "archive_reason"])
    return found


def unarchive_resident(conn, ctx, ref):
    found = lookup.resident(conn, ctx, ref)
    if found.archived_at is None:
        raise Conflict("register.not_archived", id=found.id, name=found.name)
    _update_resident(conn, ctx, found.id, {"archived_at": None, "archive_reason": None})
    audit.record(conn, ctx, "resident.unarchive", "resident", found.id, ["archived"])
    return found


def find_household(conn, ctx, ref: str):
    """A household by "compound address", by address alone, or by one of its residents."""
    text = identity.normalize_text(ref, "household") or ""
    h = households.c
    query = select(*HOUSEHOLD).where(h.community_id == ctx.community_id(conn))
    parts = text.split(None, 1)
    found = []
    if len(parts) == 2:
        found = conn.execute(query.where(h.compound == parts[0], h.address == parts[1])).all()
    if not found:
        found = conn.execute(query.where(h.address == text)).all()
    if not found:
        house = _current_household(lookup.resident(conn, ctx, ref, "household"))
        if house is None:
            raise InvalidValue("register.liaison_needs_address", field="household")
        return house
    return lookup.one(found, "household", ref, lambda x: f"#{x.id} {describe_household(x)}")


def assign_household(conn, ctx, ref, staff_ref) -> tuple[str, str]:
    """Give a household a (new) liaison; returns (the household described, the liaison's name)."""
    house = find_household(conn, ctx, ref)
    member = lookup.staff_member(conn, ctx, staff_ref, "staff")
    give_liaison(conn, ctx, house, member, reassign=True)
    return describe_household(house), member.name


def list_households(conn, ctx, compound=None, liaison=None, no_liaison=False) -> list[dict]:
    r, h = residents.c, households.c
    members = (
        select(func.count(r.id))
        .where(r.household_id == h.id, r.archived_at.is_(None))
        .correlate(households)
        .scalar_subquery()
    )
    special = (
        select(func.count(func.distinct(r.id)))
        .join(resident_tags, resident_tags.c.resident_id == r.id)
        .where(
            r.household_id == h.id, r.archived_at.is_(None), resident_tags.c.tag.in_(identity.call_tags(ctx.extra_tags))
        )
        .correlate(households)
        .scalar_subquery()
    )
    query = (
        select(h.id, h.compound, h.address, staff.c.name, members, special)
        .outerjoin(staff, h.liaison_id == staff.c.id)
        .where(h.community_id == ctx.community_id(conn))
        .order_by(h.compound, h.address)
    )
    if compound:
        query = query.where(h.compound == identity.normalize_text(compound, "compound"))
    if liaison:
        query = query.where(h.liaison_id == lookup.staff_member(conn, ctx, liaison, "liaison").id)
    if no_liaison:
        query = query.where(h.liaison_id.is_(None))
    return [
        {"id": i, "compound": c, "address": a, "liaison": name, "members": m or 0, "special": sp or 0}
        for i, c, a, name, m, sp in conn.execute(query)
    ]
