"""Check-in calls: who is due, escalation, days, the request opened with a call, the list."""

from __future__ import annotations

import json

import pytest

NOW = "2026-05-08T09:00:00+08:00"
PEOPLE = [
    ("张桂兰", "13912345678", "独居", "王秀英"),
    ("刘建国", "13800002222", "老人", "王秀英"),
    ("赵小宝", "13700003333", "儿童", "李强"),
    ("陈明", "13600004444", None, "李强"),
]


@pytest.fixture
def round_(db_url, cli, monkeypatch):
    """Two liaisons, three special-group residents and one who is in no special group."""
    monkeypatch.setenv("COMMCARE_NOW", NOW)
    for staff in ("王秀英", "李强"):
        assert cli("staff", "add", staff).exit_code == 0
    for i, (name, phone, tag, liaison) in enumerate(PEOPLE):
        args = [
            "resident",
            "add",
            name,
            "--phone",
            phone,
            "--compound",
            "幸福小区",
            "--address",
            f"{i}-101",
            "--liaison",
            liaison,
            "--emergency-contact",
            f"家属{i} 1590000000{i}",
        ]
        assert cli(*args, *(["--tag", tag] if tag else [])).exit_code == 0
    return cli


def due(cli, *args):
    result = cli("call", "due", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return {r["resident"]: r for r in json.loads(result.stdout)}


def calls_of(cli, *args):
    return json.loads(cli("call", "list", *args, "-f", "json").stdout)


def test_due_list_after_a_mix_of_outcomes(round_):
    assert set(due(round_)) == {"张桂兰", "刘建国", "赵小宝"}  # 陈明 is in no special group
    for name, outcome in (("张桂兰", "ok"), ("刘建国", "no-answer"), ("赵小宝", "unreachable")):
        assert round_("call", "log", name, "--outcome", outcome).exit_code == 0
    rows = due(round_)
    assert set(rows) == {"刘建国", "赵小宝"}
    assert rows["刘建国"]["phone"] == "13800002222"  # in full: the liaison calls it
    assert (rows["刘建国"]["calls_today"], rows["刘建国"]["escalate"]) == (1, False)
    round_("call", "log", "赵小宝", "--outcome", "needs-help")
    assert set(due(round_)) == {"刘建国"}
    assert set(due(round_, "--liaison", "李强")) == set()
    assert set(due(round_, "--liaison", "王秀英")) == {"刘建国"}


def test_two_unanswered_calls_escalate_with_the_emergency_contact(round_):
    round_("call", "log", "刘建国", "--outcome", "no-answer")
    first = due(round_)["刘建国"]
    assert first["escalate"] is False and first["emergency_contact"] is None
    round_("call", "log", "13800002222", "--outcome", "unreachable")  # named by phone, as a hotline call
    row = due(round_)["刘建国"]
    assert row["escalate"] is True and row["calls_today"] == 2
    assert row["emergency_contact"] == "家属1 15900000001"
    table = round_("call", "due").stdout
    line = next(x for x in table.splitlines() if "刘建国" in x)
    assert "escalate" in line and "家属1 15900000001" in line and "13800002222" in line
    assert "1 to escalate" in table
    report = json.loads(round_("report", "today", "-f", "json").stdout)
    assert "刘建国" in [m["resident"] for m in report["calls"]["missed"]]


def test_the_table_groups_residents_by_liaison(round_):
    # read by someone who is no liaison (a read needs no staff member): no list of their own first
    lines = round_("--as", "来访者", "call", "due").stdout.splitlines()
    headings = [x for x in lines if x.startswith("liaison ")]
    assert headings == ["liaison 李强 (1 due)", "liaison 王秀英 (2 due)"]
    block = lines[lines.index("liaison 王秀英 (2 due)") :]
    assert [n for n in ("张桂兰", "刘建国") if any(n in x for x in block)] == ["张桂兰", "刘建国"]
    zh = round_("--as", "来访者", "--lang", "zh", "call", "due").stdout
    assert "联络员 王秀英（2 位待联系）" in zh and "共 3 位今日尚未联系上" in zh


def test_calls_at_2359_and_0001_shanghai_land_on_different_days(round_, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")  # the process runs in UTC; "today" is Shanghai's
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-09T00:30:00+08:00")
    round_("call", "log", "张桂兰", "--outcome", "ok", "--at", "2026-05-08 23:59")
    assert "张桂兰" in due(round_)  # the 23:59 call was yesterday's
    round_("call", "log", "张桂兰", "--outcome", "ok", "--at", "2026-05-09 00:01")
    assert "张桂兰" not in due(round_)
    assert [c["at"] for c in calls_of(round_, "--date", "2026-05-08")] == ["2026-05-08T23:59:00+08:00"]
    assert [c["at"] for c in calls_of(round_)] == ["2026-05-09T00:01:00+08:00"]
    day8 = json.loads(round_("report", "day", "2026-05-08", "-f", "json").stdout)
    assert day8["calls"]["made"] == 1


def test_needs_help_opens_exactly_one_request_and_nothing_when_it_fails(round_):
    ok = round_(
        "--as",
        "王秀英",
        "call",
        "log",
        "张桂兰",
        "--outcome",
        "needs-help",
        "--request",
        "medicine",
        "--note",
        "降压药吃完了",
        "-f",
        "json",
    )
    assert ok.exit_code == 0, ok.stderr
    logged = json.loads(ok.stdout)
    requests = json.loads(round_("request", "list", "-f", "json").stdout)
    assert [(r["id"], r["resident"], r["category"], r["note"]) for r in requests] == [
        (logged["request"], "张桂兰", "medicine", "降压药吃完了")
    ]
    assert calls_of(round_)[0]["request"] == logged["request"]
    bad = round_("call", "log", "刘建国", "--outcome", "needs-help", "--request", "spaceship")
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1 and "category" in bad.stderr
    assert len(json.loads(round_("request", "list", "-f", "json").stdout)) == 1
    assert [c["resident"] for c in calls_of(round_)] == ["张桂兰"]  # no call recorded either
    assert due(round_)["刘建国"]["calls_today"] == 0


def test_a_request_needs_a_needs_help_call(round_):
    result = round_("call", "log", "张桂兰", "--outcome", "ok", "--request", "medicine")
    assert result.exit_code == 2 and result.stderr.startswith("commcare: request:")
    assert calls_of(round_) == [] and json.loads(round_("request", "list", "-f", "json").stdout) == []


@pytest.mark.parametrize(
    "args", [["--outcome", "maybe"], ["--outcome", "ok", "--at", "+1d"], ["--outcome", "ok", "--at", "yesterday-ish"]]
)
def test_bad_call_values_exit_2_and_record_nothing(round_, args):
    result = round_("call", "log", "张桂兰", *args)
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert calls_of(round_) == []


def test_calls_are_recorded_against_the_caller_and_audited(round_):
    round_("--as", "王秀英", "call", "log", "张桂兰", "--outcome", "ok", "--note", "精神很好")
    assert round_("--as", "志愿者小周", "call", "log", "刘建国", "--outcome", "ok").exit_code == 1  # not staff
    assert round_("staff", "add", "志愿者小周", "--role", "志愿者").exit_code == 0
    assert round_("--as", "志愿者小周", "call", "log", "刘建国", "--outcome", "ok").exit_code == 0
    assert [(c["resident"], c["by"], c["note"]) for c in calls_of(round_)] == [
        ("张桂兰", "王秀英", "精神很好"),
        ("刘建国", "志愿者小周", None),
    ]
    audit = json.loads(round_("audit", "-f", "json").stdout)
    logged = [a for a in audit if a["action"] == "call.log"]
    assert len(logged) == 2 and "精神很好" not in json.dumps(audit, ensure_ascii=False)


def test_staff_link_is_set_when_the_caller_is_staff(round_, read):
    from sqlalchemy import select

    from commcare.storage.tables import calls, staff

    round_("--as", "王秀英", "call", "log", "张桂兰", "--outcome", "ok")
    assert round_("--as", "志愿者小周", "call", "log", "刘建国", "--outcome", "ok").exit_code == 1  # not staff
    round_("--as", "李强", "call", "log", "刘建国", "--outcome", "ok")
    rows = read(
        lambda s, ctx: s.execute(
            select(calls.c.actor, staff.c.name).outerjoin(staff, calls.c.staff_id == staff.c.id).order_by(calls.c.id)
        ).all()
    )
    assert [tuple(r) for r in rows] == [("王秀英", "王秀英"), ("李强", "李强")]


def test_archived_residents_are_never_due_and_not_called(round_):
    assert round_("resident", "archive", "赵小宝", "--reason", "搬走了").exit_code == 0
    assert "赵小宝" not in due(round_)
    result = round_("call", "log", "赵小宝", "--outcome", "ok")
    assert result.exit_code == 1 and "archived" in result.stderr


def test_due_follows_the_tags_daily_call_setting_and_config_extensions(round_, tmp_path, monkeypatch):
    config = tmp_path / "extra.toml"
    config.write_text(
        '[tags.dialysis]\nzh = "透析"\nen = "dialysis"\naliases = ["透析"]\ndaily_call = true\n'
        '[tags.veteran]\nzh = "退役军人"\nen = "veteran"\naliases = ["退役军人"]\ndaily_call = false\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("COMMCARE_CONFIG", str(config))
    round_("resident", "add", "孙透析", "--phone", "13500005555", "--tag", "透析")
    round_("resident", "add", "周老兵", "--phone", "13500006666", "--tag", "退役军人")
    assert {"孙透析", "张桂兰"} <= set(due(round_)) and "周老兵" not in due(round_)


def test_residents_not_reached_for_n_days_running_are_flagged(round_, monkeypatch, tmp_path):
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-09T09:00:00+08:00")
    round_("call", "log", "张桂兰", "--outcome", "ok")
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-10T09:00:00+08:00")
    round_("call", "log", "张桂兰", "--outcome", "no-answer")  # unanswered calls do not reset the count
    assert due(round_)["张桂兰"]["unreached_flag"] is False
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-11T09:00:00+08:00")
    row = due(round_)["张桂兰"]
    assert (row["days_unreached"], row["unreached_flag"]) == (2, True)
    assert "not reached for 2 days" in round_("call", "due").stdout
    (tmp_path / "commcare.toml").write_text("unreached_days = 3\n", encoding="utf-8")
    assert due(round_)["张桂兰"]["unreached_flag"] is False


def test_call_due_reads_the_same_number_of_statements_for_many_residents(round_, read):
    """The list costs a fixed number of statements, not one per resident: 30 more residents
    due (some called once) are listed by as many statements as 3."""
    from sqlalchemy import event

    from commcare import calls

    def statements_for_due_list():
        statements = []

        def listed(conn, ctx):
            ctx.community_id(conn)
            seen = lambda *args: statements.append(args[2])
            event.listen(conn, "before_cursor_execute", seen)
            try:
                return calls.due_calls(conn, ctx)
            finally:
                event.remove(conn, "before_cursor_execute", seen)

        return read(listed), statements

    for name in ("刘建国", "赵小宝"):
        round_("call", "log", name, "--outcome", "no-answer")
    few, few_statements = statements_for_due_list()
    for n in range(30):
        round_("resident", "add", f"居民{n}", "--tag", "独居", "--compound", "幸福小区", "--address", f"9-{n}")
        if n % 3 == 0:
            round_("call", "log", f"居民{n}", "--outcome", "no-answer")
    many, many_statements = statements_for_due_list()
    assert len(few) == 3 and len(many) == 33
    assert len(many_statements) == len(few_statements)


def test_table_widths_agree_with_the_terminal_for_names_and_addresses():
    from hypothesis import given
    from hypothesis import strategies as st
    from rich.cells import cell_len

    from commcare.render import round as round_render

    alphabet = st.one_of(
        st.characters(min_codepoint=32, max_codepoint=126),
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
        st.characters(min_codepoint=0xFF01, max_codepoint=0xFF60),
        st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3),
        st.sampled_from("𠮷·—（）、，"),
    )

    @given(st.text(alphabet))
    def check(text):
        assert round_render.display_width(text) == cell_len(text)

    check()
