"""Whether the register was read whole: the counts kept beside the data, and their check.

``register_counts`` holds, for each community, the number of active (not archived) residents
(tag ``*``) and, for each tag, how many of them carry it. Triggers in the database keep it
(``install``): every write path — the editing commands, a bulk import, the demo, a hand-made
SQL statement — changes it in the same statement as the rows it counts, so no code path can
forget it, and a failed write changes neither.

``verify`` reads the same things again the way the commands read them and compares. The
lists and the export walk the whole residents table: a lost leaf, a child page that is not
what its parent says, a record whose community or archive field was garbled — SQLite raises
SQLITE_CORRUPT or the count differs. The daily round and the reports find the residents of
the special groups from the tag index and fetch each by its key: so does the check, and an
interior page whose keys were garbled, which sends a look-up astray without any error from
SQLite, makes the count differ. A difference raises ``Damaged`` (exit 3, naming
``commcare db check``).

On SQLite a table rebuilt by a batch migration (copy, DROP, rename) loses its triggers, and
cannot even be renamed while another table's trigger names it: the migration runner
(``commcare.db``) sets the triggers aside while a migration runs and puts them back after.
"""

from __future__ import annotations

from commcare.errors import Damaged
from commcare.storage.sql import statement

ALL = "*"  # the tag under which a community's count of active residents is kept

# SQLite: one trigger per change. The resident's own delete runs BEFORE the row goes, while
# its tags are still there; the tags that ON DELETE CASCADE removes afterwards no longer find
# their resident and change nothing.
_UPSERT = "ON CONFLICT (community_id, tag) DO UPDATE SET residents = residents + 1"
_SQLITE = {
    "register_counts_resident_insert": f"""
        AFTER INSERT ON residents WHEN NEW.archived_at IS NULL BEGIN
          INSERT INTO register_counts (community_id, tag, residents) VALUES (NEW.community_id, '{ALL}', 1)
          {_UPSERT};
        END""",
    "register_counts_resident_delete": f"""
        BEFORE DELETE ON residents WHEN OLD.archived_at IS NULL BEGIN
          UPDATE register_counts SET residents = residents - 1 WHERE community_id = OLD.community_id
            AND (tag = '{ALL}' OR tag IN (SELECT tag FROM resident_tags WHERE resident_id = OLD.id));
        END""",
    "register_counts_resident_update": f"""
        AFTER UPDATE OF archived_at, community_id ON residents
        WHEN (OLD.archived_at IS NULL) <> (NEW.archived_at IS NULL) OR OLD.community_id <> NEW.community_id
        BEGIN
          UPDATE register_counts SET residents = residents - 1
           WHERE OLD.archived_at IS NULL AND community_id = OLD.community_id
             AND (tag = '{ALL}' OR tag IN (SELECT tag FROM resident_tags WHERE resident_id = OLD.id));
          INSERT INTO register_counts (community_id, tag, residents)
            SELECT NEW.community_id, tag, 1
              FROM (SELECT '{ALL}' AS tag UNION ALL SELECT tag FROM resident_tags WHERE resident_id = NEW.id)
             WHERE NEW.archived_at IS NULL
            {_UPSERT};
        END""",
    "register_counts_tag_insert": f"""
        AFTER INSERT ON resident_tags BEGIN
          INSERT INTO register_counts (community_id, tag, residents)
            SELECT community_id, NEW.tag, 1 FROM residents WHERE id = NEW.resident_id AND archived_at IS NULL
            {_UPSERT};
        END""",
    "register_counts_tag_delete": """
        AFTER DELETE ON resident_tags BEGIN
          UPDATE register_counts SET residents = residents - 1 WHERE tag = OLD.tag
             AND community_id = (SELECT community_id FROM residents WHERE id = OLD.resident_id AND archived_at IS NULL);
        END""",
    "register_counts_tag_update": f"""
        AFTER UPDATE ON resident_tags BEGIN
          UPDATE register_counts SET residents = residents - 1 WHERE tag = OLD.tag
             AND community_id = (SELECT community_id FROM residents WHERE id = OLD.resident_id AND archived_at IS NULL);
          INSERT INTO register_counts (community_id, tag, residents)
            SELECT community_id, NEW.tag, 1 FROM residents WHERE id = NEW.resident_id AND archived_at IS NULL
            {_UPSERT};
        END""",
}

