"""The physical limit of a hot command: the same SQL, sent by a program that does nothing else.

    python bench/limit.py TRACE --db PATH_OR_URL

TRACE is what a commcare command wrote with ``COMMCARE_SQL_TRACE=TRACE``: one JSON object a
line, in the order the command sent them to the driver,

    {"dialect": "sqlite" | "postgresql", "sql": "…", "params": {…} | null, "fetch": true | false}

with the transaction statements (BEGIN, BEGIN IMMEDIATE, COMMIT, ROLLBACK) and the PRAGMAs of
the connection among them. This script imports only typer, the driver (sqlite3, or psycopg for
a ``postgresql://`` URL) and orjson; it connects as commcare does (sqlite3 in autocommit, so
that the trace's own BEGIN and COMMIT are the transactions; psycopg likewise), executes each
statement with its parameters, fetches every row of the fetching ones and prints them all, as
one JSON document: for each fetching statement, its column names and its rows. It reads what
the database holds, not what the trace says the command got: the same I/O and output as the
command, at the least, which is what ``bench/run.py`` holds each hot command to.

A statement may carry ``"conn": N`` when the command used several connections: each N gets its
own, opened at its first statement, in the trace's order. On PostgreSQL a datetime parameter is
written ``{"$dt": "2026-…"}`` (ISO 8601) and given to psycopg as a datetime.

A trace with writes is for a database in the state it was captured on (the rows it inserts
carry the numbers they got then): ``bench/run.py`` gives the command and this script each a
fresh copy of that state.

Exit status: 0; 2 for a trace or database that cannot be used; 3 when a statement fails
(its line number and the driver's message on standard error).
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)


class Unusable(Exception):
    """A trace or a database this script cannot run (exit 2)."""


def load(trace: Path) -> list[dict]:
    """The trace's statements, each checked for the fields this script reads."""
    try:
        lines = trace.read_bytes().splitlines()
    except OSError as exc:
        raise Unusable(f"{trace}: {exc.strerror}") from None
    statements = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise Unusable(f"{trace}:{number}: not JSON") from None
        if not isinstance(item, dict) or not isinstance(item.get("sql"), str):
            raise Unusable(f"{trace}:{number}: no sql")
        item["line"] = number
        statements.append(item)
    dialects = {item.get("dialect", "sqlite") for item in statements}
    if len(dialects) > 1:
        raise Unusable(f"{trace}: several dialects ({', '.join(sorted(dialects))})")
    return statements


def dialect_of(db: str) -> str:
    return "postgresql" if db.startswith(("postgresql:", "postgresql+", "postgres:")) else "sqlite"


def sqlite_path(db: str) -> str:
    """The file of ``db`` (a path or ``sqlite:///path``); it must exist: connecting would
    otherwise create an empty database and the trace would fail on its first table."""
    path = db.split(":///", 1)[1].split("?", 1)[0] if db.startswith("sqlite") else db
    if not Path(path).is_file():
        raise Unusable(f"--db: no such database file: {path}")
    return path


def connect(db: str) -> Any:
    if dialect_of(db) == "sqlite":
        return sqlite3.connect(sqlite_path(db), isolation_level=None)
    import psycopg

    url = "postgresql://" + db.split("://", 1)[1]
    try:
        return psycopg.connect(url, autocommit=True)
    except psycopg.OperationalError as exc:
        raise Unusable(f"--db: {str(exc).strip().splitlines()[0]}") from None


def pg_value(value: Any) -> Any:
    """A PostgreSQL parameter as psycopg gets it: {"$dt": ISO} as a datetime."""
    if isinstance(value, dict) and set(value) == {"$dt"}:
        from datetime import datetime

        return datetime.fromisoformat(value["$dt"])
    if isinstance(value, list):
        return [pg_value(v) for v in value]
    return value


def params_of(item: dict, dialect: str) -> Any:
    params = item.get("params")
    if params is None or dialect == "sqlite":
        return params
    if isinstance(params, dict):
        return {key: pg_value(value) for key, value in params.items()}
    return [pg_value(value) for value in params]


class Failed(Exception):
    """A statement the database refused (exit 3)."""

    def __init__(self, line: int, exc: Exception) -> None:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        super().__init__(f"line {line}: {type(exc).__name__}: {message}")


def run(statements: list[dict], db: str) -> list[dict]:
    """Each statement executed in order on its connection; the fetched rows of each fetching
    one, with their column names. Every connection is closed at the end, as the command's are
    (on SQLite the last close checkpoints the WAL)."""
    dialect = dialect_of(db)
    if statements and statements[0].get("dialect", "sqlite") != dialect:
        raise Unusable(f"--db: a {dialect} database for a {statements[0]['dialect']} trace")
    connections: dict[Any, Any] = {}
    results = []
    try:
        for item in statements:
            key = item.get("conn", 0)
            if key not in connections:
                connections[key] = connect(db)
            cursor = connections[key].cursor()
            params = params_of(item, dialect)
            try:
                if params is None:
                    cursor.execute(item["sql"])
                else:
                    cursor.execute(item["sql"], params)
                if item.get("fetch"):
                    columns = [d[0] for d in cursor.description or ()]
                    results.append({"columns": columns, "rows": cursor.fetchall()})
            except Exception as exc:  # noqa: BLE001 - the driver's own error, whichever driver
                raise Failed(item["line"], exc) from None
            finally:
                cursor.close()
    finally:
        for con in connections.values():
            con.close()
    return results


def as_json(value: Any) -> Any:
    """What orjson does not write itself: Decimal, bytes, memoryview."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


@app.command()
def main(
    trace: Annotated[Path, typer.Argument(help="The SQL trace a command wrote (COMMCARE_SQL_TRACE).")],
    db: Annotated[str, typer.Option("--db", help="SQLite file (or sqlite:///…) or postgresql:// URL.")],
) -> None:
    """Execute a command's traced SQL on DB and print every fetched row as JSON."""
    try:
        results = run(load(trace), db)
    except Unusable as exc:
        print(f"limit: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    except Failed as exc:
        print(f"limit: {trace}: {exc}", file=sys.stderr)
        raise typer.Exit(3) from None
    sys.stdout.buffer.write(orjson.dumps(results, default=as_json, option=orjson.OPT_APPEND_NEWLINE))


if __name__ == "__main__":
    app()
