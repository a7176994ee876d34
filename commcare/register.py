"""The register (花名册): residents, households and staff, and how each is named.

A household is the residents at one address (compound + address) and has one fixed liaison.
A resident is named by number (``12``/``#12``), ID number, phone or name; a name (or a shared
phone) that matches several residents is refused, listing them.
"""

from __future__ import annotations

import re

from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from commcare import audit, identity, integrity, lookup
from commcare.errors import Conflict, InvalidValue
from commcare.models import Household, Resident, ResidentTag, Staff

INTERNAL_FIELDS = frozenset({"name_pinyin", "name_initials"})  # kept out of the audit trail


# --- staff -----------------------------------------------------------------------------------

def add_staff(s, ctx, name: str, phone: str | None = None, role: str | None = None) -> Staff:
    staff = Staff(
        community_id=ctx.community_id(s, create=True), name=identity.normalize_name(name),
        phone=identity.normalize_phone(phone) if phone else None,
        role=identity.normalize_text(role, "role", 100), active=True, created_at=ctx.now(),
    )
    s.add(staff)
    s.flush()
    audit.record(s, ctx, "staff.add", "staff", staff.id, _filled(phone=phone, role=role, name=name))
    return staff


def find_staff(s, ctx, ref: str, field: str = "staff") -> Staff:
    """The one staff member ``ref`` names (number, name or phone), as an ORM object."""
    return s.get(Staff, lookup.staff_member(s, ctx, ref, field).id)


def list_staff(s, ctx, include_inactive: bool = False) -> list[Staff]:
    query = select(Staff).where(Staff.community_id == ctx.community_id(s)).order_by(Staff.id)
    if not include_inactive:
        query = query.where(Staff.active.is_(True))
    return list(s.scalars(query))


def staff_row(staff: Staff, unmask: bool = False) -> dict:
    return {"id": staff.id, "name": staff.name,
            "phone": staff.phone if unmask else identity.mask_phone(staff.phone),
            "role": staff.role, "active": staff.active}


# --- households ------------------------------------------------------------------------------

def household_at(s, ctx, compound: str | None, address: str | None, create: bool = True) -> Household | None:
    compound = identity.normalize_text(compound, "compound", 200) or ""
    address = identity.normalize_text(address, "address", 300) or ""
    if not compound and not address:
        return None
    community_id = ctx.community_id(s, create=create)
    house = s.scalar(select(Household).where(
        Household.community_id == community_id, Household.compound == compound,
        Household.address == address))
    if house is None and create:
        house = Household(community_id=community_id, compound=compound, address=address, created_at=ctx.now())
        s.add(house)
        s.flush()
    return house


def give_liaison(s, ctx, house: Household | None, staff: Staff | None, reassign: bool = False) -> None:
    """Set a household's liaison. A different liaison than the one it has is refused unless
    ``reassign`` (``household assign``): one fixed liaison per household."""
    if staff is None:
        return
    if house is None:
        raise InvalidValue("register.liaison_needs_address", field="liaison")
    if house.liaison_id not in (None, staff.id) and not reassign:
        current = s.get(Staff, house.liaison_id)
        raise Conflict("register.household_has_liaison", address=describe_household(house),
                       liaison=current.name if current else house.liaison_id, wanted=staff.name)
    if house.liaison_id != staff.id:
        house.liaison_id = staff.id
        audit.record(s, ctx, "household.assign", "household", house.id, ["liaison"], detail=f"staff #{staff.id}")


def describe_household(house: Household | None) -> str:
    if house is None:
        return ""
    return " ".join(p for p in (house.compound, house.address) if p)


# --- residents -------------------------------------------------------------------------------

def add_resident(s, ctx, name: str, *, phone=None, id_number=None, sex=None, born=None,
                 compound=None, address=None, tags=(), liaison=None, emergency_contact=None,
                 note=None) -> Resident:
    fields = clean_resident_fields(ctx, name=name, phone=phone, id_number=id_number, sex=sex, born=born,
                                   tags=list(tags), emergency_contact=emergency_contact, note=note)
    if fields.get("id_number"):
        _refuse_known_id(s, fields["id_number"])
    staff = find_staff(s, ctx, liaison, "liaison") if liaison else None
    house = household_at(s, ctx, compound, address)
    give_liaison(s, ctx, house, staff)
    tag_list = fields.pop("tags")
    now = ctx.now()
    resident = Resident(community_id=ctx.community_id(s, create=True), household=house,
                        created_at=now, updated_at=now, **fields)
    resident.tags = [ResidentTag(tag=t) for t in tag_list]
    s.add(resident)
    s.flush()
    named = {k for k, v in fields.items() if v and k not in INTERNAL_FIELDS}
    named |= {"tags"} if tag_list else set()
    named |= {"household"} if house is not None else set()
    audit.record(s, ctx, "resident.add", "resident", resident.id, sorted(named))
    return resident


# The rules for a resident's fields live with the other normalising rules, where an import
# checks a roster column by column without loading the ORM.
clean_resident_fields = identity.clean_resident_fields
parse_emergency_contact = identity.parse_emergency_contact


