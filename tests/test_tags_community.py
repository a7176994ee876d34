"""Tags carry their resident's community (migration 0007_tags_community, issue 20): every write
path files a tag under its resident's community (the row path, a roster's import — COPY on
PostgreSQL —, a merge, the demo), the migration fills the tags an older register holds, and
``db check`` tells a tag filed under another community. On SQLite, and on PostgreSQL when
COMMCARE_TEST_PG_URL is set (``db_url``)."""

from __future__ import annotations

import csv
import json

import pytest

EAST = "东区"
# every tag whose community is not its resident's, and every resident's community as its tags say
MISFILED = (
    "SELECT count(*) FROM resident_tags t JOIN residents r ON r.id = t.resident_id "
    "WHERE t.community_id <> r.community_id"
)
BY_COMMUNITY = (
    "SELECT c.name, count(*) FROM resident_tags t JOIN communities c ON c.id = t.community_id GROUP BY c.name"
)


def _rows(url: str, sql: str) -> list[tuple]:
    from sqlalchemy import text

    from commcare.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def _execute(url: str, sql: str) -> None:
    from sqlalchemy import text

    from commcare.db import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def _roster(path, rows: int) -> None:
    from stdnum.cn import ric

    with open(path, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["姓名", "身份证号", "联系电话", "小区", "住址", "人群类别"])
        for i in range(rows):
            body = f"41010519{40 + i % 50:02d}0{1 + i % 9}1{i % 10}{i % 1000:03d}"
            out.writerow(
                [
                    "赵钱孙李"[i % 4] + "秀兰建国"[i % 4] + str(i),
                    body + ric.calc_check_digit(body + "0"),
                    f"137{i:08d}",
                    "东苑",
                    f"{i // 3 + 1}号",
                    ("老人", "独居;残疾人", "", "儿童")[i % 4],
                ]
            )


def _two_communities(cli, tmp_path) -> None:
    """The default community and 东区, each with tagged residents from every write path."""
    assert cli("staff", "add", "王秀英").exit_code == 0
    assert cli("community", "add", EAST).exit_code == 0
    for community in ("default", EAST):
        where = ["--community", community]
        if community == EAST:
            assert cli(*where, "staff", "add", "王秀英").exit_code == 0
        for name, phone, tag in (("张桂兰", "13912345678", "独居"), ("李建国", "13912345679", "老人")):
            phone = phone if community == "default" else "135" + phone[3:]
            added = cli(*where, "resident", "add", name, "--phone", phone, "--tag", tag, "--tag", "慢病")
            assert added.exit_code == 0, added.stderr
        edited = cli(*where, "resident", "edit", "李建国", "--tag", "残疾人")  # replaces his two tags
        assert edited.exit_code == 0, edited.stderr
    roster = tmp_path / "east.csv"
    _roster(roster, 40)
    imported = cli("--community", EAST, "resident", "import", roster)
    assert imported.exit_code == 0, imported.stderr
    # two records of one person in 东区, merged: the second's tags move to the first
    for phone, tag in (("13600000001", "孕妇"), ("13600000002", "独居")):
        added = cli("--community", EAST, "resident", "add", "周慧", "--phone", phone, "--tag", tag)
        assert added.exit_code == 0, added.stderr
    ids = [
        row["id"]
        for row in json.loads(cli("--community", EAST, "resident", "list", "--search", "周慧", "-f", "json").stdout)
    ]
    merged = cli("--community", EAST, "resident", "merge", f"#{ids[0]}", f"#{ids[1]}")
    assert merged.exit_code == 0, merged.stderr


def test_every_write_path_files_a_tag_under_its_residents_community(db_url, cli, tmp_path):
    _two_communities(cli, tmp_path)
    assert _rows(db_url, MISFILED) == [(0,)]
    counted = dict(_rows(db_url, BY_COMMUNITY))
    assert counted["default"] == 3 and counted[EAST] > 30, counted
    for community in ("default", EAST):
        check = cli("--community", community, "db", "check")
        assert check.exit_code == 0, check.stdout + check.stderr


def test_the_demo_files_its_tags_under_its_community(db_url, cli):
    made = cli("demo", "--residents", "300", "--requests", "600", "--format", "json")
    assert made.exit_code == 0, made.stderr
    assert _rows(db_url, MISFILED) == [(0,)]
    assert _rows(db_url, "SELECT count(*) FROM resident_tags")[0][0] > 0
    assert cli("db", "check").exit_code == 0


def test_the_migration_fills_the_tags_an_older_register_holds(db_url, cli, tmp_path):
    """A register at 0006_access (no community on its tags) upgraded: every tag gets its
    resident's community, the index leads with it, and the counts still check."""
    from sqlalchemy import inspect

    from commcare import db as dbm

    _two_communities(cli, tmp_path)
    before = sorted(_rows(db_url, "SELECT resident_id, tag FROM resident_tags"))
    counts = sorted(_rows(db_url, "SELECT community_id, tag, residents FROM register_counts"))
    engine = dbm.make_engine(db_url)
    try:
        dbm.downgrade(engine, "0006_access")
        with engine.connect() as conn:
            assert "community_id" not in {c["name"] for c in inspect(conn).get_columns("resident_tags")}
        dbm.upgrade(engine, "head")
        with engine.connect() as conn:
            indexes = {i["name"]: i["column_names"] for i in inspect(conn).get_indexes("resident_tags")}
    finally:
        engine.dispose()
    assert indexes == {"ix_resident_tags_community_tag": ["community_id", "tag", "resident_id"]}
    assert sorted(_rows(db_url, "SELECT resident_id, tag FROM resident_tags")) == before
    assert _rows(db_url, MISFILED) == [(0,)]
    assert dict(_rows(db_url, BY_COMMUNITY))[EAST] > 30
    assert sorted(_rows(db_url, "SELECT community_id, tag, residents FROM register_counts")) == counts
    check = cli("db", "check")
    assert check.exit_code == 0, check.stdout + check.stderr


@pytest.mark.parametrize("reader", [("call", "due"), ("report", "today")])
def test_a_tag_filed_under_another_community_is_told_not_skipped(db_url, cli, tmp_path, reader):
    """A tag moved to another community by hand: the round and the report of its resident's
    community refuse (exit 3: they would have missed the resident), and ``db check`` names it."""
    _two_communities(cli, tmp_path)
    _execute(
        db_url,
        "UPDATE resident_tags SET community_id = (SELECT id FROM communities WHERE name = '东区') "
        "WHERE resident_id = (SELECT id FROM residents WHERE name = '张桂兰' AND community_id = "
        "(SELECT id FROM communities WHERE name = 'default')) AND tag = 'lives-alone'",
    )
    assert _rows(db_url, MISFILED) == [(1,)]
    read = cli("--community", "default", *reader, "-f", "json")
    assert read.exit_code == 3, (read.exit_code, read.stdout, read.stderr)
    assert "db check" in read.stderr
    check = cli("db", "check", "-f", "json")
    assert check.exit_code == 3
    rows = {row["check"]: row for row in json.loads(check.stdout)}
    assert not rows["counts"]["ok"] and "resident_tags.community_id" in rows["counts"]["detail"]
