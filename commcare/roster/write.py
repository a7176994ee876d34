"""The second step of an import (see ``commcare.roster.check``): the checks that need the register,
and the bulk inserts, in the caller's one write transaction.

Households, residents and tags go in with one executemany per table and per chunk of rows. On SQLite the driver's own executemany is used,
with each value already in the form its column type stores (``UTCDateTime``'s text in UTC,
``Date``'s ISO text), computed once per distinct value; on PostgreSQL a COPY per chunk
(``commcare.storage.bulk``), and the tables analysed after; elsewhere Core ``insert()``.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

from sqlalchemy import bindparam, func, insert, select, update

from commcare import audit, identity
from commcare.errors import ImportRejected
from commcare.patterns import Pattern
from commcare.roster.check import CHUNK, RESIDENT_COLUMNS, Checked, Chunks, _t
from commcare.storage import bulk
from commcare.storage.tables import households, resident_tags, residents, staff


def import_roster(
    conn, ctx, chunks: Chunks, source: str, dry_run=False, skip_invalid=False, progress=None, no_groups=False
) -> dict:
    """Check the rows against the register and, unless ``dry_run``, write the valid ones, in
    the caller's one transaction (``conn``: a Core connection), chunk by chunk as ``chunks``
    come. Any invalid row refuses the whole file unless ``skip_invalid``: the writing stops at
    the first, the rest is still checked so that every problem is told, and the rollback
    takes back what was written.

    First of all, a roster that would leave special groups or liaisons out silently is refused
    (``layout.refusals``: an ignored column of group words or staff names, no group
    column at all unless ``no_groups``)."""
    from commcare.roster import layout

    plan = Plan(conn, ctx, chunks.total)
    if refused := layout.refusals(chunks.heading(), plan.by_name, no_groups):
        raise ImportRejected("rosters.columns_refused", problems=refused)
    writer = None if dry_run else Writer(conn, ctx, plan)
    with (
        indexes_built_after(conn, (households, residents), 0 if dry_run else chunks.total),
        larger_cache(conn, 0 if dry_run else chunks.total),
    ):
        for chunk in chunks:
            if writer and (skip_invalid or not plan.problems):
                writer.take(chunk, skip_invalid)
                if progress:
                    progress("write", writer.written, chunks.total)
            else:
                plan.take(chunk)
        lines = [_t("roster.problem", row=r, problem=_with_field(f, p)) for r, f, p in sorted(plan.problems)]
        if plan.problems and not skip_invalid:
            raise ImportRejected("roster.rejected", problems=lines, count=len(plan.problems))
    summary = {
        "valid": plan.valid,
        "invalid": len(plan.problems),
        "problems": lines,
        "unknown_columns": chunks.unknown,
        "imported": 0,
        "dry_run": dry_run,
        "daily_round": plan.daily,
        "outside_round": plan.outside,
    }
    if writer:
        summary.update(writer.finish(source))
        bulk.analyze(conn, (households, residents, resident_tags, "register_counts"))
    return summary


class Plan:
    """The checks that need the register, row by row as chunks come: a row naming an unknown
    liaison, an ID number already registered, or a liaison other than its household's (in
    the register or in an earlier row) is refused. ``households``: (compound, address) ->
    liaison id, for every household the valid rows name."""

    def __init__(self, conn, ctx, rows: int) -> None:
        self.conn = conn
        cid = ctx.community_id(conn)
        self.known = _known_households(conn, cid)  # (compound, address) -> (id, liaison id)
        self.by_name = _staff_by_name(conn, cid)
        # a large roster: cheaper to read every registered ID number once than to ask in pieces
        big = rows > 5000 and conn.dialect.name != "postgresql"  # a login may not read every ID
        self.taken = _all_registered_ids(conn) if big else None
        self.households: dict[tuple[str, str], int | None] = {}
        self._journal: list | None = None  # (key, value before) of households, while marked
        self.problems: list[tuple[int, str, str]] = []
        self.valid = 0
        self.calls = frozenset(identity.call_tags(ctx.extra_tags))
        self.daily = 0  # valid rows with a tag whose residents are called every day
        self.outside = 0  # valid rows with tags, none of them called every day (低保 alone)

    def take(self, checked: Checked, look_up: bool = True) -> list[int]:
        """The indexes of ``checked``'s rows that pass; the others' problems are noted.
        ``look_up=False``: the ID numbers are not looked up in the register (the caller lets
        the unique index refuse a registered one: ``Writer.take``).

        Column by column rather than row by row: each liaison named is looked up once, and
        the household rule is judged once per household and liaison named for it. A row's
        verdict depends only on that pair and on the first liaison a household was given
        (in the register or by an accepted row), which a refused row never changes."""
        self.problems += checked.problems
        cols, numbers = checked.columns, checked.numbers
        if not numbers:
            return []
        names = cols["liaison"]
        bad: dict[int, tuple[str, str]] = {}
        if any(names):
            lids = list(map(self._liaison_ids(names).get, names))
            for i in [i for i, lid in enumerate(lids) if type(lid) is str]:  # an unknown or ambiguous name
                bad[i] = ("liaison", _t(lids[i], name=names[i]))
        else:  # a roster without liaisons
            lids = [None] * len(numbers)
        ids = cols["id_number"]
        given = [n for n in ids if n]
        if not look_up:
            taken: set[str] = set()
        elif self.taken is not None:
            taken = self.taken.intersection(given)
        else:
            taken = _registered_ids(self.conn, given)
        for i in [i for i, n in enumerate(ids) if n in taken] if taken else ():
            bad.setdefault(i, ("id_number", _t("roster.id_registered")))
        pairs = list(zip(zip(cols["compound"], cols["address"]), lids))
        refused = {}
        judged = dict.fromkeys(p for i, p in enumerate(pairs) if i not in bad) if bad else dict.fromkeys(pairs)
        for pair in judged:  # in the rows' order
            if problem := self._household_refuses(*pair):
                refused[pair] = problem
        for i in [i for i, p in enumerate(pairs) if p in refused] if refused else ():
            bad.setdefault(i, ("liaison", refused[pairs[i]]))
        self.problems += [(numbers[i], field, message) for i, (field, message) in bad.items()]
        accepted = [i for i in range(len(numbers)) if i not in bad] if bad else list(range(len(numbers)))
        self.valid += len(accepted)
        self._count_round([cols["tags"][i] for i in accepted] if bad else cols["tags"])
        return accepted

    def mark(self) -> tuple:
        """Where the plan stands, for ``restore``: the households' changes are noted from now on."""
        self._journal = []
        return len(self.problems), self.valid, self.daily, self.outside

    def restore(self, mark: tuple) -> None:
        """Back to where ``mark`` was taken: the problems, counts and households since forgotten."""
        del self.problems[mark[0] :]
        self.valid, self.daily, self.outside = mark[1:]
        for key, before in reversed(self._journal or ()):
            if before is _ABSENT:
                del self.households[key]
            else:
                self.households[key] = before
        self._journal = None

    def keep(self) -> None:
        """What was done since ``mark`` stays."""
        self._journal = None

    def _count_round(self, tags: list) -> None:
        """Count the rows (their tags) that join the daily round, and those in groups outside it."""
        tagged = list(filter(None, tags))
        daily = sum(not self.calls.isdisjoint(t) for t in tagged)
        self.daily += daily
        self.outside += len(tagged) - daily

    def _liaison_ids(self, names: list) -> dict:
        """Each liaison name -> its staff id, or the message key of its problem."""
        out = {}
        for name in set(names) - {None}:
            found = self.by_name.get(name, ())
            out[name] = (
                found[0] if len(found) == 1 else "roster.unknown_liaison" if not found else "roster.ambiguous_liaison"
            )
        return out

    def _household_refuses(self, key: tuple[str, str], liaison_id: int | None) -> str | None:
        """The problem of a row naming ``liaison_id`` for the household at ``key``, or None
        (and the household's liaison so far is remembered)."""
        if key == ("", ""):
            return _t("register.liaison_needs_address") if liaison_id else None
        current = self.households.get(key) or self.known.get(key, (None, None))[1]
        if liaison_id and current and current != liaison_id:
            return _t("roster.liaison_conflict", address=" ".join(k for k in key if k))
        if self._journal is not None:
            self._journal.append((key, self.households.get(key, _ABSENT)))
        self.households[key] = liaison_id or current
        return None


