"""Identity and access: the acting staff member is real (on SQLite and on PostgreSQL as the
database's owner). Each test is an attack that today's register accepted: a made-up name, an
empty one, an archived staff member, COMMCARE_USER=admin, a nobody logging a call that takes a
child off the round."""

from __future__ import annotations

import getpass
import json

import pytest
from usercli import commcare

NOW = "2026-05-08T09:00:00+08:00"


@pytest.fixture
def staffed(db_url, cli, monkeypatch):
    """A register with two liaisons and one child due a call today; acting as 王秀英."""
    monkeypatch.setenv("COMMCARE_NOW", NOW)
    monkeypatch.delenv("COMMCARE_USER")
    assert cli("staff", "add", "王秀英").exit_code == 0  # before the first staff: anyone
    monkeypatch.setenv("COMMCARE_USER", "王秀英")
    assert cli("staff", "add", "李强").exit_code == 0
    added = cli(
        "resident", "add", "赵小宝", "--phone", "13700003333", "--tag", "儿童",
        "--compound", "幸福小区", "--address", "1-101", "--liaison", "李强",
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr
    return cli


def due_names(cli) -> set[str]:
    result = cli("call", "due", "--format", "json")
    assert result.exit_code == 0, result.stderr
    return {r["resident"] for r in json.loads(result.stdout)}


def audit_count(cli) -> int:
    result = cli("audit", "--format", "json")
    assert result.exit_code == 0, result.stderr
    return len(json.loads(result.stdout))


@pytest.mark.parametrize("who", ["某黑客", "nobody", "admin"])
def test_a_name_that_is_not_staff_cannot_log_a_call(staffed, who):
    before = audit_count(staffed)
    result = staffed("--as", who, "call", "log", "赵小宝", "--outcome", "ok")
    assert result.exit_code == 1
    assert result.stderr.startswith("commcare: --as:") and who in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert due_names(staffed) == {"赵小宝"}  # still due: nobody reached her
    assert audit_count(staffed) == before


def test_commcare_user_admin_is_refused_naming_the_variable(staffed):
    result = staffed("resident", "add", "张三", env={"COMMCARE_USER": "admin"})
    assert result.exit_code == 1
    assert "COMMCARE_USER" in result.stderr and "admin" in result.stderr
    assert staffed("resident", "show", "张三").exit_code == 1  # not added


def test_the_config_operator_is_checked_too(staffed, tmp_path, monkeypatch):
    monkeypatch.delenv("COMMCARE_USER")
    (tmp_path / "commcare.toml").write_text('operator = "管理员"\n', encoding="utf-8")
    result = staffed("call", "log", "赵小宝", "--outcome", "ok")
    assert result.exit_code == 1 and "operator" in result.stderr
    assert due_names(staffed) == {"赵小宝"}


@pytest.mark.parametrize("name", ["", "   ", "x\x1b[31m", "王秀英\n李强"])
def test_an_empty_name_or_one_with_control_characters_is_bad_usage(staffed, name):
    result = staffed("--as", name, "call", "log", "赵小宝", "--outcome", "ok")
    assert result.exit_code == 2
    assert "--as" in result.stderr and "\x1b" not in result.stderr
    assert due_names(staffed) == {"赵小宝"}


def test_control_characters_in_commcare_user_are_bad_usage(staffed):
    result = staffed("call", "log", "赵小宝", "--outcome", "ok", env={"COMMCARE_USER": "王秀英\x07"})
    assert result.exit_code == 2 and "COMMCARE_USER" in result.stderr


def test_an_archived_staff_member_is_refused(staffed):
    assert staffed("staff", "edit", "李强", "--inactive").exit_code == 0
    result = staffed("--as", "李强", "call", "log", "赵小宝", "--outcome", "ok")
    assert result.exit_code == 1 and "李强" in result.stderr
    assert due_names(staffed) == {"赵小宝"}
    assert staffed("--as", "李强", "resident", "list", "--unmask").exit_code == 1


def test_unmask_by_a_stranger_is_refused_and_shows_nothing(staffed):
    result = staffed("--as", "某黑客", "resident", "list", "--unmask", "--format", "json")
    assert result.exit_code == 1 and result.stdout == ""
    assert staffed("--as", "某黑客", "resident", "show", "赵小宝", "--unmask").exit_code == 1
    assert staffed("--as", "某黑客", "staff", "list", "--unmask").exit_code == 1
    masked = staffed("--as", "某黑客", "resident", "list", "--format", "json")  # a read stays open
    assert masked.exit_code == 0 and "13700003333" not in masked.stdout


def test_a_real_staff_member_acts_and_is_recorded(staffed):
    assert staffed("--as", "李强", "call", "log", "赵小宝", "--outcome", "ok").exit_code == 0
    assert due_names(staffed) == set()
    last = json.loads(staffed("audit", "--format", "json").stdout)[0]
    assert last["actor"] == "李强"


def test_the_os_users_login_acts_when_nobody_is_named(staffed, monkeypatch):
    me = getpass.getuser()
    assert staffed("staff", "add", "陈明", "--login", me).exit_code == 0
    monkeypatch.delenv("COMMCARE_USER")
    assert staffed("call", "log", "赵小宝", "--outcome", "ok").exit_code == 0
    assert json.loads(staffed("audit", "--format", "json").stdout)[0]["actor"] == "陈明"


def test_nobody_named_and_an_unbound_os_user_is_refused(staffed, monkeypatch):
    monkeypatch.delenv("COMMCARE_USER")
    result = staffed("call", "log", "赵小宝", "--outcome", "ok")
    assert result.exit_code == 1 and "--as" in result.stderr
    assert due_names(staffed) == {"赵小宝"}


def test_a_login_is_bound_to_one_staff_member(staffed):
    assert staffed("staff", "add", "陈明", "--login", "chenming").exit_code == 0
    taken = staffed("staff", "add", "刘洋", "--login", "chenming")
    assert taken.exit_code == 1 and "chenming" in taken.stderr
    assert staffed("staff", "add", "刘洋", "--login", "bad login;").exit_code == 2
    # the login names the staff member too
    assert staffed("--as", "chenming", "call", "log", "赵小宝", "--outcome", "ok").exit_code == 0
    assert json.loads(staffed("audit", "--format", "json").stdout)[0]["actor"] == "陈明"


def test_until_the_first_staff_member_anyone_may_start_a_register(db_url, cli):
    assert cli("--as", "随便谁", "init", "--community", "幸福社区").exit_code == 0
    assert cli("--as", "随便谁", "staff", "add", "王秀英").exit_code == 0
    assert cli("--as", "随便谁", "staff", "add", "李强").exit_code == 1  # now there is staff


def test_staff_of_one_community_are_not_staff_of_another(staffed):
    assert staffed("community", "add", "和平社区").exit_code == 0
    # 和平社区 has no staff yet: a staff member of 幸福社区 starts it
    assert staffed("--community", "和平社区", "staff", "add", "周敏").exit_code == 0
    refused = staffed("--community", "和平社区", "resident", "add", "孙丽")
    assert refused.exit_code == 1 and "和平社区" in refused.stderr
    assert staffed("--as", "周敏", "--community", "和平社区", "resident", "add", "孙丽").exit_code == 0
    assert staffed("--as", "周敏", "--community", "default", "resident", "add", "孙丽").exit_code == 1


def test_an_id_number_of_another_community_is_refused_without_naming_its_holder(staffed):
    assert staffed("community", "add", "和平社区").exit_code == 0
    assert staffed("--community", "和平社区", "staff", "add", "周敏").exit_code == 0
    id_number = "11010519491231002X"
    assert (
        staffed(
            "--community", "和平社区", "--as", "周敏", "resident", "add", "钱秘密", "--id-number", id_number
        ).exit_code
        == 0
    )
    result = staffed("--community", "default", "resident", "add", "探子", "--id-number", id_number)
    assert result.exit_code == 1
    assert "id_number" in result.stderr and "another community" in result.stderr
    assert "钱秘密" not in result.stderr and "和平社区" not in result.stderr and "#" not in result.stderr
    same = staffed("--community", "和平社区", "--as", "周敏", "resident", "add", "钱二", "--id-number", id_number)
    assert same.exit_code == 1 and "钱秘密" in same.stderr  # within one community the staff may see it


def test_the_installed_command_refuses_commcare_user_admin(staffed, db_url):
    """The console script as a user runs it (a subprocess), with COMMCARE_USER=admin."""
    result = commcare("--db", db_url, "call", "log", "赵小宝", "--outcome", "ok", env={"COMMCARE_USER": "admin"})
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == (
        "commcare: COMMCARE_USER: admin is not an active staff member of default; "
        "a write or --unmask needs one (see commcare staff list)"
    )
    assert due_names(staffed) == {"赵小宝"}


def test_register_wide_writes_in_a_register_of_several_communities(staffed):
    """``community add``/``rename`` name no community in a register of several: any active
    staff member of the register may, a stranger may not."""
    assert staffed("community", "add", "和平社区").exit_code == 0
    assert staffed("community", "add", "阳光社区").exit_code == 0
    refused = staffed("--as", "某黑客", "community", "add", "暗影社区")
    assert refused.exit_code == 1 and "this register" in refused.stderr
    assert staffed("community", "rename", "阳光社区", "月光社区").exit_code == 0


def test_demo_cannot_slip_fictional_staff_into_a_real_register(db_url, cli):
    """A register with real staff and no residents yet: the demo would write into it (it has
    no real residents), so it is a write like any other, by a stranger refused."""
    assert cli("staff", "add", "王秀英").exit_code == 0
    result = cli("--as", "某黑客", "demo", "--residents", "5", "--requests", "0", "--days", "1")
    assert result.exit_code == 1 and "某黑客" in result.stderr
    staff = json.loads(cli("staff", "list", "--format", "json").stdout)
    assert [s["name"] for s in staff] == ["王秀英"]


def test_staff_grant_is_for_postgresql(cli):
    """A SQLite file has no roles: its access is the file's permissions (docs/security.md)."""
    assert cli("staff", "add", "王秀英").exit_code == 0
    result = cli("staff", "grant", "王秀英", "--login", "wangxy", "--role", "liaison")
    assert result.exit_code == 2 and result.stderr.startswith("commcare: --db:")
    assert len(result.stderr.splitlines()) == 1
