"""Who may write, and what the audit trail keeps of it, on the hot commands' fast path
(``commcare.storage.fast``) as through SQLAlchemy: the staff check (``access.check_writer``),
the keyed chain (``audit.record``), the anchor moved forward after the write
(``audit_anchor.advance``) and the ID-number lookups (``audit.record_lookups``). On SQLite and
on PostgreSQL, there also as a staff login (``staff grant``) whose rows the database itself
limits (row-level security).

The register (``hot_register``) is made once per module with a home of its own (audit key,
config, anchors), which every run of every test is given."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import hotcheck
import pytest
from hotcheck import both_ways, query

# The files whose statements this module proves declared (``COMMCARE_SQL_ONSPOT`` names none of them).
AUDITED_FILES = ("commcare/access.py", "commcare/audit.py", "commcare/audit_anchor.py", "commcare/context.py")
STRANGER = "路人甲"


@pytest.fixture
def env(hot_register, tmp_path, monkeypatch):
    """What every run of a test is given: the register's home (its audit key, config and
    anchors: ``hotcheck.REGISTER_ENV``, also set in this process, so that reading the anchor
    here looks where the runs wrote it), and a file listing the statements run on the fast path
    without having been declared."""
    home = hotcheck.REGISTER_ENV[hot_register[0]]
    for name, value in home.items():
        monkeypatch.setenv(name, value)
    return {**home, "COMMCARE_SQL_ONSPOT": str(tmp_path / "onspot.txt"), "COMMCARE_LANG": "en"}


def undeclared_here(env: dict) -> list[str]:
    """The statements of this module's files run on the fast path undeclared (none, ever)."""
    try:
        lines = open(env["COMMCARE_SQL_ONSPOT"], encoding="utf-8").read().splitlines()
    except FileNotFoundError:
        return []
    return [line for line in lines if any(name in line for name in AUDITED_FILES)]


def a_resident(db: str) -> tuple[int, str]:
    """A resident of the demo with an ID number: (id, ID number)."""
    return query(db, "SELECT id, id_number FROM residents WHERE id_number IS NOT NULL ORDER BY id LIMIT 1")[0]


def writes(db: str, actor: str) -> list[tuple]:
    rid, _ = a_resident(db)
    return [
        ("add-request", f"#{rid}", "--category", "parcel", "--format", "json"),
        ("call", "log", f"#{rid}", "--outcome", "ok", "--note", "好", "--format", "json"),
        ("health", "log", actor, "--temp", "36.6", "--format", "json"),
    ]


AUDIT_COLUMNS = "seq, actor, action, entity, entity_id, fields, detail, prev_hash, hash"


def trail(db: str) -> list[tuple]:
    return query(db, f"SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq")


# --- database URLs, read without SQLAlchemy ----------------------------------------------------

URLS = [
    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    "postgresql+psycopg://alice:s3cret@db.example.org:5433/commcare",
    "postgresql://alice:p%40ss%3As3cret@db.example.org/commcare?sslmode=require&application_name=cc",
    "postgresql+psycopg://u:s3cret@host/db?b=2&a=1&a=0",
    "postgresql+psycopg:///commcare",
    "postgresql+psycopg://u:s3cret@/commcare?host=/var/run/postgresql",
    "postgresql+psycopg://u@[::1]:5432/db",
    "postgresql+psycopg://u:@Host.Example/db",
    "postgresql+psycopg://h",
    "postgresql+psycopg://h/",
    "postgresql+psycopg://h?sslmode=disable",
    "postgresql+psycopg://h:0/db",
    "postgresql+psycopg://us%20er:s3cret@h/my%20db",
    "postgresql+psycopg://h/db?x=&y=1",
    "sqlite://",
    "sqlite:///:memory:",
    "postgresql+psycopg://h:notaport/db",
    "my-db://u:s3cret@h/db",
    "/var/lib/commcare/register.db",
]


