"""The evening report: every figure of the contract on a hand-built day, in every format."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time

import pytest


@pytest.fixture
def day(db_url, cli, monkeypatch):
    """2026-05-08 in Shanghai, built through the CLI as the office would log it."""

    def at(when):
        monkeypatch.setenv("COMMCARE_NOW", when)

    at("2026-05-07T09:00:00+08:00")
    for name in ("王秀英", "李强", "赵敏"):
        assert cli("staff", "add", name).exit_code == 0
    people = [
        ("张桂兰", "独居", "王秀英", "1-101"),
        ("刘建国", "老人", "王秀英", "1-102"),
        ("赵小宝", "儿童", "李强", "2-201"),
        ("陈明", None, "李强", "2-202"),
    ]
    for i, (name, tag, liaison, address) in enumerate(people):
        args = [
            "resident",
            "add",
            name,
            "--phone",
            f"1390000000{i}",
            "--compound",
            "幸福小区",
            "--address",
            address,
            "--liaison",
            liaison,
        ] + (["--tag", tag] if tag else [])
        assert cli(*args).exit_code == 0
    # the day before: one request left open and overdue by the end of the 8th, one resolved on the 8th
    assert cli("add-request", "张桂兰", "-c", "trash", "--due", "2026-05-08 12:00").exit_code == 0  # 1
    assert cli("add-request", "刘建国", "-c", "groceries").exit_code == 0  # 2
    at("2026-05-08T10:00:00+08:00")
    assert cli("request", "resolve", "2").exit_code == 0
    assert cli("add-request", "赵小宝", "-c", "medicine", "--urgency", "urgent").exit_code == 0  # 3, due 14:00
    assert cli("add-request", "陈明", "-c", "parcel").exit_code == 0  # 4
    assert cli("request", "resolve", "4").exit_code == 0
    assert cli("call", "log", "张桂兰", "--outcome", "ok").exit_code == 0
    assert cli("call", "log", "刘建国", "--outcome", "no-answer").exit_code == 0
    assert cli("call", "log", "赵小宝", "--outcome", "needs-help").exit_code == 0
    for staff in ("王秀英", "王秀英", "李强"):
        assert cli("health", "log", staff, "--temp", "36.5").exit_code == 0
    assert cli("donation", "add", "永辉超市", "--item", "矿泉水:50:箱", "--item", "盒饭:20:份").exit_code == 0
    assert cli("donation", "add", "红十字会", "--item", "矿泉水:10:箱").exit_code == 0
    at("2026-05-09T08:00:00+08:00")  # the report is read the next morning
    return cli


def report(cli, *args):
    result = cli("report", "day", "2026-05-08", *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_every_figure_of_the_contract(day):
    data = json.loads(report(day, "-f", "json"))
    assert data["date"] == "2026-05-08"
    r = data["requests"]
    assert (r["opened"], r["resolved"], r["open"], r["overdue"]) == (2, 2, 2, 2)
    assert {c["category"]: (c["opened"], c["resolved"], c["open"]) for c in r["by_category"]} == {
        "groceries": (0, 1, 0),
        "medicine": (1, 0, 1),
        "parcel": (1, 1, 0),
        "trash": (0, 0, 1),
    }
    assert [(o["id"], o["resident"], o["category"]) for o in r["overdue_items"]] == [
        (3, "赵小宝", "medicine"),
        (1, "张桂兰", "trash"),
    ]  # urgent first
    assert r["overdue_items"][1]["due"] == "2026-05-08T12:00:00+08:00"
    c = data["calls"]
    assert (c["due"], c["made"]) == (3, 2)
    assert c["missed"] == [{"id": 2, "resident": "刘建国", "liaison": "王秀英"}]
    assert {
        x["staff"]: (x["residents"], x["calls_made"], x["calls_missing"], x["open_requests"]) for x in data["liaisons"]
    } == {"王秀英": (2, 1, 1, 1), "李强": (1, 1, 0, 1)}
    assert data["staff_health"] == {**data["staff_health"], "due": 3, "missing": ["李强", "赵敏"]}
    assert data["donations"]["received"] == 2
    assert {(i["name"], i["unit"]): i["quantity"] for i in data["donations"]["items"]} == {
        ("矿泉水", "箱"): 60,
        ("盒饭", "份"): 20,
    }


def test_open_and_overdue_are_as_of_the_end_of_a_past_day(day, monkeypatch):
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-09T09:00:00+08:00")
    assert day("request", "resolve", "1", "3").exit_code == 0  # resolved the next day
    data = json.loads(report(day, "-f", "json"))
    assert (data["requests"]["open"], data["requests"]["overdue"]) == (2, 2)
    today = json.loads(day("report", "today", "-f", "json").stdout)
    assert (today["requests"]["open"], today["requests"]["resolved"]) == (0, 2)


def test_the_report_counts_requests_and_finds_the_special_groups_from_indexes_alone(day, db_url):
    """On SQLite the report's request counts, its overdue list and its special-group residents
    are answered by covering indexes (revision 0002): no row of requests or resident_tags is
    read, which is what keeps report today near the floor at 1,000,000 requests (the integrity
    check finds the special groups from the same index)."""
    if db_url.startswith("postgresql"):
        pytest.skip("SQLite's query plans; PostgreSQL chooses its own")
    from sqlalchemy import event

    from commcare import reports
    from commcare.commands.common import state

    st = state()
    statements = []
    with st.database().connect() as conn:
        event.listen(
            conn, "before_cursor_execute", lambda c, cur, sql, params, ctx, many: statements.append((sql, params))
        )
        reports.day_report(conn, st.ctx, st.ctx.today())
        raw = conn.connection.dbapi_connection
        plans = {
            sql: " | ".join(r[3] for r in raw.execute("EXPLAIN QUERY PLAN " + sql, params))
            for sql, params in statements
            if "FROM requests" in sql or "FROM resident_tags" in sql
        }
    assert len(plans) == 7  # five for the figures, two that check the register reads whole
    for sql, plan in plans.items():
        for line in plan.split(" | "):
            if line.startswith(("SEARCH requests", "SEARCH resident_tags")):
                assert "COVERING INDEX" in line, (sql, plan)


def test_the_overdue_list_reads_each_resident_by_key_not_through_a_join(day, db_url):
    """The overdue list names each request's resident with a look-up by key per request found,
    never a join: PostgreSQL estimates "past due" from the whole table's due times (most of
    them past) and, expecting every open request of the community to be overdue, hashed the
    whole city's residents for the join (bench/plans/, docs/scale.md)."""
    from sqlalchemy import event

    from commcare import reports
    from commcare.commands.common import state

    st = state()
    statements = []
    with st.database().connect() as conn:
        event.listen(
            conn, "before_cursor_execute", lambda c, cur, sql, params, ctx, many: statements.append((sql, params))
        )
        data = reports.day_report(conn, st.ctx, st.ctx.today())
        overdue = [(sql, params) for sql, params in statements if "requests.due_at <" in sql and "residents" in sql]
        assert len(overdue) == 1
        sql, params = overdue[0]
        raw = conn.connection.dbapi_connection
        if db_url.startswith("postgresql"):
            cur = raw.cursor()
            cur.execute("EXPLAIN (FORMAT JSON) " + sql, params)
            plan = json.dumps(cur.fetchone()[0])
            assert "Join" not in plan and "SubPlan" in plan, plan
        else:
            plan = " | ".join(r[3] for r in raw.execute("EXPLAIN QUERY PLAN " + sql, params))
            assert "CORRELATED SCALAR SUBQUERY" in plan and "SCAN residents" not in plan, plan
    assert all(i["resident"] for i in data["requests"]["overdue_items"])


