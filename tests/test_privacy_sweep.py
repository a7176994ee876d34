"""Every command found in the Typer app at test time: the ones that list or report (take --format
and need no argument) never show a seeded phone or ID number in any format."""

from __future__ import annotations

import pytest

PHONE, ID_NUMBER, CONTACT = "13912345678", "11010519491231002X", "13600002222"
ALLOWED = {("call", "due")}  # the contract lets the round see the number to call
SIDE_EFFECTS = {("schedule", "install"), ("schedule", "run"), ("demo",)}  # a crontab, files, another database


def leaves() -> dict[tuple[str, ...], object]:
    """Every leaf command of the app, by its path."""
    from typer.main import get_command

    from commcare.cli import app

    found = {}

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, path + (name,))
            return
        found[path] = cmd

    walk(get_command(app), ())
    return found


def options(cmd) -> set[str]:
    return {opt for p in cmd.params for opt in getattr(p, "opts", [])}


def listing_commands() -> list[tuple[str, ...]]:
    return sorted(
        path
        for path, cmd in leaves().items()
        if "--format" in options(cmd) and not any(p.required for p in cmd.params) and path not in ALLOWED | SIDE_EFFECTS
    )


# Commands that need arguments, each run below with every format against the seeded register.
WITH_ARGS = {
    ("resident", "show"): ["resident", "show", "#1"],
    ("request", "show"): ["request", "show", "1"],
    ("report", "day"): ["report", "day", "2026-05-08"],
    ("report", "range"): ["report", "range", "--from", "2026-05-01", "--to", "2026-05-08"],
}
# Commands that write: their confirmations are checked as the register is seeded (seed_all).
WRITES = {
    ("add-request",),
    ("resident", "add"),
    ("resident", "edit"),
    ("staff", "add"),
    ("call", "log"),
    ("health", "log"),
    ("donation", "add"),
    ("directory", "add"),
    ("request", "assign"),
    ("request", "start"),
    ("request", "resolve"),
    ("request", "cancel"),
    ("request", "reopen"),
    ("request", "note"),
    ("resident", "archive"),
    ("resident", "unarchive"),
    ("staff", "edit"),
    ("household", "assign"),
    ("community", "add"),
    ("community", "rename"),
}
# Commands that print no resident data: set-up, files in and out (exports are in
# test_privacy.py), the database, the interactive round (it shows the number to call).
NO_RESIDENT_OUTPUT = {
    ("init",),
    ("demo",),
    ("schedule", "install"),
    ("schedule", "show"),
    ("schedule", "remove"),
    ("db", "path"),
    ("db", "backup"),
    ("db", "restore"),
    ("db", "check"),
    ("db", "upgrade"),
    ("audit", "verify"),
    ("retention", "run"),
    ("resident", "import"),
    ("resident", "export"),
    ("resident", "merge"),
    ("directory", "import"),
    ("call", "round"),
    ("staff", "grant"),  # PostgreSQL: prints the staff member, the login and its communities
}


def test_every_command_is_swept_or_accounted_for():
    """A new command fails this test until it is put in the sweep or said to show no data."""
    known = set(listing_commands()) | set(WITH_ARGS) | WRITES | NO_RESIDENT_OUTPUT | ALLOWED | SIDE_EFFECTS
    assert sorted(set(leaves()) - known) == []


def test_the_sweep_finds_the_lists_and_reports():
    found = listing_commands()
    assert ("resident", "list") in found and ("staff", "list") in found


@pytest.fixture
def seeded(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("COMMCARE_CRONTAB", str(tmp_path / "crontab"))
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
        "--address",
        "1-101",
        "--emergency-contact",
        f"李明 {CONTACT}",
    )
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


SECRETS = (PHONE, ID_NUMBER, CONTACT, "13800001111")


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown", "html"])
@pytest.mark.parametrize("path", sorted(WITH_ARGS), ids=" ".join)
def test_commands_with_arguments_show_only_what_the_contract_allows(seeded, path, fmt, tmp_path):
    result = seeded(*WITH_ARGS[path], "--format", fmt)
    if fmt == "html" and result.exit_code == 2:
        return  # only reports offer html
    assert result.exit_code == 0, result.stderr
    allowed = {PHONE, CONTACT} if path == ("resident", "show") else set()
    for secret in set(SECRETS) - allowed:
        assert secret not in result.stdout and secret not in result.stderr, (path, secret)


@pytest.mark.parametrize("fmt", ["json", "csv", "markdown", "html"])
def test_files_written_with_output_are_masked(seeded, tmp_path, fmt):
    for path, cmd in leaves().items():
        if "--output" not in options(cmd) or path in ALLOWED or any(p.required for p in cmd.params):
            continue
        out = tmp_path / ("-".join(path) + "." + fmt)
        result = seeded(*path, "--format", fmt, "--output", out)
        if result.exit_code == 2:
            continue  # the command does not offer this format
        assert result.exit_code == 0, (path, result.stderr)
        data = out.read_bytes().decode("utf-8-sig") if out.exists() else ""
        for secret in SECRETS:
            assert secret not in data, (path, fmt, secret)


def test_confirmations_of_writes_are_masked(seeded):
    """What the writing commands print, in table and JSON form, as a worker would run them."""
    runs = [
        ["resident", "add", "刘建国", "--phone", "13700009999", "--id-number", "110105194912310046"],
        ["resident", "edit", "#1", "--note", "复诊"],
        ["staff", "add", "李华", "--phone", "13700008888"],
        ["add-request", PHONE, "-c", "trash"],
        ["call", "log", PHONE, "--outcome", "ok"],
        ["request", "assign", "1", "王秀英"],
        ["request", "note", "1", "已联系"],
    ]
    for args in runs:
        for fmt in ("table", "json"):
            result = seeded(*args, "--format", fmt) if args[1] != "note" else seeded(*args)
            assert result.exit_code in (0, 1), (args, result.stderr)
            for secret in SECRETS + ("13700009999", "110105194912310046", "13700008888"):
                assert secret not in result.stdout and secret not in result.stderr, (args, secret)
            if args[1] == "note":
                break


def test_every_unmask_option_is_audited(seeded, tmp_path):
    """Each command that offers --unmask records one audit entry each time it is used."""
    import json

    def unmasks() -> int:
        rows = json.loads(seeded("audit", "--format", "json").stdout)
        return sum(1 for r in rows if "unmask" in r["action"])

    for path, cmd in sorted(leaves().items()):
        if "--unmask" not in options(cmd):
            continue
        args = WITH_ARGS.get(path, list(path))
        if "--output" in options(cmd):
            args = args + ["--output", tmp_path / ("-".join(path) + ".out")]
        before = unmasks()
        assert seeded(*args, "--unmask").exit_code == 0, path
        assert unmasks() == before + 1, path
