"""A city's register on PostgreSQL: the bulk loads through COPY make the same register as the
row-by-row path, the tables are analysed after them, and every command opens one connection.

Each test runs the installed ``commcare`` against a fresh database on the real server
(COMMCARE_TEST_PG_URL) beside a SQLite file (the executemany path), and compares."""

from __future__ import annotations

import csv
import datetime as dt
import json
import time

import pytest
from conftest import PG_URL, _fresh_pg_database
from usercli import ok

pytestmark = pytest.mark.skipif(not PG_URL, reason="COMMCARE_TEST_PG_URL is unset")

NOW = "2026-11-30 16:00"
TAGS = ["老人", "独居老人", "残疾人", "儿童", "", "", "低保", ""]


@pytest.fixture
def pg(pg_template):
    url, drop = _fresh_pg_database(pg_template)
    yield url
    drop()


def _roster(path, rows: int) -> None:
    """A roster of ``rows`` residents in households of three, a quarter to a half in the
    special groups (some in two), every ID number valid."""
    from stdnum.cn import ric

    with open(path, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["姓名", "身份证号", "联系电话", "小区", "住址", "人群类别"])
        for i in range(rows):
            born = dt.date(1935, 1, 1) + dt.timedelta(days=i * 7)
            body = f"410105{born:%Y%m%d}{i % 1000:03d}"
            out.writerow(
                [
                    "张王李赵刘"[i % 5] + "桂兰秀英建国玉志强"[i % 9] + "明伟芳"[i % 3],
                    body + ric.calc_check_digit(body + "0"),
                    f"139{i:08d}",
                    f"小区{i % 4}",
                    f"{i // 12 + 1}号楼{i // 3 % 4 + 1}01",
                    TAGS[i % len(TAGS)],
                ]
            )


