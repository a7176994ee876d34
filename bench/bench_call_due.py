"""`commcare call due` over a large register beside the floor its libraries set, in one run.

    python bench/bench_call_due.py [--residents 100000] [--days 30] [--runs 7] [--db FILE]

Builds (once; reused if the file exists) a register with bulk Core inserts: 50 liaisons, two
residents per household, every fourth resident in a special group (a few in two), and a call
history of ``--days`` days for the special groups (most reached each day, some not). Today,
by 09:00, 40 % of them have been reached and some have had unanswered calls. Then runs
`call due --format json`, `call due` (table, piped), one liaison's list, and `health due` (a
trivial query: what any database command costs here) interleaved with the floor
`python -c "import typer, rich.console, sqlalchemy.orm"`, and prints medians and ratios.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FLOOR = [sys.executable, "-c", "import typer, rich.console, sqlalchemy.orm"]
NOW = dt.datetime(2026, 5, 8, 1, 0, tzinfo=dt.UTC)  # 09:00 in Shanghai
TAGS = ("elderly", "lives-alone", "sick", "disabled", "frail", "child", "pregnant")


def commcare() -> list[str]:
    exe = shutil.which("commcare") or str(Path(sys.executable).with_name("commcare"))
    return [exe]


def build(db: Path, residents: int, days: int, env: dict) -> None:
    subprocess.run(commcare() + ["--db", str(db), "init"], env=env, check=True, stdout=subprocess.DEVNULL)
    from sqlalchemy import create_engine, insert

    from commcare.storage import tables

    rng = random.Random(5)
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as con:
        cid = con.execute(
            insert(tables.communities)
            .values(name="default", created_at=NOW - dt.timedelta(days=400))
            .returning(tables.communities.c.id)
        ).scalar_one()
        created = NOW - dt.timedelta(days=365)
        con.execute(
            insert(tables.staff),
            [
                {"id": i, "community_id": cid, "name": f"联络员{i:02d}", "active": True, "created_at": created}
                for i in range(1, 51)
            ],
        )
        con.execute(
            insert(tables.households),
            [
                {
                    "id": h,
                    "community_id": cid,
                    "compound": f"小区{h % 40}",
                    "address": f"{h}号",
                    "liaison_id": 1 + h % 50,
                    "created_at": created,
                }
                for h in range(1, residents // 2 + 2)
            ],
        )
        con.execute(insert(tables.residents), [_resident(i, cid, created) for i in range(1, residents + 1)])
        special = [i for i in range(1, residents + 1) if i % 4 == 0]
        tags = [{"resident_id": i, "tag": TAGS[i % len(TAGS)], "community_id": cid} for i in special]
        tags += [
            {"resident_id": i, "tag": "frail", "community_id": cid}
            for i in special
            if i % 40 == 0 and TAGS[i % len(TAGS)] != "frail"
        ]
        con.execute(insert(tables.resident_tags), tags)
        for day in range(days, -1, -1):
            con.execute(insert(tables.calls), list(_calls(rng, cid, special, day)))


def _resident(i: int, cid: int, created) -> dict:
    return {
        "id": i,
        "community_id": cid,
        "household_id": 1 + i // 2,
        "name": f"居民{i}",
        "phone": f"139{i:08d}",
        "emergency_name": f"家属{i}",
        "emergency_phone": f"138{i:08d}",
        "archived_at": created if i % 97 == 0 else None,
        "created_at": created,
        "updated_at": created,
        "version": 1,
    }


def _calls(rng, cid: int, special: list[int], day: int):
    """A day's calls: 90 % reached (today, by 09:00: 40 %), some after a no-answer first."""
    start = NOW - dt.timedelta(days=day, hours=1)  # 08:00 Shanghai
    reach = 0.4 if day == 0 else 0.9
    for i in special:
        roll = rng.random()
        if roll < 0.1 or (day == 0 and roll > 0.9):
            yield _call(cid, i, start + dt.timedelta(minutes=rng.randrange(50)), "no-answer", None)
        if roll < reach:
            yield _call(
                cid, i, start + dt.timedelta(minutes=55 + rng.randrange(5)), "ok", "一切正常" if roll < 0.3 else None
            )
        elif day == 0 and roll > 0.95:
            yield _call(cid, i, start + dt.timedelta(minutes=52), "unreachable", None)


def _call(cid, resident, at, outcome, note) -> dict:
    return {
        "community_id": cid,
        "resident_id": resident,
        "staff_id": 1 + resident % 50,
        "actor": "bench",
        "at": at,
        "outcome": outcome,
        "note": note,
    }


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--residents", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--db", default=None)
    args = ap.parse_args()
    out = HERE / "results"
    out.mkdir(parents=True, exist_ok=True)
    db = Path(args.db) if args.db else out / f"calls-{args.residents}-{args.days}.db"
    env = {
        **os.environ,
        "COMMCARE_DB": str(db),
        "COMMCARE_CONFIG": str(out / "none.toml"),
        "NO_COLOR": "1",
        "COMMCARE_NOW": NOW.isoformat(),
        "COMMCARE_LANG": "en",
    }
    if not db.exists():
        start = time.perf_counter()
        build(db, args.residents, args.days, env)
        print(f"built {db} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    rows = (
        subprocess.run(
            commcare() + ["call", "due", "--format", "csv"], env=env, check=True, capture_output=True, text=True
        ).stdout.count("\n")
        - 1
    )
    cases = {
        "floor: import typer, rich.console, sqlalchemy.orm": FLOOR,
        "call due --format json": commcare() + ["call", "due", "--format", "json"],
        "call due (table, piped)": commcare() + ["call", "due"],
        "call due --liaison 联络员07 --format json": commcare()
        + ["call", "due", "--liaison", "联络员07", "--format", "json"],
        "health due --format json (any command's fixed cost)": commcare() + ["health", "due", "--format", "json"],
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.runs):
        for name, cmd in cases.items():
            times[name].append(timed(cmd, env))
    floor = statistics.median(times[next(iter(cases))])
    lines = [
        (
            f"call due — {args.residents:,} residents, {rows:,} due now, {args.days} days of calls, "
            f"median of {args.runs} runs, {os.cpu_count()} cores"
        ),
        f"{'command':56} {'median s':>9} {'ratio':>7}",
    ]
    lines += [f"{name:56} {statistics.median(t):9.3f} {statistics.median(t) / floor:7.2f}" for name, t in times.items()]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
