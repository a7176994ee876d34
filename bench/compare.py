"""Two installs of commcare timed side by side, command by command, in one run.

    python bench/compare.py BASELINE_COMMCARE OURS_COMMCARE [--residents 2000] [--requests 20000]
                            [--runs 7] [--import-rows 20000] [--dir DIR]

For a change that must not change performance (a restructuring): both installs run the same
commands on the same demo register, interleaved (baseline, ours, then ours, baseline …) so that
the machine's noise, and a write's checkpoint left for the next command, fall on both alike, and the medians and their ratio (ours / baseline) are
printed, beside each install's ratio to the floor its libraries set (as bench/run.py prints
it). Bytecode is kept outside both trees (PYTHONPYCACHEPREFIX), compiled by a first untimed
run of each command, as an installed wheel has it.
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
sys.path.insert(0, str(HERE))
import bench_import  # noqa: E402 - beside this file
from run import FLOOR, FLOOR_HELP, instructions, timed  # noqa: E402 - beside this file

CASES = {
    "commcare --help": ["--help"],
    "report today --format json": ["report", "today", "--format", "json"],
    "call due --format json": ["call", "due", "--format", "json"],
    "request list --overdue --limit 100": ["request", "list", "--overdue", "--limit", "100"],
    "add-request": ["add-request", "#1", "--category", "trash"],
    "request resolve": None,  # the request add-request just opened
    "resident list --tag 独居": ["resident", "list", "--tag", "独居"],
    "resident show #1": ["resident", "show", "#1"],
    "resident export --format json": ["resident", "export", "--format", "json"],
}


def python_of(exe: str) -> str:
    """The interpreter of an installed console script (its first line)."""
    first = Path(exe).read_text(encoding="utf-8").splitlines()[0]
    return first[2:].strip()


def build(exe: str, db: Path, residents: int, requests: int, env: dict) -> None:
    if not db.exists():
        subprocess.run(
            [
                exe,
                "--db",
                str(db),
                "demo",
                "--residents",
                str(residents),
                "--requests",
                str(requests),
                "--days",
                "60",
                "--format",
                "json",
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )


def last_open_request(exe: str, env: dict) -> str:
    rows = subprocess.run(
        [exe, "request", "list", "--status", "all", "--resident", "#1", "--format", "csv"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    ids = [line.split(",")[0] for line in rows[1:] if ",trash," in line and ",assigned," in line]
    return ids[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("baseline")
    ap.add_argument("ours")
    ap.add_argument("--residents", type=int, default=2_000)
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--import-rows", type=int, default=20_000)
    ap.add_argument("--dir", default=None)
    ap.add_argument(
        "--instructions",
        action="store_true",
        help="also count each command's instructions once per install under valgrind (callgrind): "
        "a comparison the machine's noise does not move",
    )
    args = ap.parse_args()
    out = Path(args.dir or tempfile.mkdtemp(prefix="commcare-compare-"))
    out.mkdir(parents=True, exist_ok=True)
    sides = {"baseline": args.baseline, "ours": args.ours}
    db = out / f"demo-{args.residents}-{args.requests}.db"
    base_env = {k: v for k, v in os.environ.items() if k not in ("COMMCARE_NOW", "PYTHONDONTWRITEBYTECODE")}
    envs = {
        side: {
            **base_env,
            "COMMCARE_DB": str(db),
            "COMMCARE_CONFIG": str(out / "none.toml"),
            "NO_COLOR": "1",
            "PYTHONPYCACHEPREFIX": str(out / f"pycache-{side}"),
        }
        for side in sides
    }
    build(args.baseline, db, args.residents, args.requests, envs["baseline"])
    roster = out / f"roster-{args.import_rows}.csv"
    if args.import_rows and not roster.exists():
        bench_import.make_roster(roster, args.import_rows)
    cases = {
        "floor: import typer, rich.console, sqlalchemy.orm": None,
        "floor (help): import typer, rich.console": None,
        **CASES,
    }
    if args.import_rows:
        cases[f"resident import ({args.import_rows:,} rows, fresh register)"] = None
    times = {(side, name): [] for side in sides for name in cases}
    for run in range(args.runs + 1):  # the first run compiles the bytecode and is not counted
        order = list(sides.items()) if run % 2 else list(reversed(sides.items()))  # who goes first alternates
        for name in cases:
            for side, exe in order:
                seconds = run_case(name, exe, envs[side], roster, out / f"import-{side}.db")
                if run:
                    times[side, name].append(seconds)
    print_table(args, sides, cases, times)
    if args.instructions:
        print_instructions(sides, envs)


def run_case(name: str, exe: str, env: dict, roster: Path, import_db: Path) -> float:
    python = python_of(exe)
    if name.startswith("floor (help)"):
        return timed([python, *FLOOR_HELP[1:]], env)[0]
    if name.startswith("floor"):
        return timed([python, *FLOOR[1:]], env)[0]
    if name.startswith("resident import"):
        import_env = {**env, "COMMCARE_DB": str(import_db)}
        bench_import.fresh_register([exe], import_env)
        os.sync()
        return timed([exe, "resident", "import", str(roster)], import_env)[0]
    args = CASES[name] if CASES[name] is not None else ["request", "resolve", last_open_request(exe, env)]
    return timed([exe, *args], env)[0]


def print_instructions(sides: dict, envs: dict) -> None:
    """Each command's instructions, once per install (the import is left out: its checking
    runs in a forked child that callgrind does not follow)."""
    print(f"{'instructions (callgrind, one run each)':58} {'baseline G':>10} {'ours G':>8} {'ours/base':>9}")
    for name, args in CASES.items():
        counts = {}
        for side, exe in sides.items():
            cmd = [exe, *(args if args is not None else ["request", "resolve", last_open_request(exe, envs[side])])]
            if args is None:  # a request to resolve: open one first
                subprocess.run([exe, *CASES["add-request"]], env=envs[side], check=True, capture_output=True)
                cmd = [exe, "request", "resolve", last_open_request(exe, envs[side])]
            counts[side] = instructions(cmd, envs[side])
        print(
            f"{name:58} {counts['baseline'] / 1e9:10.3f} {counts['ours'] / 1e9:8.3f} "
            f"{counts['ours'] / counts['baseline']:9.3f}"
        )


def print_table(args, sides: dict, cases: dict, times: dict) -> None:
    med = {key: statistics.median(values) for key, values in times.items()}
    print(
        f"commcare side by side — {args.residents:,} residents, {args.requests:,} requests, "
        f"median of {args.runs} interleaved runs, {os.cpu_count()} cores"
    )
    print(f"  baseline: {sides['baseline']}\n  ours:     {sides['ours']}")
    print(f"{'command':58} {'baseline s':>10} {'ours s':>8} {'ours/base':>9} {'base/floor':>10} {'ours/floor':>10}")
    for name in cases:
        if name.startswith("floor"):
            floor_b, floor_o = med["baseline", name], med["ours", name]
            print(f"{name:58} {floor_b:10.3f} {floor_o:8.3f} {floor_o / floor_b:9.2f}")
            continue
        floor = (
            "floor (help): import typer, rich.console"
            if name == "commcare --help"
            else "floor: import typer, rich.console, sqlalchemy.orm"
        )
        b, o = med["baseline", name], med["ours", name]
        print(
            f"{name:58} {b:10.3f} {o:8.3f} {o / b:9.2f} {b / med['baseline', floor]:10.2f} "
            f"{o / med['ours', floor]:10.2f}"
        )


if __name__ == "__main__":
    main()