# PostgreSQL: the inserts (a bulk import, the demo) are counted once per statement from its
# transition table; the rest row by row, as on SQLite.
_PG_ADD = "ON CONFLICT (community_id, tag) DO UPDATE SET residents = register_counts.residents + EXCLUDED.residents"
_PG_FUNCTIONS = {
    "register_counts_residents_added": f"""
        INSERT INTO register_counts (community_id, tag, residents)
          SELECT community_id, '{ALL}', count(*) FROM added WHERE archived_at IS NULL GROUP BY community_id
          {_PG_ADD};
        RETURN NULL;""",
    # Each added tag's resident is fetched by its key (a scalar subquery is never made a
    # join): as a join, the planner, with no statistics for the transition table, hashed a
    # sequential scan of every community's residents for each statement, a bulk load's every
    # chunk of tags included (0009_tag_counts_by_key, bench/results.md). OFFSET 0 keeps the
    # subquery whole, so each resident is fetched once, not once per mention.
    "register_counts_tags_added": f"""
        INSERT INTO register_counts (community_id, tag, residents)
          SELECT k.community_id, k.tag, count(*) FROM (
            SELECT (SELECT r.community_id FROM residents r WHERE r.id = a.resident_id AND r.archived_at IS NULL)
                     AS community_id, a.tag
              FROM added a OFFSET 0) k
           WHERE k.community_id IS NOT NULL GROUP BY k.community_id, k.tag
          {_PG_ADD};
        RETURN NULL;""",
    "register_counts_resident_gone": f"""
        IF OLD.archived_at IS NULL THEN
          UPDATE register_counts SET residents = residents - 1 WHERE community_id = OLD.community_id
             AND (tag = '{ALL}' OR tag IN (SELECT tag FROM resident_tags WHERE resident_id = OLD.id));
        END IF;
        RETURN OLD;""",
    "register_counts_resident_moved": f"""
        IF OLD.archived_at IS NULL THEN
          UPDATE register_counts SET residents = residents - 1 WHERE community_id = OLD.community_id
             AND (tag = '{ALL}' OR tag IN (SELECT tag FROM resident_tags WHERE resident_id = OLD.id));
        END IF;
        IF NEW.archived_at IS NULL THEN
          INSERT INTO register_counts (community_id, tag, residents)
            SELECT NEW.community_id, t.tag, 1
              FROM (SELECT '{ALL}' AS tag UNION ALL SELECT tag FROM resident_tags WHERE resident_id = NEW.id) t
            {_PG_ADD};
        END IF;
        RETURN NULL;""",
    "register_counts_tag_changed": f"""
        IF TG_OP IN ('DELETE', 'UPDATE') THEN
          UPDATE register_counts SET residents = residents - 1 WHERE tag = OLD.tag
             AND community_id = (SELECT community_id FROM residents WHERE id = OLD.resident_id AND archived_at IS NULL);
        END IF;
        IF TG_OP = 'UPDATE' THEN
          INSERT INTO register_counts (community_id, tag, residents)
            SELECT community_id, NEW.tag, 1 FROM residents WHERE id = NEW.resident_id AND archived_at IS NULL
            {_PG_ADD};
        END IF;
        RETURN NULL;""",
}
_PG_TRIGGERS = {
    "register_counts_resident_insert": (
        "AFTER INSERT ON residents REFERENCING NEW TABLE AS added FOR EACH STATEMENT",
        "register_counts_residents_added",
    ),
    "register_counts_resident_delete": ("BEFORE DELETE ON residents FOR EACH ROW", "register_counts_resident_gone"),
    "register_counts_resident_update": (
        (
            "AFTER UPDATE OF archived_at, community_id ON residents FOR EACH ROW "
            "WHEN ((OLD.archived_at IS NULL) <> (NEW.archived_at IS NULL) OR OLD.community_id <> NEW.community_id)"
        ),
        "register_counts_resident_moved",
    ),
    "register_counts_tag_insert": (
        "AFTER INSERT ON resident_tags REFERENCING NEW TABLE AS added FOR EACH STATEMENT",
        "register_counts_tags_added",
    ),
    "register_counts_tag_change": (
        "AFTER DELETE OR UPDATE ON resident_tags FOR EACH ROW",
        "register_counts_tag_changed",
    ),
}