_ABSENT = object()  # a household the plan had not met (Plan.restore)


def _staff_by_name(conn, cid) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for sid, name in conn.execute(select(staff.c.id, staff.c.name).where(staff.c.community_id == cid)):
        out.setdefault(name, []).append(sid)
    return out


def _known_households(conn, cid) -> dict[tuple[str, str], tuple[int, int | None]]:
    h = households.c
    rows = conn.execute(select(h.compound, h.address, h.id, h.liaison_id).where(h.community_id == cid))
    return {(c, a): (hid, lid) for c, a, hid, lid in rows}


def _all_registered_ids(conn) -> set[str]:
    """Every ID number in the register (any community: they are unique)."""
    col = residents.c.id_number
    return set(conn.scalars(select(col).where(col.is_not(None))))


def _registered_ids(conn, ids: list[str]) -> set[str]:
    """The ID numbers of ``ids`` already in the register (on PostgreSQL in every community,
    those a login cannot see included: ``commcare.access.registered_ids``)."""
    if conn.dialect.name == "postgresql":
        from commcare import access

        return access.registered_ids(conn, ids)
    col = residents.c.id_number
    found: set[str] = set()
    for i in range(0, len(ids), 500):
        found.update(conn.scalars(select(col).where(col.in_(ids[i : i + 500]))))
    return found


