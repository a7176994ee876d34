"""``--output FILE`` and ``--output-dir DIR`` (the contract's *Output files*), through the
installed ``commcare`` as a user runs it: an existing file is refused without ``--force``,
a symbolic link is never followed, the database in use is never written over, and every
file written is 0600."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess

import pytest
from usercli import EXE, commcare, ok

# Every command that takes --output, with what it needs to run.
OUTPUT_COMMANDS = [
    ("resident", "list"),
    ("resident", "list", "--format", "csv"),
    ("household", "list"),
    ("staff", "list"),
    ("audit",),
    ("request", "list"),
    ("call", "due"),
    ("call", "due", "--format", "json"),
    ("call", "due", "--format", "csv"),
    ("call", "list"),
    ("health", "due"),
    ("health", "list"),
    ("donation", "list"),
    ("donation", "list", "--format", "json"),
    ("directory", "list"),
    ("report", "today"),
    ("report", "day", "2026-05-08"),
    ("report", "week"),
    ("report", "range", "--from", "2026-05-01", "--to", "2026-05-08"),
    ("report", "today", "--all-communities"),
    ("resident", "export"),
    ("resident", "export", "--format", "xlsx"),
]


@pytest.fixture
def register(tmp_path):
    """A register with one resident, under tmp_path (COMMCARE_DB points at it)."""
    ok("init")
    ok("resident", "add", "张桂兰", "--phone", "13912345678", "--tag", "elderly")
    return tmp_path / "commcare.db"


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_every_command_with_output_has_force():
    """No command offers --output without --force (the Click tree, as the user's --help)."""
    import typer.main

    from commcare.cli import app

    def walk(command, path=()):
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, (*path, name))
        if any("--output" in p.opts for p in command.params):
            yield path, {o for p in command.params for o in p.opts}

    found = list(walk(typer.main.get_command(app)))
    assert len(found) >= 15
    for path, options in found:
        assert "--force" in options, path


@pytest.mark.parametrize("args", OUTPUT_COMMANDS, ids=" ".join)
def test_existing_file_refused_then_replaced_with_force(register, tmp_path, args):
    target = tmp_path / "out.file"
    target.write_text("keep me\n")
    os.chmod(target, 0o666)
    refused = commcare(*args, "--output", target)
    assert refused.returncode == 1, refused.stderr
    assert "--force" in refused.stderr and "Traceback" not in refused.stderr
    assert target.read_text() == "keep me\n" and mode(target) == 0o666
    ok(*args, "--output", target, "--force")
    assert target.read_bytes() != b"keep me\n"
    assert mode(target) == 0o600


@pytest.mark.parametrize("args", OUTPUT_COMMANDS, ids=" ".join)
def test_new_file_is_0600_whatever_the_umask(register, tmp_path, args):
    target = tmp_path / "new.file"
    subprocess.run(
        ["sh", "-c", 'umask 000 && exec "$@"', "sh", EXE, *args, "--output", str(target)],
        check=True,
        capture_output=True,
    )
    assert mode(target) == 0o600
    assert target.stat().st_size > 0
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize(
    "args",
    [("resident", "list"), ("report", "today"), ("audit",), ("resident", "export"), ("call", "due")],
    ids=" ".join,
)
def test_symlink_never_followed_even_with_force(register, tmp_path, args):
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not yours\n")
    os.chmod(elsewhere, 0o644)
    link = tmp_path / "link.out"
    link.symlink_to(elsewhere)
    dangling = tmp_path / "dangling.out"
    dangling.symlink_to(tmp_path / "would-be-created.txt")
    for force in ((), ("--force",)):
        for path in (link, dangling):
            result = commcare(*args, "--output", path, *force)
            assert result.returncode == 1, result.stderr
            assert "symbolic link" in result.stderr
            assert os.path.islink(path)
    assert elsewhere.read_text() == "not yours\n" and mode(elsewhere) == 0o644
    assert not (tmp_path / "would-be-created.txt").exists()


def _register_intact(db) -> None:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT name FROM residents").fetchall() == [("张桂兰",)]
    assert "张桂兰" in ok("resident", "list").stdout


@pytest.mark.parametrize(
    "args",
    [
        ("report", "today"),
        ("resident", "list"),
        ("audit",),
        ("resident", "export", "--unmask"),
        ("call", "due", "--format", "json"),
    ],
    ids=" ".join,
)
def test_database_in_use_never_written(register, tmp_path, args):
    db = register
    (tmp_path / "sub").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path, target_is_directory=True)
    os.link(db, tmp_path / "hard.db")
    before = db.read_bytes()
    names = [
        db,
        f"{db}-wal",
        f"{db}-shm",
        tmp_path / "sub" / ".." / "commcare.db",
        tmp_path / "alias" / "commcare.db",
        tmp_path / "hard.db",
    ]
    for name in names:
        for force in ((), ("--force",)):
            result = commcare(*args, "--output", name, *force)
            assert result.returncode == 1, (name, result.stderr)
            assert "database in use" in result.stderr
    relative = commcare(*args, "--output", "commcare.db", "--force", cwd=tmp_path)
    assert relative.returncode == 1 and "database in use" in relative.stderr
    assert db.read_bytes() == before
    _register_intact(db)


