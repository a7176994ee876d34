"""What a Chinese community worker reads: words, not slugs, field names in errors, exit codes
(small defects found by trying the product as a new worker would)."""

from __future__ import annotations

import json


def zh(cli, *args):
    return cli("--lang", "zh", *args)


def test_db_check_names_every_row_and_detail_in_chinese(cli):
    assert cli("init").exit_code == 0
    table = zh(cli, "db", "check")
    assert table.exit_code == 0, table.stderr
    assert "文件权限 commcare.db" in table.stdout and "正常" in table.stdout
    assert "mode " not in table.stdout and " ok" not in table.stdout
    rows = json.loads(zh(cli, "db", "check", "--format", "json").stdout)
    assert {"check": "integrity", "ok": True, "detail": "ok"} in rows  # JSON keeps the keys
    assert any(r["check"] == "mode commcare.db" for r in rows)


def test_a_refused_transition_names_the_status_and_the_action_in_chinese(cli):
    assert cli("staff", "add", "王秀英").exit_code == 0
    assert cli("resident", "add", "张桂兰", "--tag", "elderly").exit_code == 0
    assert cli("add-request", "1", "--category", "trash").exit_code == 0
    assert cli("request", "resolve", "1").exit_code == 0
    again = zh(cli, "request", "resolve", "1")
    assert again.exit_code == 1
    assert "已办结" in again.stderr and "办结" in again.stderr
    assert "resolved" not in again.stderr and "resolve" not in again.stderr
    reopen = zh(cli, "request", "start", "1")
    assert reopen.exit_code == 1 and "开始办理" in reopen.stderr and "start" not in reopen.stderr
    english = cli("request", "resolve", "1")
    assert english.exit_code == 1 and "resolved" in english.stderr


def test_audit_names_health_reports_donations_and_archives_in_chinese(cli):
    assert cli("staff", "add", "王秀英").exit_code == 0
    assert cli("resident", "add", "张桂兰").exit_code == 0
    assert cli("health", "log", "王秀英", "--temp", "36.5").exit_code == 0
    assert cli("donation", "add", "爱心超市", "--item", "大米:10:袋").exit_code == 0
    assert cli("resident", "archive", "1", "--reason", "搬走").exit_code == 0
    shown = zh(cli, "audit")
    assert shown.exit_code == 0, shown.stderr
    for slug in ("health_report", "temperature", "items", "archived", "archive_reason"):
        assert slug not in shown.stdout, slug
    assert "体温上报" in shown.stdout and "物资" in shown.stdout and "归档原因" in shown.stdout
    rows = json.loads(zh(cli, "audit", "--format", "json").stdout)
    assert any(r["entity"] == "health_report" and r["fields"] == ["temperature"] for r in rows)


def test_household_and_id_number_refusals_name_the_field_in_chinese(cli):
    for name in ("王秀英", "李明"):
        assert cli("staff", "add", name).exit_code == 0
    where = ("--compound", "幸福小区", "--address", "3号楼101")
    assert (
        cli("resident", "add", "张桂兰", *where, "--liaison", "王秀英", "--id-number", "11010519491231002X").exit_code
        == 0
    )
    other = zh(cli, "resident", "add", "刘建国", *where, "--liaison", "李明")
    assert other.exit_code == 1 and other.stderr.startswith("commcare: 「联络员」："), other.stderr
    again = zh(cli, "resident", "add", "刘建国", "--id-number", "11010519491231002X")
    assert again.exit_code == 1 and "「身份证号」：" in again.stderr and "id_number" not in again.stderr
    bare = zh(cli, "resident", "add", "刘建国", "--liaison", "李明")
    assert "「联络员」：" in bare.stderr and "liaison" not in bare.stderr


def test_time_number_and_format_errors_name_the_field_in_chinese(cli):
    assert cli("staff", "add", "王秀英").exit_code == 0
    assert cli("resident", "add", "张桂兰", "--tag", "elderly").exit_code == 0
    for args, field in (
        (("call", "log", "1", "--outcome", "ok", "--at", "2026-11-31"), "「时间」"),
        (("request", "show", "abc"), "「编号」"),
        (("audit", "--since", "2026-02-30"), "「起始时间」"),
        (("report", "range", "--from", "2026-11-31", "--to", "2026-12-01"), "「起始日期」"),
        (("report", "range", "--from", "2026-11-30", "--to", "2026-11-01"), "「结束日期」"),
        (("request", "list", "--format", "xml"), "「输出格式」"),
        (("report", "day", "2026-02-30"), "「日期」"),
        (("call", "list", "--date", "2026-02-30"), "「日期」"),
    ):
        result = zh(cli, *args)
        assert result.exit_code == 2, (args, result.stderr)
        assert result.stderr.startswith(f"commcare: {field}："), (args, result.stderr)


def test_call_due_csv_reads_the_escalation_and_the_flag_in_chinese(cli):
    assert cli("staff", "add", "王秀英").exit_code == 0
    contact = ("--emergency-contact", "张强 13612345678")
    assert cli("resident", "add", "张桂兰", "--tag", "elderly", *contact).exit_code == 0
    assert cli("resident", "add", "刘建国", "--tag", "elderly").exit_code == 0
    for ref in ("1", "1", "2", "2"):
        assert cli("call", "log", ref, "--outcome", "no-answer").exit_code == 0
    shown = zh(cli, "call", "due", "--format", "csv")
    assert shown.exit_code == 0, shown.stderr
    header = shown.stdout.lstrip("\ufeff").splitlines()[0]
    assert "unreached_flag" not in header and "连续未联系" in header
    assert "emergency-contact" not in shown.stdout and "visit" not in shown.stdout
    assert "联系紧急联系人" in shown.stdout and "上门查看" in shown.stdout
    rows = json.loads(zh(cli, "call", "due", "--format", "json").stdout)
    assert {r["escalate_action"] for r in rows} == {"emergency-contact", "visit"}


