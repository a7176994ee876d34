"""The liaison's day (issue 18), through the installed ``commcare`` as a liaison uses it:
fever, the round's card, duplicate requests, ranges, her own list first, escalation, an
unregistered caller, the directory, and reading (audit order, times, show)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
from usercli import EXE, commcare, ok

NOW = "2026-05-08T09:00:00+08:00"


@pytest.fixture
def day(db_url, monkeypatch):
    """A community with two liaisons and three special-group residents, at 09:00 on 8 May
    2026; 刘建国 has no emergency contact."""
    monkeypatch.setenv("COMMCARE_NOW", NOW)
    for staff in ("王秀英", "李金芳"):
        ok("staff", "add", staff)
    people = [
        ("张桂兰", "13912345678", "独居", "王秀英", "家属甲 15900000001"),
        ("刘建国", "13800002222", "老人", "王秀英", None),
        ("赵小宝", "13700003333", "儿童", "李金芳", "家属乙 15900000003"),
    ]
    for i, (name, phone, tag, liaison, contact) in enumerate(people):
        extra = ["--emergency-contact", contact] if contact else []
        ok(
            "resident", "add", name, "--phone", phone, "--tag", tag, "--compound", "幸福小区",
            "--address", f"{i + 1}-101", "--liaison", liaison, *extra,
        )  # fmt: skip
    return db_url


def as_json(*args, **kwargs):
    return json.loads(ok(*args, "--format", "json", **kwargs).stdout)


# --- 1. fever ----------------------------------------------------------------------------------


def test_a_fever_is_warned_listed_and_reported(day):
    result = ok("health", "log", "王秀英", "--temp", "37.5")
    assert "王秀英 has 37.5 °C, a fever (≥ 37.3 °C)" in result.stderr
    assert "fever" not in ok("health", "log", "李金芳", "--temp", "36.6").stderr
    rows = as_json("health", "list")
    assert [(r["staff"], r["fever"]) for r in rows] == [("王秀英", True), ("李金芳", False)]
    table = ok("health", "list").stdout.splitlines()
    assert "fever" in table[0] and "✓" in table[1] and "✓" not in table[2]
    report = as_json("report", "today")
    assert report["staff_health"]["fever"] == ["王秀英"]
    markdown = ok("--lang", "zh", "report", "today", "--format", "markdown").stdout
    assert "## 今日发热的工作人员\n\n| 工作人员 |\n| --- |\n| 王秀英 |" in markdown
    assert "今日发热的工作人员" in ok("--lang", "zh", "report", "today", "--format", "html").stdout
    round_ = commcare("call", "round", input="q\n")
    assert "staff with a fever today: 王秀英 37.5℃" in round_.stderr


def test_fever_at_comes_from_the_config(day, tmp_path):
    config = tmp_path / "fever.toml"
    config.write_text("fever_at = 37.6\n")
    env = {"COMMCARE_CONFIG": str(config)}
    assert "fever" not in ok("health", "log", "王秀英", "--temp", "37.5", env=env).stderr
    assert "a fever (≥ 37.6 °C)" in ok("health", "log", "李金芳", "--temp", "37.6", env=env).stderr
    assert as_json("report", "today", env=env)["staff_health"]["fever"] == ["李金芳"]


# --- 2. the round's card -------------------------------------------------------------------


def test_the_card_shows_groups_and_open_requests(day):
    ok("add-request", "刘建国", "--category", "medicine", "--due", "2026-05-08 18:00")
    result = ok("call", "round", "--liaison", "王秀英", input="s\nq\n")
    card = result.stderr.split("[2/2] 刘建国")[1]
    assert "groups: elderly" in card
    assert "open request #1 medicine, due 05-08 18:00" in card
    zh = ok("--lang", "zh", "call", "round", "--liaison", "王秀英", input="s\nq\n").stderr
    assert "人群：独居/空巢" in zh and "未办结求助 #1 代购药品，到期 5月8日 18:00" in zh


def test_digits_and_unknown_keys_are_answered_full_width_letters_work(day):
    result = ok("call", "round", "--liaison", "李金芳", input="1\n\nｏ\n")
    assert "there is no key 1. Keys: o ok" in result.stderr
    assert "there is no key Enter." in result.stderr
    assert result.stdout.startswith("recorded 1 calls")
    calls = as_json("call", "list")
    assert [(c["resident"], c["outcome"]) for c in calls] == [("赵小宝", "ok")]


def test_a_note_goes_with_any_outcome(day):
    ok("call", "round", "--liaison", "王秀英", input="m\n可能去买菜了\nn\nｍ\n腿疼\nh\nmedicine 降压药\n")
    calls = as_json("call", "list")
    assert [(c["resident"], c["outcome"], c["note"]) for c in calls] == [
        ("张桂兰", "no-answer", "可能去买菜了"),
        ("刘建国", "needs-help", "腿疼；降压药"),
    ]


def _tmux(sock, *args) -> str:
    done = subprocess.run(["tmux", "-S", str(sock), *args], capture_output=True, text=True, check=True)
    return done.stdout


def _screen_until(sock, text: str, timeout: float = 20) -> str:
    end = time.monotonic() + timeout
    while True:
        screen = _tmux(sock, "capture-pane", "-p", "-t", "round")
        if text in screen or time.monotonic() > end:
            return screen
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed: the round is not driven on a terminal")
def test_the_round_on_a_real_terminal(day, tmp_path):
    """tmux gives the round a real terminal: one key, no Enter; a digit is named as no key; a
    full-width ｍ asks for a note; q stops. The screen is kept in the test's directory."""
    ok("add-request", "张桂兰", "--category", "gas-topup", "--due", "2026-05-08 17:00")
    ok("health", "log", "李金芳", "--temp", "37.8")
    for _ in range(2):
        ok("call", "log", "刘建国", "--outcome", "no-answer")
    sock = tmp_path / "tmux.sock"
    names = ("COMMCARE_DB", "COMMCARE_CONFIG", "COMMCARE_USER", "COMMCARE_NOW", "XDG_DATA_HOME", "XDG_CONFIG_HOME")
    env = " ".join(f"{k}='{os.environ[k]}'" for k in names)
    line = f"env {env} COMMCARE_LANG=zh LANG=C.UTF-8 {EXE} --as 王秀英 call round; sleep 60"
    _tmux(sock, "new-session", "-d", "-s", "round", "-x", "110", "-y", "32", line)
    try:
        _screen_until(sock, "q 结束 >")
        _tmux(sock, "send-keys", "-t", "round", "1")
        _screen_until(sock, "没有按键 1")
        _tmux(sock, "send-keys", "-t", "round", "-l", "ｍ")
        _screen_until(sock, "备注（")
        _tmux(sock, "send-keys", "-t", "round", "-l", "老人说燃气快用完了")
        _tmux(sock, "send-keys", "-t", "round", "Enter")
        _screen_until(sock, "备注已记下")
        _tmux(sock, "send-keys", "-t", "round", "o")
        screen = _screen_until(sock, "[2/3]")
        (tmp_path / "round-screen.txt").write_text(screen)
        _tmux(sock, "send-keys", "-t", "round", "q")
        _screen_until(sock, "本轮已记录 1 个电话")
    finally:
        subprocess.run(["tmux", "-S", str(sock), "kill-server"], capture_output=True, check=False)
    assert "今日发热的工作人员：李金芳 37.8℃" in screen
    assert "[1/3] 张桂兰  电话 13912345678  幸福小区 1-101" in screen  # 王秀英's own first
    assert "人群：独居/空巢" in screen and "未办结求助 #1 燃气圈存，到期 5月8日 17:00" in screen
    assert "没有按键 1。可用：o 平安" in screen
    assert "已保存：平安" in screen
    assert "[2/3] 刘建国" in screen and "没有紧急联系人：请上门查看" in screen
    calls = as_json("call", "list")
    assert (calls[-1]["resident"], calls[-1]["outcome"], calls[-1]["note"]) == ("张桂兰", "ok", "老人说燃气快用完了")
    if os.environ.get("COMMCARE_KEEP_SCREEN"):
        shutil.copy(tmp_path / "round-screen.txt", os.environ["COMMCARE_KEEP_SCREEN"])


