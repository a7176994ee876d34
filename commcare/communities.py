"""Communities (社区): which one a command works in, and making, listing and renaming them
(the contract's *Communities*; docs/register.md).

A name is trimmed, NFC-normalised and its inner runs of white space made one space, so that
``"幸福社区 "`` and ``"幸福社区"`` are one community; an empty name or one with control
characters is refused (exit 2). A command works in the community its ``--community``
(``COMMCARE_COMMUNITY``, config ``community``) names; a name that is not in the register is
refused (exit 1) with the names that are. Named nowhere, a command works in the register's
only community; a register with several needs the name.

Communities are made on purpose: ``init`` (``--community NAME``, asked on a terminal) and
``community add``. The one exception is a register with no community at all: its first write
makes its first community (as named, else ``default``), so ``commcare resident add …`` on a
new laptop works without ``init``.

``conn`` is a Core connection or an ORM session: the queries are Core either way.
"""

from __future__ import annotations

import unicodedata

from commcare.errors import Conflict, InvalidValue, NotFound, Refused
from commcare.patterns import Pattern
from commcare.storage.sql import statement

DEFAULT = "default"  # the name of a community nobody named (config.DEFAULT_COMMUNITY)
LIMIT = 200  # the column's length
_CONTROL = Pattern(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def normalize(raw, field: str = "community") -> str:
    """A community's name as it is stored and compared: NFC, trimmed, inner white space one
    space. Empty, or holding a control character (a terminal escape, a line break): exit 2."""
    text = unicodedata.normalize("NFC", str(raw if raw is not None else ""))
    if _CONTROL.search(text):
        raise InvalidValue("value.control_chars", field=field)
    text = " ".join(text.split())
    if not text:
        raise InvalidValue("value.empty", field=field)
    if len(text) > LIMIT:
        raise InvalidValue("value.too_long", field=field, limit=LIMIT)
    return text


def named(ctx) -> str | None:
    """The community the command was told to use (option, environment or config), normalised;
    None when nothing named one."""
    return named_in(ctx.settings)


def named_in(settings) -> str | None:
    """``named`` for the settings alone."""
    if settings.sources.get("community", "default") == "default":
        return None
    return normalize(settings.community)


def rows(conn) -> list:
    """Every community (``id``, ``name``), oldest first."""
    return list(_rows().all(conn))


@statement
def _rows():
    from sqlalchemy import select

    from commcare.storage.tables import communities

    return select(communities.c.id, communities.c.name).order_by(communities.c.id)


@statement
def _by_name():
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import communities

    c = communities.c
    return select(c.id, c.name).where(c.name == bindparam("name", type_=c.name.type))


@statement
def _first_two():
    return _rows.construct(()).limit(2)


def find(conn, name: str, known: list | None = None):
    """The community called ``name`` (as given, else normalised), or None."""
    known = rows(conn) if known is None else known
    exact = [r for r in known if r.name == name]
    if exact:
        return exact[0]
    wanted = normalize(name)
    same = [r for r in known if _normal_or_none(r.name) == wanted]
    if len(same) > 1:
        raise Refused("community.ambiguous", name=wanted, known=_names(same))
    return same[0] if same else None


def _normal_or_none(name: str) -> str | None:
    try:
        return normalize(name)
    except InvalidValue:
        return None


def resolve(conn, ctx, create: bool = False):
    """The community this command works in (a row: ``id``, ``name``), or None for a read of a
    register that has none yet. ``create``: the command writes, and a register with no
    community gets its first here."""
    name = named(ctx)
    if name is not None:  # one look-up in the unique index: a city's other communities unread
        if (exact := _by_name().first(conn, name=name)) is not None:
            return exact
    else:
        first_two = list(_first_two().all(conn))
        if len(first_two) == 1:
            return first_two[0]
    known = rows(conn)  # a name given otherwise (normalised), none there, or several to name
    if name is not None:
        found = find(conn, name, known)
        if found is not None:
            return found
        if not known and create:
            return _insert(conn, ctx, name)
        raise _unknown(name, known)
    if len(known) == 1:
        return known[0]
    if known:
        raise Refused("community.which", known=_names(known))
    return _insert(conn, ctx, DEFAULT) if create else None


def _unknown(name: str, known: list) -> NotFound:
    if not known:
        return NotFound("community.unknown_none", name=name)
    return NotFound("community.unknown", name=name, known=_names(known))


def _names(known: list) -> str:
    return "、".join(r.name for r in known)


def _insert(conn, ctx, name: str):
    cid = _insert_community().scalar(conn, name=name, created_at=ctx.now())
    return _Row(cid, name)


@statement
def _insert_community():
    from sqlalchemy import bindparam, insert

    from commcare.storage.tables import communities

    c = communities.c
    values = {
        "name": bindparam("name", type_=c.name.type),
        "created_at": bindparam("created_at", type_=c.created_at.type),
    }
    return insert(communities).values(**values).returning(c.id)


class _Row(tuple):
    """A community row made here (the shape ``rows`` returns)."""

    def __new__(cls, cid: int, name: str):
        return super().__new__(cls, (cid, name))

    id = property(lambda self: self[0])
    name = property(lambda self: self[1])


# --- on purpose: init, community add / rename / list -----------------------------------------


def add(conn, ctx, raw_name: str) -> dict:
    """Make a community; a name the register already has (once normalised) is refused."""
    name = normalize(raw_name)
    if find(conn, name) is not None:
        raise Conflict("community.exists", name=name)
    row = _insert(conn, ctx, name)
    _audit(conn, ctx, row.id, "community.add")
    return {"id": row.id, "name": name}


def ensure(conn, ctx, raw_name: str | None) -> dict | None:
    """``init``'s community: ``raw_name`` made if the register does not have it; with no name,
    the register's first community (``default``) if it has none. None: nothing to make."""
    if raw_name is None:
        if rows(conn):
            return None
        raw_name = DEFAULT
    name = normalize(raw_name)
    found = find(conn, name)
    if found is not None:
        return {"id": found.id, "name": found.name, "created": False}
    return {**add(conn, ctx, name), "created": True}


def rename(conn, ctx, old: str, new: str) -> dict:
    """Give a community another name (its residents, staff and history stay with it)."""
    from sqlalchemy import update

    from commcare.storage.tables import communities

    known = rows(conn)
    found = find(conn, old, known) if old.strip() else None
    if found is None:
        raise _unknown(" ".join(str(old).split()) or str(old), known)
    name = normalize(new)
    clash = find(conn, name, known)
    if clash is not None and clash.id != found.id:
        raise Conflict("community.exists", name=name)
    conn.execute(update(communities).where(communities.c.id == found.id).values(name=name))
    _audit(conn, ctx, found.id, "community.rename")
    return {"id": found.id, "old": found.name, "name": name}


def listing(conn, ctx) -> list[dict]:
    """Every community with its number of (active) residents and staff."""
    from sqlalchemy import func, select

    from commcare.storage.tables import communities, residents, staff

    people = (
        select(residents.c.community_id, func.count().label("n"))
        .where(residents.c.archived_at.is_(None))
        .group_by(residents.c.community_id)
        .subquery()
    )
    workers = (
        select(staff.c.community_id, func.count().label("n"))
        .where(staff.c.active.is_(True))
        .group_by(staff.c.community_id)
        .subquery()
    )
    query = (
        select(
            communities.c.id,
            communities.c.name,
            communities.c.created_at,
            func.coalesce(people.c.n, 0),
            func.coalesce(workers.c.n, 0),
        )
        .outerjoin(people, people.c.community_id == communities.c.id)
        .outerjoin(workers, workers.c.community_id == communities.c.id)
        .order_by(communities.c.id)
    )
    from commcare.timeparse import iso

    return [
        {"id": cid, "name": name, "residents": n_res, "staff": n_staff, "created_at": iso(at, ctx.tz)}
        for cid, name, at, n_res, n_staff in conn.execute(query)
    ]


def _audit(conn, ctx, community_id: int, action: str) -> None:
    from commcare import audit

    ctx._community_id = community_id  # the entry belongs to the community it is about
    audit.record(conn, ctx, action, "community", community_id, ["name"])
