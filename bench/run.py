"""Whole-process timings of commcare beside the floor its libraries set, in one run.

    python bench/run.py [--residents 100000] [--requests 1000000] [--days 60] [--runs 5] [--quick]
                        [--import-rows 100000] [--instructions]
    python bench/run.py --db postgresql+psycopg://postgres@127.0.0.1:5432/postgres [--city 100]

Builds a demo community with `commcare demo` (once; reused if the file exists), then runs each
command several times, interleaved with the floors so that machine noise hits all alike, and
prints the medians and their ratio to the floor, with peak memory (max RSS) per command and
the goal each is held to. Each command's peak memory is its own, measured by GNU time
(``/usr/bin/time -f %M``, see ``GNU_TIME``): the rusage of a child of this process could not
read below this process's own size, because Linux keeps a process's peak across fork and exec. `report today` is also timed on a second community with a tenth of
the history, built likewise: a tenth of the requests over a tenth of the days (6 instead of
60), so that today holds as many requests as in the large one, and the ratio of the two is
printed: the report reads the day's slice through indexes, so a longer history must not cost
more (goal: at most 1.2). (A tenth of the requests over the same 60 days would be a community
ten times quieter, with a tenth of today's requests and of the open backlog: that compares
load, not history.) Where
taskwarrior (``task``) is installed, the same work in taskwarrior at 100,000 pending tasks is
timed beside it as the peer (bench/peer_taskwarrior.py; ``--peer-tasks`` to change it). A
100,000-row roster (``--import-rows``) is imported into a fresh register in each run, beside a raw
sqlite3 executemany of the same rows (bench/bench_import.py, which also breaks the import's
time down). The table is also written to bench/results/.

The hot commands of issue #22 (add-request, request list/show/resolve/assign/start/note, call
log, call due, health log, report today) are each timed beside their physical limit:
``bench/limit.py`` running the SQL the command sent to the driver (captured once with
``COMMCARE_SQL_TRACE``), on the same register state (bench/hot.py); goal: at most 1.3 times
it. A commcare that writes no trace (no fast path) has its hot commands timed alone, and the
table says so. ``--capture-with "python bench/trace_sqlite.py"`` captures today's SQL beneath
SQLAlchemy instead. With --quick, taskwarrior has as many tasks as the community has residents
(2,000) and commcare is held to at most 3 times its time; at 100,000 tasks, to being ahead.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_import  # noqa: E402 - beside this file
import hot  # noqa: E402 - beside this file
import peer_taskwarrior  # noqa: E402 - beside this file

# The goals (issue #7): ratio to the floor (--help: to the help floor), and peak memory.
GOALS = {
    "commcare --help": 1.3,
    "add-request": 1.2,
    "request resolve": 1.2,
    "report today --format json": 1.3,
    "call due --format json": 1.3,
}
PEAK_GOAL_MIB = 120
# commcare's time over taskwarrior's at as many tasks (issue #22): at most 3 times at a
# community's size, ahead of it at 100,000.
PEER_GOALS = {2_000: 3.0, 100_000: 1.0}
HISTORY_GOAL = 1.2  # report today at --requests over report today at a tenth of them
IMPORT_GOAL = 0.2  # at least a fifth of raw sqlite3 executemany's rows per second
FLOOR = [sys.executable, "-c", "import typer, rich.console, sqlalchemy.orm"]
FLOOR_HELP = [sys.executable, "-c", "import typer, rich.console"]


def commcare() -> list[str]:
    exe = shutil.which("commcare") or str(Path(sys.executable).with_name("commcare"))
    return [exe]


# The peak memory of a command is measured by GNU time (``%M``: the maximum resident set size
# of the process it runs, in KiB), not by the rusage of the bench's own child: Linux keeps a
# process's peak RSS across fork and exec (the child of a fork starts with its parent's
# resident pages counted, and exec keeps the larger of the old and the new peak), so a command
# forked from this 28 MiB Python process could never read below 28 MiB. /usr/bin/time is a
# small C program (about 1 MiB resident): the command it forks starts from that, so a
# command's figure is its own to within it. Without /usr/bin/time the bench's own rusage is
# used, and its figures are marked as bounded below by the bench's size (``PEAK_FLOOR``).
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
PEAK_FLOOR: list[int] = []  # without GNU time: the bench's resident size (KiB), about the least a figure reads


def timed(cmd: list[str], env: dict) -> tuple[float, int]:
    """Seconds and peak RSS (KiB) of one run of ``cmd``, its peak measured by GNU time (see
    ``GNU_TIME``); the seconds include GNU time's fork, about a millisecond, on every side."""
    seconds, peak, _ = measured(cmd, env)
    return seconds, peak