# --- 3. duplicate requests -----------------------------------------------------------------


def test_a_second_open_request_of_the_category_is_refused_unless_again(day):
    first = as_json("add-request", "张桂兰", "--category", "medicine")
    result = commcare("add-request", "13912345678", "--category", "代购药品")
    assert result.returncode == 1 and result.stdout == ""
    assert f"a medicine request is already open: #{first['id']} 张桂兰 (05-08 21:00)" in result.stderr
    assert "--again" in result.stderr
    batch = commcare("add-request", "刘建国", "张桂兰", "--category", "medicine")
    assert batch.returncode == 1  # all or none: 刘建国's is not opened either
    assert [r["id"] for r in as_json("request", "list")] == [first["id"]]
    assert ok("add-request", "张桂兰", "--category", "groceries").returncode == 0  # another category
    again = as_json("add-request", "张桂兰", "--category", "medicine", "--again")
    assert again["id"] != first["id"]
    ok("request", "resolve", str(first["id"]), str(again["id"]))
    assert ok("add-request", "张桂兰", "--category", "medicine").returncode == 0  # none open now


# --- 4. ranges -----------------------------------------------------------------------------


def test_resolve_takes_ranges_and_lists_all_or_nothing(day):
    ids = [as_json("add-request", "张桂兰", "-c", "trash", "--again")["id"] for _ in range(12)]
    assert ids == list(range(1, 13))
    assert commcare("request", "resolve", "1-13").returncode == 1  # #13 does not exist: none resolved
    assert len(as_json("request", "list")) == 12
    ok("request", "resolve", "3,5,9-11")
    ok("request", "resolve", "1-2", "4", "6～8")
    left = [r["id"] for r in as_json("request", "list")]
    assert left == [12]
    for bad in ("9-2", "1-", "3,,5", "1-5000"):
        result = commcare("request", "resolve", bad)
        assert result.returncode == 2, (bad, result.stderr)
        assert result.stderr.startswith("commcare: id:")
    assert [r["id"] for r in as_json("request", "list")] == [12]