@pytest.mark.parametrize("url", URLS)
def test_a_url_is_shown_and_named_as_make_url_reads_it(url):
    """``display_url`` (every message naming a database) and the anchor's ``identity`` read a
    URL with urllib.parse; what they give is what SQLAlchemy's ``make_url`` gives."""
    from sqlalchemy.engine import make_url

    from commcare import audit_anchor
    from commcare.db import sqlite_path, to_url
    from commcare.storage.engine import display_url

    try:
        expected = make_url(url).render_as_string(hide_password=True) if "://" in url else url
    except Exception:  # noqa: BLE001 - what display_url shows of a URL make_url cannot read
        expected = url.split("@")[-1]
    assert display_url(url) == expected
    assert "s3cret" not in display_url(url)
    if sqlite_path(url) is not None:
        return
    try:
        parsed = make_url(to_url(url))
        port = parsed.port
    except Exception:  # noqa: BLE001 - a URL no engine could open has no anchor
        return
    name = f"{parsed.get_backend_name()}://{parsed.host or ''}:{port or ''}/{parsed.database or ''}"
    assert audit_anchor.identity(url) == name


# --- through the commands, both ways ------------------------------------------------------------


def test_a_write_by_someone_not_staff_is_refused_the_same_both_ways(hot_register, env):
    db, actor = hot_register
    for args in writes(db, actor):
        fast, _ = both_ways(db, "--as", STRANGER, *args, env=env)
        assert fast.code == 1, (args, fast.err)
        assert STRANGER in fast.err and "--as" in fast.err
        assert fast.out == ""
        assert fast.tables["audit"] == hotcheck.dump(db)["audit"]  # nothing written, nothing recorded
    assert undeclared_here(env) == []


def test_a_write_adds_the_same_audit_entries_both_ways(hot_register, env):
    db, actor = hot_register
    before = hotcheck.dump(db)["audit"]
    for args, action in zip(writes(db, actor), ("request.open", "call.log", "health.log"), strict=True):
        fast, _ = both_ways(db, "--as", actor, *args, env=env)  # the audit rows, hashes and all, compared
        assert fast.code == 0, (args, fast.err)
        added = _new_rows(fast.tables["audit"], before)
        assert len(added) == 1 and action in added[0] and actor in added[0], (args, added)
    assert undeclared_here(env) == []


def _new_rows(rows: list[tuple], before: list[tuple]) -> list[tuple]:
    """The entries of ``rows`` (a table as ``hotcheck.dump`` gives it) that ``before`` lacks."""
    old = set(before)
    return [row for row in rows if row not in old]


def test_an_id_number_lookup_is_recorded_the_same_both_ways(hot_register, env):
    db, actor = hot_register
    rid, id_number = a_resident(db)
    before = hotcheck.dump(db)["audit"]
    fast, _ = both_ways(db, "--as", actor, "call", "log", id_number, "--outcome", "no-answer", env=env)
    assert fast.code == 0, fast.err
    added = _new_rows(fast.tables["audit"], before)
    lookups = [row for row in added if "resident.lookup" in row]
    assert len(lookups) == 1, added
    assert id_number not in repr(added)  # the number is kept masked
    assert any(f"found #{rid}" in str(value) for value in lookups[0])
    # a number found nowhere is recorded too, though the command fails
    missing = "11010519491231002X" if id_number != "11010519491231002X" else "110105195505050026"
    fast, _ = both_ways(db, "--as", actor, "call", "log", missing, "--outcome", "ok", env=env)
    assert fast.code == 1
    added = _new_rows(fast.tables["audit"], before)
    assert [row for row in added if "resident.lookup" in row and any("not found" in str(v) for v in row)]
    assert undeclared_here(env) == []


def test_verify_passes_and_the_anchor_moves_forward_after_each_write(hot_register, env):
    from commcare import audit_anchor

    db, actor = hot_register
    copy = hotcheck.copy(db)
    previous = len(trail(copy))
    try:
        for args in writes(db, actor):
            done = hotcheck.run(copy, "--as", actor, *args, env=env, fast=True)
            assert done.code == 0, (args, done.err)
            assert done.err == ""  # no "anchor no longer holds", no "cannot write the anchor"
            entries = trail(copy)
            anchor = audit_anchor.local(copy)
            assert anchor is not None, args
            assert (anchor["entries"], anchor["head"]) == (entries[-1][0], entries[-1][-1]), args
            assert anchor["entries"] > previous, args  # forward, one write after another
            previous = anchor["entries"]
        verified = hotcheck.run(copy, "audit", "verify", env=env, fast=False)
        assert verified.code == 0, verified.err
        assert f"{len(trail(copy))} entries" in verified.out, verified.out
    finally:
        hotcheck.drop(copy)
    assert undeclared_here(env) == []