def _register(url: str) -> dict:
    """What the register holds, by content (not by number): each resident's name, ID number,
    phone, household and tags; the households; the kept counts."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url if "://" in url else f"sqlite:///{url}")
    with engine.connect() as conn:
        people = conn.execute(
            text(
                "SELECT r.name, r.id_number, r.phone, h.compound, h.address, "
                "(SELECT count(*) FROM resident_tags t WHERE t.resident_id = r.id) "
                "FROM residents r LEFT JOIN households h ON h.id = r.household_id"
            )
        ).all()
        tags = conn.execute(text("SELECT tag, count(*) FROM resident_tags GROUP BY tag")).all()
        houses = conn.execute(text("SELECT compound, address FROM households")).all()
        counts = conn.execute(text("SELECT tag, residents FROM register_counts")).all()
        tables = {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("residents", "households", "resident_tags", "staff", "requests", "request_events", "calls")
        }
    engine.dispose()
    return {
        "people": sorted(map(tuple, people)),
        "tags": sorted(map(tuple, tags)),
        "households": sorted(map(tuple, houses)),
        "counts": sorted(map(tuple, counts)),
        "tables": tables,
    }


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _stat(url: str, sql: str) -> list:
    import psycopg

    with psycopg.connect(_plain(url), autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def test_copy_import_makes_the_same_register_as_the_row_path(pg, tmp_path):
    roster = tmp_path / "roster.csv"
    _roster(roster, 2_500)
    lite = str(tmp_path / "lite.db")
    ok("--db", lite, "init")
    for db in (lite, pg):
        ok("--db", db, "resident", "import", roster)
        assert "✓" in ok("--db", db, "db", "check").stdout
    on_pg, on_sqlite = _register(pg), _register(lite)
    assert on_pg["tables"]["residents"] == 2_500
    assert on_pg["tags"] and on_pg["counts"]
    assert on_pg == on_sqlite


def test_copy_import_keeps_the_counts_of_a_register_that_had_residents(pg, tmp_path):
    """A second import into a register that already holds a community's residents: the counts
    the triggers keep add up (a COPY fires the statement triggers as an INSERT does)."""
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    _roster(first, 300)
    with open(first, encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    with open(second, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(rows[0])
        for row in rows[1:151]:  # the same people's phones and households, new ID numbers
            row[1] = ""
            row[2] = "138" + row[2][3:]
            out.writerow(row)
    ok("--db", pg, "resident", "import", first)
    ok("--db", pg, "resident", "import", second)
    ok("--db", pg, "db", "check")
    counts = dict(_stat(pg, "SELECT tag, residents FROM register_counts"))
    assert counts["*"] == 450
    actual = dict(_stat(pg, "SELECT tag, count(*) FROM resident_tags GROUP BY tag"))
    assert {k: v for k, v in counts.items() if k != "*"} == actual


def test_demo_on_postgresql_makes_the_same_register_as_on_sqlite(pg, tmp_path):
    lite = str(tmp_path / "demo.db")
    env = {"COMMCARE_NOW": NOW}
    for db in (lite, pg):
        ok("--db", db, "demo", "--residents", "600", "--requests", "4000", "--days", "20", "--format", "json", env=env)
        ok("--db", db, "db", "check", env=env)
    on_pg, on_sqlite = _register(pg), _register(lite)
    assert on_pg["tables"]["requests"] == 4_000
    assert on_pg == on_sqlite


def test_bulk_writes_analyse_the_tables_they_touch(pg, tmp_path):
    """A fresh register has never been analysed; after an import its tables have been, and the
    planner knows how many residents there are."""
    query = (
        "SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables "
        "WHERE relname IN ('residents', 'resident_tags', 'households')"
    )
    assert not any(done for _, done in _stat(pg, query))
    roster = tmp_path / "roster.csv"
    _roster(roster, 500)
    ok("--db", pg, "resident", "import", roster)
    assert dict(_stat(pg, query)) == {"residents": True, "resident_tags": True, "households": True}
    assert _stat(pg, "SELECT reltuples FROM pg_class WHERE relname = 'residents'")[0][0] == 500


def test_demo_analyses_what_it_wrote(pg):
    ok("--db", pg, "demo", "--residents", "200", "--requests", "900", "--format", "json")
    done = dict(
        _stat(
            pg,
            "SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables "
            "WHERE relname IN ('residents', 'requests', 'calls', 'request_events')",
        )
    )
    assert done == {"residents": True, "requests": True, "calls": True, "request_events": True}


def _sessions(url: str) -> int:
    """Connections ever made to the database (pg_stat_database.sessions, PostgreSQL 14+)."""
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    for _ in range(50):
        rows = _stat(url, f"SELECT sessions FROM pg_stat_database WHERE datname = '{name}'")
        if rows and rows[0][0] is not None:
            return rows[0][0]
        time.sleep(0.1)
    raise AssertionError("no session count")


@pytest.mark.slow
def _demo_staff(db: str, env: dict | None = None) -> dict:
    """The environment that acts as the demo's first staff member (writes need one)."""
    import json

    staff = json.loads(ok("--db", db, "staff", "list", "--format", "json", env=env).stdout)
    return {**(env or {}), "COMMCARE_USER": staff[0]["name"]}


def test_every_command_opens_one_connection(pg, tmp_path):
    roster = tmp_path / "roster.csv"
    _roster(roster, 200)
    commands = [
        ("demo", "--residents", "100", "--requests", "300", "--format", "json"),
        ("report", "today", "--format", "json"),
        ("report", "today", "--all-communities", "--format", "json"),
        ("call", "due", "--format", "json"),
        ("add-request", "#1", "--category", "trash", "--again"),  # the demo may have one open
        ("request", "list", "--overdue"),
        ("resident", "list", "--search", "zh"),
        ("resident", "show", "#1"),
    ]
    actor: dict = {}
    for args in commands:
        before = _sessions(pg)  # this look itself is one session, counted before the next look
        ok("--db", pg, *args, env=actor)
        assert _sessions(pg) - before == 2, args  # the command's one, and the look after it
        if args[0] == "demo":
            actor = _demo_staff(pg)  # writes from here on act as the demo's first staff member
    fresh, drop = _fresh_pg_database(None)
    try:
        ok("--db", fresh, "init")
        before = _sessions(fresh)
        ok("--db", fresh, "resident", "import", roster)
        assert _sessions(fresh) - before == 2
    finally:
        drop()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_summed_summary_says_what_each_communitys_report_says(backend, pg_template, tmp_path):
    """``report today --all-communities`` counts what each community's own report lists: the
    same six figures, today and for a past day, with two communities of different sizes."""
    import json

    if backend == "sqlite":
        db, drop = str(tmp_path / "city.db"), None
    else:
        db, drop = _fresh_pg_database(pg_template)
    try:
        env = {"COMMCARE_NOW": NOW}
        ok("--db", db, "demo", "--residents", "300", "--requests", "2500", "--days", "10", "--format", "json", env=env)
        env = _demo_staff(db, env)
        ok("--db", db, "community", "add", "东区", env=env)
        roster = tmp_path / "east.csv"
        _roster(roster, 120)
        ok("--db", db, "resident", "import", roster, env={**env, "COMMCARE_COMMUNITY": "东区"})
        for when in (["today"], ["day", "2026-11-27"]):
            summary = json.loads(
                ok("--db", db, "report", *when, "--all-communities", "--format", "json", env=env).stdout
            )
            assert [row["community"] for row in summary["communities"]] == ["default", "东区"]
            for row in summary["communities"]:
                one = json.loads(
                    ok(
                        "--db",
                        db,
                        "report",
                        *when,
                        "--format",
                        "json",
                        env={**env, "COMMCARE_COMMUNITY": row["community"]},
                    ).stdout
                )
                r, c = one["requests"], one["calls"]
                assert row == {
                    "community": row["community"],
                    "opened": r["opened"],
                    "resolved": r["resolved"],
                    "open": r["open"],
                    "overdue": r["overdue"],
                    "calls_due": c["due"],
                    "calls_made": c["made"],
                    "missed": len(c["missed"]),
                }
            assert summary["communities"][0]["calls_due"] > 0  # and 东区's, registered now, from today
            assert (summary["communities"][1]["calls_due"] > 0) == (when == ["today"])
    finally:
        if drop:
            drop()


