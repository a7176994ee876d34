"""The hot commands beside their physical limit, for ``bench/run.py`` (issue #22).

Each command a liaison types all day is run once with ``COMMCARE_SQL_TRACE`` to capture the SQL
it sends to the driver; then the command and ``bench/limit.py`` running that SQL (python +
typer + sqlite3 + orjson, nothing else) are timed in turn, run after run, and the ratio of
their medians printed beside the goal (at most 1.3).

Equal footing. A trace with writes inserts rows under the numbers they got when it was
captured (a request's id, the audit trail's next ``seq``), so it runs only on the state it was
captured on. Every hot command therefore works on one scratch register, restored before each
side that follows a write: a fresh copy of one base register (a copy of the demo's, the WAL
checkpointed) and of its audit anchor (commcare keeps it outside the database, in the user
data dir, here a directory of the benchmark's own: ``XDG_DATA_HOME``). The command and its
limit thus read the same pages from the same file, after the same restore, and write the same
rows. The copy, and the ``os.sync()`` that flushes it, are not timed. Which side runs first
alternates from run to run.

A commcare without the fast path writes no trace: its hot commands are then timed alone and
the table says so, with no ratio.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIMIT = HERE / "limit.py"
GOAL = 1.3
NO_TRACE = "no trace written: this commcare has no fast path"
READ_ONLY = {"SELECT", "WITH", "PRAGMA", "BEGIN", "COMMIT", "ROLLBACK", "END", "SAVEPOINT", "RELEASE", "SET", "SHOW"}


def targets(db: Path) -> dict[str, str]:
    """The residents, staff and requests the commands act on, from the base register."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:

        def one(sql: str) -> str:
            row = con.execute(sql).fetchone()
            if row is None:
                raise SystemExit(f"bench: the demo register has nothing for: {sql}")
            return str(row[0])

        open_ids = [str(r[0]) for r in con.execute("SELECT id FROM requests WHERE status = 'open' ORDER BY id DESC")]
        if len(open_ids) < 3:
            raise SystemExit("bench: the demo register has fewer than 3 open requests")
        return {
            "resident": "#" + one("SELECT id FROM residents WHERE archived_at IS NULL ORDER BY id"),
            "staff": one("SELECT id FROM staff WHERE active ORDER BY id"),
            "liaison": one("SELECT liaison_id FROM households WHERE liaison_id IS NOT NULL ORDER BY id"),
            "actor": one("SELECT name FROM staff WHERE active ORDER BY id"),
            "shown": one("SELECT request_id FROM request_events ORDER BY id DESC"),
            "resolved": open_ids[0],
            "assigned": open_ids[1],
            "noted": open_ids[2],
            "started": one("SELECT id FROM requests WHERE status = 'assigned' ORDER BY id DESC"),
        }
    finally:
        con.close()


def commands(t: dict[str, str]) -> dict[str, list[str]]:
    """Each hot command (issue #22), with JSON output where it has a --format."""
    j = ["--format", "json"]
    return {
        "report today": ["report", "today", *j],
        "call due": ["call", "due", *j],
        "request list --overdue": ["request", "list", "--overdue", "--limit", "100", *j],
        "request list": ["request", "list", *j],
        "request show": ["request", "show", t["shown"], *j],
        "add-request": ["add-request", t["resident"], "--category", "trash", "--again", *j],
        "request resolve": ["request", "resolve", t["resolved"], *j],
        "request assign": ["request", "assign", t["assigned"], t["liaison"], *j],
        "request start": ["request", "start", t["started"], *j],
        "request note": ["request", "note", t["noted"], "called back, will come at five"],
        "call log": ["call", "log", t["resident"], "--outcome", "ok", *j],
        "health log": ["health", "log", t["staff"], "--temp", "36.6", *j],
    }


def writes(trace: Path) -> bool:
    """Whether a trace changes the database (anything but reads, PRAGMAs and transactions,
    and BEGIN IMMEDIATE, which takes the write lock)."""
    import json

    for line in trace.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        sql = " ".join(json.loads(line)["sql"].split()).upper()
        if sql.startswith("BEGIN IMMEDIATE") or sql.split(" ", 1)[0] not in READ_ONLY:
            return True
    return False


