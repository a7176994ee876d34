"""The server's fast path for bulk writes, and fresh planner statistics after them.

On PostgreSQL a bulk load (a roster's import, the demo) goes in through ``COPY … FROM STDIN``
(psycopg 3's ``cursor.copy``) in the caller's transaction: one stream per table and chunk
instead of an INSERT per row, several times faster (bench/results.md). A COPY fires the
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


def copy_rows(conn, table, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """COPY ``rows`` (tuples in the order of ``columns``) into ``table`` on this connection's
    transaction; the columns left out that have a Python default get it. Returns the count."""
    extra = _defaults(table, columns)
    names = [*columns, *extra]
    tail = tuple(extra.values())
    quoted = ", ".join(f'"{n}"' for n in names)
    raw = conn.connection.driver_connection
    done = 0
    with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row((*row, *tail) if tail else row)
            done += 1
    return done


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