def install(conn) -> None:
    """Create the counting triggers that are missing (all of them on a new database)."""
    if conn.dialect.name == "sqlite":
        for name, body in _SQLITE.items():
            conn.exec_driver_sql(f"CREATE TRIGGER IF NOT EXISTS {name} {body}")
        return
    for name, body in _PG_FUNCTIONS.items():
        conn.exec_driver_sql(
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} END $$"
        )
    present = set(
        conn.exec_driver_sql(
            "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'register_counts%%' AND NOT tgisinternal"
        ).scalars()
    )
    for name, (when, function) in _PG_TRIGGERS.items():
        if name not in present:
            conn.exec_driver_sql(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION {function}()")


def uninstall(conn) -> None:
    if conn.dialect.name == "sqlite":
        for name in _SQLITE:
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
        return
    for name, (when, _) in _PG_TRIGGERS.items():
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name} ON {when.split(' ON ')[1].split()[0]}")
    for name in _PG_FUNCTIONS:
        conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {name}()")


def recount(conn) -> None:
    """Count the register afresh into ``register_counts`` (a new or migrated database)."""
    from sqlalchemy import func, select

    from commcare.storage.tables import register_counts, resident_tags, residents

    r, t = residents.c, resident_tags.c
    conn.execute(register_counts.delete())
    active = select(r.community_id, func.count()).where(r.archived_at.is_(None)).group_by(r.community_id)
    tagged = (
        select(r.community_id, t.tag, func.count())
        .select_from(resident_tags.join(residents, r.id == t.resident_id))
        .where(r.archived_at.is_(None))
        .group_by(r.community_id, t.tag)
    )
    rows = [{"community_id": c, "tag": ALL, "residents": n} for c, n in conn.execute(active)]
    rows += [{"community_id": c, "tag": tag, "residents": n} for c, tag, n in conn.execute(tagged)]
    if rows:
        conn.execute(register_counts.insert(), rows)


def verify(conn, cid: int | None, tags=(), everyone: bool = True) -> None:
    """Raise ``Damaged`` unless the community's active residents (``everyone``), and those
    carrying each of ``tags``, read now as many as the register keeps (see the module's
    docstring). The daily round and the reports, which read the special groups alone, ask
    for their tags only: every page they read is read by the check of the tags, and walking
    the whole table besides would add a third to the check's cost."""
    if cid is None:
        return
    for tag, read, kept in compare(conn, cid, tags, everyone):
        if read != kept:
            raise Damaged("integrity.counts_differ", what=label(tag), read=read, kept=kept)
    garbled = unreadable_since(conn, cid, tags)
    if garbled:
        raise Damaged("integrity.garbled_since", count=garbled)


def of_community(dialect, column, cid):
    """``column = cid`` as the round, the reports and their check ask it. On SQLite no index
    may serve it (``+ 0``): the plan starts from the special groups on the tag index, not from
    the whole register in name order. On PostgreSQL the planner chooses from the statistics,
    and in a city it starts from the community's own residents: starting from the tag index
    would read every community's special groups for one community (docs/scale.md).

    ``dialect``: its name (a declared statement's shape) or a connection; ``cid``: a value or
    a ``bindparam``."""
    name = dialect if isinstance(dialect, str) else dialect.dialect.name
    if name == "sqlite":
        return column + 0 == cid
    return column == cid


