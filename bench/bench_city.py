"""A city in one PostgreSQL database: the demo's community copied into many, beside it alone.

``grow(url, n)`` makes communities 2 … n of the city database from its community 1 (built by
``commcare demo``), in SQL on the server: every table's rows copied with new ids, the ids they
point to moved likewise, the community changed. The copies of one row are numbered next to
each other (row i of community k gets id base + i·stride + k), so that each community's rows
lie among the others' in the tables and their indexes, as a city's requests would arrive
from all communities at once, not one community after another. The register counts are kept
by the triggers as for any insert, and ``commcare db check`` passes on the result.
ID numbers are unique across the register: the copies have none.
"""

from __future__ import annotations

# table: (community column?, {column: table whose id it holds})
TABLES = {
    "staff": (True, {}),
    "households": (True, {"liaison_id": "staff"}),
    "residents": (True, {"household_id": "households"}),
    "resident_tags": (True, {"resident_id": "residents"}),
    "requests": (True, {"resident_id": "residents", "assignee_id": "staff", "previous_id": "requests"}),
    "request_events": (False, {"request_id": "requests"}),
    "calls": (True, {"resident_id": "residents", "staff_id": "staff", "request_id": "requests"}),
    "health_reports": (False, {"staff_id": "staff"}),
    "donations": (True, {}),
    "donation_items": (False, {"donation_id": "donations"}),
    "directory": (True, {}),
}
# Copies' ids: OFFSET + (template id - 1) * STRIDE + k, far above any template id; at most
# STRIDE - 1 communities (a city of 2,000), and templates of up to about 500,000 rows a table
# (PostgreSQL's integer ids).
STRIDE = 4096
OFFSET = 100_000_000


def _columns(conn, table: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
            (table,),
        )
    ]


def grow(plain_url: str, first: int, last: int) -> None:
    """Add communities ``first`` … ``last`` (first ≥ 2), copies of community 1, in one
    transaction; the tables vacuumed and analysed after it commits (a city's tables, written
    long before, have been vacuumed by autovacuum: their pages are all-visible, which the
    index-only scans of one community's statements count on)."""
    import psycopg

    with psycopg.connect(plain_url) as conn:
        conn.execute(
            "INSERT INTO communities (id, name, created_at) SELECT k, '社区' || k, now() FROM generate_series(%s::int, %s::int) k",
            (first, last),
        )
        for table, (has_community, refs) in TABLES.items():
            cols = _columns(conn, table)
            out = []
            for col in cols:
                if col == "id":
                    out.append(_moved("t.id"))
                elif col == "community_id" and has_community:
                    out.append("k")
                elif col in refs:
                    out.append(_moved(f"t.{col}"))
                elif col == "id_number":
                    out.append("NULL")
                else:
                    out.append(f"t.{col}")
            key = "t.id" if "id" in cols else f"t.{next(iter(refs))}"
            conn.execute(
                f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(out)} FROM {table} t "
                f"CROSS JOIN generate_series({first}, {last}) k WHERE {key} < {OFFSET} ORDER BY {key}, k"
            )
        for table in ("communities", *TABLES):  # a community added after the copies gets a fresh id
            if table != "resident_tags":
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) + 1 FROM {table}), false)"
                )
    with psycopg.connect(plain_url, autocommit=True) as conn:  # VACUUM runs outside a transaction
        conn.execute("VACUUM (ANALYZE)")


def _moved(col: str) -> str:
    """The copy's id for ``col`` (an id of ``table``, or NULL): template row i of copy k."""
    return f"CASE WHEN {col} IS NULL THEN NULL ELSE {OFFSET}::bigint + ({col} - 1)::bigint * {STRIDE} + k END"


def copy_id(template_id: int, k: int) -> int:
    """The id of template row ``template_id`` in community ``k`` (k ≥ 2)."""
    return OFFSET + (template_id - 1) * STRIDE + k
