"""The audit trail cannot be quietly shortened or rewritten (the attacks of issue 16, tried
for real on the register file with sqlite3 and hashlib, checked by the installed commcare):
deleting the last entries (one of them an --unmask), deleting one in the middle, editing one
and re-computing the chain without the key, and editing a copy checked against a saved
report. And looking residents up by ID number leaves an entry per try."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import shutil
import sqlite3
import stat

import pytest
from usercli import commcare, ok

ZGL = "11010519491231002X"


@pytest.fixture
def trail(tmp_path, cli, monkeypatch):
    """A register with six entries, the last two a --unmask and an edit."""
    db = tmp_path / "a.db"
    monkeypatch.setenv("COMMCARE_DB", str(db))
    assert cli("init", "--community", "幸福社区").exit_code == 0
    cli("staff", "add", "王秀英")
    cli("resident", "add", "张桂兰", "--id-number", ZGL, "--phone", "13912345678")
    cli("resident", "add", "刘建国")
    assert cli("resident", "list", "--unmask").exit_code == 0
    cli("resident", "edit", "刘建国", "--phone", "13800002222")
    return db


def rows(db) -> list[dict]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM audit ORDER BY seq")]
    finally:
        con.close()


def sql(db, statement: str, *args) -> None:
    con = sqlite3.connect(db)
    con.execute(statement, args)
    con.commit()
    con.close()


def rechain(db, key: bytes | None = None) -> None:
    """What an attacker with the database file does after an edit: re-compute every entry's
    hash from the one before, exactly as commcare's code does (it is open source) — with plain
    SHA-256 when the key is not at hand, with the key when it is."""
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    cols = [c[1] for c in con.execute("PRAGMA table_info(audit)")]
    prev = ""
    for r in con.execute("SELECT * FROM audit ORDER BY id").fetchall():
        at = dt.datetime.fromisoformat(r["at"]).replace(tzinfo=dt.UTC).isoformat(timespec="microseconds")
        body = [prev, at, r["actor"], r["action"], r["entity"], r["entity_id"], r["community_id"], r["fields"]]
        body = ([r["seq"]] if "seq" in cols else []) + body + [r["detail"]]
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        digest = hmac.new(key, data, hashlib.sha256).hexdigest() if key else hashlib.sha256(data).hexdigest()
        con.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?", (prev, digest, r["id"]))
        prev = digest
    con.commit()
    con.close()


def test_the_intact_trail_verifies_with_its_anchor(trail, tmp_path):
    entries = rows(trail)
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    result = ok("audit", "verify")
    assert f"{len(entries)} entries" in result.stdout and "1 anchor" in result.stdout
    key = tmp_path / "audit.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    anchors = list((tmp_path / "xdg-data" / "commcare" / "audit-anchors").glob("*.json"))
    assert len(anchors) == 1 and stat.S_IMODE(anchors[0].stat().st_mode) == 0o600
    anchor = json.loads(anchors[0].read_text())
    assert anchor["entries"] == len(entries) and anchor["head"] == entries[-1]["hash"]


def test_deleting_the_last_entries_hiding_an_unmask_is_found(trail):
    entries = rows(trail)
    assert entries[-2]["action"] == "unmask"
    sql(trail, "DELETE FROM audit WHERE seq >= ?", entries[-2]["seq"])
    result = commcare("audit", "verify")
    kept = len(entries) - 2
    assert result.returncode == 1, result.stdout
    assert f"entries missing after #{kept}" in result.stderr


@pytest.mark.slow
def test_a_write_after_a_truncation_does_not_move_the_anchor(trail):
    """The next entry takes the deleted one's number; the anchor stays where it was, every
    write says so, and verify still finds the entries missing."""
    entries = rows(trail)
    sql(trail, "DELETE FROM audit WHERE seq >= ?", entries[-2]["seq"])
    for name in ("赵小宝", "孙丽", "周华"):  # more entries than were deleted
        result = ok("resident", "add", name)
        assert "no longer matches its anchor" in result.stderr
    result = commcare("audit", "verify")
    assert result.returncode == 1 and "does not match" in result.stderr and f"#{len(entries)}" in result.stderr


def test_deleting_an_entry_in_the_middle_is_a_gap(trail):
    sql(trail, "DELETE FROM audit WHERE seq = 3")
    result = commcare("audit", "verify")
    assert result.returncode == 1 and "entries missing after #2" in result.stderr


def test_an_edit_re_chained_with_plain_hashlib_is_found(trail):
    sql(trail, "UPDATE audit SET actor = '某黑客' WHERE seq = 4")  # the unmask was someone else's
    rechain(trail)
    result = commcare("audit", "verify")
    assert result.returncode == 1 and "entry #1 does not hold" in result.stderr


@pytest.mark.slow
def test_an_edit_in_a_copy_is_found_against_a_saved_report(trail, tmp_path):
    """Even someone holding the key, re-chaining a copy, is caught by a report kept elsewhere."""
    saved = {}
    for fmt in ("json", "markdown", "html"):
        saved[fmt] = tmp_path / f"report.{fmt}"
        ok("report", "today", "--format", fmt, "--output", saved[fmt])
    head = json.loads(saved["json"].read_text())["audit"]
    assert head == {"entries": len(rows(trail)), "head": rows(trail)[-1]["hash"]}
    assert head["head"] in saved["markdown"].read_text() and head["head"] in saved["html"].read_text()
    copy = tmp_path / "copy.db"
    shutil.copyfile(trail, copy)
    sql(copy, "UPDATE audit SET actor = '某黑客' WHERE seq = 4")
    rechain(copy, bytes.fromhex((tmp_path / "audit.key").read_text().strip()))
    assert commcare("--db", copy, "audit", "verify").returncode == 0  # a copy has no anchor of its own
    for fmt, path in saved.items():
        result = commcare("--db", copy, "audit", "verify", "--anchor", path)
        assert result.returncode == 1, fmt
        assert f"entry #{head['entries']} does not match" in result.stderr, (fmt, result.stderr)
    result = commcare("--db", copy, "audit", "verify", "--anchor", f"{head['entries']}:{head['head']}")
    assert result.returncode == 1
    assert ok("audit", "verify", "--anchor", saved["json"]).returncode == 0  # the register itself holds


def test_a_truncated_copy_is_found_against_a_saved_report(trail, tmp_path):
    report = tmp_path / "r.json"
    ok("report", "today", "--format", "json", "--output", report)
    copy = tmp_path / "copy.db"
    shutil.copyfile(trail, copy)
    sql(copy, "DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)")
    result = commcare("--db", copy, "audit", "verify", "--anchor", report)
    assert result.returncode == 1 and f"entries missing after #{len(rows(trail)) - 1}" in result.stderr


def test_a_bad_anchor_argument_is_exit_2(trail, tmp_path):
    result = commcare("audit", "verify", "--anchor", tmp_path / "nothing.json")
    assert result.returncode == 2 and "anchor" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "plain.txt").write_text("no head here\n")
    result = commcare("audit", "verify", "--anchor", tmp_path / "plain.txt")
    assert result.returncode == 2 and "anchor" in result.stderr


def test_a_trail_without_its_key_is_exit_3(trail, tmp_path):
    (tmp_path / "audit.key").unlink()
    for args in (("audit", "verify"), ("resident", "add", "赵小宝")):
        result = commcare(*args)
        assert result.returncode == 3 and "audit key" in result.stderr, args
    assert not (tmp_path / "audit.key").exists()  # never silently replaced


def test_a_key_others_may_read_is_refused(trail, tmp_path):
    (tmp_path / "audit.key").chmod(0o644)
    result = commcare("audit", "verify")
    assert result.returncode == 3 and "chmod 600" in result.stderr


@pytest.mark.slow
def test_looking_residents_up_by_id_number_is_audited_found_or_not(trail):
    """The ID-number oracle: ``resident show`` over candidate ID numbers, one of them right."""
    from commcare.identity import id_check_digit

    before = len(rows(trail))
    candidates = [body + id_check_digit(body) for body in (f"11010519491231{n:03d}" for n in range(5, 10))] + [ZGL]
    outcomes = [commcare("resident", "show", c).returncode for c in candidates]
    assert outcomes == [1] * 5 + [0]
    found = rows(trail)[before:]
    assert [e["action"] for e in found] == ["resident.lookup"] * len(candidates)
    assert [e["entity_id"] for e in found] == [None] * 5 + [1]
    trail_text = json.dumps(rows(trail), ensure_ascii=False)
    assert all(c not in trail_text for c in candidates)  # masked in the trail
    assert "110105**********2X: found #1" in found[-1]["detail"]
    ok("audit", "verify")


@pytest.mark.slow
def test_every_report_prints_the_head(trail):
    last = rows(trail)[-1]
    for args in (("report", "today"), ("report", "week", "--format", "markdown"), ("report", "week", "-f", "html")):
        assert last["hash"] in ok(*args).stdout, args
    week = json.loads(ok("report", "week", "--format", "json").stdout)
    assert week["audit"] == {"entries": last["seq"], "head": last["hash"]}
    assert last["hash"] in ok("report", "today", "--all-communities").stdout


@pytest.mark.slow
def test_an_upgrade_chains_the_entries_already_there(db_url, tmp_path):
    """A register from before the keyed chain (at 0003, its entries hashed with plain SHA-256)
    is numbered and chained with the key by db upgrade, which records that it did so."""
    from sqlalchemy import text

    from commcare import db as dbm

    engine = dbm.make_engine(db_url)
    try:
        dbm.downgrade(engine, "0003")
        with engine.begin() as conn:
            for n, action in enumerate(("staff.add", "resident.add", "unmask"), start=1):
                conn.execute(
                    text(
                        "INSERT INTO audit (id, at, actor, action, entity, fields, detail, prev_hash, hash) "
                        "VALUES (:id, :at, 'tester', :action, 'resident', '', '', '', :hash)"
                    ),
                    {"id": n * 10, "at": dt.datetime(2026, 5, n, tzinfo=dt.UTC), "action": action, "hash": "0" * 64},
                )
    finally:
        engine.dispose()
    assert not (tmp_path / "audit.key").exists()
    assert commcare("audit", "verify").returncode == 3  # the old schema: upgrade first
    ok("db", "upgrade")
    assert stat.S_IMODE((tmp_path / "audit.key").stat().st_mode) == 0o600
    result = ok("audit", "verify")
    assert "4 entries" in result.stdout
    engine = dbm.make_engine(db_url)
    with engine.connect() as conn:
        last = conn.execute(text("SELECT seq, action, detail FROM audit ORDER BY seq")).all()
    engine.dispose()
    assert [r[0] for r in last] == [1, 2, 3, 4]
    assert last[-1][1] == "audit.chain" and "1-3" in last[-1][2]


@pytest.mark.pg
def test_on_postgresql_verify_is_the_owners(monkeypatch):
    """A login that does not own the tables may see only part of the trail (row-level
    security): it is told to verify as the owner, not shown gaps that are not there."""
    import uuid

    from conftest import PG_URL, _fresh_pg_database, _pg_admin
    from sqlalchemy.engine import make_url

    if not PG_URL:
        pytest.skip("COMMCARE_TEST_PG_URL is unset")
    url, drop = _fresh_pg_database()
    admin, _ = _pg_admin()
    login = f"audit_reader_{uuid.uuid4().hex[:10]}"
    try:
        monkeypatch.setenv("COMMCARE_DB", url)
        ok("init", "--community", "幸福社区")
        ok("resident", "add", "张桂兰")
        assert "2 entries" in ok("audit", "verify").stdout
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE ROLE "{login}" LOGIN')
        owner = make_url(url)
        with _engine(url) as conn:
            conn.exec_driver_sql(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{login}"')
        as_login = owner.set(username=login).render_as_string(hide_password=False)
        result = commcare("--db", as_login, "audit", "verify")
        assert result.returncode == 1 and "owner" in result.stderr, result.stderr
    finally:
        drop()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{login}"')
        admin.dispose()


def _engine(url):
    from contextlib import contextmanager

    from sqlalchemy import create_engine

    @contextmanager
    def connected():
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()

    return connected()
