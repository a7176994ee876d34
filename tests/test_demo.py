"""commcare demo: deterministic, separate, and never over a real register."""

from __future__ import annotations

import json
import sqlite3


def test_demo_builds_a_community_and_prints_todays_report(tmp_path, cli):
    db = tmp_path / "demo.db"
    result = cli("--db", db, "demo", "--residents", "120", "--requests", "300", "--days", "10", "-f", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["calls"]["due"] > 0 and report["liaisons"]
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM residents").fetchone()[0] == 120
    assert con.execute("SELECT count(*) FROM requests").fetchone()[0] == 300


def test_demo_is_deterministic_and_valid(tmp_path, cli):
    from commcare import identity

    dumps = []
    for name in ("a.db", "b.db"):
        assert (
            cli("--db", tmp_path / name, "demo", "--residents", "50", "--requests", "80", "--seed", "7").exit_code == 0
        )
        con = sqlite3.connect(tmp_path / name)
        dumps.append(con.execute("SELECT name, phone, id_number, household_id FROM residents ORDER BY id").fetchall())
    assert dumps[0] == dumps[1]
    for _, phone, id_number, _ in dumps[0]:
        assert identity.normalize_phone(phone) == phone
        assert identity.normalize_id_number(id_number) == id_number


def test_demo_refuses_a_register_with_real_residents(tmp_path, cli):
    db = tmp_path / "real.db"
    assert cli("--db", db, "resident", "add", "张桂兰").exit_code == 0
    result = cli("--db", db, "demo", "--residents", "10", "--requests", "10")
    assert result.exit_code == 1 and "real residents" in result.stderr
    assert sqlite3.connect(db).execute("SELECT count(*) FROM residents").fetchone()[0] == 1


def test_demo_rebuilds_its_own_database(tmp_path, cli):
    db = tmp_path / "demo.db"
    assert cli("--db", db, "demo", "--residents", "30", "--requests", "30").exit_code == 0
    assert cli("--db", db, "demo", "--residents", "20", "--requests", "10").exit_code == 0
    assert sqlite3.connect(db).execute("SELECT count(*) FROM residents").fetchone()[0] == 20


def test_demo_default_is_a_separate_file_in_the_data_dir(tmp_path, cli, monkeypatch):
    monkeypatch.delenv("COMMCARE_DB")
    assert cli("demo", "--residents", "10", "--requests", "5").exit_code == 0
    assert (tmp_path / "xdg-data" / "commcare" / "demo.db").exists()
    assert not (tmp_path / "xdg-data" / "commcare" / "commcare.db").exists()