def test_ids_reserved_for_a_copy_are_the_sequences_own(pg):
    """``bulk.reserve_ids`` draws the numbers in one statement: consecutive ones come back as a
    range, numbers with gaps (a sequence stepping by 3 here; another session drawing meanwhile
    in a city) as themselves, and either way the sequence has moved past them."""
    from sqlalchemy import create_engine

    from commcare.storage import bulk
    from commcare.storage.tables import residents

    engine = create_engine(pg)
    try:
        with engine.begin() as conn:
            first = bulk.reserve_ids(conn, residents, 5)
            assert first == list(range(first[0], first[0] + 5))
            conn.exec_driver_sql("ALTER SEQUENCE residents_id_seq INCREMENT BY 3")
            spaced = bulk.reserve_ids(conn, residents, 4)
            assert spaced == [first[-1] + 3 * k for k in range(1, 5)]
            assert conn.exec_driver_sql("SELECT nextval('residents_id_seq')").scalar_one() == spaced[-1] + 3
            assert bulk.reserve_ids(conn, residents, 0) == []
    finally:
        engine.dispose()


def test_a_copy_in_binary_stores_what_the_row_path_stores(pg, tmp_path):
    """Every column type a bulk load writes goes through COPY's binary format (none falls back
    to text), and the stored values read back as the row path's: times with their zone, dates,
    empty and NULL strings apart, booleans."""
    from commcare.storage import bulk
    from commcare.storage.tables import metadata

    for table in metadata.sorted_tables:
        if table.name in ("residents", "households", "resident_tags", "requests", "request_events", "calls"):
            assert bulk._binary_types(table, [c.name for c in table.columns]) is not None, table.name
    roster = tmp_path / "roster.csv"
    _roster(roster, 30)
    lite = str(tmp_path / "lite.db")
    ok("--db", lite, "init")
    env = {"COMMCARE_NOW": NOW}
    for db in (lite, pg):
        ok("--db", db, "resident", "import", roster, env=env)
    import json

    shown = [
        json.loads(ok("--db", db, "resident", "show", "#7", "--format", "json", env=env).stdout) for db in (lite, pg)
    ]
    assert shown[0] == shown[1] and shown[0]["born"] and shown[0]["created_at"]


def _id_look_ups(admin) -> int:
    """How many times ``commcare_id_numbers_taken`` was called in the database so far (counted
    once ``track_functions`` is on: ``_track_functions``)."""
    query = "SELECT calls FROM pg_stat_user_functions WHERE funcname = 'commcare_id_numbers_taken'"
    calls = None
    for _ in range(20):  # a session's counts reach the shared statistics as it ends
        with admin.connect() as conn:
            calls = conn.exec_driver_sql(query).scalar()
        if calls:
            break
        time.sleep(0.1)
    return calls or 0


