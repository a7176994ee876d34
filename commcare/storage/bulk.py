"""The server's fast path for bulk writes, and fresh planner statistics after them.

On PostgreSQL a bulk load (a roster's import, the demo) goes in through ``COPY … FROM STDIN``
(psycopg 3's ``cursor.copy``) in the caller's transaction: one stream per table and chunk
instead of an INSERT per row, several times faster (bench/results.md). The rows go in COPY's
binary format where every column's type is one this module knows (``_binary_types``): psycopg
then packs each value in C, where the text format formats it in Python (for 100,000 residents,
1.4 s of the client's time in text, 0.3 s in binary: bench/results.md). A COPY fires the
tables' triggers as an INSERT does, so the register counts (``commcare.storage.integrity``:
statement triggers with a transition table on PostgreSQL) stay right.

After every bulk write the touched tables are analysed (``analyze``): a planner that has never
seen the table's statistics picks plans for an empty table, and the first commands on a
freshly loaded register pay for it (issue 20: ``call due`` 1.95–3.5× SQLite before a manual
ANALYZE). SQLite is left as it is: its plans here were chosen and measured without
sqlite_stat1 (bench/run.py), and an ANALYZE of a million requests costs seconds of the load.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Boolean, Date, DateTime, Float, Integer, SmallInteger, String, Text, TypeDecorator

# Chunks of rows per COPY: memory stays bounded whatever the size of the load.
COPY_CHUNK = 20_000


def is_server(conn) -> bool:
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def _defaults(table, columns: Sequence[str]) -> dict[str, object]:
    """The Python-side scalar defaults of ``table``'s columns not in ``columns``: Core's insert
    fills them in, a COPY does not (a server default would be NULL)."""
    out = {}
    for col in table.columns:
        if col.name in columns or col.default is None or not col.default.is_scalar:
            continue
        out[col.name] = col.default.arg
    return out


def _binary_type(column) -> str | None:
    """The PostgreSQL type whose binary form a COPY of ``column`` sends, or None where this
    module does not know it (the COPY is then in text, which the server parses for any type).
    A value must be of the Python type the column's type takes (an int for an integer, a date
    for a date, an aware datetime for a time): the write paths give them so, as Core's insert
    needs them too."""
    kind = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
    if isinstance(kind, Boolean):
        return "bool"
    if isinstance(kind, SmallInteger):
        return "int2"
    if type(kind) is Integer:
        return "int4"
    if isinstance(kind, String | Text):  # varchar's binary form is text's
        return "text"
    if isinstance(kind, DateTime):
        return "timestamptz" if kind.timezone else "timestamp"
    if isinstance(kind, Date):
        return "date"
    if isinstance(kind, Float) and not kind.asdecimal:  # FLOAT: double precision
        return "float8"
    return None


def _binary_types(table, names: Sequence[str]) -> list[str] | None:
    types = [_binary_type(table.c[n]) for n in names]
    return None if None in types else types  # type: ignore[return-value]


def copy_rows(conn, table, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """COPY ``rows`` (tuples in the order of ``columns``) into ``table`` on this connection's
    transaction; the columns left out that have a Python default get it. Returns the count."""
    extra = _defaults(table, columns)
    names = [*columns, *extra]
    tail = tuple(extra.values())
    quoted = ", ".join(f'"{n}"' for n in names)
    types = _binary_types(table, names)
    binary = " (FORMAT BINARY)" if types else ""
    raw = conn.connection.driver_connection
    done = 0
    with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN{binary}') as copy:
        if types:
            copy.set_types(types)
        write = copy.write_row
        for row in rows:
            write((*row, *tail) if tail else row)
            done += 1
    return done


def may_copy(conn, table) -> bool:
    """Whether this login may COPY into ``table``: PostgreSQL refuses ``COPY … FROM`` where the
    table's row-level security applies to the login (a staff login; not the owner). Asked
    once per connection and table."""
    known = conn.info.setdefault("commcare_may_copy", {})
    if table.name not in known:
        sql = "SELECT NOT row_security_active(%(t)s::regclass)"
        known[table.name] = conn.exec_driver_sql(sql, {"t": table.name}).scalar_one()
    return known[table.name]


def plain_indexes_dropped(conn, tables: Sequence) -> list[str]:
    """PostgreSQL, before a first load: drop the plain (neither unique nor primary) indexes of
    ``tables`` and return the statements that build them again, when every one of the tables
    holds no row, in any community, and this login owns them and can have them to itself at
    once; otherwise drop nothing and return [].

    ``DROP INDEX`` takes an ACCESS EXCLUSIVE lock on its table, held to the end of the
    transaction: every other session's reads of the tables wait for the load to commit. So
    only for the register's very first load, and only if the lock is free now (``NOWAIT``): a
    session that is using the tables is never made to wait for it, nor the load for it (the
    indexes then stay, maintained row by row). The unique indexes stay in any case: an ID
    number is refused row by row as ever. The rollback of a load that fails brings the
    indexes back with everything else."""
    from sqlalchemy import exc

    names = [t.name for t in tables]
    if not names or not _owned_and_empty(conn, names, owner=True):
        return []
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(f"LOCK TABLE {', '.join(names)} IN ACCESS EXCLUSIVE MODE NOWAIT")
    except exc.OperationalError as error:
        if getattr(error.orig, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        return []
    if not _owned_and_empty(conn, names, owner=False):  # another session's load committed meanwhile
        return []
    plain = conn.exec_driver_sql(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = ANY (%(t)s::regclass[]) AND NOT i.indisunique AND NOT i.indisprimary "
        "AND NOT i.indisexclusion ORDER BY 1",
        {"t": names},
    ).all()
    for name, _ in plain:  # the regclass's text: quoted, and qualified, as it needs to be
        conn.exec_driver_sql(f"DROP INDEX {name}")
    return [sql for _, sql in plain]


def _owned_and_empty(conn, names: list[str], owner: bool) -> bool:
    """Whether none of the tables ``names`` holds a row (and, with ``owner``, whether this
    login owns them all and no row-level security hides any of their rows from it)."""
    empty = " AND ".join(f'NOT EXISTS (SELECT FROM "{n}")' for n in names)
    if owner:
        empty += (
            " AND (SELECT bool_and(pg_has_role(c.relowner, 'USAGE') AND NOT row_security_active(c.oid)) "
            "FROM pg_class c WHERE c.oid = ANY (%(t)s::regclass[]))"
        )
    return bool(conn.exec_driver_sql(f"SELECT {empty}", {"t": names} if owner else ()).scalar_one())


def reserve_ids(conn, table, count: int) -> list[int]:
    """``count`` numbers from ``table``'s id sequence (PostgreSQL), for rows that a COPY then
    writes with them. One statement draws them all; they are almost always consecutive (no
    other session drew from the sequence meanwhile), and then only the first and the last
    come back: ``count`` distinct numbers of ours that span exactly ``count`` integers are
    every integer between (a row per number took 1.4 s of a 100,000-row import). Otherwise
    the numbers themselves, in one array."""
    if not count:
        return []
    # the sequence named once (as a regclass): pg_get_serial_sequence in the select list
    # would be called again for every number drawn
    sequence = conn.exec_driver_sql(f"SELECT pg_get_serial_sequence('{table.name}', 'id')").scalar_one()
    low, high, scattered = conn.exec_driver_sql(
        "WITH drawn AS (SELECT nextval(%(seq)s::regclass) AS v FROM generate_series(1, %(n)s)) "
        "SELECT min(v), max(v), CASE WHEN max(v) - min(v) + 1 <> count(*) THEN array_agg(v) END FROM drawn",
        {"seq": sequence, "n": count},
    ).one()
    return list(scattered) if scattered is not None else list(range(low, high + 1))


def copy_dicts(conn, table, rows: list[dict]) -> int:
    """COPY rows given as dicts (the keys of the first are the columns; a key missing from a
    later row is its column's default, as Core's executemany would make it)."""
    if not rows:
        return 0
    columns = list(rows[0])
    defaults = _defaults(table, ())
    get = [(c, defaults.get(c)) for c in columns]
    return copy_rows(conn, table, columns, (tuple(r.get(c, d) for c, d in get) for r in rows))


def analyze(conn, tables: Iterable) -> None:
    """Fresh planner statistics for ``tables`` after a bulk write, in the caller's transaction
    (PostgreSQL's ANALYZE may run inside one; its figures are seen once it commits)."""
    names = sorted({t if isinstance(t, str) else t.name for t in tables})
    if not names:
        return
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ANALYZE " + ", ".join(f'"{n}"' for n in names))