# --- 5. own list first ---------------------------------------------------------------------


def test_call_due_puts_the_acting_liaisons_households_first(day):
    default = [r["resident"] for r in as_json("--as", "来访者", "call", "due")]  # read by someone who is no liaison
    assert default == ["赵小宝", "张桂兰", "刘建国"]  # 李金芳 < 王秀英 by name
    mine = [r["resident"] for r in as_json("--as", "王秀英", "call", "due")]
    assert mine == ["张桂兰", "刘建国", "赵小宝"]
    table = ok("--as", "王秀英", "call", "due").stdout
    assert table.startswith("liaison 王秀英 (yours, 2 due)") and "liaison 李金芳 (1 due)" in table
    only = [r["resident"] for r in as_json("--as", "王秀英", "call", "due", "--liaison", "李金芳")]
    assert only == ["赵小宝"]


# --- 6. escalation -------------------------------------------------------------------------


def test_two_unanswered_calls_without_an_emergency_contact_say_visit(day):
    for name in ("刘建国", "张桂兰"):
        ok("call", "log", name, "--outcome", "no-answer")
        ok("call", "log", name, "--outcome", "unreachable")
    rows = {r["resident"]: r for r in as_json("call", "due")}
    assert rows["刘建国"]["escalate_action"] == "visit"
    assert rows["张桂兰"]["escalate_action"] == "emergency-contact"
    assert rows["赵小宝"]["escalate_action"] is None
    zh = ok("--lang", "zh", "call", "due").stdout
    assert "需上报：今日两次未接通，无紧急联系人，请上门查看" in zh
    assert "需上报：今日两次未接通，紧急联系人 家属甲 15900000001" in zh
    calls = as_json("report", "today")["calls"]
    assert [m["resident"] for m in calls["missed"]] == ["赵小宝", "张桂兰", "刘建国"]
    assert [(e["resident"], e["unanswered"], e["action"]) for e in calls["escalated"]] == [
        ("张桂兰", 2, "emergency-contact"),
        ("刘建国", 2, "visit"),
    ]
    md = ok("--lang", "zh", "report", "today", "--format", "markdown").stdout
    escalated, others = md.split("## 需上报的居民")[1].split("## 其余今日未联系到的居民")
    assert "刘建国 | 王秀英 | 2 | 上门查看" in escalated and "赵小宝" not in escalated
    assert "赵小宝" in others.split("##")[0] and "刘建国" not in others.split("##")[0]


