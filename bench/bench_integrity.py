"""What the integrity checks cost: the same commands with and without them, side by side.

    python bench/bench_integrity.py [--db PATH] [--residents 100000] [--requests 1000000]
                                    [--days 60] [--runs 7] [--import-rows 20000]

On a demo register (built once with `commcare demo`, reused if the file exists), each command
is run as a whole process in three forms, interleaved so that machine noise hits all alike:

checked    commcare as shipped: PRAGMA cell_size_check on every connection, and the counts
           check (``commcare.storage.integrity.verify``) before the list or the report.
no-counts  the counts check replaced by nothing; cell_size_check still on.
unchecked  neither.

It prints the median CPU time (user + system, of the whole process) of each and the ratio
checked / unchecked, for ``call due`` and ``report today`` (JSON), and for ``resident import``
of a generated roster into a fresh register with and without the counting triggers (which
keep the counts on every write). CPU time rather than wall time: on a shared machine whose
other work comes and goes, a command's wall time varies far more than the checks cost.
``--nightly`` also times the scheduled summary (``schedule run``, which checks the whole
file with SQLite's integrity check before it reports) beside the same report made by hand
(``report today --output-dir``).
``--instructions`` counts each read's instructions once with valgrind's callgrind instead
(the same count whatever else the machine does).
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
    from commcare.storage import engine as storage_engine
    from commcare.storage import integrity

    if "counts" in checks:
        integrity.verify = lambda *args, **kwargs: None
    if "cell_size_check" in checks:
        storage_engine.PRAGMAS[:] = [p for p in storage_engine.PRAGMAS if not p.startswith("cell_size_check")]
    if "triggers" in checks:
        from sqlalchemy import create_engine

        engine = create_engine(storage_engine.to_url(os.environ["COMMCARE_DB"]))
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


READS = (["call", "due", "--format", "json"], ["report", "today", "--format", "json"])


def cpu(cmd: list[str], env: dict) -> float:
    """User + system seconds of one run of ``cmd`` (output discarded)."""
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execvpe(cmd[0], cmd, env)
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return usage.ru_utime + usage.ru_stime


def time_reads(env: dict, runs: int) -> dict:
    times: dict = {}
    for _ in range(runs):
        for args in READS:
            for form, checks in FORMS.items():
                times.setdefault(" ".join(args[:2]), {}).setdefault(form, []).append(cpu(command(checks) + args, env))
    return times


def instructions(cmd: list[str], env: dict) -> int:
    """Instructions one run of ``cmd`` executes, with every process it forks (an import
    checks its roster in a child): valgrind's callgrind reports each process's count."""
    err = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    ).stderr
    return sum(int(part.split()[0].replace(",", "")) for part in err.split("Collected :")[1:])


def count_reads(env: dict) -> dict:
    return {
        " ".join(args[:2]) + " (instructions)": {
            form: [instructions(command(checks) + args, env)] for form, checks in FORMS.items()
        }
        for args in READS
    }


def time_import(rows: int, runs: int, env: dict, folder: Path, count: bool = False) -> dict:
    """CPU seconds of ``resident import`` with and without the counting triggers; with
    ``count``, also its instructions, once each (callgrind; the parent process, which writes,
    the roster is checked in a child process beside it, and both are counted)."""
    import bench_import
    from run import commcare

    roster = folder / f"roster-{rows}.csv"
    bench_import.make_roster(roster, rows)
    env = {**env, "COMMCARE_DB": str(folder / "import.db")}
    times: dict = {"counting triggers": [], "no triggers": []}
    counted: dict = {"counting triggers": [], "no triggers": []}
    for run in range(runs + count):
        for form, checks in (("counting triggers", []), ("no triggers", ["triggers"])):
            bench_import.fresh_register(commcare(), env)
            if checks:  # the triggers are dropped by a run of the wrapper before the clock starts
                subprocess.run(command(checks) + ["db", "path"], env=env, check=True, capture_output=True)
            os.sync()
            cmd = commcare() + ["resident", "import", str(roster)]
            if run < runs:
                times[form].append(cpu(cmd, env))
            else:
                counted[form].append(instructions(cmd, env))
    out = {f"resident import of {rows:,} rows": times}
    if count:
        out[f"resident import of {rows:,} rows (instructions)"] = counted
    return out


def time_nightly(env: dict, runs: int, folder: Path) -> dict:
    """CPU seconds of the evening run (whole-file check, then the report) and of the same
    report alone, both writing Markdown into ``folder``."""
    from run import commcare

    times: dict = {"schedule run": [], "report today": []}
    for _ in range(runs):
        for form, args in (
            ("schedule run", ["schedule", "run", "--dir", str(folder)]),
            ("report today", ["report", "today", "--format", "markdown", "--output-dir", str(folder), "--force"]),
        ):
            for old in folder.glob("*.md"):
                old.unlink()
            times[form].append(cpu(commcare() + args, env))
    return {"evening summary, whole-file check included": times}


def report(times: dict, base: str) -> list[str]:
    lines = []
    for what, forms in times.items():
        medians = {form: statistics.median(t) for form, t in forms.items()}
        unit = (lambda m: f"{m / 1e6:,.0f} M") if "instructions" in what else (lambda m: f"{m:.3f} s")
        parts = ", ".join(f"{form} {unit(m)}" for form, m in medians.items())
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
    ap.add_argument("--nightly", action="store_true", help="time the evening run's whole-file check")
    ap.add_argument("--instructions", action="store_true", help="count the reads' instructions (callgrind)")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from run import build, byte_compile

    byte_compile()
    db = Path(args.db)
    db.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "COMMCARE_DB": str(db), "COMMCARE_LANG": "en"}
    build(db, args.residents, args.requests, args.days, env)
    lines = [f"{db}: {resident_count(db):,} residents; CPU seconds, medians of {args.runs} whole-process runs"]
    lines += report(time_reads(env, args.runs), "unchecked")
    if args.instructions:
        lines += report(count_reads(env), "unchecked")
    if args.nightly:
        with tempfile.TemporaryDirectory() as tmp:
            lines += report(time_nightly(env, args.runs, Path(tmp)), "report today")
    with tempfile.TemporaryDirectory() as tmp:
        lines += report(
            time_import(args.import_rows, max(3, args.runs // 2), env, Path(tmp), args.instructions), "no triggers"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--without":
        checks = sys.argv[2].split(",")
        sys.argv = [sys.argv[0]] + sys.argv[4:]
        without(checks)
    else:
        main()
