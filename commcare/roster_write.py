"""The second step of an import (see ``commcare.importer``): the checks that need the register,
and the bulk inserts, in the caller's one write transaction.

Core only (the ORM is never loaded): households, residents and tags go in with one
executemany per table and per chunk of rows. On SQLite the driver's own executemany is used,
with each value already in the form its column type stores (``UTCDateTime``'s text in UTC,
``Date``'s ISO text), computed once per distinct value; elsewhere Core ``insert()``.
"""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import bindparam, func, insert, select, update

from commcare import audit
from commcare.errors import ImportRejected
from commcare.importer import CHUNK, RESIDENT_COLUMNS, Checked, _t
from commcare.tables import households, resident_tags, residents, staff


def import_roster(conn, ctx, checked: Checked, source: str, dry_run=False, skip_invalid=False,
                  progress=None) -> dict:
    """Check the rows against the register and, unless ``dry_run``, write the valid ones, in
    the caller's one transaction (``conn``: a Core connection). Any invalid row refuses the
    whole file unless ``skip_invalid``."""
    found = plan(conn, ctx, checked)
    lines = [_t("roster.problem", row=r, problem=p if p.startswith(f"{f}:") else f"{f}: {p}")
             for r, f, p in sorted(found.problems)]
    if found.problems and not skip_invalid:
        raise ImportRejected("roster.rejected", problems=lines, count=len(found.problems))
    summary = {"valid": len(found.rows), "invalid": len(found.problems), "problems": lines,
               "unknown_columns": checked.unknown, "imported": 0, "dry_run": dry_run}
    if not dry_run:
        summary.update(write(conn, ctx, checked, found, source, progress))
    return summary


class Plan:
    """Which checked rows go in (indexes into the columns), the problems found, and the
    households they form: (compound, address) -> liaison id."""

    def __init__(self, checked: Checked, known: dict) -> None:
        self.rows: list[int] = []
        self.problems: list[tuple[int, str, str]] = list(checked.problems)
        self.households: dict[tuple[str, str], int | None] = {}
        self.known = known  # the register's households: (compound, address) -> (id, liaison id)


def plan(conn, ctx, checked: Checked) -> Plan:
    """Refuse rows naming an unknown liaison, an ID number already registered, or a liaison other
    than their household's (in the register or in an earlier row)."""
    cid = ctx.community_id(conn)
    out = Plan(checked, _known_households(conn, cid))
    by_name = _staff_by_name(conn, cid)
    cols = checked.columns
    if not checked.numbers:
        return out
    taken = _registered_ids(conn, [n for n in cols["id_number"] if n])
    rows = zip(checked.numbers, cols["liaison"], cols["id_number"], cols["compound"], cols["address"])
    for i, (number, liaison, id_number, compound, address) in enumerate(rows):
        liaison_id = None
        if liaison:
            found = by_name.get(liaison, ())
            if len(found) != 1:
                key = "roster.unknown_liaison" if not found else "roster.ambiguous_liaison"
                out.problems.append((number, "liaison", _t(key, name=liaison)))
                continue
            liaison_id = found[0]
        if id_number in taken:
            out.problems.append((number, "id_number", _t("roster.id_registered")))
            continue
        if _household_refuses(out, number, (compound, address), liaison_id):
            continue
        out.rows.append(i)
    return out


def _household_refuses(out: Plan, number: int, key: tuple[str, str], liaison_id: int | None) -> bool:
    if key == ("", ""):
        if liaison_id:
            out.problems.append((number, "liaison", _t("register.liaison_needs_address")))
            return True
        return False
    current = out.households.get(key) or out.known.get(key, (None, None))[1]
    if liaison_id and current and current != liaison_id:
        where = " ".join(k for k in key if k)
        out.problems.append((number, "liaison", _t("roster.liaison_conflict", address=where)))
        return True
    out.households[key] = liaison_id or current
    return False


def _staff_by_name(conn, cid) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for sid, name in conn.execute(select(staff.c.id, staff.c.name).where(staff.c.community_id == cid)):
        out.setdefault(name, []).append(sid)
    return out


def _known_households(conn, cid) -> dict[tuple[str, str], tuple[int, int | None]]:
    h = households.c
    rows = conn.execute(select(h.compound, h.address, h.id, h.liaison_id).where(h.community_id == cid))
    return {(c, a): (hid, lid) for c, a, hid, lid in rows}


def _registered_ids(conn, ids: list[str]) -> set[str]:
    """The ID numbers of ``ids`` already in the register (any community: they are unique)."""
    col = residents.c.id_number
    if len(ids) > 5000:  # cheaper to read them all than to ask in pieces
        return set(conn.scalars(select(col).where(col.is_not(None)))).intersection(ids)
    found: set[str] = set()
    for i in range(0, len(ids), 500):
        found.update(conn.scalars(select(col).where(col.in_(ids[i:i + 500]))))
    return found


# --- writing -----------------------------------------------------------------------------------

