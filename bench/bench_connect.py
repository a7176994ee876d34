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

    python bench/bench_connect.py --own-server [--runs 20]

measures what the shared server cannot show (it has ``ssl = off`` and ``trust``): a throwaway
PostgreSQL cluster is made with the server's own ``initdb`` (run as the ``postgres`` user when
this runs as root) in a temporary directory, on a free port of 127.0.0.1, with ``ssl = on``
(a self-signed certificate made by ``openssl``) and two registers, one reached under ``trust``
and one under ``scram-sha-256`` with a password. Each of the four ways in — trust or a
password, without or with TLS (``sslmode=disable`` / ``require``) — is timed as psycopg's
connect + ``SELECT 1`` in a fresh process, in one process (no start-up), and as ``commcare
report today`` on the empty register; the cluster is stopped and removed at the end.
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
    ap.add_argument("url", nargs="?", help="the shared server (not with --own-server)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--own-server", action="store_true", help="TLS and a password, on a throwaway cluster")
    args = ap.parse_args()
    if args.own_server:
        return tls_and_password(args.runs)
    if not args.url:
        ap.error("a server URL, or --own-server")
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


# --- a throwaway cluster with TLS and a password --------------------------------------------


def _pg_bin() -> Path:
    """The directory of the server's own programs (``initdb``, ``pg_ctl``), newest version first."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    import shutil

    if which := shutil.which("initdb"):
        return Path(which).parent
    raise SystemExit("bench_connect --own-server: no initdb (install postgresql)")


def _as_server_user(cmd: list[str]) -> list[str]:
    """``cmd`` run as the ``postgres`` user when this runs as root (initdb refuses root)."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PASSWORD = "bench-connect-only"


def _make_cluster(root: Path, port: int) -> None:
    data = root / "data"
    run = lambda cmd: subprocess.run(_as_server_user(cmd), check=True, capture_output=True)
    run([str(_pg_bin() / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"])
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-keyout", str(root / "server.key"), "-out", str(root / "server.crt")],
        check=True,
        capture_output=True,
    )
    os.chmod(root / "server.key", 0o600)
    if os.geteuid() == 0:
        for f in ("server.key", "server.crt"):
            os.chown(root / f, _uid("postgres"), -1)
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(
            f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\n"
            f"ssl = on\nssl_cert_file = '{root}/server.crt'\nssl_key_file = '{root}/server.key'\n"
            "password_encryption = 'scram-sha-256'\nlog_connections = on\n"
        )
    (data / "pg_hba.conf").write_text(
        "local all all trust\n"
        "host commcare_trust all 127.0.0.1/32 trust\n"
        "host commcare_scram all 127.0.0.1/32 scram-sha-256\n"
        "host postgres all 127.0.0.1/32 trust\n"
    )
    run([str(_pg_bin() / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "start"])


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid


def tls_and_password(runs: int) -> None:
    """Each way into a throwaway cluster, timed (see the module's text)."""
    import shutil
    import tempfile

    import psycopg

    root = Path(tempfile.mkdtemp(prefix="bench-connect-tls-"))
    if os.geteuid() == 0:
        os.chown(root, _uid("postgres"), -1)
    port = _free_port()
    try:
        _make_cluster(root, port)
        admin = f"postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE office LOGIN PASSWORD '{PASSWORD}'")
            for name in ("commcare_trust", "commcare_scram"):
                conn.execute(f"CREATE DATABASE {name} OWNER office")
            version = conn.execute("SHOW server_version").fetchone()[0]
        py = sys.executable
        exe = str(Path(py).with_name("commcare"))
        env = {**os.environ, "COMMCARE_CONFIG": str(root / "none.toml"), "PGPASSWORD": PASSWORD}
        env.pop("COMMCARE_DB", None)
        ways = {
            f"{auth}, {'TLS' if tls else 'no TLS'}": (
                f"postgresql://office@127.0.0.1:{port}/commcare_{auth}?sslmode={'require' if tls else 'disable'}"
            )
            for auth in ("trust", "scram")
            for tls in (False, True)
        }
        for auth in ("trust", "scram"):
            subprocess.run(
                [exe, "--db", ways[f"{auth}, no TLS"], "init", "--community", "基准社区"],
                env=env,
                check=True,
                capture_output=True,
            )
        for way, url in ways.items():  # each way really is what it says
            with psycopg.connect(url, password=PASSWORD) as conn:
                tls_on = conn.pgconn.ssl_in_use
                method = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]
            wanted = not way.endswith("no TLS")
            assert bool(tls_on) is wanted and method is wanted, (way, tls_on, method)
        for way, url in ways.items():  # and commcare goes in the same way (the server's log says)
            log = root / "log"
            before = log.stat().st_size
            subprocess.run(
                [exe, "--db", url, "report", "today", "--format", "json"], env=env, check=True, capture_output=True
            )
            with open(log, encoding="utf-8", errors="replace") as f:
                f.seek(before)
                said = f.read()
            assert ("SSL enabled" in said) is not way.endswith("no TLS"), (way, said)
            assert ("method=scram-sha-256" in said) is way.startswith("scram"), (way, said)
        cases = {}
        for way, url in ways.items():
            cases[f"psycopg connect + SELECT 1, {way}"] = [py, "-c", connect_script(url)]
            cases[f"commcare report today, {way}"] = [exe, "--db", url, "report", "today", "--format", "json"]
        got: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(runs):
            for name, cmd in cases.items():
                got[name].append(seconds(cmd, env))
        lines = [
            f"connection cost, TLS and a password — a throwaway PostgreSQL {version} cluster on 127.0.0.1, "
            f"ssl on (RSA 2048, self-signed), median of {runs} fresh processes, {os.cpu_count()} cores"
        ]
        lines += [f"  {name:52} {statistics.median(got[name]) * 1000:8.1f} ms" for name in cases]
        os.environ["PGPASSWORD"] = PASSWORD
        for way, url in ways.items():
            lines.append(
                f"  in one process, connect + SELECT 1 + close, {way:16} {in_process(url, runs) * 1000:.2f} ms"
            )
        print("\n".join(lines))
    finally:
        if (root / "data" / "postmaster.pid").exists():
            subprocess.run(
                _as_server_user([str(_pg_bin() / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop"]),
                capture_output=True,
            )
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
