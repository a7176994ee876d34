"""The audit trail is tamper-evident: an edited or deleted entry is found by audit verify."""

from __future__ import annotations

import sqlite3

import pytest


@pytest.fixture
def trail(tmp_path, cli, monkeypatch):
    db = tmp_path / "a.db"
    monkeypatch.setenv("COMMCARE_DB", str(db))
    cli("staff", "add", "王秀英")
    for name in ("张桂兰", "刘建国", "赵小宝"):
        cli("resident", "add", name)
    return db


def test_an_intact_trail_verifies(trail, cli):
    result = cli("audit", "verify")
    assert result.exit_code == 0 and "4 entries" in result.stdout
    assert cli("audit", "--since", "2000-01-01").exit_code == 0  # listing still works


def test_an_edited_entry_is_named(trail, cli):
    con = sqlite3.connect(trail)
    con.execute("UPDATE audit SET actor = 'someone else' WHERE id = 3")
    con.commit()
    result = cli("audit", "verify")
    assert result.exit_code == 1 and "#3" in result.stderr


def test_a_deleted_entry_is_found(trail, cli):
    con = sqlite3.connect(trail)
    con.execute("DELETE FROM audit WHERE id = 2")
    con.commit()
    result = cli("audit", "verify")
    assert result.exit_code == 1 and "entries missing after #1" in result.stderr