# --- writing -----------------------------------------------------------------------------------

ID_NUMBER_UNIQUE = "uq_residents_id_number"
# Chunks of a roster written before their ID numbers are looked up, at most: each takes a
# savepoint, a subtransaction, and PostgreSQL keeps up to 64 of a transaction's in each
# backend's shared memory; past that every other session's snapshot must look them up in
# pg_subtrans. (A 100,000-row roster comes in 13 chunks; the chunks after the 48th, some
# 455,000 rows on, are looked up as before.)
OPTIMISTIC_CHUNKS = 48


class Writer:
    """Inserts the valid rows of each chunk: its new households, residents and tags."""

    def __init__(self, conn, ctx, plan: Plan) -> None:
        self.conn, self.ctx, self.plan = conn, ctx, plan
        self.cid = ctx.community_id(conn, create=True)
        self.now = ctx.now()
        # every household written to: (compound, address) -> (id, liaison id as it is stored)
        self.houses: dict[tuple[str, str], tuple[int, int | None]] = dict(plan.known)
        self.written = 0
        self.stored: dict = {}  # column -> {value: stored form}, kept from chunk to chunk
        # chunks left that may go in before their ID numbers are looked up (PostgreSQL's COPY)
        self.unchecked = OPTIMISTIC_CHUNKS if bulk.is_server(conn) and bulk.may_copy(conn, residents) else 0

    def take(self, checked: Checked, skip_invalid: bool) -> None:
        """Check ``checked`` against the register (``Plan.take``) and write its valid rows,
        unless a row is invalid and not ``skip_invalid``.

        On PostgreSQL the ID numbers are not looked up first (``_write_unchecked``): the rows
        go in under a savepoint and ``uq_residents_id_number`` refuses a registered one, in
        any community, whatever this login may see. Only a chunk it refuses is looked up, to
        name the rows, and the chunks after it too (registered numbers come in runs: a
        roster imported again)."""
        plan = self.plan
        if self.unchecked and (skip_invalid or not checked.problems) and self._write_unchecked(checked):
            return
        rows = plan.take(checked)
        if skip_invalid or not plan.problems:
            self.write(checked, rows)

    def _write_unchecked(self, checked: Checked) -> bool:
        """Write the chunk's valid rows under a savepoint, its ID numbers not looked up.
        False, with everything the chunk did taken back (the rows, the plan's and this
        writer's memory of them), when that is not the chunk's last word: a row's ID number
        is registered, or a row is refused for what the look-up might have told instead."""
        from psycopg import errors

        plan, mark, houses, written = self.plan, self.plan.mark(), len(self.houses), self.written
        refused = len(plan.problems) + len(checked.problems)
        rows = plan.take(checked, look_up=False)
        self.unchecked -= 1
        if len(plan.problems) == refused:  # the register refused nothing (an ID number aside, unasked)
            try:
                with self.conn.begin_nested():
                    self.write(checked, rows)
            except errors.UniqueViolation as exc:
                if exc.diag.constraint_name != ID_NUMBER_UNIQUE:
                    raise
                self.unchecked = 0
            else:
                plan.keep()
                return True
        plan.restore(mark)
        for key in list(self.houses)[houses:]:
            del self.houses[key]
        self.written = written
        return False

    def write(self, checked: Checked, rows: list[int]) -> None:
        n = len(rows)
        if not n:
            return
        cols = checked.columns
        pick = (lambda f: cols[f]) if n == len(checked.numbers) else (lambda f: [cols[f][i] for i in rows])
        keys = list(zip(pick("compound"), pick("address")))
        self._new_households(keys)
        ids = reserve_ids(self.conn, residents, n)
        houses = self.houses
        data = {
            "id": ids,
            "community_id": [self.cid] * n,
            "household_id": [houses[k][0] if k in houses else None for k in keys],
        }
        data.update({f: pick(f) for f in RESIDENT_COLUMNS})
        data.update(created_at=[self.now] * n, updated_at=[self.now] * n, version=[1] * n)
        bulk_insert(self.conn, residents, data, self.stored)
        tags = [(rid, tag) for rid, row_tags in zip(ids, pick("tags")) for tag in row_tags]
        tagged = {
            "resident_id": [t[0] for t in tags],
            "tag": [t[1] for t in tags],
            "community_id": [self.cid] * len(tags),
        }
        bulk_insert(self.conn, resident_tags, tagged)
        self.written += n

    def _new_households(self, keys: list[tuple[str, str]]) -> None:
        """Create the households of ``keys`` not written to before, with their liaison so far."""
        liaisons = self.plan.households
        new = [k for k in dict.fromkeys(keys) if k not in self.houses and k in liaisons]
        new_ids = reserve_ids(self.conn, households, len(new))
        bulk_insert(
            self.conn,
            households,
            {
                "id": new_ids,
                "community_id": [self.cid] * len(new),
                "compound": [k[0] for k in new],
                "address": [k[1] for k in new],
                "liaison_id": [liaisons[k] for k in new],
                "created_at": [self.now] * len(new),
            },
        )
        self.houses.update(zip(new, zip(new_ids, (liaisons[k] for k in new))))

    def finish(self, source: str) -> dict:
        """Give a liaison to each household that had none when it was written (in the register
        or in an earlier chunk) and that a later row named one for; one audit entry."""
        from pathlib import Path

        assign = [
            {"hid": self.houses[k][0], "lid": lid}
            for k, lid in self.plan.households.items()
            if lid and k in self.houses and self.houses[k][1] is None
        ]
        if assign:
            self.conn.execute(
                update(households).where(households.c.id == bindparam("hid")).values(liaison_id=bindparam("lid")),
                assign,
            )
        audit.record(
            self.conn,
            self.ctx,
            "resident.import",
            "resident",
            None,
            ["rows"],
            detail=f"{Path(source).name}: {self.written} imported, {len(self.plan.problems)} invalid",
        )
        return {"imported": self.written, "households": len(self.plan.households)}


