"""The interactive morning round (`call round`), driven by keys on standard input."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def round_(db_url, cli, monkeypatch):
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-08T09:00:00+08:00")
    for staff in ("王秀英", "李强"):
        assert cli("staff", "add", staff).exit_code == 0
    people = [
        ("张桂兰", "13912345678", "独居", "王秀英"),
        ("刘建国", "13800002222", "老人", "王秀英"),
        ("赵小宝", "13700003333", "儿童", "李强"),
    ]
    for i, (name, phone, tag, liaison) in enumerate(people):
        assert (
            cli(
                "resident",
                "add",
                name,
                "--phone",
                phone,
                "--tag",
                tag,
                "--compound",
                "幸福小区",
                "--address",
                f"{i}-101",
                "--liaison",
                liaison,
                "--emergency-contact",
                f"家属{i} 1590000000{i}",
            ).exit_code
            == 0
        )
    return cli


def due(cli, *args):
    return {r["resident"]: r for r in json.loads(cli("call", "due", *args, "-f", "json").stdout)}


def calls_of(cli):
    return [
        (c["resident"], c["outcome"], c["by"], c["note"], c["request"])
        for c in json.loads(cli("call", "list", "-f", "json").stdout)
    ]


def test_round_records_each_answer_with_one_key(round_):
    result = round_("--as", "王秀英", "call", "round", "--liaison", "王秀英", input="o\nh\nmedicine\n")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("recorded 2 calls (2 residents were due)")
    assert set(due(round_, "--liaison", "王秀英")) == set()
    requests = json.loads(round_("request", "list", "-f", "json").stdout)
    assert [(r["resident"], r["category"]) for r in requests] == [("刘建国", "medicine")]
    assert calls_of(round_) == [
        ("张桂兰", "ok", "王秀英", None, None),
        ("刘建国", "needs-help", "王秀英", None, requests[0]["id"]),
    ]


def test_round_shows_phone_emergency_contact_and_last_note(round_):
    round_("call", "log", "张桂兰", "--outcome", "no-answer", "--note", "可能去买菜了")
    result = round_("call", "round", "--liaison", "王秀英", input="q\n")
    card = result.stderr.split("[2/")[0]
    assert "[1/2] 张桂兰" in card and "13912345678" in card
    assert "家属0 15900000000" in card and "可能去买菜了" in card and "calls today 1" in card
    assert result.stdout.startswith("recorded 0 calls")


def test_skip_stop_and_unknown_keys(round_):
    assert round_("staff", "add", "孙书记").exit_code == 0  # staff, no liaison: no list of her own first
    result = round_("--as", "孙书记", "call", "round", input="x\ns\nn\nq\n")
    assert result.exit_code == 0 and result.stdout.startswith("recorded 1 calls (3 residents were due)")
    assert result.stderr.count(" > ") == 4  # "x" is asked again, and said to be no key
    assert "there is no key x. Keys: o ok  h needs help" in result.stderr
    rows = due(round_)  # 李强's 赵小宝 comes first and is skipped; 王秀英's 张桂兰 gets the no-answer
    assert rows["张桂兰"]["calls_today"] == 1 and rows["赵小宝"]["calls_today"] == 0
    assert calls_of(round_) == [("张桂兰", "no-answer", "孙书记", None, None)]


def test_a_bad_category_is_asked_again_and_a_note_may_follow(round_):
    result = round_("call", "round", "--liaison", "李强", input="h\nspaceship\n代购药品 降压药吃完了\n")
    assert result.exit_code == 0, result.stderr
    assert "category: unknown category spaceship" in result.stderr
    assert calls_of(round_)[0][:4] == ("赵小宝", "needs-help", "王秀英", "降压药吃完了")
    requests = json.loads(round_("request", "list", "-f", "json").stdout)
    assert [(r["category"], r["note"]) for r in requests] == [("medicine", "降压药吃完了")]


def test_needs_help_without_a_category_opens_no_request(round_):
    round_("call", "round", "--liaison", "李强", input="h\n\n")
    assert calls_of(round_) == [("赵小宝", "needs-help", "王秀英", None, None)]
    assert json.loads(round_("request", "list", "-f", "json").stdout) == []


def test_end_of_input_stops_the_round_keeping_what_was_saved(round_):
    assert round_("staff", "add", "孙书记").exit_code == 0  # staff, no liaison: no list of her own first
    result = round_("--as", "孙书记", "call", "round", input="u\n")
    assert result.exit_code == 0 and result.stdout.startswith("recorded 1 calls")
    assert calls_of(round_) == [("赵小宝", "unreachable", "孙书记", None, None)]


def test_an_escalated_resident_is_marked_on_the_card(round_):
    for outcome in ("no-answer", "unreachable"):
        round_("call", "log", "刘建国", "--outcome", outcome)
    result = round_("call", "round", "--liaison", "王秀英", input="s\nq\n")
    assert "twice unanswered today" in result.stderr.split("[2/2] 刘建国")[1]


def test_an_empty_round_says_so(round_):
    for name in ("张桂兰", "刘建国", "赵小宝"):
        round_("call", "log", name, "--outcome", "ok")
    result = round_("call", "round", input="")
    assert result.exit_code == 0 and result.stdout.startswith("recorded 0 calls (0 residents were due)")


def test_the_chinese_category_prompt_gives_a_chinese_example(round_):
    result = round_("--lang", "zh", "call", "round", "--liaison", "李强", input="h\n代购药品\n")
    assert result.exit_code == 0, result.stderr
    assert "如 代购药品 降压药吃完了" in result.stdout + result.stderr and "medicine" not in result.stdout