class Hot:
    """The hot commands and their limits, timed interleaved with the rest of ``bench/run.py``."""

    def __init__(self, out: Path, demo: Path, env: dict, commcare: list[str], capture_with: list[str] | None) -> None:
        self.dir = out / "hot"
        self.base, self.scratch = self.dir / "base.db", self.dir / "register.db"
        self.anchors = self.dir / "anchors"
        self.capture = capture_with or commcare
        self.captured_by = " ".join(capture_with) if capture_with else None
        self.commcare = commcare
        self.dirty = True
        self.prepare(demo, env)
        t = targets(self.base)
        self.env = {**self.env, "COMMCARE_USER": t["actor"]}
        self.cases = commands(t)
        self.traces: dict[str, Path | None] = {}
        self.writes: dict[str, bool] = {}
        self.problems: dict[str, str] = {}
        for name, argv in self.cases.items():
            self.traces[name] = self.trace(name, argv)
        self.failed = {n: self.cases.pop(n) for n, p in self.problems.items() if p != NO_TRACE}
        self.times: dict[str, list[float]] = {n: [] for n in self.cases}
        self.limits: dict[str, list[float]] = {n: [] for n in self.cases}
        self.cpu: dict[str, list[float]] = {n: [] for n in self.cases}
        self.limit_cpu: dict[str, list[float]] = {n: [] for n in self.cases}
        self.peaks: dict[str, int] = dict.fromkeys(self.cases, 0)
        self.limit_peaks: dict[str, int] = dict.fromkeys(self.cases, 0)

    def prepare(self, demo: Path, env: dict) -> None:
        """The base register (the demo's, copied) with an audit anchor that matches it: one
        note written on it as its first command here, so that the anchor exists."""
        shutil.rmtree(self.dir, ignore_errors=True)
        (self.dir / "traces").mkdir(parents=True)
        self.env = {**env, "COMMCARE_DB": str(self.scratch), "XDG_DATA_HOME": str(self.dir / "data")}
        checkpoint(demo)
        shutil.copyfile(demo, self.scratch)
        t = targets(self.scratch)
        done = self.run_once(
            ["request", "note", t["noted"], "bench: the anchor"], {**self.env, "COMMCARE_USER": t["actor"]}
        )
        if done.returncode != 0:
            raise SystemExit(f"bench: the base register's first note failed: {done.stderr.strip()}")
        checkpoint(self.scratch)
        shutil.copyfile(self.scratch, self.base)
        shutil.copytree(self.dir / "data", self.anchors)

    def run_once(self, argv: list[str], env: dict, launcher: list[str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run((launcher or self.commcare) + argv, env=env, capture_output=True, text=True, check=False)

    def restore(self) -> None:
        """The scratch register and its anchor as the base has them; flushed to disk."""
        for suffix in ("-wal", "-shm"):
            Path(f"{self.scratch}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.base, self.scratch)
        shutil.rmtree(self.dir / "data", ignore_errors=True)
        shutil.copytree(self.anchors, self.dir / "data")
        os.sync()
        self.dirty = False

    def trace(self, name: str, argv: list[str]) -> Path | None:
        """The command's trace, captured on the base state and checked by one untimed run of
        the limit on it; None (with the reason in ``problems``) when there is none."""
        path = self.dir / "traces" / (name.replace(" ", "_").replace("--", "") + ".jsonl")
        self.restore()
        done = self.run_once(argv, {**self.env, "COMMCARE_SQL_TRACE": str(path)}, self.capture)
        self.dirty = True
        if done.returncode != 0:
            self.problems[name] = f"failed (exit {done.returncode}): {done.stderr.strip()[:200]}"
            return None
        if not path.is_file() or path.stat().st_size == 0:
            self.problems[name] = NO_TRACE
            return None
        self.writes[name] = writes(path)
        self.restore()
        check = subprocess.run(self.limit_cmd(path), env=self.env, capture_output=True, text=True, check=False)
        self.dirty = self.writes[name]
        if check.returncode != 0:
            raise SystemExit(f"bench: the limit of {name} failed: {check.stderr.strip()}")
        return path

    def limit_cmd(self, trace: Path) -> list[str]:
        return [sys.executable, str(LIMIT), str(trace), "--db", str(self.scratch)]

    def run_once_each(self, run: int, timed) -> None:
        """One timed run of each command and of its limit; the first side alternates. ``timed``
        returns (seconds, peak KiB, CPU seconds): ``run.measured``."""
        for name, argv in self.cases.items():
            sides = [("cmd", self.commcare + argv)]
            if self.traces[name] is not None:
                sides.append(("limit", self.limit_cmd(self.traces[name])))
            if run % 2:
                sides.reverse()
            for side, cmd in sides:
                if self.dirty:
                    self.restore()
                seconds, peak, cpu = timed(cmd, self.env)
                self.dirty = self.writes.get(name, True)
                times, peaks = (self.times, self.peaks) if side == "cmd" else (self.limits, self.limit_peaks)
                times[name].append(seconds)
                peaks[name] = max(peaks[name], peak)
                (self.cpu if side == "cmd" else self.limit_cpu)[name].append(cpu)

    def rows(self) -> list[dict]:
        rows = []
        for name, argv in self.cases.items():
            ours = statistics.median(self.times[name])
            row = {"command": name, "argv": argv, "seconds": ours, "peak_kib": self.peaks[name]}
            if self.traces[name] is not None:
                limit = statistics.median(self.limits[name])
                row.update(
                    limit_seconds=limit,
                    limit_peak_kib=self.limit_peaks[name],
                    cpu_seconds=statistics.median(self.cpu[name]),
                    limit_cpu_seconds=statistics.median(self.limit_cpu[name]),
                    cpu_ratio=statistics.median(self.cpu[name]) / statistics.median(self.limit_cpu[name]),
                    ratio=ours / limit,
                    goal=GOAL,
                    met=ours / limit <= GOAL,
                    writes=self.writes[name],
                )
            else:
                row["problem"] = self.problems[name]
            rows.append(row)
        return rows

    def lines(self) -> list[str]:
        lines = [
            "hot commands beside their physical limit (bench/limit.py: python + typer + sqlite3 + orjson "
            "running the command's own SQL, on the same register state)",
            f"{'command':28} {'commcare s':>10} {'limit s':>8} {'ratio':>6} {'goal':>5} {'peak MiB':>9} "
            f"{'limit MiB':>9}  verdict   {'cpu s':>6} {'limit':>6} {'cpu ratio':>9}",
        ]
        for row in self.rows():
            head = f"{row['command']:28} {row['seconds']:10.3f}"
            if "ratio" in row:
                lines.append(
                    f"{head} {row['limit_seconds']:8.3f} {row['ratio']:6.2f} {GOAL:5.1f} "
                    f"{row['peak_kib'] / 1024:9.1f} {row['limit_peak_kib'] / 1024:9.1f}  "
                    f"{'met    ' if row['met'] else 'NOT met'}   {row['cpu_seconds']:6.3f} "
                    f"{row['limit_cpu_seconds']:6.3f} {row['cpu_ratio']:9.2f}"
                )
            else:
                lines.append(
                    f"{head} {'—':>8} {'—':>6} {GOAL:5.1f} {row['peak_kib'] / 1024:9.1f} {'—':>9}  {row['problem']}"
                )
        lines.append(
            "cpu: median user + system seconds of the process (and what it waited for), which a "
            "loaded machine moves least; the verdict is on wall time"
        )
        for name in self.failed:
            lines.append(f"{name:28} {self.problems[name]}")
        if self.captured_by:
            lines.append(f"traces captured by {self.captured_by} (--capture-with), not by commcare itself")
        return lines


def checkpoint(db: Path) -> None:
    """The WAL written back into the file and removed, so that a copy of the file is whole."""
    con = sqlite3.connect(db, isolation_level=None)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
