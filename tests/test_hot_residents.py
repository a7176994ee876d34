"""``resident list`` and ``resident show`` give the same answers, and leave the same register,
through the statement cache and the driver as through SQLAlchemy (``tests/hotcheck.py``), on
SQLite and PostgreSQL: each filter, each format, ``--unmask`` (audited), each refusal with its
exit code, and a register whose counts do not match (exit 3)."""

from __future__ import annotations

import json
import sqlite3

import hotcheck
import pytest
from hotcheck import _libpq, both_ways, is_server, query

NOBODY = "无此人"


@pytest.fixture(scope="module")
def ref(hot_register) -> dict:
    """What the commands name, read from the demo register."""
    db, actor = hot_register
    first = query(db, "SELECT id, name, phone, id_number, name_initials FROM residents ORDER BY id LIMIT 1")[0]
    unique = query(db, "SELECT name FROM residents GROUP BY name HAVING COUNT(*) = 1 ORDER BY MIN(id) LIMIT 1")
    shared = query(db, "SELECT name FROM residents GROUP BY name HAVING COUNT(*) > 1 ORDER BY MIN(id) LIMIT 1")
    compound = query(db, "SELECT compound FROM households GROUP BY compound ORDER BY COUNT(*) DESC LIMIT 1")
    liaison = query(db, "SELECT s.name FROM staff s JOIN households h ON h.liaison_id = s.id ORDER BY s.id LIMIT 1")
    found = {
        "actor": actor,
        "id": str(first[0]),
        "name": unique[0][0],
        "shared": shared[0][0] if shared else unique[0][0],
        "surname": first[1][0],
        "phone": first[2],
        "digits": first[2][3:7],
        "idnum": first[3],
        "initials": first[4][:2],
        "compound": compound[0][0],
        "liaison": liaison[0][0],
    }
    assert all(found.values()), found
    return found


CASES = {
    "list": (["resident", "list"], 0),
    "list json": (["resident", "list", "-f", "json"], 0),
    "list csv": (["resident", "list", "-f", "csv"], 0),
    "search initials": (["resident", "list", "--search", "{initials}", "-f", "json"], 0),
    "search initials, spaced and upper": (["resident", "list", "--search", " Z G ", "-f", "json"], 0),
    "search phone digits": (["resident", "list", "--search", "{digits}", "-f", "json"], 0),
    "search a name": (["resident", "list", "--search", "{surname}", "-f", "markdown"], 0),
    "search LIKE's own characters": (["resident", "list", "--search", "{surname}%_/", "-f", "json"], 0),
    "tag": (["resident", "list", "--tag", "老人", "-f", "json"], 0),
    "tag and compound": (["resident", "list", "--tag", "elderly", "--compound", "{compound}", "-f", "json"], 0),
    "liaison": (["resident", "list", "--liaison", "{liaison}", "-f", "json"], 0),
    "archived": (["resident", "list", "--archived", "-f", "json"], 0),
    "unmask (audited)": (["resident", "list", "--search", "{initials}", "--unmask", "-f", "json"], 0),
    "bad tag": (["resident", "list", "--tag", "bogus"], 2),
    "unknown liaison": (["resident", "list", "--liaison", NOBODY], 1),
    "show by number": (["resident", "show", "#{id}"], 0),
    "show json": (["resident", "show", "{id}", "-f", "json"], 0),
    "show by name": (["resident", "show", "{name}", "-f", "csv"], 0),
    "show by phone": (["resident", "show", "{phone}", "-f", "json"], 0),
    "show by ID number (audited)": (["resident", "show", "{idnum}", "-f", "json"], 0),
    "show unmask (audited)": (["resident", "show", "#{id}", "--unmask", "-f", "json"], 0),
    "show a shared name": (["resident", "show", "{shared}"], 0),
    "show number not found": (["resident", "show", "99999"], 1),
    "show phone not found": (["resident", "show", "13000000000"], 1),
    "show name not found": (["resident", "show", NOBODY], 1),
    "show empty": (["resident", "show", "  "], 2),
}


@pytest.mark.parametrize("case", list(CASES))
def test_resident_list_and_show_are_the_same_both_ways(hot_register, ref, case):
    db, actor = hot_register
    args, code = CASES[case]
    if case == "show a shared name":
        code = 0 if ref["shared"] == ref["name"] else 1  # ambiguous: the candidates named
    fast, _ = both_ways(db, "--as", actor, *(a.format(**ref) for a in args))
    assert fast.code == code, (case, fast.code, fast.err)
    if case == "search initials" and code == 0:
        assert fast.json(), "the demo's first resident's initials find them"


def test_a_register_whose_counts_differ_is_exit_3_both_ways(hot_register):
    """The check before the list (every active resident) and before saying "not found" runs on
    the driver path as before: a count that differs is exit 3, whichever way the command ran."""
    db, actor = hot_register
    damaged = hotcheck.copy(db)
    try:
        if is_server(db):
            import psycopg

            with psycopg.connect(_libpq(damaged)) as con:
                con.execute("UPDATE register_counts SET residents = residents + 1 WHERE tag = '*'")
        else:
            with sqlite3.connect(damaged) as con:
                con.execute("UPDATE register_counts SET residents = residents + 1 WHERE tag = '*'")
        for args in (["resident", "list", "--search", "zgl"], ["resident", "show", "99999"]):
            fast, _ = both_ways(damaged, "--as", actor, *args)
            assert fast.code == 3, (args, fast.err)
    finally:
        hotcheck.drop(damaged)


def test_resident_list_and_show_send_only_their_own_statements_on_postgresql(hot_register, ref, tmp_path):
    """On PostgreSQL: one connection, no SQLAlchemy (its dialect's first-connect statements and
    the inspector's reading of pg_catalog are gone), and each command's statements, in order."""
    db, actor = hot_register
    if not is_server(db):
        pytest.skip("the statements sent to a server")
    trace = tmp_path / "trace.jsonl"
    env = {"COMMCARE_SQL_TRACE": str(trace)}
    sent = {}
    for name, args in {
        "list": ["resident", "list", "--search", ref["initials"], "-f", "json"],
        "show": ["resident", "show", "#" + ref["id"], "-f", "json"],
    }.items():
        hotcheck.run(db, "--as", actor, *args)  # the statement cache filled, if it was not
        trace.unlink(missing_ok=True)
        done = hotcheck.run(db, "--as", actor, *args, env=env)
        assert done.code == 0, done.err
        assert "sqlalchemy" not in done.imported
        sent[name] = [_what(json.loads(line)["sql"]) for line in trace.read_text(encoding="utf-8").splitlines()]
    head = ["alembic_version", "BEGIN", "access_grants", "communities"]
    assert sent["list"] == [*head, "count", "residents", "resident_tags", "ROLLBACK"], sent["list"]
    assert sent["show"] == [*head, "residents", "residents", "resident_tags", "ROLLBACK"], sent["show"]


def _what(sql: str) -> str:
    """A statement of the trace, by what it reads."""
    if sql in ("BEGIN", "COMMIT", "ROLLBACK"):
        return sql
    if "count(" in sql:
        return "count"
    return sql.split("FROM", 1)[1].split()[0].strip("()")