REBUILD_MIN_ROWS = 10_000


@contextmanager
def indexes_built_after(conn, tables, rows: int):
    """On SQLite, a load of up to ``rows`` rows into a table that holds no more than that goes
    about a third faster when the table's plain (non-unique) indexes are dropped before it and
    built again after it, from the whole column at once, in the same transaction (a roster's
    first import). Unique indexes stay, so uniqueness is checked row by row as ever; should
    the load fail, the rollback brings the dropped indexes back with everything else.

    On PostgreSQL only into tables that hold no row at all, in any community: the register's
    first load (``bulk.plain_indexes_dropped``, which says why)."""
    if conn.dialect.name == "postgresql":
        rebuild = bulk.plain_indexes_dropped(conn, tables) if rows >= REBUILD_MIN_ROWS else []
        yield
        for sql in rebuild:
            conn.exec_driver_sql(sql)
        return
    plain = []
    if conn.dialect.name == "sqlite" and rows >= REBUILD_MIN_ROWS:
        for table in tables:
            if conn.scalar(select(func.count()).select_from(table)) <= rows:
                plain += conn.exec_driver_sql(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                    "AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE %'",
                    (table.name,),
                ).all()
    for name, _ in plain:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    yield
    for _, sql in plain:
        conn.exec_driver_sql(sql)


LARGE_CACHE_KIB = 65_536