# --- the fast path itself, whatever the commands opt into ----------------------------------------

# Run in a process of its own: a hot command's write (``AppState.write`` on the driver
# connection) that checks the writer, notes an ID-number lookup and records one entry; then the
# lookups are recorded and the anchor moved as after every command. Prints what it saw, and
# which commcare modules imported SQLAlchemy.
PROBE = r"""
import json, sys, traceback

importers = []

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "sqlalchemy":
            for frame in traceback.extract_stack()[::-1]:
                if "/commcare/" in frame.filename and "/commcare/storage/sql.py" not in frame.filename:
                    importers.append(frame.filename.split("/commcare/", 1)[1])
                    break
        return None

sys.meta_path.insert(0, Watch())
from commcare.commands import common
from commcare import audit

database, actor, id_number = sys.argv[1:4]
st = common.start(database=database, operator=actor)
st.fast = True

def write(conn, ctx):
    audit.looked_up(ctx, id_number, [])
    audit.record(conn, ctx, "probe.write", "resident", None, ["note"], detail="probe")
    return type(conn).__name__

try:
    kind = st.write(write)
    code = 0
except Exception as exc:
    kind, code = type(exc).__name__ + ": " + str(exc), 1
common.finish()
print(json.dumps({"code": code, "conn": kind, "importers": sorted(set(importers))}))
"""


def probe(db: str, actor: str, env: dict) -> dict:
    full = {**os.environ, "COMMCARE_NOW": hotcheck.FIXED_NOW, "COMMCARE_FAST": "1", **env}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, db, actor, "110105194912310021"],
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


MINE = ("access.py", "audit.py", "audit_anchor.py", "storage/audit_files.py", "context.py", "config.py")


def test_the_fast_path_checks_records_and_anchors_without_sqlalchemy(hot_register, env):
    from commcare import audit_anchor

    db, actor = hot_register
    copy = hotcheck.copy(db)
    try:
        # fill the statement cache (compiling imports SQLAlchemy): the first write makes the
        # anchor, the second checks it still holds (a statement of its own). The probe runs
        # ``python -c`` from the working directory, which may be a checkout beside the installed
        # package, whose cache is a file of its own.
        probe(copy, actor, env)
        probe(copy, actor, env)
        before = trail(copy)
        seen = probe(copy, actor, env)
        assert seen["code"] == 0 and seen["conn"] == "FastConn", seen
        assert not [name for name in seen["importers"] if name in MINE], seen
        after = trail(copy)
        added = [row[2] for row in after[len(before) :]]
        assert added == ["probe.write", "resident.lookup"]
        assert after[len(before)][-2] == before[-1][-1]  # chained to the head before it
        anchor = audit_anchor.local(copy)
        assert anchor is not None and (anchor["entries"], anchor["head"]) == (after[-1][0], after[-1][-1])
        refused = probe(copy, STRANGER, env)
        assert refused["code"] == 1 and "Refused" in refused["conn"], refused
        assert trail(copy) == after
        verified = hotcheck.run(copy, "audit", "verify", env=env, fast=False)
        assert verified.code == 0, verified.err
    finally:
        hotcheck.drop(copy)
    assert undeclared_here(env) == []


def cli(db: str, *args, env: dict, fast: bool) -> subprocess.CompletedProcess:
    """``commcare *args`` as ``hotcheck.run`` runs it, without reading the tables after (a
    district login may not)."""
    full = {**os.environ, "COMMCARE_DB": db, "COMMCARE_NOW": hotcheck.FIXED_NOW, **env}
    full["COMMCARE_FAST"] = "1" if fast else "0"
    exe = os.path.join(os.path.dirname(sys.executable), "commcare")
    return subprocess.run([exe, *args], env=full, capture_output=True, text=True, timeout=300, check=False)


