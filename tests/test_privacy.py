"""Privacy sweep: known phone and ID numbers appear in full only where the contract allows."""

from __future__ import annotations

import pytest

PHONE, ID_NUMBER, CONTACT = "13912345678", "11010519491231002X", "13600002222"
FORMATS = ["table", "json", "csv", "markdown"]
MASKED = [
    ["resident", "list"],
    ["resident", "list", "--search", "zgl"],
    ["staff", "list"],
    ["audit"],
    ["request", "list", "--status", "all"],
    ["request", "show", "1"],
    ["household", "list"],
    ["report", "today"],
    ["report", "week"],
    ["donation", "list"],
    ["call", "list"],
    ["health", "due"],
    ["resident", "duplicates"],
    ["config", "show"],
]


@pytest.fixture
def seeded(cli, monkeypatch):
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-08T09:00:00+08:00")
    cli("staff", "add", "王秀英", "--phone", "13800001111")
    cli(
        "resident",
        "add",
        "张桂兰",
        "--phone",
        PHONE,
        "--id-number",
        ID_NUMBER,
        "--tag",
        "老人",
        "--compound",
        "幸福小区",
        "--address",
        "1-101",
        "--liaison",
        "王秀英",
        "--emergency-contact",
        f"李明 {CONTACT}",
    )
    cli("add-request", PHONE, "-c", "medicine", "--note", "降压药")
    cli("call", "log", PHONE, "--outcome", "no-answer")
    cli("call", "log", PHONE, "--outcome", "no-answer")
    return cli


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("command", MASKED, ids=lambda c: " ".join(c))
def test_lists_reports_and_logs_never_show_full_numbers(seeded, command, fmt):
    result = seeded(*command, "--format", fmt)
    assert result.exit_code == 0, result.stderr
    for secret in (PHONE, ID_NUMBER, CONTACT, "13800001111"):
        assert secret not in result.stdout and secret not in result.stderr


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_exports_are_masked(seeded, tmp_path, fmt):
    out = tmp_path / f"e.{fmt}"
    assert seeded("resident", "export", "-f", fmt, "-o", out).exit_code == 0
    data = out.read_bytes().decode("utf-8-sig")
    assert PHONE not in data and ID_NUMBER not in data and CONTACT not in data


def test_where_the_contract_allows_full_numbers(seeded):
    assert PHONE in seeded("resident", "show", "张桂兰").stdout
    assert ID_NUMBER not in seeded("resident", "show", "张桂兰").stdout
    due = seeded("call", "due", "--format", "json").stdout
    assert PHONE in due and CONTACT in due  # escalated: the emergency contact is needed


def test_every_unmask_is_in_the_audit_trail(seeded, tmp_path):
    before = seeded("audit", "--format", "json").stdout.count('"unmask"')
    assert ID_NUMBER in seeded("resident", "list", "--unmask").stdout
    assert ID_NUMBER in seeded("resident", "show", "1", "--unmask").stdout
    seeded("resident", "export", "--unmask", "-o", tmp_path / "x.csv")
    assert seeded("audit", "--format", "json").stdout.count('"unmask"') == before + 3
