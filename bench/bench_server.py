"""PostgreSQL beside SQLite, and one community in a city beside the same community alone.

Called by ``bench/run.py --db postgresql+psycopg://USER@HOST:PORT/ANYDB`` (the URL names the
server; the databases are made on it, their names beginning with ``--db-prefix`` (default
``commcare_bench``), kept for the next run, and dropped by ``--drop``; ``--build-only`` builds
what is missing and times nothing; ``--baseline COMMCARE`` times another install's commands
beside ours, interleaved, on every side, on the city databases of ``--baseline-prefix`` if
given (copies of ours at the baseline's schema revision); every database built is vacuumed,
as autovacuum leaves a register written over time):

* side by side: the same demo community (``--residents``/``--requests``/``--days``) in a
  SQLite file and in a PostgreSQL database, each read command and ``add-request`` run on one
  then the other, interleaved, ``--runs`` times: medians, ratio PostgreSQL / SQLite, peak RSS.
  A 100,000-row roster (``--import-rows``) is imported into a fresh register on each side,
  and a demo of ``--demo-residents`` is built on each, timed the same way.
* ``--city N``: N communities of ``--city-residents``/``--city-requests`` each in one
  database (the demo's community, copied N - 1 times, interleaved so that each community's
  rows lie among the others' as a city's would), beside the same community alone in its own
  database; ``report today``, ``call due``, ``add-request`` of one community in the middle, and
  ``report today --all-communities`` at 20 and at N communities (a city database of each
  size). Peak memory of each.

Everything runs niced if the caller is; the builds are reused from one run to the next.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_import  # noqa: E402 - beside this file
from run import commcare, measured, timed  # noqa: E402 - beside this file

READ_GOAL, WRITE_GOAL, CITY_GOAL, PEAK_GOAL_MIB = 1.3, 1.3, 1.2, 120

READS = {
    "report today --format json": ["report", "today", "--format", "json"],
    "call due --format json": ["call", "due", "--format", "json"],
    "request list --overdue --limit 100": ["request", "list", "--overdue", "--limit", "100"],
    "resident list --search zgl": ["resident", "list", "--search", "zgl"],
    "resident show #1": ["resident", "show", "#1"],
}


def server_url(url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


def admin(url: str, sql: str) -> list:
    """Run ``sql`` on the server's maintenance database, outside a transaction."""
    import psycopg

    plain = server_url(url, "postgres").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def vacuum(db: str) -> None:
    """``VACUUM (ANALYZE)`` of the database ``db`` (a URL), outside a transaction."""
    import psycopg

    with psycopg.connect(db.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def exists(url: str, name: str) -> bool:
    return bool(admin(url, f"SELECT 1 FROM pg_database WHERE datname = '{name}'"))


def fresh_database(url: str, name: str, env: dict) -> str:
    admin(url, f'DROP DATABASE IF EXISTS "{name}"')
    admin(url, f'CREATE DATABASE "{name}"')
    target = server_url(url, name)
    subprocess.run(commcare() + ["--db", target, "init"], env=env, check=True, capture_output=True)
    return target


def demo(db: str, residents: int, requests: int, days: int, env: dict) -> float:
    """Seconds of one ``commcare demo`` into ``db``."""
    start = time.perf_counter()
    subprocess.run(
        commcare()
        + ["--db", db, "demo", "--residents", str(residents), "--requests", str(requests), "--days", str(days)]
        + ["--format", "json"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def first_staff(lite: str) -> str:
    import sqlite3

    with sqlite3.connect(lite) as con:
        return con.execute("SELECT name FROM staff WHERE active ORDER BY id LIMIT 1").fetchone()[0]


def first_staff_on(url: str, community: str | None = None) -> str:
    """The name of the first active staff member of ``community`` (the only one when None) in
    the PostgreSQL register at ``url``."""
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    sql = "SELECT s.name FROM staff s JOIN communities c ON c.id = s.community_id WHERE s.active"
    sql += " AND c.name = %s" if community else ""
    with psycopg.connect(plain) as conn:
        return conn.execute(sql + " ORDER BY s.id LIMIT 1", (community,) if community else ()).fetchone()[0]


def succeeds(cmd: list[str], env: dict) -> None:
    """Run ``cmd`` once, untimed; stop the bench if it does not exit 0 (a refusal timed as the
    command would be a figure of something else)."""
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"exit {done.returncode}: {' '.join(cmd)} on {env['COMMCARE_DB']}: {done.stderr.strip()}")


def built(out: Path, key: str) -> str | None:
    mark = out / f"{key}.built"
    return mark.read_text().strip() if mark.exists() else None


def build_once(out: Path, key: str, make) -> str:
    """``make()`` (returns seconds) unless ``key`` was built before; the seconds it took."""
    if (before := built(out, key)) is not None:
        return before + " (earlier run)"
    print(f"building {key} …", file=sys.stderr, flush=True)
    seconds = make()
    (out / f"{key}.built").write_text(f"{seconds:.1f} s\n")
    print(f"built {key} in {seconds:.0f} s", file=sys.stderr, flush=True)
    return f"{seconds:.1f} s"


class Table:
    def __init__(self, title: str) -> None:
        self.lines = [title]

    def head(self, left: str, right: str) -> None:
        self.lines.append(
            f"{'command':42} {left + ' s':>12} {right + ' s':>12} {'ratio':>6} {'goal':>5} "
            f"{left + ' MiB':>10} {right + ' MiB':>10}  verdict"
        )

    def row(self, name, a: list[float], b: list[float], pa: int, pb: int, goal: float | None) -> None:
        ma, mb = statistics.median(a), statistics.median(b)
        ratio = mb / ma
        worst = max(pa, pb) / 1024
        verdict = ""
        if goal is not None:
            verdict = "met" if ratio <= goal and worst <= PEAK_GOAL_MIB else "NOT met"
        goal_text = f"{goal:.1f}" if goal else ""
        self.lines.append(
            f"{name:42} {ma:12.3f} {mb:12.3f} {ratio:6.2f} {goal_text:>5} {pa / 1024:10.1f} {pb / 1024:10.1f}  {verdict}"
        )


def side_by_side(args, out: Path, env: dict) -> list[str]:
    """The same community on SQLite and on PostgreSQL, command by command."""
    r, q, d = args.residents, args.requests, args.days
    lite = str(out / f"sqlite-{r}-{q}.db")
    name = f"{args.db_prefix}_{r}_{q}"
    pg = server_url(args.db, name)
    times = {"sqlite": build_once(out, f"sqlite-{r}-{q}", lambda: demo(lite, r, q, d, env))}
    if not exists(args.db, name):
        (out / f"pg-{r}-{q}.built").unlink(missing_ok=True)
    times["postgresql"] = build_once(
        out, f"pg-{r}-{q}", lambda: (fresh_database(args.db, name, env), demo(pg, r, q, d, env))[1]
    )
    if args.build_only:
        return [f"built: SQLite {times['sqlite']}, PostgreSQL {times['postgresql']}"]
    # add-request is a write: by the register's first active staff member (without an operator
    # it is refused, exit 1, and its time would be that of the refusal)
    actor = env.get("COMMCARE_USER") or first_staff(lite)
    sides = {
        "sqlite": {**env, "COMMCARE_DB": lite, "COMMCARE_USER": actor},
        "postgresql": {**env, "COMMCARE_DB": pg, "COMMCARE_USER": actor},
    }
    cases = {k: commcare() + v for k, v in READS.items()}
    cases["add-request"] = commcare() + ["add-request", "#1", "--category", "trash", "--again"]
    if args.baseline:  # the same commands by another install, interleaved with ours
        base = [args.baseline]
        cases.update({f"{k} [baseline]": base + v for k, v in READS.items()})
        cases["add-request [baseline]"] = base + ["add-request", "#1", "--category", "trash", "--again"]
    got = {(k, s): [] for k in cases for s in sides}
    cpu: dict = {(k, s): [] for k in cases for s in sides}
    peak = {(k, s): 0 for k in cases for s in sides}
    imports = RosterBoth(args, out, env) if args.import_rows else None
    demos = DemoBoth(args, out, env) if args.demo_residents else None
    for cmd in cases.values():  # untimed: each install's statement cache filled, the pages read once
        for side_env in sides.values():
            succeeds(cmd, side_env)
    for run in range(args.runs):
        order = list(cases.items())
        if run % 2:  # ours first, then the baseline first: a write's checkpoint falls on both
            order.reverse()
        for key, cmd in order:
            for side, side_env in sides.items():
                seconds, rss, used = measured(cmd, side_env)
                got[key, side].append(seconds)
                cpu[key, side].append(used)
                peak[key, side] = max(peak[key, side], rss)
        if imports:
            imports.run_once()
        if demos:
            demos.run_once()
    table = Table(
        f"PostgreSQL beside SQLite — {r:,} residents, {q:,} requests over {d} days, median of {args.runs} runs, "
        f"{os.cpu_count()} cores; demo build: SQLite {times['sqlite']}, PostgreSQL {times['postgresql']}"
    )
    table.head("SQLite", "PG")
    for key in cases:
        goal = WRITE_GOAL if key.startswith("add-request") else READ_GOAL
        table.row(key, got[key, "sqlite"], got[key, "postgresql"], peak[key, "sqlite"], peak[key, "postgresql"], goal)
    if imports:
        imports.report(table)
    if demos:
        demos.report(table)
    table.lines.append("ratio: PostgreSQL / SQLite (for the bulk loads, goal: at most 1.0 = at least as fast)")
    table.lines += cpu_table(cases, cpu)
    return table.lines


def cpu_table(cases, cpu: dict) -> list[str]:
    """The commands' own CPU seconds (user + system, medians): what a loaded machine moves
    least. On PostgreSQL the server's work is done by another process and is not in them; on
    SQLite the statements run inside the command, and are."""
    lines = ["", f"{'command':42} {'SQLite CPU s':>12} {'PG CPU s':>12} {'ratio':>6}  (the client process only)"]
    for key in cases:
        lite, server = statistics.median(cpu[key, "sqlite"]), statistics.median(cpu[key, "postgresql"])
        lines.append(f"{key:42} {lite:12.3f} {server:12.3f} {server / lite:6.2f}")
    return lines


class RosterBoth:
    """``resident import`` of one generated roster into a fresh register on each side."""

    def __init__(self, args, out: Path, env: dict) -> None:
        self.args, self.rows = args, args.import_rows
        self.csv = out / f"roster-{self.rows}.csv"
        if not self.csv.exists():
            bench_import.make_roster(self.csv, self.rows)
        self.lite = out / "import.db"
        self.name = f"{args.db_prefix}_import_{os.getpid()}"
        self.env = env
        self.got: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
        self.peak = {"sqlite": 0, "postgresql": 0}

    def run_once(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.lite}{suffix}").unlink(missing_ok=True)
        targets = {"sqlite": str(self.lite), "postgresql": fresh_database(self.args.db, self.name, self.env)}
        subprocess.run(commcare() + ["--db", targets["sqlite"], "init"], env=self.env, check=True, capture_output=True)
        os.sync()
        for side, db in targets.items():
            seconds, rss = timed(commcare() + ["--db", db, "resident", "import", str(self.csv)], self.env)
            self.got[side].append(seconds)
            self.peak[side] = max(self.peak[side], rss)
        admin(self.args.db, f'DROP DATABASE IF EXISTS "{self.name}"')

    def report(self, table: Table) -> None:
        g, p = self.got, self.peak
        table.row(
            f"resident import ({self.rows:,} rows)", g["sqlite"], g["postgresql"], p["sqlite"], p["postgresql"], 1.0
        )


class DemoBoth:
    """``commcare demo`` of a smaller community into a fresh register on each side."""

    def __init__(self, args, out: Path, env: dict) -> None:
        self.args, self.env = args, env
        self.lite = out / "demo-small.db"
        self.name = f"{args.db_prefix}_demo_{os.getpid()}"
        self.got: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
        self.peak = {"sqlite": 0, "postgresql": 0}

    def run_once(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.lite}{suffix}").unlink(missing_ok=True)
        targets = {"sqlite": str(self.lite), "postgresql": fresh_database(self.args.db, self.name, self.env)}
        a = self.args
        cmd = ["demo", "--residents", str(a.demo_residents), "--requests", str(a.demo_residents * 10)]
        for side, db in targets.items():
            seconds, rss = timed(commcare() + ["--db", db, *cmd, "--days", "60", "--format", "json"], self.env)
            self.got[side].append(seconds)
            self.peak[side] = max(self.peak[side], rss)
        admin(self.args.db, f'DROP DATABASE IF EXISTS "{self.name}"')

    def report(self, table: Table) -> None:
        g, p, n = self.got, self.peak, self.args.demo_residents
        table.row(
            f"demo ({n:,} residents, {n * 10:,} requests)",
            g["sqlite"],
            g["postgresql"],
            p["sqlite"],
            p["postgresql"],
            1.0,
        )


def drop_all(url: str, prefix: str = "commcare_bench") -> None:
    pattern = prefix.replace("_", "\\_") + "\\_%"
    for (name,) in admin(url, f"SELECT datname FROM pg_database WHERE datname LIKE '{pattern}'"):
        admin(url, f'DROP DATABASE IF EXISTS "{name}"')
        print(f"dropped {name}", file=sys.stderr)


def city(args, out: Path, env: dict) -> list[str]:
    """One community in a city of ``args.city`` communities beside the same community alone;
    the whole city's summary at 20 communities and at ``args.city`` (two city databases,
    built once and kept)."""
    r, q, d, n = args.city_residents, args.city_requests, args.days, args.city
    alone_name = f"{args.db_prefix}_alone_{r}_{q}"
    alone = server_url(args.db, alone_name)
    sizes = sorted({min(20, n), n})
    names = {size: f"{args.db_prefix}_city{size}_{r}_{q}" for size in sizes}
    for name, key in ((alone_name, f"alone-{r}-{q}"), *((names[z], f"city{z}-{r}-{q}") for z in sizes)):
        if not exists(args.db, name):
            (out / f"{key}.built").unlink(missing_ok=True)
    took = {"alone": build_once(out, f"alone-{r}-{q}", lambda: _fresh_demo(args, alone_name, r, q, d, env))}
    for size in sizes:
        took[size] = build_once(out, f"city{size}-{r}-{q}", lambda size=size: _fresh_city(args, names[size], size, env))
    if args.build_only:
        return [f"built: alone {took['alone']}, " + ", ".join(f"{z} communities {took[z]}" for z in sizes)]
    target = min(10, n)  # a community among the first 20, so that both sizes time the same one
    lines = [
        f"one community ({r:,} residents, {q:,} requests over {d} days) in a city of N such communities "
        f"in one PostgreSQL database, beside it alone in its own; median of {args.runs} runs; "
        f"built: alone {took['alone']}, " + ", ".join(f"{z} communities {took[z]}" for z in sizes)
    ]
    for size in sizes:
        dbs = {"": (alone, server_url(args.db, names[size]))}
        if args.baseline:
            prefix = args.baseline_prefix or args.db_prefix
            dbs[" [baseline]"] = tuple(
                server_url(args.db, name.replace(args.db_prefix, prefix, 1)) for name in (alone_name, names[size])
            )
        lines += _city_at(args, env, dbs, size, target)
    return lines


def _fresh_demo(args, name: str, r: int, q: int, d: int, env: dict) -> float:
    """The demo's community in a database of its own, vacuumed after (as autovacuum would
    have left a register written before the day measured: its pages all-visible)."""
    db = fresh_database(args.db, name, env)
    took = demo(db, r, q, d, env)
    with_vacuum = time.perf_counter()
    vacuum(db)
    return took + time.perf_counter() - with_vacuum


def _fresh_city(args, name: str, size: int, env: dict) -> float:
    """The demo's community, and size - 1 copies of it (bench_city.grow)."""
    import bench_city

    start = time.perf_counter()
    a = args
    _fresh_demo(a, name, a.city_residents, a.city_requests, a.days, env)
    if size > 1:
        plain = server_url(a.db, name).replace("postgresql+psycopg://", "postgresql://")
        bench_city.grow(plain, 2, size)
    return time.perf_counter() - start


def _city_at(args, env: dict, dbs: dict, size: int, target: int) -> list[str]:
    """``dbs``: for ours ("") and the baseline (" [baseline]"), the databases (alone, city) it reads."""
    import bench_city

    def sides(mark: str) -> tuple[dict, dict]:
        alone, town = dbs[mark]
        # add-request is a write: by the community's first active staff member (without an
        # operator it is refused, exit 1, and the refusal would be timed)
        here = {**env, "COMMCARE_DB": alone, "COMMCARE_USER": env.get("COMMCARE_USER") or first_staff_on(alone)}
        there = {**env, "COMMCARE_DB": town, "COMMCARE_COMMUNITY": f"社区{target}"}
        there["COMMCARE_USER"] = env.get("COMMCARE_USER") or first_staff_on(town, f"社区{target}")
        return here, there

    ref = f"#{bench_city.copy_id(1, target)}"
    cases = {
        "report today --format json": (["report", "today", "--format", "json"],) * 2,
        "call due --format json": (["call", "due", "--format", "json"],) * 2,
        "add-request": (
            ["add-request", "#1", "--category", "trash", "--again"],
            ["add-request", ref, "--category", "trash", "--again"],
        ),
    }
    progs = {"": commcare()}
    if args.baseline:  # the same commands by another install, interleaved with ours
        progs[" [baseline]"] = [args.baseline]
    cases = {key + mark: (prog, cmds, sides(mark)) for mark, prog in progs.items() for key, cmds in cases.items()}
    got = {(k, s): [] for k in cases for s in (0, 1)}
    peak = {(k, s): 0 for k in cases for s in (0, 1)}
    every = {mark: [] for mark in progs}
    every_peak = {mark: 0 for mark in progs}
    for prog, cmds, envs in cases.values():  # untimed: each command must succeed on each side
        for cmd, side_env in zip(cmds, envs):
            succeeds(prog + cmd, side_env)
    for run in range(args.runs):
        order = list(cases.items())
        if run % 2:
            order.reverse()
        for key, (prog, cmds, envs) in order:
            for side, (cmd, side_env) in enumerate(zip(cmds, envs)):
                seconds, rss = timed(prog + cmd, side_env)
                got[key, side].append(seconds)
                peak[key, side] = max(peak[key, side], rss)
        for mark, prog in progs.items():
            seconds, rss = timed(prog + ["report", "today", "--all-communities", "--format", "json"], sides(mark)[1])
            every[mark].append(seconds)
            every_peak[mark] = max(every_peak[mark], rss)
    table = Table(f"city of {size} communities (community {target}):")
    table.head("alone", "city")
    for key in cases:
        goal = CITY_GOAL if not key.startswith("add-request") else None
        table.row(key, got[key, 0], got[key, 1], peak[key, 0], peak[key, 1], goal)
    for mark in progs:
        verdict = "met" if every_peak[mark] / 1024 <= PEAK_GOAL_MIB else "NOT met"
        table.lines.append(
            f"report today --all-communities over {size} communities{mark}: {statistics.median(every[mark]):.3f} s, "
            f"peak {every_peak[mark] / 1024:.1f} MiB (memory goal {PEAK_GOAL_MIB} MiB {verdict})"
        )
    return table.lines