# --- a staff login on PostgreSQL ----------------------------------------------------------------


def test_a_staff_login_writes_its_own_community_through_the_fast_path(hot_register, env):
    db, actor = hot_register
    if not hotcheck.is_server(db):
        pytest.skip("staff logins are PostgreSQL's")
    login, district = f"cc_hot_{uuid.uuid4().hex[:8]}", f"cc_hotd_{uuid.uuid4().hex[:8]}"
    owner = hotcheck.copy(db)
    second = query(owner, "SELECT name FROM staff WHERE active ORDER BY id")[1][0]
    try:
        for args in (
            ("community", "add", "和平社区"),
            ("--community", "和平社区", "staff", "add", "周敏"),
            ("--community", "和平社区", "--as", "周敏", "resident", "add", "钱秘密", "--tag", "独居"),
            ("--community", "default", "staff", "grant", actor, "--login", login, "--role", "liaison"),
            ("--community", "default", "staff", "grant", second, "--login", district, "--role", "district"),
        ):
            done = hotcheck.run(owner, "--as", actor, *args, env=env, fast=False)
            assert done.code == 0, (args, done.err)
        other = query(owner, "SELECT id FROM residents WHERE name = '钱秘密'")[0][0]
        rid, _ = a_resident(owner)
        as_login = owner.replace("://postgres@", f"://{login}@", 1)
        assert as_login != owner
        login_env = {**env, "COMMCARE_USER": ""}  # nobody named: the login acts as its staff member
        own = [
            ("call", "log", f"#{rid}", "--outcome", "ok", "--format", "json"),
            ("add-request", f"#{rid}", "--category", "parcel", "--format", "json"),
        ]
        for args in own:
            first = hotcheck.run(as_login, *args, env=login_env, fast=True)
            assert first.code == 0, (args, first.err)
            assert first.err == ""
        entries = trail(owner)
        assert entries[-1][1] == actor  # the login acts as its own staff member
        for args in (
            ("call", "log", f"#{other}", "--outcome", "ok"),
            ("--community", "和平社区", "call", "log", "钱秘密", "--outcome", "ok"),
            ("--as", "周敏", "call", "log", f"#{rid}", "--outcome", "ok"),
        ):
            refused = hotcheck.run(as_login, *args, env=login_env, fast=True)
            assert refused.code == 1, (args, refused.err)
            assert "钱秘密" not in refused.out + refused.err
        assert trail(owner) == entries  # nothing recorded by the refused writes
        assert query(owner, f"SELECT count(*) FROM calls WHERE resident_id = {other}") == [(0,)]
        # a district login reads the counts of every community (commcare_district_summary), writes nothing
        as_district = owner.replace("://postgres@", f"://{district}@", 1)
        summary = [
            cli(as_district, "report", "today", "--all-communities", "--format", "json", env=login_env, fast=f)
            for f in (True, False)
        ]
        assert summary[0].returncode == summary[1].returncode == 0, summary[0].stderr
        assert json.loads(summary[0].stdout) == json.loads(summary[1].stdout)
        assert [c["community"] for c in json.loads(summary[0].stdout)["communities"]] == ["default", "和平社区"]
        write = cli(as_district, "call", "log", f"#{rid}", "--outcome", "ok", env=login_env, fast=True)
        assert write.returncode == 1 and district in write.stderr
        assert trail(owner) == entries
        verified = hotcheck.run(owner, "audit", "verify", env=env, fast=False)
        assert verified.code == 0, verified.err
    finally:
        hotcheck.drop(owner)
        import psycopg

        base = db.rsplit("/", 1)[0]
        with psycopg.connect(hotcheck._libpq(base + "/postgres"), autocommit=True) as admin:
            for role in (login, district):
                admin.execute(f'DROP ROLE IF EXISTS "{role}"')
    assert undeclared_here(env) == []