def _track_functions(pg):
    from sqlalchemy import create_engine

    admin = create_engine(pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # counted by pg_stat_user_functions from the next session on
        conn.exec_driver_sql(f"ALTER DATABASE \"{admin.url.database}\" SET track_functions = 'all'")
    return admin


def test_an_import_leaves_its_id_numbers_to_the_unique_index(pg, tmp_path):
    """A clean roster's ID numbers are not looked up at all (the rows go in under a savepoint
    and ``uq_residents_id_number`` would refuse a registered one); a number registered before,
    the only row, is still refused and named, and nothing of the roster is written."""
    admin = _track_functions(pg)
    roster = tmp_path / "roster.csv"
    _roster(roster, 2500)
    ok("--db", pg, "resident", "import", roster)
    assert _id_look_ups(admin) == 0
    again = tmp_path / "again.csv"
    lines = roster.read_text(encoding="utf-8").splitlines()
    again.write_text(
        "\n".join([lines[0], lines[2000].replace(lines[2000].split(",")[0], "冒名")]) + "\n", encoding="utf-8"
    )
    from usercli import commcare

    refused = commcare("--db", pg, "--lang", "en", "resident", "import", again)
    assert refused.returncode == 1 and "row 2" in refused.stderr and "id_number" in refused.stderr
    assert _id_look_ups(admin) == 1  # the refused chunk, looked up to name its row
    admin.dispose()
    assert _stat(pg, "SELECT count(*) FROM residents WHERE name = '冒名'") == [(0,)]


def _roster_after(path, first, rows: int, registered: dict[int, int], serial: str = "900") -> None:
    """A roster of ``rows`` new residents (``_roster``'s, born a day apart from 1940 on, their
    ID numbers' serials ``serial``), where the rows of ``registered`` (index -> index of the
    rows of the roster ``first``) give an ID number ``first`` registered."""
    from stdnum.cn import ric

    _roster(path, rows)
    old = []
    if first:
        with open(first, encoding="utf-8") as fh:
            old = list(csv.reader(fh))[1:]
    with open(path, encoding="utf-8") as fh:
        lines = list(csv.reader(fh))
    for i, row in enumerate(lines[1:]):
        body = f"410105{dt.date(1940, 1, 1) + dt.timedelta(days=i):%Y%m%d}{serial}"
        row[1] = old[registered[i]][1] if i in registered else body + ric.calc_check_digit(body + "0")
        row[0] = "新" + row[0]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(lines)


def test_a_registered_number_after_clean_chunks_takes_back_the_whole_roster(pg, tmp_path):
    """An 8,000-row roster comes in chunks of 1,000, 2,000, 4,000 and 1,000: the first three go
    in before their numbers are looked up, and a number registered in another community,
    in the last chunk, still refuses the whole roster: its row named, nothing of the roster
    written, the counts and the check as before. With --skip-invalid the other rows go in,
    the registered one is named, and the counts are right."""
    from usercli import commcare

    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    _roster(first, 300)
    ok("--db", pg, "--community", "和平社区", "init")
    ok("--db", pg, "--community", "和平社区", "resident", "import", first)
    _roster_after(second, first, 8000, {7500: 42, 7501: 43})
    admin = _track_functions(pg)
    before = _stat(pg, "SELECT tag, residents FROM register_counts ORDER BY 1, 2")
    houses = _stat(pg, "SELECT count(*) FROM households")
    refused = commcare("--db", pg, "--lang", "en", "resident", "import", second)
    assert refused.returncode == 1, refused.stderr
    problems = [line for line in refused.stderr.splitlines() if "id_number" in line]
    assert len(problems) == 2 and "row 7502" in problems[0] and "row 7503" in problems[1]
    assert _id_look_ups(admin) == 1  # the last chunk's, once it broke the unique index
    assert _stat(pg, "SELECT count(*) FROM residents") == [(300,)]
    assert _stat(pg, "SELECT count(*) FROM households") == houses
    assert _stat(pg, "SELECT tag, residents FROM register_counts ORDER BY 1, 2") == before
    assert "✓" in ok("--db", pg, "db", "check").stdout
    skipped = commcare("--db", pg, "--lang", "en", "resident", "import", second, "--skip-invalid")
    assert skipped.returncode == 0, skipped.stderr
    assert "7998" in skipped.stdout and "row 7502" in skipped.stderr and "row 7503" in skipped.stderr
    assert _stat(pg, "SELECT count(*) FROM residents") == [(8298,)]
    counts = dict(_stat(pg, "SELECT tag, residents FROM register_counts"))
    assert counts["*"] == 8298
    assert "✓" in ok("--db", pg, "db", "check").stdout
    admin.dispose()


def test_counting_added_tags_reads_no_resident_but_by_key(pg, tmp_path):
    """The statement trigger that counts the tags an INSERT or COPY adds fetches each tag's
    resident by its key (migration 0009_tag_counts_by_key): the statement reads the residents
    table by no sequential scan, where the join hashed every community's residents for each
    statement (each chunk of an import's tags). The counts stay right, an archived resident's
    tag uncounted, and db check passes after an import."""
    import psycopg

    roster = tmp_path / "roster.csv"
    _roster(roster, 4000)
    ok("--db", pg, "resident", "import", roster)
    assert "✓" in ok("--db", pg, "db", "check").stdout
    with psycopg.connect(_plain(pg)) as conn:
        people = conn.execute("SELECT id, community_id FROM residents ORDER BY id LIMIT 50").fetchall()
        conn.execute("UPDATE residents SET archived_at = now() WHERE id = %s", (people[0][0],))
        counted = "SELECT residents FROM register_counts WHERE tag = 'frail'"
        before = (conn.execute(counted).fetchone() or (0,))[0]
        scans = "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'residents'"
        scanned = conn.execute(scans).fetchone()[0]
        values = ", ".join(f"({rid}, 'frail', {cid})" for rid, cid in people)
        conn.execute(f"INSERT INTO resident_tags (resident_id, tag, community_id) VALUES {values}")
        assert conn.execute(scans).fetchone()[0] == scanned
        assert conn.execute(counted).fetchone()[0] == before + 49
        conn.rollback()


def _indexes(url: str) -> dict[str, tuple[int, str]]:
    """The indexes of residents and households: name -> (oid, definition), with whether each is
    valid and ready."""
    rows = _stat(
        url,
        "SELECT c.relname, c.oid, pg_get_indexdef(c.oid), i.indisvalid AND i.indisready "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid IN ('residents'::regclass, 'households'::regclass)",
    )
    assert all(r[3] for r in rows)
    return {r[0]: (r[1], r[2]) for r in rows}


PLAIN = {"ix_residents_community_name", "ix_residents_household_id", "ix_residents_name_initials"}
PLAIN |= {"ix_residents_name_pinyin", "ix_residents_phone", "ix_households_liaison_id", "ix_households_community"}


def test_a_first_import_builds_the_plain_indexes_after_the_load(pg, tmp_path):
    """Into a register with no resident and no household in any community, a large import
    (10,000 rows or more) drops the plain indexes and builds them after the load: the same
    indexes, defined alike, new ones (new oids); the unique ones were kept. The next import,
    into a register that has residents, leaves every index as it is."""
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    _roster_after(first, None, 10_500, {}, "800")
    _roster_after(second, None, 10_500, {}, "900")
    before = _indexes(pg)
    ok("--db", pg, "resident", "import", first)
    built = _indexes(pg)
    assert {k: v[1] for k, v in built.items()} == {k: v[1] for k, v in before.items()}
    assert {k for k in built if built[k][0] != before[k][0]} == PLAIN
    assert "✓" in ok("--db", pg, "db", "check").stdout
    shown = json.loads(ok("--db", pg, "resident", "list", "--search", "xzgm", "-f", "json").stdout)
    assert {r["name"] for r in shown} == {"新张桂明", "新赵桂明"}
    ok("--db", pg, "--community", "和平社区", "init")
    ok("--db", pg, "--community", "和平社区", "resident", "import", second)
    assert _indexes(pg) == built
    assert _stat(pg, "SELECT count(*) FROM residents") == [(21_000,)]


def test_a_first_import_waits_for_no_session_and_fails_whole(pg, tmp_path):
    """Another session reading the residents holds a lock the drop would wait for: the first
    import does not wait, keeps the indexes, and imports. A first import refused for a bad
    row leaves the indexes as they were (the rollback brings them back)."""
    import psycopg
    from usercli import commcare

    roster = tmp_path / "roster.csv"
    _roster_after(roster, None, 10_500, {})
    lines = roster.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines + ["坏行,12345,,,,"]) + "\n", encoding="utf-8")
    before = _indexes(pg)
    refused = commcare("--db", pg, "--lang", "en", "resident", "import", bad)
    assert refused.returncode == 1 and "row 10502" in refused.stderr, refused.stderr
    assert _indexes(pg) == before
    with psycopg.connect(_plain(pg)) as reader:
        reader.execute("SELECT count(*) FROM residents").fetchone()  # ACCESS SHARE, held to its end
        started = time.monotonic()
        ok("--db", pg, "resident", "import", roster, env={"COMMCARE_BUSY_TIMEOUT": "300"})
        took = time.monotonic() - started
        reader.rollback()
    assert _indexes(pg) == before
    assert _stat(pg, "SELECT count(*) FROM residents") == [(10_500,)]
    # the import's own time: a LOCK that waited for the reader would wait out the server's
    # timeout (db_timeout) and fail the import, exit 3 (so it did, NOWAIT taken out)
    assert took < 150


