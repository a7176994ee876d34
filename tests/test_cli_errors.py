"""Bad input through the CLI: exit 2, one stderr line naming the field, nothing changed;
language selection; plain output when piped."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from usercli import EXE


@pytest.fixture
def one(db_url, cli):
    result = cli(
        "resident",
        "add",
        "张桂兰",
        "--phone",
        "13912345678",
        "--compound",
        "幸福小区",
        "--address",
        "3-2-101",
        "--tag",
        "老人",
    )
    assert result.exit_code == 0, result.stderr
    return cli


def shown(cli):
    return json.loads(cli("resident", "show", "张桂兰", "-f", "json").stdout)


@pytest.mark.parametrize(
    "args, field",
    [
        (["--name", ""], "name"),
        (["--name", "a\x00b"], "name"),
        (["--phone", "123"], "phone"),
        (["--id-number", "110105194912310021"], "id_number"),
        (["--born", "2026-02-30"], "born"),
        (["--tag", "martian"], "tag"),
        (["--add-tag", "martian"], "tag"),
        (["--sex", "?"], "sex"),
    ],
)
def test_a_bad_edit_is_exit_2_one_line_and_changes_nothing(one, args, field):
    before = shown(one)
    result = one("resident", "edit", "张桂兰", *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and "Traceback" not in result.stderr
    assert shown(one) == before


def test_unknown_resident_is_exit_1(one):
    result = one("resident", "edit", "李四", "--phone", "13912345679")
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1


def test_archive_needs_a_reason(one):
    result = one("resident", "archive", "张桂兰")
    assert result.exit_code == 2
    assert shown(one)["archived"] is False


@pytest.mark.parametrize("how", ["option", "env", "config"])
def test_language_by_option_env_or_config(one, how, monkeypatch):
    monkeypatch.setenv("COMMCARE_LANG", "en")
    args = ["resident", "show", "无此人"]
    if how == "option":
        args = ["--lang", "zh", *args]
    elif how == "env":
        monkeypatch.setenv("COMMCARE_LANG", "zh")
    else:
        monkeypatch.delenv("COMMCARE_LANG")
        with open(os.environ["COMMCARE_CONFIG"], "a", encoding="utf-8") as fh:
            fh.write('\nlang = "zh"\n')
    result = one(*args)
    assert result.exit_code == 1
    assert "找不到居民" in result.stderr


def test_piped_table_has_no_escape_codes_and_lines_up_chinese(db_url, tmp_path):
    env = {**os.environ, "COMMCARE_DB": db_url}
    env.pop("NO_COLOR", None)
    run = lambda *a: subprocess.run(
        [sys.executable, "-m", "commcare", *a], env=env, capture_output=True, text=True, check=True
    )
    run("resident", "add", "张桂兰", "--compound", "幸福小区", "--address", "1-101")
    run("resident", "add", "Bob", "--compound", "Happy", "--address", "2-202")
    out = run("resident", "list", "-f", "table").stdout
    assert "\x1b" not in out
    from rich.cells import cell_len

    lines = out.splitlines()
    starts = {cell_len(line[: line.index(word)]) for line, word in zip(lines, ["compound", "幸福小区", "Happy"])}
    assert len(starts) == 1, out


def test_a_newline_in_a_bad_value_cannot_split_the_error_line(cli):
    cli("init")  # the register exists: no first-run notice
    result = cli("resident", "add", "张三", "--emergency-contact", "0\nFAKE LINE\r")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "\\n" in result.stderr


def test_the_console_script_builds_only_the_command_named():
    import typer.main

    from commcare.cli import _only, app

    whole = typer.main.get_command(app)
    with _only(["--db", "x.db", "--as", "request", "request", "resolve", "7"]):
        narrow = typer.main.get_command(app)
    assert list(narrow.commands) == ["request"]
    assert list(narrow.commands["request"].commands) == ["resolve"]
    with _only(["request", "--help"]):
        group = typer.main.get_command(app).commands["request"]
    assert {"list", "show", "resolve", "note"} <= set(group.commands)
    with _only(["--help"]):
        assert set(typer.main.get_command(app).commands) == set(whole.commands)
    # and the app is whole again afterwards
    assert set(typer.main.get_command(app).commands) == set(whole.commands)
    assert len(whole.commands) > 10


@pytest.mark.parametrize(
    "args, suggestion",
    [
        (["reqest"], "'request'"),
        (["request", "lst"], "'list'"),
        (["--lang", "en", "resident", "ad"], "'add'"),
    ],
)
def test_a_misspelt_command_still_gets_suggestions_from_the_console_script(tmp_path, args, suggestion):
    exe = os.path.join(os.path.dirname(sys.executable), "commcare")
    result = subprocess.run([exe, "--db", str(tmp_path / "c.db"), *args], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert suggestion in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_help_for_one_sub_command_from_the_console_script(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "commcare")
    result = subprocess.run(
        [exe, "--db", str(tmp_path / "c.db"), "request", "resolve", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "--note" in result.stdout


@pytest.mark.parametrize(
    "args, zh, en",
    [
        (["add-request"], "缺少参数", "Missing argument"),
        (["request", "lst"], "没有这个命令", "No such command"),
        (["request", "list", "--limit", "abc"], "不是整数", "is not a valid int"),
        (["request", "list", "--bogus"], "没有这个选项", "No such option"),
        (["request", "show", "1", "2"], "多余的参数", "unexpected extra argument"),
    ],
)
def test_usage_errors_speak_the_users_language(tmp_path, args, zh, en):
    exe = os.path.join(os.path.dirname(sys.executable), "commcare")
    for lang, expected in (("zh", zh), ("en", en)):
        result = subprocess.run(
            [exe, "--db", str(tmp_path / "c.db"), "--lang", lang, *args], capture_output=True, text=True, check=False
        )
        assert result.returncode == 2
        assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


# At exit: a reference cycle dropped now, then enough allocations for a collection to run if
# the collector is on; prints whether the cycle was freed.
CYCLE_PROBE = """
import atexit, sys, weakref
class Cycle:
    pass
