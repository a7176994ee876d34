"""bench/limit.py, the physical limit of a hot command (issue #22): it runs a SQL trace on a real
database and prints what the database holds, and the writes of a trace are written."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIMIT = ROOT / "bench" / "limit.py"
PG_URL = os.environ.get("COMMCARE_TEST_PG_URL")


def register(path: Path) -> Path:
    """A small SQLite file in WAL mode, as commcare's are, with rows the traces do not hold."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("CREATE TABLE requests (id INTEGER PRIMARY KEY, category TEXT NOT NULL, due_at TEXT)")
    con.executemany(
        "INSERT INTO requests (category, due_at) VALUES (?, ?)",
        [("trash", "2026-11-30 01:00:00.000000"), ("medicine", "2026-11-30 09:00:00.000000"), ("trash", None)],
    )
    con.close()
    return path


def write_trace(path: Path, statements: list[tuple]) -> Path:
    lines = [
        json.dumps({"dialect": dialect, "sql": sql, "params": params, "fetch": fetch}, ensure_ascii=False)
        for dialect, sql, params, fetch in statements
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def limit(trace: Path, db: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(LIMIT), str(trace), "--db", db], capture_output=True, text=True, check=False
    )


def in_db(path: Path, sql: str, params=()) -> list[list]:
    con = sqlite3.connect(path)
    try:
        return [list(row) for row in con.execute(sql, params)]
    finally:
        con.close()


READ = [
    ("sqlite", "PRAGMA busy_timeout = 10000", None, True),
    ("sqlite", "PRAGMA foreign_keys = ON", None, False),
    ("sqlite", "PRAGMA journal_mode = WAL", None, True),
    ("sqlite", "BEGIN", None, False),
    ("sqlite", "SELECT id, category, due_at FROM requests WHERE category = :cat ORDER BY id", {"cat": "trash"}, True),
    ("sqlite", "SELECT count(*) AS n FROM requests", None, True),
    ("sqlite", "ROLLBACK", None, False),
]


def test_prints_the_rows_the_database_holds(tmp_path):
    db = register(tmp_path / "register.db")
    trace = write_trace(tmp_path / "read.jsonl", READ)
    # a row the trace was not written with: what is printed comes from the file
    con = sqlite3.connect(db)
    con.execute("INSERT INTO requests (category, due_at) VALUES ('trash', '2026-12-01 00:00:00.000000')")
    con.commit()
    con.close()
    done = limit(trace, str(db))
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    # one result per fetching statement, in the trace's order
    assert [r["columns"] for r in results] == [["timeout"], ["journal_mode"], ["id", "category", "due_at"], ["n"]]
    assert results[0]["rows"] == [[10000]] and results[1]["rows"] == [["wal"]]
    assert results[2]["rows"] == in_db(db, "SELECT id, category, due_at FROM requests WHERE category = 'trash'")
    assert [row[0] for row in results[2]["rows"]] == [1, 3, 4]
    assert results[3]["rows"] == [[4]]


def test_a_write_inside_begin_immediate_and_commit_is_written(tmp_path):
    db = register(tmp_path / "register.db")
    trace = write_trace(
        tmp_path / "write.jsonl",
        [
            ("sqlite", "PRAGMA foreign_keys = ON", None, False),
            ("sqlite", "BEGIN IMMEDIATE", None, False),
            (
                "sqlite",
                "INSERT INTO requests (category, due_at) VALUES (:category, :due) RETURNING id",
                {"category": "parcel", "due": "2026-11-30 10:00:00.000000"},
                True,
            ),
            ("sqlite", "UPDATE requests SET category = :c WHERE id = :id", {"c": "groceries", "id": 2}, False),
            ("sqlite", "COMMIT", None, False),
        ],
    )
    done = limit(trace, str(db))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"columns": ["id"], "rows": [[4]]}]
    assert in_db(db, "SELECT id, category, due_at FROM requests WHERE id >= 2 ORDER BY id") == [
        [2, "groceries", "2026-11-30 09:00:00.000000"],
        [3, "trash", None],
        [4, "parcel", "2026-11-30 10:00:00.000000"],
    ]
    assert not Path(f"{db}-wal").exists()  # closed as the command closes: the WAL written back


def test_a_write_the_trace_rolls_back_is_not_kept(tmp_path):
    db = register(tmp_path / "register.db")
    trace = write_trace(
        tmp_path / "undone.jsonl",
        [
            ("sqlite", "BEGIN IMMEDIATE", None, False),
            ("sqlite", "DELETE FROM requests WHERE category = :c", {"c": "trash"}, False),
            ("sqlite", "ROLLBACK", None, False),
        ],
    )
    assert limit(trace, f"sqlite:///{db}").returncode == 0
    assert in_db(db, "SELECT count(*) FROM requests") == [[3]]