def test_the_html_chart_counts_each_open_request_once(day):
    """A request opened today and still open is one thing still to do, not two."""
    html = day("--lang", "en", "report", "day", "2026-05-08", "-f", "html").stdout
    chart = html.split("Open requests per category</h2>", 1)[1].split("</svg>", 1)[0]
    values = re.findall(r"<text x='0' y='\d+'>([^<]+)</text><text x='\d+' y='\d+'>([^<]+)</text>", chart)
    assert sorted(values) == [("medicine", "1"), ("trash", "1")]


def test_the_same_figures_in_markdown_csv_and_html(day):
    md = report(day, "-f", "markdown")
    assert "| requests overdue | 2 |" in md and "刘建国" in md and "| 矿泉水 | 60 | 箱 |" in md
    text = report(day, "-f", "csv")
    assert text.startswith("\ufeff")  # a spreadsheet reads UTF-8 behind its byte-order mark
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    missed = rows.index(["Residents not reached"])
    assert ["requests overdue", "2"] in rows and ["reached", "2"] in rows
    assert rows[missed + 1 : missed + 3] == [["resident", "liaison"], ["刘建国", "王秀英"]]
    html = report(day, "-f", "html")
    assert "<svg" in html and "刘建国" in html and "requests overdue</td><td>2<" in html
    assert not re.search(r"(https?:|src=|@import|url\()", html.replace("http://www.w3.org/2000/svg", ""))


def test_labels_in_both_languages_and_no_escape_codes(day):
    zh = day("--lang", "zh", "report", "day", "2026-05-08").stdout
    en = report(day)
    assert "逾期求助" in zh and "代购药品" in zh and "requests overdue" in en and "medicine" in en
    assert "\x1b[" not in zh and "\x1b[" not in en


def test_a_community_never_named_is_headed_as_ours_not_default(day):
    for lang, heading in (("zh", "# 本社区 工作日报 2026-05-08"), ("en", "# Daily report 2026-05-08 — our community")):
        text = day("--lang", lang, "report", "day", "2026-05-08", "--format", "markdown").stdout
        assert text.splitlines()[0] == heading
    assert day("community", "add", "阳光社区").exit_code == 0  # communities are made on purpose
    named = day("--community", "阳光社区", "--lang", "zh", "report", "day", "2026-05-08", "--format", "markdown").stdout
    assert named.splitlines()[0] == "# 阳光社区 工作日报 2026-05-08"


