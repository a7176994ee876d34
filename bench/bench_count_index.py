"""What the check that ``resident list`` reads the register whole would cost on PostgreSQL
with an index that answers it: the community's count of active residents (the ``everyone`` part
of ``commcare.storage.integrity.compare``, with its kept count), as it runs today (a sequential
scan of every resident row) beside an index-only scan of a partial index on ``(community_id)
WHERE archived_at IS NULL``.

    python bench/bench_count_index.py postgresql://USER@HOST:PORT/DB [--runs 15] [--community 1]

The index is made on DB for the measurement (``CREATE INDEX``, then ``VACUUM (ANALYZE)
residents`` so that the visibility map lets the scan skip the rows) and dropped at the end:
point it at a bench database of your own, never a register in use. Each run times the statement
both ways on one connection, interleaved, the sequential scan forced by turning index scans off
for it (``SET LOCAL``); medians, client-timed, and the buffers of one ``EXPLAIN (ANALYZE,
BUFFERS)`` of each. JIT off, as commcare's connections have it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

COUNT = (
    "SELECT (SELECT count(*) FROM residents WHERE community_id = %(cid)s AND archived_at IS NULL), "
    "(SELECT residents FROM register_counts WHERE community_id = %(cid)s AND tag = '*')"
)
INDEX = "bench_scratch_residents_active"
NO_INDEX = "SET LOCAL enable_indexscan = off; SET LOCAL enable_indexonlyscan = off; SET LOCAL enable_bitmapscan = off"


def once(conn, cid: int, seq: bool) -> float:
    with conn.transaction():
        if seq:
            conn.execute(NO_INDEX)
        start = time.perf_counter()
        conn.execute(COUNT, {"cid": cid}).fetchall()
        return (time.perf_counter() - start) * 1000


def plan(conn, cid: int, seq: bool) -> list[str]:
    with conn.transaction():
        if seq:
            conn.execute(NO_INDEX)
        rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + COUNT, {"cid": cid}).fetchall()
    keep = ("Scan on residents", "Scan using", "Buffers: shared", "Execution")
    return [r[0].strip() for r in rows if any(k in r[0] for k in keep)]


def main() -> None:
    import psycopg

    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--community", type=int, default=1)
    args = ap.parse_args()
    with psycopg.connect(args.url, options="-c jit=off", autocommit=True) as conn:
        conn.execute(f"CREATE INDEX {INDEX} ON residents (community_id) WHERE archived_at IS NULL")
        try:
            conn.execute("VACUUM (ANALYZE) residents")
            got: dict[bool, list[float]] = {True: [], False: []}
            for run in range(args.runs):
                for seq in (run % 2 == 0, run % 2 != 0):
                    got[seq].append(once(conn, args.community, seq))
            for seq, name in ((True, "sequential scan (today)"), (False, "index-only scan, partial index")):
                print(f"{name:32} median {statistics.median(got[seq]):7.2f} ms  (of {args.runs})")
                for line in plan(conn, args.community, seq):
                    print(f"    {line}")
        finally:
            conn.execute(f"DROP INDEX IF EXISTS {INDEX}")
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
