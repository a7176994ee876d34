"""The plans PostgreSQL chooses for one community's commands: EXPLAIN (ANALYZE, BUFFERS) of
every statement they send, captured as they run.

    python bench/plans.py --db postgresql://…/commcare_bench_city200_2000_20000 --community 社区10 \
        --out bench/plans/city200-community10.txt

Runs the domain functions of ``report today``, ``call due``, ``request list --overdue
--limit 100``, ``resident list --search zgl``, ``resident show #1`` and ``report today
--all-communities`` on the database, records each SELECT they send (SQLAlchemy's
before_cursor_execute event) with its parameters, then explains each with ANALYZE and BUFFERS
in a transaction that is rolled back. The buffers say what each statement read: in a city,
one community's statements should read about as many pages as the same community alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def capture(url: str, community: str | None, what: list[str]) -> list[tuple[str, str, object]]:
    from sqlalchemy import event

    from commcare import calls, reports, resident_rows
    from commcare import help_requests as hr
    from commcare.config import load_settings
    from commcare.context import Ctx
    from commcare.db import open_database

    options = {"database": url, "community": community} if community else {"database": url}
    ctx = Ctx(load_settings(**options))
    db = open_database(url)
    seen: list[tuple[str, str, object]] = []
    label = [""]

    @event.listens_for(db.engine, "before_cursor_execute")
    def _record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((label[0], statement, parameters))

    runs = {
        "report today": lambda conn: reports.day_report(conn, ctx, ctx.today()),
        "call due": lambda conn: calls.due_calls(conn, ctx),
        "report today --all-communities": lambda conn: reports.all_communities(conn, ctx, ctx.today()),
        "request list --overdue --limit 100": lambda conn: hr.list_requests(conn, ctx, overdue=True, limit=100),
        "resident list --search zgl": lambda conn: resident_rows.list_residents(conn, ctx, search="zgl"),
        "resident show #1": lambda conn: resident_rows.show_resident(conn, ctx, "#1"),
    }
    with db.connect() as conn:
        for name in what:
            label[0] = name
            runs[name](conn)
    db.dispose()
    return seen


def explain(url: str, seen) -> list[str]:
    import psycopg

    from commcare.storage.server_wait import SESSION

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    out = []
    with psycopg.connect(plain, options=SESSION) as conn:  # the session's settings, as commcare's
        for label, statement, parameters in seen:
            rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).fetchall()
            out += [f"-- {label}", statement.strip(), "", *(r[0] for r in rows), ""]
        conn.rollback()
    return out


def totals(lines: list[str]) -> dict[str, tuple[int, int, float]]:
    """label -> (statements, shared buffers, execution ms) of ``explain``'s lines: each
    statement's buffers as its plan's top node counts them (hit and read: what it touched),
    its time as EXPLAIN ANALYZE measured it."""
    import re

    out: dict[str, list] = {}
    label, top = "", False
    for line in lines:
        if line.startswith("-- "):
            label, top = line[3:], True
            out.setdefault(label, [0, 0, 0.0])[0] += 1
        elif top and line.startswith("  Buffers: shared"):
            out[label][1] += sum(int(n) for n in re.findall(r"(?:hit|read)=(\d+)", line))
            top = False
        elif line.startswith("Execution Time:"):
            out[label][2] += float(line.split()[2])
            top = False
    return {k: (n, b, ms) for k, (n, b, ms) in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--community", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--what", nargs="*", default=["report today", "call due"])
    args = ap.parse_args()
    seen = capture(args.db, args.community, args.what)
    plans = explain(args.db, seen)
    head = [
        f"-- plans on {args.db.split('@')[-1]}, community {args.community or '(default)'}: {', '.join(args.what)}",
        *(
            f"-- sum: {label}: {n} statements, {b:,} buffers, {ms:.1f} ms"
            for label, (n, b, ms) in totals(plans).items()
        ),
        "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(head + plans) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({len(seen)} statements)", file=sys.stderr)
    for line in head[1:-1]:
        print(line[3:], file=sys.stderr)


if __name__ == "__main__":
    main()
