"""What the indexes of a register cost its writes, server side: the same statements on two
databases (one register at two schema revisions, e.g. before and after 0010_city_covering),
interleaved, each in a transaction rolled back.

    python bench/bench_city_writes.py --db postgresql://…/commcare_x_alone_2000_20000 \\
        --other postgresql://…/commcare_x_base_alone_2000_20000 [--rows 10000] [--runs 7]

Times, on the client, each of: INSERT of ``--rows`` residents (a roster's rows, one community),
INSERT of ``--rows`` calls (a round's), UPDATE archiving ``--rows // 10`` residents. The triggers
that keep the register counts fire as for any write, on both sides. Prints each side's median
milliseconds and their ratio; every side runs first in turn. The rows rolled back are dead
rows in the tables and their indexes until a VACUUM, which a server without autovacuum never
runs: both databases are vacuumed after, or every later read of the community they were
written to would step over them (the first use of this script left 78,000 dead residents in
the register it measured, and its community's report read ten times the pages).
"""

from __future__ import annotations

import argparse
import statistics
import time

WRITES = {
    "insert residents": (
        "INSERT INTO residents (community_id, name, name_pinyin, name_initials, phone, emergency_name, "
        "emergency_phone, created_at, updated_at, version) SELECT 1, '张桂兰' || g, 'zhangguilan' || g, 'zgl', "
        "'139' || lpad(g::text, 8, '0'), '李建国', '138' || lpad(g::text, 8, '0'), now(), now(), 1 "
        "FROM generate_series(1, %(rows)s) g"
    ),
    "insert calls": (
        "INSERT INTO calls (community_id, resident_id, actor, at, outcome) "
        "SELECT 1, (SELECT min(id) FROM residents) + g %% 1000, 'bench', now() - g * interval '1 second', "
        "CASE WHEN g %% 5 = 0 THEN 'no-answer' ELSE 'ok' END FROM generate_series(1, %(rows)s) g"
    ),
    "archive residents": (
        "UPDATE residents SET archived_at = now() WHERE id IN "
        "(SELECT id FROM residents WHERE archived_at IS NULL ORDER BY id LIMIT %(rows)s / 10)"
    ),
}


def once(url: str, sql: str, rows: int) -> float:
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("SELECT 1")  # the connection and its transaction opened before the clock
        start = time.perf_counter()
        conn.execute(sql, {"rows": rows})
        took = time.perf_counter() - start
        conn.rollback()
    return took * 1000


def vacuum(url: str) -> None:
    """The dead rows of the rolled-back writes removed, the pages all-visible again."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) residents, calls, resident_tags, households, register_counts")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True, help="this side (plain postgresql:// URL)")
    ap.add_argument("--other", required=True, help="the other side")
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    sides = {"this": args.db, "other": args.other}
    got = {(w, s): [] for w in WRITES for s in sides}
    for run in range(args.runs):
        order = list(sides.items()) if run % 2 == 0 else list(sides.items())[::-1]
        for write, sql in WRITES.items():
            for side, url in order:
                got[write, side].append(once(url, sql, args.rows))
    for url in sides.values():
        vacuum(url)
    print(
        f"{'write':20} {'this ms':>9} {'other ms':>9} {'this/other':>10}   (median of {args.runs}, {args.rows:,} rows)"
    )
    for write in WRITES:
        a, b = statistics.median(got[write, "this"]), statistics.median(got[write, "other"])
        print(f"{write:20} {a:9.1f} {b:9.1f} {a / b:10.2f}")


if __name__ == "__main__":
    main()
