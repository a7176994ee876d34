"""One roster import into a fresh register on SQLite and on PostgreSQL, side by side in one run.

    python bench/bench_import_pg.py --db postgresql+psycopg://postgres@127.0.0.1:5432/postgres
        [--rows 100000] [--runs 5] [--name commcare_bench_import_pg] [--check] [--before DIR]

The same generated roster (``bench_import.make_roster``: Chinese headers, households of three,
a quarter elderly) is imported by the whole ``python -m commcare resident import`` process of
this checkout into a fresh register on each side: a new SQLite file, and a PostgreSQL database
dropped, created and initialised (``--name``, on the server of ``--db``) before each run. The
two sides alternate which goes first from run to run, after ``os.sync()``, so that machine noise
hits both alike. Prints each side's median wall-clock seconds and CPU seconds of the client
(the process and the child that checks the rows; the server's work is not in it), for
PostgreSQL the CPU seconds of the server's processes on the database (its backend and
parallel workers, from /proc: a server on this machine), PostgreSQL / SQLite, and the range
of the load average. ``--check`` runs ``commcare db check`` on the last PostgreSQL register.
``--before DIR`` adds a third side, interleaved with the two: the PostgreSQL import of another
checkout of commcare (``git archive COMMIT | tar -x -C DIR``), into its own fresh database
(``--name`` + ``_before``) initialised by that checkout. The databases are dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_import import make_roster  # noqa: E402
from bench_server import admin, server_url  # noqa: E402


def commcare() -> list[str]:
    return [sys.executable, "-m", "commcare"]


def in_tree(env: dict, tree: Path) -> dict:
    """``env`` for running the commcare of ``tree`` (run from there: ``-m`` puts the working
    directory first on the path)."""
    return {**env, "PYTHONPATH": str(tree)}


def timed(cmd: list[str], env: dict, server: tuple[str, str] | None = None) -> tuple[float, float, float | None]:
    """Wall-clock and client CPU seconds of one run of ``cmd`` (which must succeed), and the CPU
    seconds of the server's processes on database ``server`` = (URL, name) while it ran: its
    backend and any parallel workers, read from /proc every 50 ms (a server on this machine, a
    user who may read its processes' /proc/PID/stat; None otherwise)."""
    import psycopg

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    watch = (
        psycopg.connect(server_url(server[0], "postgres").replace("+psycopg", ""), autocommit=True) if server else None
    )
    start = time.perf_counter()
    errors = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=errors, cwd=env["PYTHONPATH"])
    seen: dict[int, float | None] = {}
    while proc.poll() is None:
        if watch:
            for (pid,) in watch.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (server[1],)):
                seen[pid] = _cpu_of(pid, seen.get(pid))
        time.sleep(0.05)
    wall = time.perf_counter() - start
    if proc.returncode:
        errors.seek(0)
        raise SystemExit(f"{cmd} exit {proc.returncode}: {errors.read().decode()[-2000:]}")
    if watch:
        watch.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    readable = [v for v in seen.values() if v is not None]
    return (
        wall,
        (after.ru_utime - used.ru_utime) + (after.ru_stime - used.ru_stime),
        sum(readable) if readable else None,
    )


TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int, last: float | None) -> float | None:
    """User and system CPU seconds of process ``pid`` so far, or ``last`` once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return last
    return (int(fields[11]) + int(fields[12])) / TICK


def fresh_sqlite(path: Path, env: dict) -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    subprocess.run(
        commcare() + ["--db", str(path), "init"], env=env, check=True, capture_output=True, cwd=env["PYTHONPATH"]
    )
    return str(path)


def fresh_server(url: str, name: str, env: dict) -> str:
    """A new database ``name`` on ``url``'s server, initialised by the commcare ``env`` runs."""
    admin(url, f'DROP DATABASE IF EXISTS "{name}"')
    admin(url, f'CREATE DATABASE "{name}"')
    target = server_url(url, name)
    subprocess.run(
        commcare() + ["--db", target, "init"], env=env, check=True, capture_output=True, cwd=env["PYTHONPATH"]
    )
    return target


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True, help="a PostgreSQL URL on the server to use (its maintenance database)")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--name", default="commcare_bench_import_pg", help="the PostgreSQL database made for each run")
    ap.add_argument("--check", action="store_true", help="commcare db check on the last PostgreSQL register")
    ap.add_argument("--before", type=Path, help="another checkout, whose PostgreSQL import is timed beside")
    args = ap.parse_args()
    import compileall

    for tree in filter(None, (HERE.parent, args.before)):
        compileall.compile_dir(tree / "commcare", quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        roster = tmp / "roster.csv"
        make_roster(roster, args.rows)
        base = {**os.environ, "COMMCARE_CONFIG": str(tmp / "none.toml"), "COMMCARE_USER": "bench"}
        base.pop("COMMCARE_DB", None)
        env = in_tree(base, HERE.parent)
        make = {
            "sqlite": (lambda: fresh_sqlite(tmp / "cc.db", env), env),
            "postgresql": (lambda: fresh_server(args.db, args.name, env), env),
        }
        if args.before:
            old = in_tree(base, args.before.resolve())
            make["postgresql, before"] = (lambda: fresh_server(args.db, f"{args.name}_before", old), old)
        wall: dict[str, list[float]] = {k: [] for k in make}
        cpu: dict[str, list[float]] = {k: [] for k in make}
        server_cpu: dict[str, list[float]] = {k: [] for k in make}
        loads: list[float] = []
        for run in range(args.runs):
            order = list(make) if run % 2 == 0 else list(reversed(make))
            for side in order:
                fresh, side_env = make[side]
                target = fresh()
                os.sync()
                loads.append(os.getloadavg()[0])
                on = (args.db, target.rsplit("/", 1)[1]) if side != "sqlite" else None
                w, c, s = timed(commcare() + ["--db", target, "resident", "import", str(roster)], side_env, on)
                wall[side].append(w)
                cpu[side].append(c)
                if s is not None:
                    server_cpu[side].append(s)
        if args.check:
            # the last PostgreSQL register is still there (each run drops the one before it)
            last = server_url(args.db, args.name)
            check = subprocess.run(commcare() + ["--db", last, "db", "check"], env=env, capture_output=True)
            print(f"db check on PostgreSQL: exit {check.returncode}")
        for name in (args.name, f"{args.name}_before"):
            admin(args.db, f'DROP DATABASE IF EXISTS "{name}"')
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"rows: {args.rows:,}; medians of {args.runs} runs, the sides alternating (whole process)")
    print(f"load average (1 min) before each import: {min(loads):.1f} to {max(loads):.1f}")
    for side in make:
        runs = " ".join(f"{t:.2f}" for t in wall[side])
        server = f"   server CPU {statistics.median(server_cpu[side]):6.2f} s" if server_cpu[side] else ""
        print(f"  {side:20} wall {med[side]:6.2f} s   client CPU {med_cpu[side]:6.2f} s{server}   wall runs: {runs}")
    print(f"PostgreSQL / SQLite: wall {med['postgresql'] / med['sqlite']:.3f}")
    if "postgresql, before" in med:
        before = med["postgresql, before"]
        print(
            f"PostgreSQL before / SQLite: wall {before / med['sqlite']:.3f}; after/before {med['postgresql'] / before:.3f}"
        )


if __name__ == "__main__":
    main()