def test_a_statement_the_database_refuses_is_exit_3_with_its_line(tmp_path):
    db = register(tmp_path / "register.db")
    trace = write_trace(
        tmp_path / "bad.jsonl",
        [
            ("sqlite", "BEGIN IMMEDIATE", None, False),
            ("sqlite", "INSERT INTO requests (id, category) VALUES (:id, :c)", {"id": 1, "c": "trash"}, False),
            ("sqlite", "COMMIT", None, False),
        ],
    )
    done = limit(trace, str(db))
    assert done.returncode == 3
    assert "line 2: IntegrityError: UNIQUE constraint failed: requests.id" in done.stderr
    assert done.stdout == ""
    assert in_db(db, "SELECT count(*) FROM requests") == [[3]]


def test_a_missing_database_is_exit_2_and_not_created(tmp_path):
    trace = write_trace(tmp_path / "read.jsonl", READ)
    done = limit(trace, str(tmp_path / "none.db"))
    assert done.returncode == 2
    assert "no such database file" in done.stderr
    assert not (tmp_path / "none.db").exists()


@pytest.mark.pg
@pytest.mark.skipif(not PG_URL, reason="COMMCARE_TEST_PG_URL is unset: the PostgreSQL variant is skipped")
def test_postgresql_params_and_datetimes(tmp_path):
    psycopg = pytest.importorskip("psycopg")
    url = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    table = f"limit_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, at timestamptz NOT NULL, n int)")
        con.execute(f"INSERT INTO {table} (at, n) VALUES ('2026-11-30 01:00+00', 1), ('2026-11-30 03:00+00', 2)")
    try:
        trace = write_trace(
            tmp_path / "pg.jsonl",
            [
                ("postgresql", "BEGIN", None, False),
                (
                    "postgresql",
                    f"INSERT INTO {table} (at, n) VALUES (%(at)s, %(n)s)",
                    {"at": {"$dt": "2026-11-30T02:00:00+00:00"}, "n": 3},
                    False,
                ),
                ("postgresql", "COMMIT", None, False),
                (
                    "postgresql",
                    f"SELECT n FROM {table} WHERE at >= %(since)s ORDER BY at",
                    {"since": {"$dt": "2026-11-30T01:30:00+00:00"}},
                    True,
                ),
            ],
        )
        done = limit(trace, url)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == [{"columns": ["n"], "rows": [[3], [2]]}]
        with psycopg.connect(url) as con:
            at = con.execute(f"SELECT at FROM {table} WHERE n = 3").fetchone()[0]
        assert at == dt.datetime(2026, 11, 30, 2, tzinfo=dt.UTC)
    finally:
        with psycopg.connect(url, autocommit=True) as con:
            con.execute(f"DROP TABLE {table}")


def test_a_commands_captured_sql_replays_to_the_rows_it_showed(tmp_path):
    """bench/trace_sqlite.py's trace of a real command, run by the limit on the same register:
    the limit fetches the very requests the command listed."""
    db = tmp_path / "demo.db"
    env = {**os.environ, "COMMCARE_DB": str(db)}
    subprocess.run(
        [sys.executable, "-m", "commcare", "demo", "--residents", "40", "--requests", "300", "--days", "5"],
        env=env,
        capture_output=True,
        check=True,
    )
    trace = tmp_path / "list.jsonl"
    shown = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "trace_sqlite.py"), "request", "list", "--format", "json"],
        env={**env, "COMMCARE_SQL_TRACE": str(trace)},
        capture_output=True,
        text=True,
        check=True,
    )
    listed = [item["id"] for item in json.loads(shown.stdout)]
    assert listed
    statements = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    assert {"PRAGMA foreign_keys = ON", "BEGIN"} <= {s["sql"] for s in statements}
    done = limit(trace, str(db))
    assert done.returncode == 0, done.stderr
    fetched = [r for r in json.loads(done.stdout) if r["columns"][:1] == ["id"]]
    assert any(sorted(row[0] for row in r["rows"]) == sorted(listed) for r in fetched)


def test_the_bench_restores_the_register_after_a_trace_that_writes(tmp_path):
    """bench/hot.py gives each side a fresh copy after a writing trace (a replay of one would
    otherwise meet the rows it inserts): reads, PRAGMAs and transactions alone do not write."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import hot
    finally:
        sys.path.remove(str(ROOT / "bench"))
    assert not hot.writes(write_trace(tmp_path / "read.jsonl", READ))
    for sql in ("BEGIN IMMEDIATE", "INSERT INTO requests (category) VALUES ('x')", "  update requests SET n = 1"):
        assert hot.writes(write_trace(tmp_path / "w.jsonl", [("sqlite", sql, None, False)])), sql
