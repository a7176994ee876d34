"""A PostgreSQL server that stops answering mid-command ends the command within db_timeout:
exit 3, one line, nothing written.

Between the installed ``commcare`` and the real server runs a small TCP proxy (threads and
sockets, in this test). When it sees the statement named by the test go by, it stops
forwarding in both directions and keeps both sockets open — as a frozen server process, or a
NAT that dropped the connection, does: the client's kernel still has a peer that takes its
bytes, so only a bound on silence ends the wait.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

PG_URL = os.environ.get("COMMCARE_TEST_PG_URL")
pytestmark = [
    pytest.mark.pg,
    pytest.mark.skipif(not PG_URL, reason="COMMCARE_TEST_PG_URL is unset: needs a PostgreSQL server"),
]
COMMCARE = str(Path(sys.executable).with_name("commcare"))
DB_TIMEOUT = 3


class FreezingProxy:
    """Forwards 127.0.0.1:port to the server until a client sends ``trigger``; from then on
    it forwards nothing, either way, on any connection, and closes nothing until ``close``."""

    def __init__(self, upstream: tuple[str, int], trigger: bytes) -> None:
        self.upstream, self.trigger = upstream, trigger
        self.frozen = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            if from_client and self.trigger in data:
                self.frozen.set()
            while self.frozen.is_set():  # hold everything, answer nothing, close nothing
                time.sleep(0.05)
                if self.listener.fileno() == -1:
                    return
            try:
                target.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass


@pytest.fixture
def server_db():
    """A fresh, initialised commcare database on the real server: (its URL, its name)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    base = make_url(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"commcare_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = base.set(database=name)
    from commcare.db import open_database

    open_database(url.render_as_string(hide_password=False), create=True).dispose()
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def through(url, proxy: FreezingProxy) -> str:
    return url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def count(url, table: str) -> int:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
    finally:
        engine.dispose()


def run_frozen(url, tmp_path, trigger: bytes, *args: str) -> tuple[subprocess.CompletedProcess, float, bool]:
    config = tmp_path / "commcare.toml"
    config.write_text(f"db_timeout = {DB_TIMEOUT}\n", encoding="utf-8")
    proxy = FreezingProxy((url.host or "127.0.0.1", url.port or 5432), trigger)
    env = {**os.environ, "COMMCARE_DB": through(url, proxy), "COMMCARE_CONFIG": str(config)}
    start = time.monotonic()
    try:
        done = subprocess.run([COMMCARE, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    finally:
        elapsed = time.monotonic() - start
        frozen = proxy.frozen.is_set()
        proxy.close()
    return done, elapsed, frozen


def assert_gave_up(done: subprocess.CompletedProcess, elapsed: float, frozen: bool) -> None:
    assert frozen, "the proxy never saw the statement it was to freeze on"
    assert done.returncode == 3, (done.returncode, done.stdout[-300:], done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "db_timeout" in lines[0] and "did not answer" in lines[0], lines[0]
    assert elapsed < 60, elapsed  # a generous bound: the point is that it ends


def test_an_import_whose_server_freezes_ends_and_writes_nothing(server_db, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "姓名,小区,住址,人群类别\n" + "".join(f"居民{i},幸福小区,1-{i},独居\n" for i in range(200)), encoding="utf-8"
    )
    done, elapsed, frozen = run_frozen(server_db, tmp_path, b'COPY "residents"', "resident", "import", str(roster))
    assert_gave_up(done, elapsed, frozen)
    assert count(server_db, "residents") == 0 and count(server_db, "households") == 0


def test_a_report_whose_server_freezes_ends(server_db, tmp_path):
    env = {**os.environ, "COMMCARE_DB": server_db.render_as_string(hide_password=False)}
    added = subprocess.run(
        [COMMCARE, "resident", "add", "张桂兰", "--tag", "独居"], env=env, capture_output=True, text=True, check=False
    )
    assert added.returncode == 0, added.stderr
    done, elapsed, frozen = run_frozen(server_db, tmp_path, b"FROM requests", "report", "today", "-f", "json")
    assert_gave_up(done, elapsed, frozen)
    assert done.stdout == ""