def verify_all(conn, cids: list[int], tags=()) -> None:
    """``verify`` of every community in ``cids`` for ``tags`` (not everyone): the summary of
    all communities checks each before it counts. On PostgreSQL in one statement that counts
    the whole city's tagged residents once, by community and tag, against the kept counts (a
    statement per community costs each a pass over its residents); on SQLite community by
    community, as each community's own report checks it."""
    if conn.dialect.name != "postgresql":
        for cid in cids:
            verify(conn, cid, tags, everyone=False)
        return
    wanted = sorted(set(tags) - {ALL})
    if not wanted or not cids:
        return
    first = _city_differs().first(conn, cids=list(cids), tags=wanted)
    if first is not None:
        raise Damaged("integrity.counts_differ", what=label(first[0]), read=first[1], kept=first[2])


@statement
def _city_differs():
    """``verify_all`` on PostgreSQL: the first (tag, read, kept) of the communities ``cids`` and
    the tags ``tags`` whose fresh count differs from the kept one."""
    from sqlalchemy import and_, bindparam, func, select

    from commcare.storage.tables import register_counts, resident_tags, residents

    r, t, k = residents.c, resident_tags.c, register_counts.c
    cids, tags = bindparam("cids", expanding=True), bindparam("tags", expanding=True)
    counted = (
        select(r.community_id, t.tag, func.count().label("n"))
        .select_from(resident_tags.join(residents, r.id == t.resident_id))
        .where(t.community_id.in_(cids), t.tag.in_(tags), r.archived_at.is_(None), r.community_id.in_(cids))
        .group_by(r.community_id, t.tag)
        .subquery()
    )
    kept = select(k.community_id, k.tag, k.residents).where(k.tag.in_(tags), k.community_id.in_(cids)).subquery()
    same = and_(counted.c.community_id == kept.c.community_id, counted.c.tag == kept.c.tag)
    read_n, kept_n = func.coalesce(counted.c.n, 0), func.coalesce(kept.c.residents, 0)
    return (
        select(func.coalesce(counted.c.tag, kept.c.tag), read_n, kept_n)
        .select_from(counted.join(kept, same, full=True))
        .where(read_n != kept_n)
        .limit(1)
    )


def unreadable_since(conn, cid: int, tags=()) -> int:
    """SQLite: how many active residents carrying one of ``tags`` have a registration time
    that is not a time. The daily round and the reports leave out residents registered
    after the day they cover, by comparing that text: a garbled time compares as later than
    any day, and the resident would drop out of the round with every count still right.
    (PostgreSQL stores a typed timestamp: nothing to check.)"""
    if not tags or conn.dialect.name != "sqlite":
        return 0
    return int(_unreadable().scalar_one(conn, cid=cid, tags=sorted(set(tags) - {ALL})))


@statement
def _unreadable():
    """``unreadable_since`` (SQLite only)."""
    from sqlalchemy import bindparam, func, select

    from commcare.storage.tables import resident_tags, residents

    r, t = residents.c, resident_tags.c
    joined = resident_tags.join(residents, r.id == t.resident_id)
    return (
        select(func.count(func.distinct(r.id)))
        .select_from(joined)
        .where(
            t.community_id == bindparam("cid"),
            t.tag.in_(bindparam("tags", expanding=True)),
            r.community_id + 0 == bindparam("cid"),
            r.archived_at.is_(None),
            func.datetime(r.created_at).is_(None),
        )
    )


def compare(conn, cid: int, tags=(), everyone: bool = True) -> list[tuple[str, int, int]]:
    """(tag, as read now, as kept) for all active residents (tag ``*``, when ``everyone``)
    and for each of ``tags``, in one
    statement: one snapshot on PostgreSQL, where a write committed between two statements
    would otherwise look like a difference.

    On SQLite ``community_id + 0`` is served by no index: the active residents are counted by
    walking the table itself, and the tagged ones are found from the tag index
    (ix_resident_tags_community_tag) and fetched by key, as ``call due`` and the reports do. On
    PostgreSQL the planner is free to start from the community, as they are too
    (``of_community``)."""
    tags = [ALL] * everyone + sorted(set(tags) - {ALL})
    values = {f"tag{i}": tag for i, tag in enumerate(tags[everyone:])}
    row = _compare(conn.dialect.name, len(tags) - everyone, bool(everyone)).one(conn, cid=cid, **values)
    return [(tag, row[i], row[len(tags) + i]) for i, tag in enumerate(tags)]


