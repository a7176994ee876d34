"""Today's SQL of a commcare command, captured at the driver, in the COMMCARE_SQL_TRACE format.

    COMMCARE_SQL_TRACE=trace.jsonl python bench/trace_sqlite.py report today --format json
    python bench/run.py --quick --capture-with "python bench/trace_sqlite.py"

For a commcare that writes no trace of its own (before the fast path of issue #22): runs the
command in this process with sqlite3's connections wrapped, so that every statement sent to the
driver (the PRAGMAs at connect, BEGIN, the queries, and COMMIT or ROLLBACK, which the driver's
commit() and rollback() send) is written as ``bench/limit.py`` reads it: qmark parameters
renamed ``:p0``, ``:p1`` … (named style), ``fetch`` true where the statement returned rows.
Connections are numbered (``conn``) in the order they were opened. SQLite only; the command's
own output and exit status are left as they are.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sqlite3.dbapi2
import sys
from typing import Any

_connect = sqlite3.connect
_out = None
_count = 0


def named(sql: str, params: Any) -> tuple[str, dict | None]:
    """``sql`` with each ``?`` outside a quoted literal renamed ``:pN``, and its parameters."""
    if isinstance(params, dict):
        return sql, dict(params)
    if not params:
        return sql, None
    out, n, quote = [], 0, None
    for ch in sql:
        if quote is None and ch == "?":
            out.append(f":p{n}")
            n += 1
            continue
        if quote is None and ch in "'\"":
            quote = ch
        elif ch == quote:
            quote = None
        out.append(ch)
    return "".join(out), {f"p{i}": value for i, value in enumerate(params)}


def log(conn: int, sql: str, params: Any, fetch: bool) -> None:
    sql, values = named(sql, params)
    item = {"dialect": "sqlite", "conn": conn, "sql": sql, "params": values, "fetch": fetch}
    _out.write(json.dumps(item, ensure_ascii=False) + "\n")
    _out.flush()


class Cursor(sqlite3.Cursor):
    def execute(self, sql, params=()):
        result = super().execute(sql, params)
        log(self.connection.number, sql, params, self.description is not None)
        return result


class Connection(sqlite3.Connection):
    number = 0

    def cursor(self, factory=Cursor):
        return super().cursor(factory)

    def execute(self, sql, params=()):
        return self.cursor().execute(sql, params)

    def commit(self):
        if self.in_transaction:
            log(self.number, "COMMIT", None, False)
        return super().commit()

    def rollback(self):
        if self.in_transaction:
            log(self.number, "ROLLBACK", None, False)
        return super().rollback()


def connect(*args, **kwargs):
    global _count
    kwargs["factory"] = Connection
    con = _connect(*args, **kwargs)
    con.number, _count = _count, _count + 1
    return con


def main() -> None:
    global _out
    _out = open(os.environ.pop("COMMCARE_SQL_TRACE"), "w", encoding="utf-8")
    sqlite3.connect = sqlite3.dbapi2.connect = connect
    from commcare.cli import main as commcare

    sys.argv = ["commcare", *sys.argv[1:]]
    commcare()


if __name__ == "__main__":
    main()