def write(conn, ctx, checked: Checked, plan: Plan, source: str, progress=None) -> dict:
    """Insert the plan's households, residents and tags; one audit entry for the import."""
    from pathlib import Path

    cid = ctx.community_id(conn, create=True)
    now = ctx.now()
    house_ids = _ensure_households(conn, cid, plan, now)
    cols, rows, n = checked.columns, plan.rows, len(plan.rows)
    pick = (lambda f: cols[f]) if n == len(checked.numbers) else (lambda f: [cols[f][i] for i in rows])
    ids = reserve_ids(conn, residents, n)
    data = {"id": ids, "community_id": [cid] * n,
            "household_id": [house_ids.get(key) for key in zip(pick("compound"), pick("address"))]}
    data.update({f: pick(f) for f in RESIDENT_COLUMNS})
    data.update(created_at=[now] * n, updated_at=[now] * n, version=[1] * n)
    with indexes_built_after(conn, residents, n):
        bulk_insert(conn, residents, data, progress)
    tags = [(rid, tag) for rid, row_tags in zip(ids, pick("tags")) for tag in row_tags]
    bulk_insert(conn, resident_tags, {"resident_id": [t[0] for t in tags], "tag": [t[1] for t in tags]})
    audit.record(conn, ctx, "resident.import", "resident", None, ["rows"],
                 detail=f"{Path(source).name}: {n} imported, {len(plan.problems)} invalid")
    return {"imported": n, "households": len(plan.households)}


def _ensure_households(conn, cid, plan: Plan, now) -> dict[tuple[str, str], int]:
    """The id of each household the rows name: new ones are created, and one in the register
    without a liaison gets the rows' liaison."""
    ids = {key: plan.known[key][0] for key in plan.households if key in plan.known}
    new = [key for key in plan.households if key not in plan.known]
    new_ids = reserve_ids(conn, households, len(new))
    with indexes_built_after(conn, households, len(new)):
        bulk_insert(conn, households, {
            "id": new_ids, "community_id": [cid] * len(new), "compound": [k[0] for k in new],
            "address": [k[1] for k in new], "liaison_id": [plan.households[k] for k in new],
            "created_at": [now] * len(new)})
    ids.update(zip(new, new_ids))
    assign = [{"hid": plan.known[k][0], "lid": lid} for k, lid in plan.households.items()
              if k in plan.known and lid and plan.known[k][1] is None]
    if assign:
        conn.execute(update(households).where(households.c.id == bindparam("hid"))
                     .values(liaison_id=bindparam("lid")), assign)
    return ids


REBUILD_MIN_ROWS = 10_000


@contextmanager
def indexes_built_after(conn, table, rows: int):
    """On SQLite, a load of ``rows`` into a table that holds no more than that goes about a
    third faster when the table's plain (non-unique) indexes are dropped before it and built
    again after it, from the whole column at once, in the same transaction (a roster's first
    import). Unique indexes stay, so uniqueness is checked row by row as ever; should the load
    fail, the rollback brings the dropped indexes back with everything else."""
    if conn.dialect.name != "sqlite" or rows < REBUILD_MIN_ROWS or \
            conn.scalar(select(func.count()).select_from(table)) > rows:
        yield
        return
    plain = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL "
        "AND sql NOT LIKE 'CREATE UNIQUE %'", (table.name,)).all()
    for name, _ in plain:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    yield
    for _, sql in plain:
        conn.exec_driver_sql(sql)


def reserve_ids(conn, table, count: int) -> list[int]:
    """Numbers for ``count`` new rows of ``table``, so that one executemany inserts them all
    (an INSERT … RETURNING in parameter order goes row by row). PostgreSQL hands them out from
    the table's sequence; on SQLite the write transaction (BEGIN IMMEDIATE) holds the lock, so
    the numbers after the highest are ours."""
    if not count:
        return []
    if conn.dialect.name == "postgresql":
        from sqlalchemy import text

        return list(conn.scalars(text(f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "
                                      "FROM generate_series(1, :n)"), {"n": count}))
    top = conn.scalar(select(func.max(table.c.id))) or 0
    return list(range(top + 1, top + 1 + count))


def bulk_insert(conn, table, data: dict[str, list], progress=None) -> None:
    """Insert the rows given column by column (``data``: column name -> values)."""
    columns = list(data)
    n = len(data[columns[0]])
    if not n:
        return
    if conn.dialect.name == "sqlite":
        # A column with no value in any row is left to its default (NULL): Python 3.11's
        # sqlite3 binds None by first asking the adapter protocol, which raises and clears an
        # AttributeError, 1,800 instructions a value; an import's rows have six such columns,
        # a quarter of the residents' insert. (No column of these tables has a server default,
        # so leaving one out stores the same NULL.)
        columns = [c for c in columns if data[c].count(None) < n] or columns[:1]
        stored = [_as_stored(table.c[c], data[c], conn.dialect) for c in columns]
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        rows = list(zip(*stored))
        run = lambda part: conn.exec_driver_sql(sql, part)
    else:
        rows = [dict(zip(columns, values)) for values in zip(*data.values())]
        run = lambda part: conn.execute(insert(table), part)
    for start in range(0, n, CHUNK):
        run(rows[start:start + CHUNK])
        if progress:
            progress("write", min(start + CHUNK, n), n)


def _as_stored(column, values: list, dialect) -> list:
    """``values`` as the column's type hands them to the driver (once per distinct value)."""
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return values
    memo: dict = {None: None}
    return [memo[v] if v in memo else memo.setdefault(v, process(v)) for v in values]