@statement
def _compare(dialect: str, n_tags: int, everyone: bool):
    """``compare``'s one statement: everyone (tag ``*``) if asked, and ``n_tags`` tags (``tag0`` …)."""
    from sqlalchemy import bindparam, func, select

    from commcare.storage.tables import register_counts, resident_tags, residents

    r, t, k = residents.c, resident_tags.c, register_counts.c
    cid = bindparam("cid", type_=r.community_id.type)
    mine = (of_community(dialect, r.community_id, cid), r.archived_at.is_(None))
    tagged = [bindparam(f"tag{i}", type_=t.tag.type) for i in range(n_tags)]
    tags = [ALL] * everyone + tagged
    joined = resident_tags.join(residents, r.id == t.resident_id)
    read: list = [select(func.count()).select_from(residents).where(*mine).scalar_subquery()] * everyone
    if dialect == "sqlite":
        read += [
            select(func.count()).select_from(joined).where(t.community_id == cid, t.tag == tag, *mine).scalar_subquery()
            for tag in tagged
        ]
    elif tagged:
        # PostgreSQL: the community's tagged residents counted in one pass, by tag (a CTE,
        # computed once): a pass per tag re-read the community's residents for each
        counted = (
            select(t.tag, func.count().label("n"))
            .select_from(joined)
            .where(t.community_id == cid, t.tag.in_(tagged), *mine)
            .group_by(t.tag)
            .cte("counted")
        )
        read += [func.coalesce(select(counted.c.n).where(counted.c.tag == tag).scalar_subquery(), 0) for tag in tagged]
    kept = [
        func.coalesce(select(k.residents).where(k.community_id == cid, k.tag == tag).scalar_subquery(), 0)
        for tag in tags
    ]
    return select(*read, *kept)


def differences(conn) -> list[str]:
    """Every community and tag whose kept count differs from a fresh count (``db check``)."""
    from sqlalchemy import select

    from commcare.storage.tables import communities, register_counts, resident_tags

    t = resident_tags.c
    problems = []
    for cid, name in conn.execute(select(communities.c.id, communities.c.name).order_by(communities.c.id)):
        tags = (
            conn.execute(
                select(register_counts.c.tag)
                .where(register_counts.c.community_id == cid)
                .union(select(t.tag).where(t.community_id == cid))
            )
            .scalars()
            .all()
        )
        problems += [
            f"{name}: {label(tag)} {read} != {kept}" for tag, read, kept in compare(conn, cid, tags) if read != kept
        ]
        garbled = unreadable_since(conn, cid, tags)
        if garbled:
            problems.append(f"{name}: created_at garbled ({garbled})")
    strays = misfiled_tags(conn)
    if strays:
        from commcare.i18n import t as _t

        problems.append(_t("integrity.misfiled_tags", count=strays))
    return problems


def misfiled_tags(conn) -> int:
    """How many tags carry a community other than their resident's (``db check``). Every write
    path sets a tag's community from its resident (migration 0007 filled the tags before it);
    a tag filed under another community would drop its resident out of that community's round,
    and the check of the counts (which reads the tags by their community and the resident by
    theirs, as the round does) would tell the difference without naming its cause."""
    from sqlalchemy import func, select

    from commcare.storage.tables import resident_tags, residents

    t, r = resident_tags.c, residents.c
    joined = resident_tags.join(residents, r.id == t.resident_id)
    return int(
        conn.execute(select(func.count()).select_from(joined).where(t.community_id != r.community_id)).scalar_one()
    )


def label(tag: str) -> str:
    from commcare.i18n import t

    return t("integrity.all_residents") if tag == ALL else tag
