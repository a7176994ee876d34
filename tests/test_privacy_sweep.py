"""Every command found in the Typer app at test time: the ones that list or report (take --format
and need no argument) never show a seeded phone or ID number in any format."""

from __future__ import annotations

import pytest

PHONE, ID_NUMBER, CONTACT = "13912345678", "11010519491231002X", "13600002222"
ALLOWED = {("call", "due")}  # the contract lets the round see the number to call
SIDE_EFFECTS = {("schedule", "install"), ("demo",)}  # touch a crontab / another database


def listing_commands() -> list[tuple[str, ...]]:
    from typer.main import get_command

    from commcare.cli import app

    found = []

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, path + (name,))
            return
        names = {opt for p in cmd.params for opt in getattr(p, "opts", [])}
        required = [p for p in cmd.params if p.required]
        if "--format" in names and not required and path not in ALLOWED | SIDE_EFFECTS:
            found.append(path)

    walk(get_command(app), ())
    return sorted(found)


def test_the_sweep_finds_the_lists_and_reports():
    found = listing_commands()
    assert ("resident", "list") in found and ("staff", "list") in found


@pytest.fixture
def seeded(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("COMMCARE_CRONTAB", str(tmp_path / "crontab"))
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-08T09:00:00+08:00")
    cli("staff", "add", "王秀英", "--phone", "13800001111")
    cli("resident", "add", "张桂兰", "--phone", PHONE, "--id-number", ID_NUMBER,
        "--address", "1-101", "--emergency-contact", f"李明 {CONTACT}")
    cli("add-request", PHONE, "-c", "medicine", "--note", "降压药")
    return cli


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown"])
def test_no_discovered_listing_shows_full_numbers(seeded, fmt):
    for command in listing_commands():
        result = seeded(*command, "--format", fmt)
        if result.exit_code == 2 and "format" in result.stderr.lower():
            continue  # the command does not offer this format
        for secret in (PHONE, ID_NUMBER, CONTACT, "13800001111"):
            assert secret not in result.stdout, command
            assert secret not in result.stderr, command