def test_the_report_heads_donated_supplies_物资_not_姓名(cli):
    assert cli("staff", "add", "王秀英").exit_code == 0
    assert cli("donation", "add", "爱心超市", "--item", "大米:10:袋").exit_code == 0
    shown = zh(cli, "report", "today", "--format", "markdown")
    assert shown.exit_code == 0, shown.stderr
    donated = shown.stdout.split("## 捐赠物资", 1)[1]
    assert "| 物资 | 数量 | 单位 |" in donated and "姓名" not in donated
    items = json.loads(zh(cli, "report", "today", "--format", "json").stdout)["donations"]["items"]
    assert items == [{"name": "大米", "quantity": 10, "unit": "袋"}]


def test_donation_list_writes_this_years_times_as_people_do(cli):
    assert cli("staff", "add", "王秀英").exit_code == 0
    env = {"COMMCARE_NOW": "2026-05-08T15:00:00+08:00"}
    assert cli("donation", "add", "爱心超市", "--item", "大米:10", "--at", "2026-05-08 14:00", env=env).exit_code == 0
    shown = cli("--lang", "zh", "donation", "list", env=env)
    assert shown.exit_code == 0, shown.stderr
    assert "5月8日 14:00" in shown.stdout and "2026-05-08" not in shown.stdout


def test_a_request_number_too_big_for_the_database_is_not_found_not_an_internal_error(cli):
    assert cli("staff", "add", "王秀英").exit_code == 0
    huge = "99999999999999999999999"
    for args in (("request", "show", huge), ("request", "resolve", huge), ("request", "note", huge, "x")):
        result = zh(cli, *args)
        assert result.exit_code == 1, (args, result.stderr)
        assert "找不到求助" in result.stderr and "内部错误" not in result.stderr, result.stderr


def test_a_request_on_a_call_that_is_not_needs_help_is_refused_in_chinese_words(cli):
    assert cli("staff", "add", "王秀英").exit_code == 0
    assert cli("resident", "add", "张桂兰", "--tag", "elderly").exit_code == 0
    result = zh(cli, "call", "log", "1", "--outcome", "平安", "--request", "medicine")
    assert result.exit_code == 2 and "需要帮助" in result.stderr and "needs-help" not in result.stderr, result.stderr


def test_a_needs_help_call_says_which_request_it_opened(cli):
    assert cli("staff", "add", "王秀英").exit_code == 0
    assert cli("resident", "add", "张桂兰", "--tag", "elderly").exit_code == 0
    result = zh(cli, "call", "log", "1", "--outcome", "需要帮助", "--request", "代购药品")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "已记录对 张桂兰 的电话：需要帮助，已登记求助 #1"


def test_resolving_a_recurring_request_says_its_next_occurrence(cli):
    assert cli("staff", "add", "王秀英").exit_code == 0
    assert cli("resident", "add", "张桂兰", "--tag", "elderly").exit_code == 0
    env = {"COMMCARE_NOW": "2026-05-08T09:00:00+08:00"}
    assert cli("add-request", "1", "-c", "trash", "--every", "2d", "--due", "2026-05-08 18:00", env=env).exit_code == 0
    assert cli("add-request", "1", "-c", "parcel", env=env).exit_code == 0
    result = cli("--lang", "zh", "request", "resolve", "1", "2", env=env)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "求助 #1 现为：已办结",
        "  下一次：求助 #3，截止 5月10日 18:00",
        "求助 #2 现为：已办结",
    ]
    rows = json.loads(cli("request", "resolve", "3", "-f", "json", env=env).stdout)
    assert [r["id"] for r in rows] == [3]  # JSON: the requests resolved, as before


def test_markdown_lists_write_times_as_people_do(cli):
    assert cli("staff", "add", "王秀英").exit_code == 0
    env = {"COMMCARE_NOW": "2026-05-08T09:00:00+08:00"}
    assert cli("health", "log", "王秀英", "--temp", "36.5", "--at", "2026-05-08 08:30", env=env).exit_code == 0
    shown = cli("--lang", "zh", "health", "list", "--format", "markdown", env=env)
    assert shown.exit_code == 0, shown.stderr
    assert "| 5月8日 08:30 |" in shown.stdout and "T08:30" not in shown.stdout
    csv_text = cli("--lang", "zh", "health", "list", "--format", "csv", env=env).stdout
    assert "2026-05-08T08:30:00+08:00" in csv_text  # CSV keeps ISO 8601


def test_a_failed_db_check_names_the_damage_in_chinese(cli, tmp_path):
    import os
    import sqlite3

    assert cli("init").exit_code == 0
    con = sqlite3.connect(os.environ["COMMCARE_DB"])
    con.execute("PRAGMA foreign_keys = OFF")
    con.execute("INSERT INTO resident_tags (resident_id, tag, community_id) VALUES (999, 'elderly', 1)")
    con.commit()
    con.close()
    result = zh(cli, "db", "check")
    assert result.exit_code == 3
    assert "外键 (1 处外键不一致)" in result.stderr and "foreign" not in result.stderr, result.stderr
    assert "1 处外键不一致" in result.stdout
    english = cli("db", "check")
    assert english.exit_code == 3 and "foreign_keys (1 foreign key violations)" in english.stderr