def test_database_named_by_url_is_protected(register, tmp_path):
    db = register
    result = commcare("--db", f"sqlite:///{db}", "report", "today", "--output", db, "--force")
    assert result.returncode == 1 and "database in use" in result.stderr
    _register_intact(db)


def test_not_a_regular_file_refused(register, tmp_path):
    (tmp_path / "adir").mkdir()
    result = commcare("report", "today", "--output", tmp_path / "adir", "--force")
    assert result.returncode == 1 and "not a regular file" in result.stderr
    missing = commcare("report", "today", "--output", tmp_path / "nowhere" / "r.md")
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_stale_temporary_of_a_killed_run_is_removed(register, tmp_path):
    stale = tmp_path / ".r.md.tmp-4194000"  # above the kernel's pid_max on this machine
    stale.write_text("张桂兰 13912345678")
    mine = tmp_path / ".other.md.tmp-4194000"
    mine.write_text("x")
    ok("report", "today", "--output", tmp_path / "r.md")
    assert not stale.exists() and mine.exists()


# --- --output-dir ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "ext"), [("markdown", "md"), ("html", "html"), ("json", "json"), ("csv", "csv"), ("table", "txt")]
)
def test_output_dir_names_the_file_by_report_date_and_format(register, tmp_path, fmt, ext):
    # 23:30 UTC on the 8th is the 9th in Shanghai (the default zone): the file says the 9th
    env = {"COMMCARE_NOW": "2026-05-08T23:30:00+00:00"}
    folder = tmp_path / "reports" / "daily"
    ok("report", "today", "--format", fmt, "--output-dir", folder, env=env)
    written = folder / f"2026-05-09.{ext}"
    assert [p.name for p in folder.iterdir()] == [written.name]
    assert mode(written) == 0o600 and mode(folder) == 0o700
    if fmt == "json":
        assert json.loads(written.read_text())["date"] == "2026-05-09"
    again = commcare("report", "today", "--format", fmt, "--output-dir", folder, env=env)
    assert again.returncode == 1 and "--force" in again.stderr
    written.write_text("old")
    os.chmod(written, 0o666)
    ok("report", "today", "--format", fmt, "--output-dir", folder, "--force", env=env)
    assert written.read_text() != "old" and mode(written) == 0o600


def test_output_dir_date_in_commcare_tz(register, tmp_path):
    env = {"COMMCARE_NOW": "2026-05-08T23:30:00+00:00", "COMMCARE_TZ": "UTC"}
    ok("report", "today", "--format", "markdown", "--output-dir", tmp_path / "r", env=env)
    assert (tmp_path / "r" / "2026-05-08.md").exists()
    ok("report", "today", "--all-communities", "--format", "json", "--output-dir", tmp_path / "all", env=env)
    assert json.loads((tmp_path / "all" / "2026-05-08.json").read_text())["date"] == "2026-05-08"


def test_output_dir_for_day_week_and_range(register, tmp_path):
    folder = tmp_path / "r"
    ok("report", "day", "2026-05-03", "--format", "json", "--output-dir", folder)
    ok("report", "week", "--date", "2026-05-07", "--format", "html", "--output-dir", folder)
    ok("report", "range", "--from", "2026-04-01", "--to", "2026-04-30", "--format", "csv", "--output-dir", folder)
    assert sorted(p.name for p in folder.iterdir()) == ["2026-04-30.csv", "2026-05-03.json", "2026-05-07.html"]


def test_output_dir_refusals(register, tmp_path):
    both = commcare("report", "today", "--output", tmp_path / "a.md", "--output-dir", tmp_path)
    assert both.returncode == 2 and "not both" in both.stderr
    (tmp_path / "plain").write_text("")
    not_dir = commcare("report", "today", "--output-dir", tmp_path / "plain")
    assert not_dir.returncode == 2 and "not a directory" in not_dir.stderr
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "2026-05-08.md").symlink_to(register)
    env = {"COMMCARE_NOW": "2026-05-08T12:00:00+08:00"}
    linked = commcare("report", "today", "--format", "markdown", "--output-dir", tmp_path / "r", "--force", env=env)
    assert linked.returncode == 1 and "symbolic link" in linked.stderr
    _register_intact(register)


def test_output_dir_is_in_help():
    for command in ("today", "day", "week", "range"):
        text = ok("report", command, "--help", env={"COLUMNS": "200"}).stdout
        assert "--output-dir" in text and "--force" in text


@pytest.mark.parametrize(
    "args",
    [("resident", "list", "--unmask"), ("staff", "list", "--unmask"), ("resident", "export", "--unmask")],
    ids=" ".join,
)
def test_refused_output_records_no_unmask(register, tmp_path, args):
    """A command refused for its file has done nothing: no "unmask" entry in the audit trail."""
    target = tmp_path / "taken.csv"
    target.write_text("")
    before = ok("audit", "--format", "json").stdout
    assert commcare(*args, "--output", target).returncode == 1
    assert ok("audit", "--format", "json").stdout == before