def _refuse_known_id(s, id_number: str, except_id: int | None = None) -> None:
    other = s.scalar(select(Resident).where(Resident.id_number == id_number))
    if other is not None and other.id != except_id:
        raise Conflict("register.id_number_taken", id=other.id, name=other.name)


def find_resident(s, ctx, ref: str, field: str = "resident") -> Resident:
    """The one resident ``ref`` names (number, ID number, phone or name), as an ORM object."""
    return s.get(Resident, lookup.resident(s, ctx, ref, field).id)


def describe_resident(r: Resident) -> str:
    house = r.household
    return lookup.describe(r.id, r.name, house and house.compound, house and house.address)


def list_residents(s, ctx, tag=None, compound=None, liaison=None, search=None,
                   archived: bool = False, limit: int | None = None) -> list[Resident]:
    """The residents that match, after checking that the register reads whole
    (``integrity.verify``: the active residents, and those of ``tag``; exit 3 if not)."""
    slug = identity.parse_tag(tag, ctx.extra_tags) if tag else None
    integrity.verify(s, ctx.community_id(s), [slug] if slug else ())
    query = (select(Resident).where(Resident.community_id == ctx.community_id(s))
             .options(selectinload(Resident.tags), selectinload(Resident.household).selectinload(Household.liaison))
             .order_by(Resident.id))
    query = query.where(Resident.archived_at.is_not(None) if archived else Resident.archived_at.is_(None))
    if slug:
        query = query.where(Resident.id.in_(select(ResidentTag.resident_id).where(ResidentTag.tag == slug)))
    if compound:
        query = query.join(Household, Resident.household_id == Household.id).where(
            Household.compound == identity.normalize_text(compound, "compound"))
    if liaison:
        staff = find_staff(s, ctx, liaison, "liaison")
        query = query.where(Resident.household_id.in_(select(Household.id).where(Household.liaison_id == staff.id)))
    if search:
        query = query.where(search_clause(search))
    if limit:
        query = query.limit(limit)
    return list(s.scalars(query))


def search_clause(text: str):
    """Name, pinyin or pinyin initials (``zgl`` finds 张桂兰), phone digits: an indexed
    prefix range on the stored keys, not a scan in Python."""
    raw = identity.nfkc(text).strip()
    low = raw.lower().replace(" ", "")
    if re.fullmatch(r"[a-z]+", low, re.ASCII):
        return or_(_prefix(Resident.name_initials, low), _prefix(Resident.name_pinyin, low))
    if re.fullmatch(r"[0-9]{3,}", low, re.ASCII):
        return Resident.phone.contains(low, autoescape=True)
    return Resident.name.contains(identity.normalize_name(text, "search"), autoescape=True)


def _prefix(column, prefix: str):
    return (column >= prefix) & (column < prefix[:-1] + chr(ord(prefix[-1]) + 1))


def resident_row(r: Resident, tz, unmask: bool = False) -> dict:
    """A resident as lists, exports and JSON show it (phones masked unless ``unmask``)."""
    from commcare.timeparse import iso

    house = r.household
    liaison = house.liaison if house is not None else None
    phone = r.phone if unmask else identity.mask_phone(r.phone)
    emergency_phone = r.emergency_phone if unmask else identity.mask_phone(r.emergency_phone)
    row = {
        "id": r.id, "name": r.name, "sex": r.sex, "born": r.born.isoformat() if r.born else None,
        "phone": phone, "compound": house.compound if house else None,
        "address": house.address if house else None, "tags": [t.tag for t in r.tags],
        "liaison": liaison.name if liaison else None,
        "emergency_contact": " ".join(p for p in (r.emergency_name, emergency_phone) if p) or None,
        "note": r.note, "archived": r.archived_at is not None,
        "archive_reason": r.archive_reason, "created_at": iso(r.created_at, tz),
    }
    if unmask:
        row["id_number"] = r.id_number
    return row


def count_residents(s, ctx) -> int:
    return s.scalar(select(func.count()).select_from(Resident).where(
        Resident.community_id == ctx.community_id(s))) or 0


def _filled(**values) -> list[str]:
    return sorted(k for k, v in values.items() if v)


# --- changes ---------------------------------------------------------------------------------

def edit_resident(s, ctx, ref, *, compound=None, address=None, liaison=None, add_tags=(),
                  remove_tags=(), **raw) -> Resident:
    """Change what is given; ``tags`` replaces the tags, ``add_tags``/``remove_tags`` adjust them.
    Moving to another address moves the resident into that household (whose liaison holds)."""
    resident = find_resident(s, ctx, ref)
    given = {k: v for k, v in raw.items() if v is not None}
    fields = clean_resident_fields(ctx, **given)
    if fields.get("id_number"):
        _refuse_known_id(s, fields["id_number"], except_id=resident.id)
    changed = [k for k in fields if k not in ("name_pinyin", "name_initials", "tags")]
    tags = _new_tags(ctx, resident, fields.pop("tags", None), add_tags, remove_tags)
    if tags is not None:
        resident.tags = [ResidentTag(tag=t) for t in tags]
        changed.append("tags")
    for key, value in fields.items():
        setattr(resident, key, value)
    if compound is not None or address is not None:
        house = resident.household
        resident.household = household_at(s, ctx, house.compound if compound is None and house else compound,
                                           house.address if address is None and house else address)
        changed.append("household")
    if liaison:
        give_liaison(s, ctx, resident.household, find_staff(s, ctx, liaison, "liaison"))
    if not changed and not liaison:
        raise InvalidValue("register.nothing_to_change", field="REF")
    resident.updated_at = ctx.now()
    s.flush()
    audit.record(s, ctx, "resident.edit", "resident", resident.id, sorted(set(changed)))
    return resident