# --- 7. an unregistered caller -------------------------------------------------------------


def test_an_unknown_callers_phone_says_how_to_register_them(day):
    """In a pipe (a log, a cron mail) the number stays masked, as every error masks it."""
    result = commcare("add-request", "13000000000", "--category", "gas-topup")
    assert result.returncode == 1 and "13000000000" not in result.stderr
    assert "To register the caller: commcare resident add NAME --phone 130****0000" in result.stderr
    zh = commcare("--lang", "zh", "add-request", "130 0000 0000", "--category", "gas-topup")
    assert "登记来电人：commcare resident add 姓名 --phone 130****0000" in zh.stderr


@pytest.mark.skipif(shutil.which("script") is None, reason="script (util-linux) is not installed: no terminal")
def test_on_a_terminal_the_register_line_is_whole_and_works(day):
    """At a terminal the person who just typed the number gets the line to copy, whole."""
    line = f"{EXE} add-request 13000000000 --category gas-topup"
    shown = subprocess.run(["script", "-qec", line, "/dev/null"], capture_output=True, text=True, check=False)
    assert shown.returncode == 1
    assert "To register the caller: commcare resident add NAME --phone 13000000000" in shown.stdout
    ok("resident", "add", "王大爷", "--phone", "13000000000")
    assert as_json("add-request", "13000000000", "--category", "gas-topup")["resident"] == "王大爷"


# --- 8. the directory ----------------------------------------------------------------------


def test_directory_finds_any_part_and_takes_service_numbers(day):
    ok("directory", "add", "如意湖社区卫生服务中心", "--phone", "0371-96677", "--kind", "clinic")
    ok("directory", "add", "市民服务热线", "--phone", "12345", "--kind", "hotline")
    ok("directory", "add", "郑州人民医院", "--phone", "0371 67891234", "--kind", "hospital")
    names = lambda *a: [e["name"] for e in as_json("directory", "list", *a)]
    assert names("--search", "sqws") == ["如意湖社区卫生服务中心"]
    assert names("--search", "weisheng") == ["如意湖社区卫生服务中心"]
    assert names("--search", "卫生服务") == ["如意湖社区卫生服务中心"]
    assert names("--search", "rm") == ["郑州人民医院"]
    assert names("--search", "96677") == ["如意湖社区卫生服务中心"]
    assert [e["phone"] for e in as_json("directory", "list", "--kind", "clinic")] == ["0371-96677"]
    bad = commcare("resident", "add", "某人", "--phone", "0371-96677")
    assert bad.returncode == 2 and bad.stderr.startswith("commcare: phone:")


# --- 9. reading ----------------------------------------------------------------------------


def test_audit_newest_first_times_as_people_write_them(day, monkeypatch):
    entries = as_json("audit")
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    assert entries[0]["at"] == "2026-05-08T09:00:00+08:00"  # ISO in JSON
    assert as_json("audit", "--limit", "1")[0]["action"] == "resident.add"
    lines = ok("audit").stdout.splitlines()
    assert "05-08 09:00" in lines[1] and "T09:00" not in lines[1]
    assert "5月8日 09:00" in ok("--lang", "zh", "audit").stdout.splitlines()[1]
    monkeypatch.setenv("COMMCARE_NOW", "2027-01-03T10:00:00+08:00")
    assert "2026-05-08 09:00" in ok("audit").stdout.splitlines()[1]


def test_resident_show_leaves_out_empty_rows(day):
    shown = ok("resident", "show", "刘建国").stdout
    assert "phone" in shown and "13800002222" in shown
    for empty in ("emergency contact", "note", "archived", "archive reason", "born"):
        assert empty not in shown, empty
    assert "emergency contact" in ok("resident", "show", "张桂兰").stdout
    assert as_json("resident", "show", "刘建国")["note"] is None  # JSON keeps every key