def probe():
    c = Cycle(); c.me = c; ref = weakref.ref(c); del c
    held = [[] for _ in range(20000)]  # containers that stay alive are what trigger a collection
    print("freed" if ref() is None else "kept")
atexit.register(probe)
from commcare.cli import main
sys.argv = ["commcare"] + sys.argv[1:]
main()
"""


def test_a_command_that_opened_the_database_frees_cyclic_garbage(tmp_path):
    """The console script starts without the garbage collector; once a command has opened its
    database the collector runs, so a long command (an import, the round) frees the reference
    cycles it drops. --help, which opens nothing, never starts it."""
    db = str(tmp_path / "c.db")
    subprocess.run([sys.executable, "-c", CYCLE_PROBE, "--db", db, "init"], capture_output=True, check=True)
    opened = subprocess.run(
        [sys.executable, "-c", CYCLE_PROBE, "--db", db, "request", "list"], capture_output=True, text=True, check=False
    )
    assert opened.returncode == 0 and opened.stdout.split()[-1] == "freed", opened.stderr
    helped = subprocess.run(
        [sys.executable, "-c", CYCLE_PROBE, "--db", db, "request", "list", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert helped.returncode == 0 and helped.stdout.split()[-1] == "kept"


# --- Ctrl-C and the failures that follow it ------------------------------------------------------


def test_a_rollback_that_fails_after_ctrl_c_is_reported_as_the_interruption(capsys):
    """On PostgreSQL a Ctrl-C in the middle of an executemany leaves psycopg's pipeline busy;
    the rollback on the way out then fails, and that failure (an OperationalError raised while
    the interrupt was handled) was reported as "cannot reach the database server", exit 3."""
    from sqlalchemy.exc import OperationalError

    from commcare.cli import run_guarded

    def interrupted_then_rollback_fails():
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise OperationalError("ROLLBACK", {}, Exception("cannot exit pipeline mode while busy"))

    assert run_guarded(interrupted_then_rollback_fails) == 130
    assert capsys.readouterr().err == ""


def test_a_database_failure_on_its_own_is_still_exit_3(capsys):
    from sqlalchemy.exc import OperationalError

    from commcare.cli import run_guarded

    def fails():
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    assert run_guarded(fails) == 3
    err = capsys.readouterr().err
    assert err.startswith("commcare: ") and len(err.splitlines()) == 1 and "Traceback" not in err


def test_ctrl_c_while_the_rejected_rows_are_listed_exits_130(monkeypatch):
    """A rejected import lists every bad row; a Ctrl-C in the middle of a long list raised out
    of the error boundary itself (a traceback, and the process killed by SIGINT)."""
    from commcare.cli import run_guarded
    from commcare.errors import ImportRejected

    class Terminal:
        lines = 0

        def write(self, text):
            self.lines += 1
            if self.lines == 3:
                raise KeyboardInterrupt

    monkeypatch.setattr(sys, "stderr", Terminal())

    def rejected():
        raise ImportRejected(
            "roster.rejected", problems=[f"row {n}: phone: not a phone number" for n in range(2, 9)], count=7
        )

    try:
        code = run_guarded(rejected)
    except KeyboardInterrupt:
        pytest.fail("the Ctrl-C escaped the error boundary")
    assert code == 130


@pytest.mark.parametrize("debug", [False, True])
def test_what_the_drivers_log_after_a_failure_stays_off_standard_error(tmp_path, debug):
    """psycopg logs "error ignored terminating <psycopg.Pipeline …>" and SQLAlchemy's pool
    "Exception during reset or similar" (with a traceback) after an interrupted insert; with
    no logging set up, Python printed them under the user's line. Only COMMCARE_DEBUG=1 shows
    them now."""
    script = (
        "import logging, sys\n"
        "from commcare.db import make_engine\n"
        f"make_engine({str(tmp_path / 'x.db')!r})\n"
        "logging.getLogger('psycopg').warning('error ignored terminating <psycopg.Pipeline>')\n"
        "try:\n"
        "    raise RuntimeError('cannot exit pipeline mode while busy')\n"
        "except RuntimeError:\n"
        "    logging.getLogger('sqlalchemy.pool.impl.NullPool').error('Exception during reset or similar', exc_info=True)\n"
    )
    env = {**os.environ, "COMMCARE_DEBUG": "1" if debug else "0"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0
    if debug:
        assert "error ignored terminating" in result.stderr and "Traceback" in result.stderr
    else:
        assert result.stderr == ""


@pytest.mark.parametrize(
    "args, field",
    [(["resident", "add"], "「姓名」"), (["add-request"], "「居民」"), (["request", "resolve"], "「求助编号」")],
)
def test_a_missing_argument_is_named_as_the_field_it_is(tmp_path, args, field):
    exe = os.path.join(os.path.dirname(sys.executable), "commcare")
    result = subprocess.run(
        [exe, "--db", str(tmp_path / "c.db"), "--lang", "zh", *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"commcare: 缺少参数 {field}。", result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["call", "due"],
        ["report", "today", "--format", "json"],
        ["report", "today", "--all-communities"],
        ["report", "day", "2026-05-08"],
        ["report", "week"],
        ["call", "round"],
        ["audit", "verify"],
    ],
)
def test_who_is_due_or_missed_is_never_read_from_a_register_that_is_not_there(tmp_path, args):
    """A mistyped --db or a drive not mounted must not read as an empty register with nobody
    due or missed (exit 0): the command names the path and ``init``, and leaves no file or
    folder. (A list of a new file stays an empty list: tests/test_communities.py.)"""
    missing = tmp_path / "not-mounted" / "commcare.db"
    env = {**os.environ, "COMMCARE_DB": str(missing), "COMMCARE_LANG": "en"}
    done = subprocess.run([EXE, *args], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 3, (done.returncode, done.stderr)
    assert done.stderr.count("\n") == 1 and str(missing) in done.stderr and "commcare init" in done.stderr
    assert done.stdout == "" and not missing.parent.exists()


def test_a_write_still_makes_a_new_register_and_says_so(tmp_path):
    fresh = tmp_path / "new" / "commcare.db"
    env = {**os.environ, "COMMCARE_DB": str(fresh), "COMMCARE_LANG": "en"}
    done = subprocess.run([EXE, "staff", "add", "王秀英"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and fresh.exists() and "created a new register" in done.stderr, done.stderr
