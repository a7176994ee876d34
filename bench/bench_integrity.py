"""What the integrity checks cost: the same commands with and without them, side by side.

    python bench/bench_integrity.py [--db PATH] [--residents 100000] [--requests 1000000]
                                    [--days 60] [--runs 7] [--import-rows 20000]

On a demo register (built once with `commcare demo`, reused if the file exists), each command
is run as a whole process in three forms, interleaved so that machine noise hits all alike:

checked    commcare as shipped: PRAGMA cell_size_check on every connection, and the counts
           check (``commcare.integrity.verify``) before the list or the report.
no-counts  the counts check replaced by nothing; cell_size_check still on.
unchecked  neither.

It prints the median of each and the ratio checked / unchecked, for ``call due`` and
``report today`` (JSON), and for ``resident import`` of a generated roster into a fresh
register with and without the counting triggers (which keep the counts on every write).
Every form runs the installed commcare through the same small wrapper, which switches the
named checks off in that process only (``--without``); commcare itself has no such switch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FORMS = {"checked": [], "no-counts": ["counts"], "unchecked": ["counts", "cell_size_check"]}


def without(checks: list[str]) -> None:
    """The wrapper's side: run commcare's console script with ``checks`` switched off. The
    collector is held off from the start, as the console script holds it (commcare.cli.main)."""
    import gc

    gc.disable()
    from commcare import db, integrity

    if "counts" in checks:
        integrity.verify = lambda *args, **kwargs: None
    if "cell_size_check" in checks:
        db.PRAGMAS[:] = [p for p in db.PRAGMAS if not p.startswith("cell_size_check")]
    if "triggers" in checks:
        from sqlalchemy import create_engine

        engine = create_engine(db.to_url(os.environ["COMMCARE_DB"]))
        with engine.begin() as conn:
            integrity.uninstall(conn)
        engine.dispose()
    from commcare.cli import main

    sys.argv[0] = "commcare"
    main()


def command(checks: list[str]) -> list[str]:
    """Every form through the same wrapper (the checked one switching nothing off), so that
    the forms differ in the checks alone."""
    return [sys.executable, str(Path(__file__).resolve()), "--without", ",".join(checks) or "-", "--"]


def time_reads(env: dict, runs: int) -> dict:
    from run import timed

    times: dict = {}
    for _ in range(runs):
        for args in (["call", "due", "--format", "json"], ["report", "today", "--format", "json"]):
            for form, checks in FORMS.items():
                seconds, _ = timed(command(checks) + args, env)
                times.setdefault(" ".join(args[:2]), {}).setdefault(form, []).append(seconds)
    return times


def time_import(rows: int, runs: int, env: dict, folder: Path) -> dict:
    import bench_import
    from run import commcare, timed

    roster = folder / f"roster-{rows}.csv"
    bench_import.make_roster(roster, rows)
    env = {**env, "COMMCARE_DB": str(folder / "import.db")}
    times: dict = {"counting triggers": [], "no triggers": []}
    for _ in range(runs):
        for form, checks in (("counting triggers", []), ("no triggers", ["triggers"])):
            bench_import.fresh_register(commcare(), env)
            if checks:  # the triggers are dropped by a run of the wrapper before the clock starts
                subprocess.run(command(checks) + ["db", "path"], env=env, check=True, capture_output=True)
            os.sync()
            seconds, _ = timed(commcare() + ["resident", "import", str(roster)], env)
            times[form].append(seconds)
    return {f"resident import of {rows:,} rows": times}


def report(times: dict, base: str) -> list[str]:
    lines = []
    for what, forms in times.items():
        medians = {form: statistics.median(t) for form, t in forms.items()}
        parts = ", ".join(f"{form} {m:.3f} s" for form, m in medians.items())
        ratio = medians[next(iter(medians))] / medians[base]
        lines.append(f"{what}: {parts}; {next(iter(medians))} / {base} = {ratio:.3f}")
    return lines


def resident_count(db: Path) -> int:
    import sqlite3

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM residents").fetchone()[0]
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default=str(HERE / "results" / "integrity.db"))
    ap.add_argument("--residents", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--import-rows", type=int, default=20_000)
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from run import build, byte_compile

    byte_compile()
    db = Path(args.db)
    db.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "COMMCARE_DB": str(db), "COMMCARE_LANG": "en"}
    build(db, args.residents, args.requests, args.days, env)
    lines = [f"{db}: {resident_count(db):,} residents; medians of {args.runs} whole-process runs"]
    lines += report(time_reads(env, args.runs), "unchecked")
    with tempfile.TemporaryDirectory() as tmp:
        lines += report(time_import(args.import_rows, max(3, args.runs // 2), env, Path(tmp)), "no triggers")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--without":
        checks = sys.argv[2].split(",")
        sys.argv = [sys.argv[0]] + sys.argv[4:]
        without(checks)
    else:
        main()