def measured(cmd: list[str], env: dict) -> tuple[float, int, float]:
    """``timed``, and the CPU seconds (user + system) of the command and everything it waited
    for: what a loaded machine moves least, since a process waiting for a core is not charged
    for it (the hot table prints the ratio of both)."""
    import tempfile

    note = None
    if GNU_TIME:
        fd, note = tempfile.mkstemp(prefix="bench-peak-")
        os.close(fd)
        cmd = [GNU_TIME, "-f", "%M", "-o", note, *cmd]
    elif not PEAK_FLOOR:
        PEAK_FLOOR.append(_resident_kib())
    try:
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            os.execvpe(cmd[0], cmd, env)
        _, status, usage = os.wait4(pid, 0)
        elapsed = time.perf_counter() - start
        cpu = usage.ru_utime + usage.ru_stime
        if os.waitstatus_to_exitcode(status) not in (0, 1):
            raise SystemExit(f"failed: {' '.join(cmd)}")
        if note is None:
            return elapsed, usage.ru_maxrss, cpu
        # the last line: GNU time writes "Command exited with non-zero status 1" before it
        return elapsed, int(Path(note).read_text().split()[-1]), cpu
    finally:
        if note is not None:
            os.unlink(note)


def _resident_kib() -> int:
    """This process's resident size now (KiB): what a child forked from it starts counted with."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def peak_note() -> str:
    """How the peak memory column was measured, for the printed table."""
    if GNU_TIME:
        return "peak MiB: each command's own maximum RSS, measured by /usr/bin/time (%M)"
    return (
        f"peak MiB: /usr/bin/time is not installed, so each figure is this process's child's rusage, "
        f"which starts counted with most of the bench's own resident pages ({PEAK_FLOOR[0] / 1024:.1f} MiB at "
        f"the first fork): a smaller command reads close to that, not its own figure"
        if PEAK_FLOOR
        else "peak MiB: the bench's child's rusage"
    )


def instructions(cmd: list[str], env: dict) -> int:
    """Instructions one run of ``cmd`` executes, counted by valgrind's callgrind: the same
    count whatever else the machine is doing, where seconds on a shared machine can double
    from one hour to the next."""
    err = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    ).stderr
    return int(err.split("Collected :")[1].split()[0])


def byte_compile() -> None:
    """commcare's modules compiled to bytecode before timing, as installing a wheel leaves
    them. An editable install where PYTHONDONTWRITEBYTECODE is set (as in this workplace)
    would otherwise compile every module from source on every run (some 50 ms under cProfile
    here, for call due), which the floor,
    whose libraries pip compiled at install, never pays."""
    import compileall

    import commcare

    compileall.compile_dir(Path(commcare.__file__).parent, quiet=1)


def peer_version() -> str:
    return subprocess.run(["task", "--version"], capture_output=True, text=True, check=False).stdout.strip()


def build(db: Path, residents: int, requests: int, days: int, env: dict) -> None:
    """The demo register at ``db``, made unless it is there; one made by an older commcare is
    upgraded (``db upgrade``, which does nothing to a register already at the head)."""
    if db.exists():
        subprocess.run(commcare() + ["--db", str(db), "db", "upgrade"], env=env, check=True, capture_output=True)
        for backup in db.parent.glob(f"{db.name}.before-upgrade-*"):  # the upgrade's own backup: not kept
            backup.unlink()
        return
    print(f"building {db} ({residents} residents, {requests} requests over {days} days) …", file=sys.stderr)
    start = time.perf_counter()
    subprocess.run(
        commcare()
        + [
            "--db",
            str(db),
            "demo",
            "--residents",
            str(residents),
            "--requests",
            str(requests),
            "--days",
            str(days),
            "--format",
            "json",
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"built in {time.perf_counter() - start:.0f} s", file=sys.stderr)


class RosterImport:
    """``commcare resident import`` of a generated roster (bench_import.py's) into a fresh
    register, beside a raw sqlite3 executemany of the same rows, interleaved with the rest."""

    def __init__(self, out: Path, rows: int, env: dict) -> None:
        self.rows, self.dir = rows, out / "import"
        self.dir.mkdir(exist_ok=True)
        self.csv = self.dir / f"roster-{rows}.csv"
        if not self.csv.exists():
            bench_import.make_roster(self.csv, rows)
        self.env = {**env, "COMMCARE_DB": str(self.dir / "register.db")}
        self.raw: list[float] = []
        self.ours: list[float] = []
        self.peak = 0

    def run_once(self) -> None:
        # Both write and fsync tens of MB; the commands timed before them leave dirty pages
        # (the demo build, taskwarrior rewriting its 100,000 tasks, add-request's checkpoint)
        # whose writeback the first fsync would otherwise wait for. Flushed before each side.
        (self.dir / "raw.db").unlink(missing_ok=True)
        os.sync()
        self.raw.append(bench_import.raw(self.csv, self.dir / "raw.db"))
        bench_import.fresh_register(commcare(), self.env)
        os.sync()
        seconds, peak = timed(commcare() + ["resident", "import", str(self.csv)], self.env)
        self.ours.append(seconds)
        self.peak = max(self.peak, peak)

    def lines(self) -> list[str]:
        raw, ours = statistics.median(self.raw), statistics.median(self.ours)
        ratio = raw / ours
        line = (
            f"resident import of a {self.rows:,}-row roster: {self.rows / ours:,.0f} rows/s ({ours:.2f} s, "
            f"peak {self.peak / 1024:.0f} MiB) vs raw sqlite3 executemany {self.rows / raw:,.0f} rows/s: "
            f"{ratio:.3f} of the raw rate (goal at least {IMPORT_GOAL}) {'met' if ratio >= IMPORT_GOAL else 'NOT met'}"
        )
        return [line]


def server(args) -> None:
    """``--db``: PostgreSQL beside SQLite, and the city (bench/bench_server.py)."""
    import bench_server

    if args.drop:
        bench_server.drop_all(args.db, args.db_prefix)
        return
    out = Path(args.dir) / "server"
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "COMMCARE_CONFIG": str(out / "none.toml"), "NO_COLOR": "1"}
    for key in ("COMMCARE_NOW", "COMMCARE_DB", "COMMCARE_COMMUNITY"):
        env.pop(key, None)
    byte_compile()
    lines = [] if args.no_side_by_side else bench_server.side_by_side(args, out, env)
    if args.city:
        lines += bench_server.city(args, out, env)
    text = "\n".join(lines)
    print(text)
    (out / f"server-{time.strftime('%Y%m%d-%H%M%S')}.txt").write_text(text + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--residents", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--days", type=int, default=60, help="days of history of the large community")
    ap.add_argument("--quick", action="store_true", help="2,000 residents, 20,000 requests")
    ap.add_argument(
        "--peer-tasks",
        type=int,
        default=None,
        help="taskwarrior's tasks (default 100,000, as many as residents with --quick): "
        "at 1,000,000 it needs minutes and gigabytes per command",
    )
    ap.add_argument(
        "--import-rows",
        type=int,
        default=100_000,
        help="rows of the generated roster for the import beside raw sqlite3 (0: none)",
    )
    ap.add_argument("--dir", default=str(HERE / "results"))
    ap.add_argument("--no-hot", action="store_true", help="without the hot commands beside their limit")
    ap.add_argument(
        "--capture-with",
        default=None,
        help="the program that captures each hot command's SQL trace instead of commcare, given its "
        'arguments and COMMCARE_SQL_TRACE (e.g. "python bench/trace_sqlite.py")',
    )
    ap.add_argument(
        "--instructions",
        action="store_true",
        help="also count each command's instructions once under valgrind (callgrind), "
        "a measure the machine's noise does not move",
    )
    ap.add_argument(
        "--db",
        default=None,
        help="a PostgreSQL server (postgresql+psycopg://USER@HOST:PORT/DB): the same commands on it beside "
        "SQLite, side by side (bench/bench_server.py)",
    )
    ap.add_argument("--city", type=int, default=0, help="with --db: N communities in one database (0: none)")
    ap.add_argument("--city-residents", type=int, default=2_000, help="residents of each community of the city")
    ap.add_argument("--city-requests", type=int, default=20_000, help="requests of each community of the city")
    ap.add_argument("--demo-residents", type=int, default=10_000, help="with --db: a demo timed on each side (0: none)")
    ap.add_argument("--no-side-by-side", action="store_true", help="with --city: the city alone")
    ap.add_argument("--drop", action="store_true", help="with --db: drop the benchmark's databases and stop")
    ap.add_argument(
        "--db-prefix",
        default="commcare_bench",
        help="with --db: the names of the benchmark's databases begin with this (so that several people "
        "can share one server); --drop drops only these",
    )
    ap.add_argument("--build-only", action="store_true", help="with --db: build what is missing, time nothing")
    ap.add_argument(
        "--baseline",
        default=None,
        help="with --db: another install's commcare executable, whose commands are timed on both sides "
        "interleaved with ours (rows marked [baseline])",
    )
    ap.add_argument(
        "--baseline-prefix",
        default=None,
        help="with --baseline and --city: the baseline reads the city databases of this prefix (copies of "
        "ours at its own schema revision, made with CREATE DATABASE … TEMPLATE …), not ours",
    )
    args = ap.parse_args()
    if args.quick:
        args.residents, args.requests = 2_000, 20_000
    if args.db:
        server(args)
        return
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    db = out / f"demo-{args.residents}-{args.requests}.db"
    env = {**os.environ, "COMMCARE_DB": str(db), "COMMCARE_CONFIG": str(out / "none.toml"), "NO_COLOR": "1"}
    env.pop("COMMCARE_NOW", None)
    byte_compile()
    build(db, args.residents, args.requests, args.days, env)
    # The writing commands act as someone (else they exit 1 and their time is that of a refusal).
    env.setdefault("COMMCARE_USER", hot.targets(db)["actor"])
    # The same community with a tenth of the history: a tenth of the requests over a tenth of
    # the days, so that each day (today included) has as many requests as in the large one.
    small, small_days = args.requests // 10, max(1, args.days // 10)
    small_env = {**env, "COMMCARE_DB": str(out / f"demo-{args.residents}-{small}-{small_days}d.db")}
    build(Path(small_env["COMMCARE_DB"]), args.residents, small, small_days, small_env)
    c = commcare()
    small_name = f"report today --format json ({small:,} requests, {small_days} days)"
    cases = {
        "floor: import typer, rich.console, sqlalchemy.orm": FLOOR,
        "floor (help): import typer, rich.console": FLOOR_HELP,
        "commcare --help": c + ["--help"],
        "report today --format json": c + ["report", "today", "--format", "json"],
        small_name: c + ["report", "today", "--format", "json"],
        "call due --format json": c + ["call", "due", "--format", "json"],
        "request list --overdue --limit 100": c + ["request", "list", "--overdue", "--limit", "100"],
        "add-request": c + ["add-request", "#1", "--category", "trash", "--again"],
        "request resolve": None,  # filled per run with the request just opened
    }
    envs = {small_name: small_env}
    peer_env = None
    if peer_taskwarrior.available():
        tasks = args.peer_tasks or min(args.residents, 100_000)
        peer_env = {**env, **peer_taskwarrior.build(out / f"taskwarrior-{tasks}", tasks)}
        for name, cmd in peer_taskwarrior.cases().items():
            cases[f"peer: {' '.join(cmd[:2])} … ({name})"] = cmd
            envs[f"peer: {' '.join(cmd[:2])} … ({name})"] = peer_env
    else:
        print("taskwarrior (task) is not installed: no peer rows (apt-get install taskwarrior)", file=sys.stderr)
    times: dict[str, list[float]] = {k: [] for k in cases}
    peaks: dict[str, int] = {k: 0 for k in cases}
    roster = RosterImport(out, args.import_rows, env) if args.import_rows else None
    capture = shlex.split(args.capture_with) if args.capture_with else None
    hots = None if args.no_hot else hot.Hot(out, db, env, c, capture)
    for run in range(args.runs):
        if roster:
            roster.run_once()
        if hots:
            hots.run_once_each(run, measured)
        for name, cmd in cases.items():
            if cmd is None:
                last = subprocess.run(
                    c + ["--lang", "en", "request", "list", "--status", "all", "--resident", "#1", "--format", "csv"],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.splitlines()
                ids = [line.split(",")[0] for line in last[1:] if ",trash," in line and ",assigned," in line]
                cmd = c + ["request", "resolve", ids[-1]] if ids else c + ["--help"]
            seconds, peak = timed(cmd, envs.get(name, env))
            times[name].append(seconds)
            peaks[name] = max(peaks[name], peak)
    floor = statistics.median(times[next(iter(cases))])
    floor_help = statistics.median(times["floor (help): import typer, rich.console"])
    lines = [
        (
            f"commcare benchmark — {args.residents:,} residents, {args.requests:,} requests, "
            f"median of {args.runs} runs, {os.cpu_count()} cores"
        ),
        f"{'command':60} {'median s':>9} {'ratio':>7} {'goal':>6} {'peak MiB':>9}  verdict",
    ]
    for name in cases:
        median = statistics.median(times[name])
        base = floor_help if name == "commcare --help" else floor
        ratio = median / base
        goal = GOALS.get(name)
        peak = peaks[name] / 1024
        verdict = ""
        if goal is not None:
            verdict = "met" if ratio <= goal and (name == "commcare --help" or peak <= PEAK_GOAL_MIB) else "NOT met"
        goal_text = f"{goal:.1f}" if goal is not None else ""
        lines.append(f"{name:60} {median:9.3f} {ratio:7.2f} {goal_text:>6} {peak:9.1f}  {verdict}")
    if peer_env:
        lines.append(f"peer: taskwarrior {peer_version()} with {tasks:,} pending tasks")
    lines.append(
        f"ratio: to the floor (commcare --help: to the help floor); goal: the most the ratio may be, "
        f"with peak memory at most {PEAK_GOAL_MIB} MiB"
    )
    lines.append(peak_note())
    history = statistics.median(times["report today --format json"]) / statistics.median(times[small_name])
    lines.append(
        f"report today with {args.days} days of history ({args.requests:,} requests) vs {small_days} days "
        f"({small:,}), as many requests a day: {history:.2f} of its time "
        f"(goal {HISTORY_GOAL:.1f}) {'met' if history <= HISTORY_GOAL else 'NOT met'}"
    )
    if roster:
        lines += roster.lines()
    if hots:
        lines += hots.lines()
    if peer_env:
        lines += peer_lines(cases, times, tasks)
    if args.instructions and not shutil.which("valgrind"):
        print("valgrind is not installed: no instruction counts (apt-get install valgrind)", file=sys.stderr)
    elif args.instructions:
        lines.append("instructions (valgrind callgrind, one run each; ratio to the floor):")
        counts = {}
        for name, cmd in cases.items():
            if cmd is None or name.startswith("peer:"):
                continue
            counts[name] = instructions(cmd, envs.get(name, env))
        base = counts[next(iter(cases))]
        for name, n in counts.items():
            base_n = counts["floor (help): import typer, rich.console"] if name == "commcare --help" else base
            lines.append(f"  {name:58} {n / 1e9:7.3f} G {n / base_n:7.2f}")
        lines.append(
            f"  report today with {args.days} days of history vs {small_days}: "
            f"{counts['report today --format json'] / counts[small_name]:.3f} of its instructions"
        )
    text = "\n".join(lines)
    print(text)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"bench-{stamp}.txt").write_text(text + "\n", encoding="utf-8")
    if hots:
        size = {"residents": args.residents, "requests": args.requests, "runs": args.runs}
        data = {**size, "goal": hot.GOAL, "captured_by": args.capture_with or "commcare", "commands": hots.rows()}
        (out / f"hot-{stamp}.json").write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def peer_lines(cases: dict, times: dict, tasks: int) -> list[str]:
    """commcare's time over taskwarrior's, command by command, against the goal at that many
    tasks (PEER_GOALS; none at another count)."""
    goal = PEER_GOALS.get(tasks)
    lines = []
    for name in cases:
        if name.startswith("peer:"):
            ours = name.split("(", 1)[1].rstrip(")")
            ratio = statistics.median(times[ours]) / statistics.median(times[name])
            verdict = "" if goal is None else f" (goal at most {goal:.1f}) {'met' if ratio <= goal else 'NOT met'}"
            lines.append(
                f"commcare {ours} vs {name[6:].split(' (')[0]} at {tasks:,} tasks: {ratio:.2f} of its time{verdict}"
            )
    return lines


if __name__ == "__main__":
    main()