def test_fail_on_exits_1_after_writing_the_report(day, tmp_path):
    out = tmp_path / "r.md"
    result = day("report", "day", "2026-05-08", "-f", "markdown", "-o", out, "--fail-on", "missed")
    assert result.exit_code == 1 and "missed 1" in result.stderr
    assert "刘建国" in out.read_text(encoding="utf-8")
    assert oct(out.stat().st_mode & 0o777) == "0o600"


def test_week_and_range(day):
    week = json.loads(day("report", "week", "--date", "2026-05-08", "-f", "json").stdout)
    assert [d["date"] for d in week["days"]][-1] == "2026-05-08" and len(week["days"]) == 7
    assert week["totals"]["opened"] == 4
    assert day("report", "range", "--from", "2026-05-08", "--to", "2026-05-01").exit_code == 2


def test_all_communities_has_a_row_each(day, monkeypatch):
    assert day("community", "add", "阳光社区").exit_code == 0  # communities are made on purpose
    assert day("--community", "阳光社区", "staff", "add", "孙丽").exit_code == 0
    data = json.loads(day("report", "day", "2026-05-08", "--all-communities", "-f", "json").stdout)
    assert [c["community"] for c in data["communities"]] == ["default", "阳光社区"]
    assert data["total"]["opened"] == 2


def test_schedule_install_twice_leaves_one_entry(tmp_path, cli, monkeypatch, request):
    tab = tmp_path / "crontab"
    monkeypatch.setenv("COMMCARE_CRONTAB", str(tab))
    old = os.environ.get("TZ")
    request.addfinalizer(lambda: _set_tz(old))
    _set_tz("Asia/Shanghai")  # the machine in COMMCARE_TZ: the crontab says --at
    for _ in range(2):
        assert cli("schedule", "install", "--at", "20:30", "--dir", tmp_path / "reports").exit_code == 0
    entries = json.loads(cli("schedule", "show", "-f", "json").stdout)
    assert len(entries) == 1 and entries[0]["schedule"] == "30 20 * * *"
    assert "COMMCARE_DB=" in entries[0]["command"] and "report today" in entries[0]["command"]
    assert cli("schedule", "install", "--at", "25:00").exit_code == 2
    assert cli("schedule", "remove").exit_code == 0
    assert json.loads(cli("schedule", "show", "-f", "json").stdout) == []


def _set_tz(zone: str | None) -> None:
    if zone is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = zone
    time.tzset()


def test_crons_environment_produces_the_same_file(day, tmp_path):
    """No TTY, TZ unset, HOME only (plus what the cron line sets) -> the same report."""
    db = os.environ["COMMCARE_DB"]
    env = {
        "HOME": str(tmp_path),
        "COMMCARE_DB": db,
        "COMMCARE_CONFIG": str(tmp_path / "none.toml"),
        "COMMCARE_NOW": "2026-05-09T08:00:00+08:00",
        "COMMCARE_LANG": "en",
        "PATH": "/usr/bin:/bin",
    }
    out = tmp_path / "cron.md"
    subprocess.run(
        [sys.executable, "-m", "commcare", "report", "day", "2026-05-08", "-f", "markdown", "-o", str(out)],
        env=env,
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    assert out.read_text(encoding="utf-8") == report(day, "-f", "markdown")


def test_residents_without_a_liaison_are_missed_last_on_every_backend(day, monkeypatch):
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-07T09:00:00+08:00")
    assert day("resident", "add", "孙婆婆", "--tag", "老人").exit_code == 0  # no household, no liaison
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-09T08:00:00+08:00")
    missed = json.loads(report(day, "-f", "json"))["calls"]["missed"]
    assert [(m["resident"], m["liaison"]) for m in missed] == [("刘建国", "王秀英"), ("孙婆婆", None)]


def test_the_live_report_is_of_one_moment_however_long_it_takes(day, settings, database):
    """Today's report reads the clock once: every figure is as of the moment it started, even
    when reading the register takes seconds, and the open requests are those open now."""
    import datetime as dt

    from commcare import reports
    from commcare.context import Ctx

    class SlowClock:  # five seconds pass each time it is read, as on a busy machine
        moment = dt.datetime(2026, 5, 8, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))

        def __call__(self):
            self.moment += dt.timedelta(seconds=5)
            return self.moment

    clock = SlowClock()
    with database.connect() as conn:
        data = reports.day_report(conn, Ctx(settings, clock=clock), dt.date(2026, 5, 8))
    assert {x["staff"]: x["open_requests"] for x in data["liaisons"]} == {"王秀英": 1, "李强": 1}
    assert data["requests"]["open"] == 2
    assert data["as_of"] == "2026-05-08T20:00:05+08:00"  # the first reading of the clock
