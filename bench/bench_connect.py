"""What connecting to PostgreSQL costs a one-shot command, part by part.

    python bench/bench_connect.py postgresql://postgres@127.0.0.1:5432/postgres [--runs 20]

Each part is timed in fresh processes (medians of ``--runs``), interleaved:

* ``python -c pass``, ``import sqlalchemy``, and ``import sqlalchemy, psycopg``: what the
  driver's import adds to a command's start;
* a connection with psycopg alone, over TCP and over the Unix socket, with the round trip of
  one ``SELECT 1`` (server's ``SHOW ssl`` says whether TLS can be measured: ``sslmode=require``
  is tried when it is on);
* ``commcare db path`` (no connection) and ``commcare report today`` on an empty register (one
  connection, the schema check, the report's statements).

The server's authentication method for the connection is reported from ``pg_hba_file_rules``
where readable: under ``trust`` no password exchange happens, under ``scram-sha-256`` the
exchange costs a few milliseconds of hashing (4096 PBKDF2 rounds) on each side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def seconds(cmd: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def connect_script(conninfo: str, n: int = 1) -> str:
    return (
        "import psycopg, time\n"
        f"for _ in range({n}):\n"
        f"    c = psycopg.connect({conninfo!r}); c.execute('SELECT 1').fetchone(); c.close()\n"
    )


def in_process(conninfo: str, n: int) -> float:
    """Median seconds of one connect + SELECT 1 + close, in this process (no start-up)."""
    import psycopg

    got = []
    for _ in range(n):
        start = time.perf_counter()
        with psycopg.connect(conninfo) as conn:
            conn.execute("SELECT 1").fetchone()
        got.append(time.perf_counter() - start)
    return statistics.median(got)


def main() -> None:
    import psycopg

    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    url = args.url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        ssl = conn.execute("SHOW ssl").fetchone()[0]
        version = conn.execute("SHOW server_version").fetchone()[0]
        try:
            rules = conn.execute(
                "SELECT type, database, user_name, address, auth_method FROM pg_hba_file_rules ORDER BY line_number"
            ).fetchall()
        except psycopg.Error:
            rules = []
    host = psycopg.conninfo.conninfo_to_dict(url)
    socket_url = psycopg.conninfo.make_conninfo(url, host="/var/run/postgresql")
    py = sys.executable
    exe = str(Path(py).with_name("commcare"))
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-connect-{os.getpid()}"
    work.mkdir(exist_ok=True)
    env = {**os.environ, "COMMCARE_CONFIG": str(work / "none.toml"), "COMMCARE_DB": str(work / "empty.db")}
    subprocess.run([exe, "init"], env=env, check=True, capture_output=True)
    cases = {
        "python -c pass": [py, "-c", "pass"],
        "import sqlalchemy": [py, "-c", "import sqlalchemy"],
        "import sqlalchemy, psycopg": [py, "-c", "import sqlalchemy, psycopg"],
        "psycopg connect + SELECT 1 (TCP)": [py, "-c", connect_script(url)],
        "psycopg connect + SELECT 1 (Unix socket)": [py, "-c", connect_script(socket_url)],
        "commcare db path (no connection)": [exe, "db", "path"],
        "commcare report today (SQLite, empty)": [exe, "report", "today", "--format", "json"],
    }
    pg_db = f"commcare_bench_connect_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{pg_db}"')
    try:
        pg_sqla = "postgresql://" + url.split("://", 1)[1].rsplit("/", 1)[0] + f"/{pg_db}"
        subprocess.run([exe, "--db", pg_sqla, "init"], env=env, check=True, capture_output=True)
        cases["commcare report today (PostgreSQL, empty)"] = [
            exe,
            "--db",
            pg_sqla,
            "report",
            "today",
            "--format",
            "json",
        ]
        if ssl == "on":
            cases["psycopg connect + SELECT 1 (TCP, TLS)"] = [py, "-c", connect_script(url + "?sslmode=require")]
        got: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.runs):
            for name, cmd in cases.items():
                got[name].append(seconds(cmd, env))
        lines = [
            f"connection cost — PostgreSQL {version}, ssl {ssl}, median of {args.runs} fresh processes, "
            f"{os.cpu_count()} cores"
        ]
        for name in cases:
            lines.append(f"  {name:48} {statistics.median(got[name]) * 1000:8.1f} ms")
        lines.append(f"  in one process, connect + SELECT 1 + close (TCP): {in_process(url, args.runs) * 1000:.2f} ms")
        lines.append(f"  in one process, (Unix socket): {in_process(socket_url, args.runs) * 1000:.2f} ms")
        lines.append(
            f"  host {host.get('host')}: authentication rules: " + "; ".join(" ".join(map(str, r)) for r in rules)
        )
        if ssl != "on":
            lines.append("  TLS: the server has ssl = off: a TLS connection cannot be measured here")
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{pg_db}"')
    print("\n".join(lines))


if __name__ == "__main__":
    main()