def _bench(*names: str) -> list:
    """Modules of bench/ (plans.py, bench_city.py): the test uses the bench's own city."""
    import importlib
    import sys
    from pathlib import Path

    where = str(Path(__file__).parents[1] / "bench")
    sys.path.insert(0, where)
    try:
        return [importlib.import_module(name) for name in names]
    finally:
        sys.path.remove(where)


def _vacuumed(url: str) -> None:
    import psycopg

    with psycopg.connect(_plain(url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


@pytest.fixture
def city_and_alone(pg, monkeypatch):
    """(city, alone): the demo's community alone in a database, and the same beside 19 copies
    of it whose rows lie among its own (the bench's city, bench/bench_city.py), both vacuumed
    as autovacuum leaves a register written over time."""
    from sqlalchemy.engine import make_url

    (bench_city,) = _bench("bench_city")
    monkeypatch.setenv("COMMCARE_NOW", NOW)
    ok("--db", pg, "demo", "--residents", "400", "--requests", "2000", "--days", "10", "--format", "json")
    _vacuumed(pg)
    city, drop = _fresh_pg_database(make_url(pg).database)
    try:
        bench_city.grow(_plain(city), 2, 20)
        yield city, pg
    finally:
        drop()


def _plans(url: str, community: str | None, what: list[str]) -> tuple[list, list[str]]:
    (plans,) = _bench("plans")
    seen = plans.capture(url, community, what)
    return seen, plans.explain(url, seen)


@pytest.mark.slow
def test_one_community_reads_in_a_city_about_what_it_reads_alone(city_and_alone):
    """One community's ``report today`` and ``call due`` in a city of 20 communities whose rows
    lie among each other's touch about as many pages as the same community alone (EXPLAIN
    (ANALYZE, BUFFERS) of every statement they send): the residents, their tags and the day's
    calls read from the community's entries of covering indexes (index-only scans), the
    households and staff read once from theirs, never fetched each by its key (0010,
    ``calls.households_and_staff``), the round's "not reached" from the community's calls of
    the day, hashed. Before, the city read 5 to 9 times the pages."""
    (plans,) = _bench("plans")
    city, alone = city_and_alone
    what = ["report today", "call due"]
    _, in_city = _plans(city, "社区10", what)
    _, by_itself = _plans(alone, None, what)
    there, here = plans.totals(by_itself), plans.totals(in_city)
    for label in what:
        assert here[label][0] == there[label][0]  # the same statements
        assert here[label][1] <= 1.5 * there[label][1], (label, here[label], there[label])
    text = "\n".join(in_city)
    assert "Index Only Scan using ix_residents_community_name on residents" in text
    assert "Index Only Scan using ix_calls_community_at on calls" in text
    # the statements that join the special groups to their households and liaisons (the day
    # report's and the round's): each household and staff row read once
    joined = [part for part in text.split("\n-- ") if "JOIN community_households" in part]
    assert len(joined) == 2
    # the round's "not reached": the community's calls of the day, hashed once
    assert "NOT (hashed SubPlan" in joined[1]
    for part in joined:
        for table in ("households", "staff"):
            scans = [line for line in part.splitlines() if f" on {table} " in line and "Scan" in line]
            assert scans and all("loops=1)" in line for line in scans), scans


def test_the_summary_of_every_community_sends_as_many_statements_for_a_city_as_for_one(city_and_alone):
    """``report today --all-communities`` counts every community's requests in one statement
    grouped by community, as it counts their special groups: the statements it sends do not
    grow with the number of communities (one per community before: 200 round trips for 200)."""
    city, alone = city_and_alone
    in_city, _ = _plans(city, None, ["report today --all-communities"])
    by_itself, _ = _plans(alone, None, ["report today --all-communities"])
    assert len(in_city) == len(by_itself) == 7