@contextmanager
def larger_cache(conn, rows: int):
    """On SQLite, a load of ``REBUILD_MIN_ROWS`` rows or more keeps up to 64 MiB of pages in
    memory (the default is 2 MiB): the pages it writes are spilled to the WAL and read back
    less often, and the indexes built after it sort in memory. The connection's own setting
    comes back after, but not after a failure: the connection is closed then, not reused, and
    it may no longer take a statement (a Ctrl-C in the middle of an insert leaves it invalid,
    and the interruption is what must be reported)."""
    if conn.dialect.name != "sqlite" or rows < REBUILD_MIN_ROWS:
        yield
        return
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{LARGE_CACHE_KIB}")
    yield
    conn.exec_driver_sql(f"PRAGMA cache_size = {int(before)}")


def reserve_ids(conn, table, count: int) -> list[int]:
    """Numbers for ``count`` new rows of ``table``, so that one executemany inserts them all
    (an INSERT … RETURNING in parameter order goes row by row). PostgreSQL hands them out from
    the table's sequence; on SQLite the write transaction (BEGIN IMMEDIATE) holds the lock, so
    the numbers after the highest are ours."""
    if not count:
        return []
    if conn.dialect.name == "postgresql":
        return bulk.reserve_ids(conn, table, count)
    top = conn.scalar(select(func.max(table.c.id))) or 0
    return list(range(top + 1, top + 1 + count))


def bulk_insert(conn, table, data: dict[str, list], memos: dict | None = None) -> None:
    """Insert the rows given column by column (``data``: column name -> values). ``memos``
    keeps each value's stored form from one call to the next (a roster's birth dates recur
    from chunk to chunk)."""
    columns = list(data)
    n = len(data[columns[0]])
    if not n:
        return
    if conn.dialect.name == "sqlite":
        # A column with no value in any row is left to its default (NULL): Python 3.11's
        # sqlite3 binds None by first asking the adapter protocol, which raises and clears an
        # AttributeError for each value. (No column of these tables has a server default, so
        # leaving one out stores the same NULL.)
        columns = [c for c in columns if data[c][0] is not None or data[c].count(None) < n] or columns[:1]
        memos = {} if memos is None else memos
        stored = {
            c: _as_stored(table.c[c], data[c], conn.dialect, memos.setdefault((table.name, c), {None: None}))
            for c in columns
        }
        # A value every row shares (the community, the time of the import) goes into the
        # statement once rather than being bound for each row: a tenth of the residents' insert.
        # (A column whose first and last values differ is not one: told without a pass over it.)
        same = {
            c: literal
            for c, v in stored.items()
            if v[0] == v[-1] and v.count(v[0]) == n and (literal := _literal(v[0]))
        }
        bound = [c for c in columns if c not in same]
        values = ", ".join(same.get(c, "?") for c in columns)
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({values})"
        rows: list = list(zip(*(stored[c] for c in bound))) if bound else [()] * n
        run = lambda part: conn.exec_driver_sql(sql, part)
    elif bulk.is_server(conn) and bulk.may_copy(conn, table):
        # PostgreSQL: one COPY per chunk (commcare.storage.bulk), the rows as tuples; a staff
        # login, whom row-level security narrows, may not COPY: its rows go in as INSERTs
        rows = list(zip(*data.values()))
        run = lambda part: bulk.copy_rows(conn, table, columns, part)
    else:
        rows = [dict(zip(columns, values)) for values in zip(*data.values())]
        run = lambda part: conn.execute(insert(table), part)
    for start in range(0, n, CHUNK):
        run(rows[start : start + CHUNK])


_TIME_TEXT = Pattern(r"[0-9][0-9 :.+-]*", re.ASCII)


def _literal(value) -> str | None:
    """``value`` as an SQL literal, for an integer or the stored text of a date or time; None
    for anything else (names, addresses: always bound, never spliced into a statement)."""
    if type(value) is int:
        return str(value)
    if type(value) is str and _TIME_TEXT.fullmatch(value):
        return f"'{value}'"
    return None


def _as_stored(column, values: list, dialect, memo: dict) -> list:
    """``values`` as the column's type hands them to the driver (once per distinct value:
    ``memo``, value -> stored form)."""
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return values
    for value in set(values).difference(memo):
        memo[value] = process(value)
    return list(map(memo.__getitem__, values))


def _with_field(field: str, problem: str) -> str:
    """A row's problem, led by its field (「联系电话」：… or phone: …) once."""
    from commcare.i18n import field_label

    label = field_label(field)
    if problem.startswith((label, f"{field}:", f"{field}：")):
        return problem
    return f"{label}：{problem}" if label != field else f"{field}: {problem}"
