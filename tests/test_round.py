"""The daily round: calls and who is due, escalation, staff health, donations, directory."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def round_(db_url, cli, monkeypatch):
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-08T09:00:00+08:00")
    cli("staff", "add", "王秀英")
    cli("staff", "add", "李强")
    residents = [("张桂兰", "13912345678", "独居"), ("刘建国", "13800002222", "老人"),
                 ("赵小宝", "13700003333", "儿童"), ("陈明", "13600004444", None)]
    for i, (name, phone, tag) in enumerate(residents):
        args = ["resident", "add", name, "--phone", phone, "--compound", "幸福小区", "--address", f"{i}-101",
                "--liaison", "王秀英" if i < 2 else "李强", "--emergency-contact", f"家属{i} 1590000000{i}"]
        assert cli(*args, *(["--tag", tag] if tag else [])).exit_code == 0
    return cli


def due(cli, *args):
    result = cli("call", "due", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return {r["resident"]: r for r in json.loads(result.stdout)}


def test_due_list_after_a_mix_of_outcomes(round_):
    assert set(due(round_)) == {"张桂兰", "刘建国", "赵小宝"}  # 陈明 is in no special group
    round_("call", "log", "张桂兰", "--outcome", "ok")
    round_("call", "log", "刘建国", "--outcome", "no-answer")
    round_("call", "log", "赵小宝", "--outcome", "unreachable")
    rows = due(round_)
    assert set(rows) == {"刘建国", "赵小宝"}
    assert rows["刘建国"]["phone"] == "13800002222"  # in full: the liaison calls it
    round_("call", "log", "赵小宝", "--outcome", "needs-help")
    assert set(due(round_)) == {"刘建国"}
    assert set(due(round_, "--liaison", "李强")) == set()


def test_two_unanswered_calls_escalate_with_the_emergency_contact(round_):
    round_("call", "log", "刘建国", "--outcome", "no-answer")
    assert due(round_)["刘建国"]["escalate"] is False
    round_("call", "log", "13800002222", "--outcome", "unreachable")
    row = due(round_)["刘建国"]
    assert row["escalate"] is True and row["calls_today"] == 2
    assert row["emergency_contact"] == "家属1 15900000001"
    report = json.loads(round_("report", "today", "-f", "json").stdout)
    assert "刘建国" in [m["resident"] for m in report["calls"]["missed"]]


def test_calls_at_2359_and_0001_shanghai_land_on_different_days(round_, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-09T00:30:00+08:00")
    round_("call", "log", "张桂兰", "--outcome", "ok", "--at", "2026-05-08 23:59")
    assert "张桂兰" in due(round_)  # the 23:59 call was yesterday's
    round_("call", "log", "张桂兰", "--outcome", "ok", "--at", "2026-05-09 00:01")
    assert "张桂兰" not in due(round_)
    day8 = json.loads(round_("report", "day", "2026-05-08", "-f", "json").stdout)
    assert day8["calls"]["made"] == 1


def test_needs_help_opens_exactly_one_request_and_nothing_when_it_fails(round_):
    ok = round_("--as", "王秀英", "call", "log", "张桂兰", "--outcome", "needs-help", "--request", "medicine",
                "--note", "降压药吃完了", "-f", "json")
    assert ok.exit_code == 0, ok.stderr
    requests = json.loads(round_("request", "list", "-f", "json").stdout)
    assert [(r["resident"], r["category"], r["note"]) for r in requests] == [("张桂兰", "medicine", "降压药吃完了")]
    bad = round_("call", "log", "刘建国", "--outcome", "needs-help", "--request", "spaceship")
    assert bad.exit_code == 2
    assert len(json.loads(round_("request", "list", "-f", "json").stdout)) == 1
    assert "刘建国" in due(round_) and due(round_)["刘建国"]["calls_today"] == 0  # no call recorded either


@pytest.mark.parametrize("temp", ["34.9", "42.1", "abc"])
def test_out_of_range_temperatures_exit_2(round_, temp):
    result = round_("health", "log", "王秀英", "--temp", temp)
    assert result.exit_code == 2 and "Traceback" not in result.stderr


def test_health_due_lists_staff_with_fewer_than_two_reports(round_):
    round_("health", "log", "王秀英", "--temp", "36.5")
    round_("health", "log", "王秀英", "--temp", "36.6", "--test", "negative")
    round_("health", "log", "李强", "--temp", "36.4")
    rows = json.loads(round_("health", "due", "-f", "json").stdout)
    assert [r["staff"] for r in rows] == ["李强"]


@pytest.mark.parametrize("spec", ["矿泉水", "矿泉水:abc", ":5", "矿泉水:-3:箱", "矿泉水:0"])
def test_bad_item_specs_exit_2(round_, spec):
    result = round_("donation", "add", "永辉超市", "--item", spec)
    assert result.exit_code == 2 and "item" in result.stderr
    assert json.loads(round_("donation", "list", "-f", "json").stdout) == []


def test_donation_totals_over_a_month(round_):
    for day, qty in (("2026-05-01", 50), ("2026-05-15", 30), ("2026-06-01", 99)):
        assert round_("donation", "add", "永辉超市", "--item", f"矿泉水:{qty}:箱", "--item", "盒饭:10:份",
                      "--at", f"{day} 10:00").exit_code == 0
    totals = json.loads(round_("donation", "list", "--from", "2026-05-01", "--to", "2026-05-31", "--totals", "-f", "json").stdout)
    assert {(t["item"], t["unit"]): t["quantity"] for t in totals} == {("矿泉水", "箱"): 80, ("盒饭", "份"): 20}


def test_directory_search_by_pinyin_and_short_hotlines(round_):
    assert round_("directory", "add", "社区卫生服务中心", "--phone", "0371-67891234", "--kind", "clinic").exit_code == 0
    assert round_("directory", "add", "大药房", "--phone", "13900001111", "--kind", "pharmacy").exit_code == 0
    assert round_("directory", "add", "政务服务热线", "--phone", "12345", "--kind", "hotline").exit_code == 0
    assert round_("directory", "add", "x", "--phone", "12", "--kind", "hotline").exit_code == 2
    assert round_("directory", "add", "y", "--phone", "12345", "--kind", "bakery").exit_code == 2
    found = json.loads(round_("directory", "list", "--search", "sqws", "-f", "json").stdout)
    assert [e["name"] for e in found] == ["社区卫生服务中心"]
    assert [e["name"] for e in json.loads(round_("directory", "list", "--kind", "hotline", "-f", "json").stdout)] == ["政务服务热线"]


def test_call_round_driven_by_keys_saves_each_answer(round_):
    result = round_("call", "round", "--liaison", "王秀英", input="o\nh\nmedicine\n")
    assert result.exit_code == 0, result.stderr
    assert "recorded 2 calls" in result.stdout
    assert set(due(round_, "--liaison", "王秀英")) == set()
    assert [r["category"] for r in json.loads(round_("request", "list", "-f", "json").stdout)] == ["medicine"]


def test_call_round_skip_and_stop(round_):
    result = round_("call", "round", input="s\nn\nq\n")
    assert result.exit_code == 0 and "recorded 1 calls" in result.stdout
    rows = due(round_)  # 赵小宝 (李强) comes first and is skipped; 张桂兰 gets the no-answer
    assert rows["张桂兰"]["calls_today"] == 1 and rows["赵小宝"]["calls_today"] == 0


def test_residents_not_reached_for_two_days_running_are_flagged(round_, monkeypatch):
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-09T09:00:00+08:00")
    round_("call", "log", "张桂兰", "--outcome", "ok")
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-11T09:00:00+08:00")
    rows = due(round_)
    assert (rows["张桂兰"]["days_unreached"], rows["张桂兰"]["unreached_flag"]) == (2, True)
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-10T09:00:00+08:00")
    assert due(round_)["张桂兰"]["unreached_flag"] is False
