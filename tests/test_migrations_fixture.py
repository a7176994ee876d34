"""The first released schema (tests/fixtures/release_0001.sqlite) upgrades to head with every row intact."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "release_0001.sqlite"
TABLES = ("communities", "staff", "households", "residents", "resident_tags")


def dump(path: Path) -> dict:
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in TABLES}
    finally:
        conn.close()


@pytest.fixture
def released(tmp_path, monkeypatch):
    target = tmp_path / "released.db"
    shutil.copyfile(FIXTURE, target)
    target.chmod(0o600)
    monkeypatch.setenv("COMMCARE_DB", str(target))
    return target


def test_fixture_holds_awkward_values():
    rows = dump(FIXTURE)
    names = [r[3] for r in rows["residents"]]
    assert "𠮷田 花子" in names and "O'Brien 🦄" in names
    assert any(r[9] is None for r in rows["residents"])  # NULL phone survives as NULL


def test_released_database_upgrades_to_head_with_every_row_intact(released, cli):
    from commcare import db as dbm

    before = dump(released)
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.stderr
    after = dump(released)  # columns added since (staff.login …) come after the released ones
    assert {t: [row[: len(before[t][0])] for row in rows] if before[t] else rows for t, rows in after.items()} == before
    conn = sqlite3.connect(released)
    try:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == dbm.HEAD
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


def test_upgraded_rows_read_back_through_the_cli(released, cli, monkeypatch):
    monkeypatch.setenv("COMMCARE_COMMUNITY", "幸福社区 🏠")  # the fixture's community
    assert cli("db", "upgrade").exit_code == 0
    shown = json.loads(cli("resident", "show", "#1", "--format", "json").stdout)
    assert shown["name"] == "𠮷田 花子"
    assert "'quotes'" in shown["note"]
    bare = json.loads(cli("resident", "show", "#2", "--format", "json").stdout)
    assert bare["name"] == "张桂兰" and not bare.get("phone")
