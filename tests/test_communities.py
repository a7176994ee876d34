"""Communities (the contract's *Communities*), through the installed ``commcare``: names are
trimmed and normalised, a community is made only on purpose, a name the register does not
have is refused with the names it has, and a community can be renamed. On SQLite and, with
COMMCARE_TEST_PG_URL, on PostgreSQL (``db_url``)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time

import pytest
from usercli import EXE, commcare, ok


def names(*global_options) -> list[str]:
    return [c["name"] for c in json.loads(ok(*global_options, "community", "list", "-f", "json").stdout)]


def residents(*global_options) -> list[str]:
    return [r["name"] for r in json.loads(ok(*global_options, "resident", "list", "-f", "json").stdout)]


def refused(result, code: int = 1) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("commcare: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_a_mistyped_community_never_hides_a_resident(db_url):
    """The issue's case: ``--community "default "`` made a second community, and the resident
    added there was never due a call."""
    ok("init")
    assert names() == ["default"]
    ok("--community", "default ", "resident", "add", "张桂兰", "--tag", "elderly")
    ok("--community", " default", "resident", "add", "刘建国", "--tag", "elderly")
    assert names() == ["default"]
    due = json.loads(ok("call", "due", "-f", "json").stdout)
    assert sorted(r["resident"] for r in due) == ["刘建国", "张桂兰"]
    for command in (
        ("resident", "add", "赵小宝", "--tag", "child"),
        ("call", "due"),
        ("resident", "list"),
        ("report", "today"),
        ("audit",),
    ):
        message = refused(commcare("--community", "defualt", *command))
        assert '"defualt"' in message and "default" in message.split("has:")[1]
    assert names() == ["default"] and sorted(residents()) == ["刘建国", "张桂兰"]


def test_names_are_trimmed_and_normalised(db_url):
    ok("init", "--community", "幸福社区")
    ok("community", "add", "  阳光 \u3000  社区\t".replace("\t", " "))
    ok("community", "add", "Cafe\u0301 社区")  # e + combining acute: NFC makes it é
    assert names() == ["幸福社区", "阳光 社区", "Café 社区"]
    assert "exists" in refused(commcare("community", "add", "阳光  社区"))
    assert "exists" in refused(commcare("community", "add", "Café 社区"))
    ok("--community", "阳光  社区 ", "resident", "add", "刘建国")
    ok("--community", "Cafe\u0301 社区", "resident", "add", "陈明")
    assert residents("--community", "阳光 社区") == ["刘建国"]
    assert residents("--community", "Café 社区") == ["陈明"]


@pytest.mark.parametrize(
    "bad", ["", "   ", "阳光\x1b[31m社区", "阳光\n社区", "阳光\x7f社区", "阳光\x9b31m社区", "a\tb", "x\u2028y"]
)
def test_empty_names_and_control_characters_are_refused(db_url, bad):
    ok("init", "--community", "幸福社区")
    refused(commcare("community", "add", bad), 2)
    refused(commcare("community", "rename", "幸福社区", bad), 2)
    if bad.strip():  # an empty --community is no name at all: the register's only community
        refused(commcare("--community", bad, "resident", "list"), 2)
    assert names() == ["幸福社区"]


def test_a_community_named_by_environment_or_config_must_exist(db_url, tmp_path):
    ok("init", "--community", "幸福社区")
    message = refused(commcare("resident", "list", env={"COMMCARE_COMMUNITY": "阳关社区"}))
    assert "阳关社区" in message and "幸福社区" in message
    (tmp_path / "commcare.toml").write_text('community = "阳关社区"\n', encoding="utf-8")
    refused(commcare("resident", "add", "张桂兰"))
    (tmp_path / "commcare.toml").write_text('community = " 幸福社区 "\n', encoding="utf-8")
    ok("resident", "add", "张桂兰")
    assert names() == ["幸福社区"]


def test_one_community_is_used_without_being_told(db_url):
    ok("init", "--community", "幸福社区")
    ok("resident", "add", "张桂兰", "--tag", "elderly")
    assert residents("--community", "幸福社区") == ["张桂兰"]
    report = json.loads(ok("report", "today", "-f", "json").stdout)
    assert report["community"] == "幸福社区" and report["calls"]["due"] == 1
    assert ok("report", "today", "-f", "markdown").stdout.splitlines()[0].startswith("# Daily report")
    assert "幸福社区" in ok("report", "today", "-f", "markdown").stdout.splitlines()[0]


def test_several_communities_need_a_name_and_all_communities_sums_them(db_url):
    ok("init", "--community", "幸福社区")
    ok("community", "add", "阳光社区")
    ok("--community", "幸福社区", "resident", "add", "张桂兰", "--tag", "elderly")
    ok("--community", "阳光社区", "resident", "add", "刘建国", "--tag", "elderly")
    ok("--community", "阳光社区", "resident", "add", "赵小宝", "--tag", "child")
    message = refused(commcare("call", "due"))
    assert "several" in message and "幸福社区" in message and "阳光社区" in message
    refused(commcare("resident", "add", "陈明"))
    data = json.loads(ok("report", "today", "--all-communities", "-f", "json").stdout)
    assert [(c["community"], c["calls_due"]) for c in data["communities"]] == [("幸福社区", 1), ("阳光社区", 2)]
    assert data["total"]["calls_due"] == 3
    assert residents("--community", "阳光社区") == ["刘建国", "赵小宝"]


def test_rename_keeps_everything_and_is_audited(db_url):
    ok("init")
    ok("resident", "add", "张桂兰", "--tag", "elderly")
    assert "default" in ok("community", "rename", "default", " 幸福  社区 ").stdout
    assert names() == ["幸福 社区"]
    assert residents() == ["张桂兰"] and residents("--community", "幸福 社区") == ["张桂兰"]
    assert "幸福 社区" in refused(commcare("--community", "default", "resident", "list"))
    entries = json.loads(ok("audit", "-f", "json").stdout)
    renamed = [e for e in entries if e["action"] == "community.rename"]
    assert len(renamed) == 1 and renamed[0]["fields"] == ["name"] and renamed[0]["actor"] == "王秀英"
    ok("community", "add", "阳光社区")
    assert "exists" in refused(commcare("community", "rename", "幸福 社区", "阳光社区"))
    assert "没有" in refused(commcare("--lang", "zh", "community", "rename", "明月社区", "x"))
    assert names() == ["幸福 社区", "阳光社区"]


def test_rename_tells_when_the_environment_still_names_the_old_name(db_url):
    ok("init", "--community", "幸福社区")
    result = ok("community", "rename", "幸福社区", "阳光社区", env={"COMMCARE_COMMUNITY": "幸福社区"})
    assert "COMMCARE_COMMUNITY" in result.stderr and "阳光社区" in result.stderr


def test_init_makes_the_community_it_is_told_and_is_safe_twice(db_url, tmp_path):
    ok("init", "--community", " 幸福社区 ")
    ok("init", "--community", "幸福社区")
    ok("init")
    assert names() == ["幸福社区"]
    config = (tmp_path / "commcare.toml").read_text(encoding="utf-8")
    assert "\ncommunity =" not in config  # one community: nothing pinned that a rename would outlive
    ok("init", "--community", "阳光社区")  # on purpose: a second community
    assert names() == ["幸福社区", "阳光社区"]
    refused(commcare("init", "--community", "阳光\x1b社区"), 2)
    assert names() == ["幸福社区", "阳光社区"]


def test_init_pins_the_community_in_a_new_config_when_there_are_several(db_url, tmp_path):
    ok("init", "--community", "幸福社区")
    (tmp_path / "commcare.toml").unlink()
    ok("init", "--community", "阳光社区")
    assert 'community = "阳光社区"' in (tmp_path / "commcare.toml").read_text(encoding="utf-8")
    ok("resident", "add", "刘建国")
    assert residents("--community", "阳光社区") == ["刘建国"]


def test_non_interactive_init_names_the_community_default(db_url):
    ok("init", input="")
    assert names() == ["default"]
    assert ok("--lang", "zh", "report", "today", "-f", "markdown").stdout.startswith("# 本社区 工作日报")


def test_the_first_write_into_a_new_file_makes_its_community(tmp_path):
    """No init: a one-community laptop starts with ``resident add``."""
    db = tmp_path / "laptop.db"
    ok("--db", db, "resident", "add", "张桂兰", "--tag", "elderly")
    assert names("--db", db) == ["default"]
    other = tmp_path / "named.db"
    ok("--db", other, "--community", "幸福社区", "resident", "add", "刘建国")
    assert names("--db", other) == ["幸福社区"]
    refused(commcare("--db", other, "--community", "阳光社区", "resident", "add", "赵小宝"))
    fresh = tmp_path / "fresh.db"
    assert "none yet" in refused(commcare("--db", fresh, "--community", "幸福社区", "resident", "list"))
    assert json.loads(ok("--db", fresh, "resident", "list", "-f", "json").stdout) == []


def _on_terminal(args: list[str], answer: str, timeout: float = 60) -> tuple[int, str]:
    """Run ``commcare ARGS`` on a pseudo-terminal, answer its question, return (code, screen)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([EXE, *args], stdin=follower, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    screen, answered, deadline = b"", False, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                screen += chunk
            if not answered and b"community" in screen:
                os.write(leader, answer.encode() + b"\r")
                answered = True
            if proc.poll() is not None and not ready:
                break
        return proc.wait(timeout=10), screen.decode("utf-8", "replace")
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()


def test_init_on_a_terminal_asks_the_name(tmp_path):
    db = tmp_path / "asked.db"
    code, screen = _on_terminal(["--db", str(db), "init"], "  明月  社区 ")
    assert code == 0, screen
    assert "Name of this register's community" in screen
    assert names("--db", db) == ["明月 社区"]
    code, screen = _on_terminal(["--db", str(db), "init"], "unused")  # it has one: nothing asked
    assert code == 0 and "Name of this" not in screen


def test_the_scheduled_run_finds_the_community_it_was_not_told(tmp_path):
    """A register whose one community has a name, scheduled without naming it: the line pins
    no community (pinning the unnamed "default" would refuse every evening's run), and the
    run writes the community's report."""
    import shlex

    ok("init", "--community", "幸福社区")
    ok("resident", "add", "张桂兰", "--tag", "elderly")
    line = ok("schedule", "install", "--dir", tmp_path / "reports", "--print").stdout
    words = shlex.split(line.split("umask 077;", 1)[1].split(">>", 1)[0])
    pinned = dict(w.split("=", 1) for w in words if w.startswith("COMMCARE_"))
    assert "COMMCARE_COMMUNITY" not in pinned and pinned["COMMCARE_DB"] == str(tmp_path / "commcare.db")
    env = {k: v for k, v in os.environ.items() if k != "COMMCARE_COMMUNITY"}
    run = [w for w in words if not w.startswith("COMMCARE_")]
    at = run.index("--at")
    done = subprocess.run(
        run[:at] + run[at + 2 :], env={**env, **pinned}, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    (written,) = (tmp_path / "reports").glob("*.md")
    assert "幸福社区" in written.read_text(encoding="utf-8").splitlines()[0]
    named = ok("--community", "幸福社区", "schedule", "install", "--dir", tmp_path / "reports", "--print").stdout
    assert "COMMCARE_COMMUNITY=" in named


def test_a_command_reads_its_own_community_not_the_list_of_every_one(db_url, tmp_path):
    """In a city's database a command finds the community it is named for by its name (one
    look-up in the unique index), and a register of one community by reading at most two
    rows: neither reads every community's row, which grew with the city (2,000 rows read by
    each command in a city of 2,000). The whole list is read only to name the choices when
    the name is not there, or to match a name given in another form."""
    ok("init")
    for k in range(2, 6):
        ok("community", "add", f"社区{k}")
    trace = tmp_path / "trace.jsonl"

    def communities_read(*args) -> list[str]:
        trace.unlink(missing_ok=True)
        ok(*args, env={"COMMCARE_SQL_TRACE": str(trace)})
        sent = [json.loads(line)["sql"] for line in trace.read_text(encoding="utf-8").splitlines()]
        return [" ".join(s.split()) for s in sent if "FROM communities" in s and "JOIN" not in s]

    for args in (["report", "today", "-f", "json"], ["call", "due", "-f", "json"], ["resident", "list"]):
        read = communities_read("--community", "社区3", *args)
        assert read and all("WHERE communities.name =" in s for s in read), (args, read)
    alone = tmp_path / "alone.db"
    ok("--db", alone, "init")
    read = communities_read("--db", alone, "report", "today", "-f", "json")
    assert read and all("LIMIT" in s for s in read), read
    # a name in another form (spaces) still finds its community, by the whole list
    assert json.loads(ok("--community", " 社区3 ", "report", "today", "-f", "json").stdout)["community"] == "社区3"