def _new_tags(ctx, resident, replace, add, remove) -> list[str] | None:
    if replace is None and not add and not remove:
        return None
    tags = set(replace if replace is not None else (t.tag for t in resident.tags))
    tags |= set(identity.parse_tags(list(add), ctx.extra_tags))
    tags -= set(identity.parse_tags(list(remove), ctx.extra_tags))
    return sorted(tags)


def archive_resident(s, ctx, ref, reason: str) -> Resident:
    resident = find_resident(s, ctx, ref)
    reason = identity.normalize_text(reason, "reason")
    if not reason:
        raise InvalidValue("value.empty", field="reason")
    if resident.archived_at is not None:
        raise Conflict("register.already_archived", id=resident.id, name=resident.name)
    resident.archived_at, resident.archive_reason, resident.updated_at = ctx.now(), reason, ctx.now()
    audit.record(s, ctx, "resident.archive", "resident", resident.id, ["archived", "archive_reason"])
    return resident


def unarchive_resident(s, ctx, ref) -> Resident:
    resident = find_resident(s, ctx, ref)
    if resident.archived_at is None:
        raise Conflict("register.not_archived", id=resident.id, name=resident.name)
    resident.archived_at = resident.archive_reason = None
    audit.record(s, ctx, "resident.unarchive", "resident", resident.id, ["archived"])
    return resident


def edit_staff(s, ctx, ref, name=None, phone=None, role=None, active=None) -> Staff:
    staff = find_staff(s, ctx, ref)
    changed = []
    if name is not None:
        staff.name = identity.normalize_name(name)
        changed.append("name")
    if phone is not None:
        staff.phone = identity.normalize_phone(phone) if phone.strip() else None
        changed.append("phone")
    if role is not None:
        staff.role = identity.normalize_text(role, "role", 100)
        changed.append("role")
    if active is not None:
        staff.active = active
        changed.append("active")
    if not changed:
        raise InvalidValue("register.nothing_to_change", field="REF")
    audit.record(s, ctx, "staff.edit", "staff", staff.id, changed)
    return staff


def find_household(s, ctx, ref: str) -> Household:
    """A household by "compound address", by address alone, or by one of its residents."""
    text = identity.normalize_text(ref, "household") or ""
    query = select(Household).where(Household.community_id == ctx.community_id(s))
    parts = text.split(None, 1)
    found = []
    if len(parts) == 2:
        found = s.scalars(query.where(Household.compound == parts[0], Household.address == parts[1])).all()
    if not found:
        found = s.scalars(query.where(Household.address == text)).all()
    if not found:
        resident = find_resident(s, ctx, ref, "household")
        if resident.household is None:
            raise InvalidValue("register.liaison_needs_address", field="household")
        return resident.household
    return lookup.one(found, "household", ref, lambda h: f"#{h.id} {describe_household(h)}")


def assign_household(s, ctx, ref, staff_ref) -> Household:
    house = find_household(s, ctx, ref)
    give_liaison(s, ctx, house, find_staff(s, ctx, staff_ref, "staff"), reassign=True)
    return house


def list_households(s, ctx, compound=None, liaison=None, no_liaison=False) -> list[dict]:
    members = (select(func.count(Resident.id)).where(Resident.household_id == Household.id, Resident.archived_at.is_(None))
               .correlate(Household).scalar_subquery())
    special = (select(func.count(func.distinct(Resident.id))).join(ResidentTag, ResidentTag.resident_id == Resident.id)
               .where(Resident.household_id == Household.id, Resident.archived_at.is_(None),
                      ResidentTag.tag.in_(identity.call_tags(ctx.extra_tags))).correlate(Household).scalar_subquery())
    query = (select(Household.id, Household.compound, Household.address, Staff.name, members, special)
             .outerjoin(Staff, Household.liaison_id == Staff.id)
             .where(Household.community_id == ctx.community_id(s)).order_by(Household.compound, Household.address))
    if compound:
        query = query.where(Household.compound == identity.normalize_text(compound, "compound"))
    if liaison:
        query = query.where(Household.liaison_id == find_staff(s, ctx, liaison, "liaison").id)
    if no_liaison:
        query = query.where(Household.liaison_id.is_(None))
    return [{"id": i, "compound": c, "address": a, "liaison": l, "members": m or 0, "special": sp or 0}
            for i, c, a, l, m, sp in s.execute(query)]
