"""Stored text never acts on the terminal or the reader's Markdown (the contract's *Output
files*: "terminal control characters in stored text are shown escaped; Markdown output
escapes HTML"), through the installed ``commcare`` as a user runs it. Names with control
characters are refused (exit 2); text already stored with them — a note, or a name an older
version or a direct import let in — is shown escaped in every table, ``resident show``, the
round's cards and the messages; Markdown escapes its HTML and links."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3

import pytest
from usercli import commcare, ok

ESC_NOTE = "行动不便\x1b[2J\x1b]0;pwned\x07\x9b31m红"  # clear screen, retitle the window, C1 CSI
RICH_NOTE = "[/bold] [red]x[/red] [link=http://evil.example]点我[/link]"
HTML = "<script>alert('x')</script><img src=x onerror=alert(1)> & [点我](javascript:alert(1))"
RAW = ("\x1b", "\x07", "\x9b")


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A register whose stored text carries escapes and HTML: notes through the command line
    (notes take any text), names and a compound written straight into the file as an older
    version or a hand-edited import could have left them. Built once for the module."""
    folder = tmp_path_factory.mktemp("stored")
    env = {
        "COMMCARE_DB": str(folder / "commcare.db"),
        "COMMCARE_CONFIG": str(folder / "commcare.toml"),
        "COMMCARE_AUDIT_KEY": str(folder / "audit.key"),
        "XDG_DATA_HOME": str(folder / "xdg-data"),
        "COMMCARE_LANG": "en",
        "COMMCARE_USER": "王秀英",
        "NO_COLOR": "1",
    }
    run = lambda *args: ok(*args, env=env)
    run("init")
    run("staff", "add", "王秀英")
    run(
        "resident",
        "add",
        "张桂兰",
        "--phone",
        "13912345678",
        "--tag",
        "elderly",
        "--liaison",
        "王秀英",
        "--compound",
        "幸福小区",
        "--address",
        "1-101",
        "--note",
        ESC_NOTE,
    )
    run(
        "resident",
        "add",
        "刘建国",
        "--tag",
        "elderly",
        "--note",
        RICH_NOTE,
        "--compound",
        "幸福小区",
        "--address",
        "1-102",
        "--liaison",
        "王秀英",
    )
    run("resident", "add", "陈明", "--tag", "elderly", "--note", HTML)
    run("add-request", "张桂兰", "--category", "groceries", "--note", ESC_NOTE + HTML)
    run("call", "log", "刘建国", "--outcome", "no-answer", "--note", ESC_NOTE)
    run("donation", "add", "超市", "--item", "<b>矿泉水</b>:5:箱")
    conn = sqlite3.connect(folder / "commcare.db")
    with conn:
        conn.execute("UPDATE residents SET name = ? WHERE name = '陈明'", ("陈\x1b[31m明<i>",))
        conn.execute("UPDATE households SET compound = ? WHERE compound = '幸福小区'", ("幸福\x1b]0;x\x07小区",))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # all of it in the one file the tests copy
    conn.close()
    return folder / "commcare.db"


@pytest.fixture
def register(stored, tmp_path):
    """This test's copy of the stored register (COMMCARE_DB points at it)."""
    shutil.copyfile(stored, tmp_path / "commcare.db")
    os.chmod(tmp_path / "commcare.db", 0o600)
    shutil.copyfile(stored.parent / "audit.key", tmp_path / "audit.key")  # its audit trail's key
    os.chmod(tmp_path / "audit.key", 0o600)
    return tmp_path / "commcare.db"


def assert_no_raw_controls(text: str) -> None:
    for ch in RAW:
        assert ch not in text, repr(text[:400])


TERMINAL = [
    ("resident", "show", "张桂兰"),
    ("resident", "show", "刘建国"),
    ("resident", "show", "#3"),
    ("resident", "list"),
    ("call", "due"),
    ("call", "list"),
    ("request", "show", "1"),
    ("request", "list"),
    ("household", "list"),
    ("report", "today"),
    ("report", "week"),
    ("audit",),
    ("donation", "list"),
]


@pytest.mark.parametrize("args", TERMINAL, ids=" ".join)
def test_stored_escapes_are_shown_escaped_in_tables(register, args):
    result = commcare(*args)
    assert result.returncode == 0, result.stderr
    assert_no_raw_controls(result.stdout + result.stderr)


def test_resident_show_shows_the_note_literally(register):
    shown = ok("resident", "show", "张桂兰").stdout
    assert "行动不便\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m红" in shown
    rich = ok("resident", "show", "刘建国").stdout  # was "internal error (MarkupError)"
    assert RICH_NOTE in rich
    assert "幸福\\x1b]0;x\\x07小区" in ok("resident", "list").stdout
    assert "陈\\x1b[31m明<i>" in ok("call", "due").stdout


def test_json_keeps_the_stored_text_as_it_is(register):
    """Escaping is for eyes: scripts get the text as stored (JSON escapes it its own way)."""
    assert json.loads(ok("resident", "show", "张桂兰", "-f", "json").stdout)["note"] == ESC_NOTE
    assert json.loads(ok("resident", "show", "刘建国", "-f", "json").stdout)["note"] == RICH_NOTE


@pytest.mark.parametrize(
    "args",
    [
        ("resident", "list"),
        ("request", "list"),
        ("call", "list"),
        ("call", "due"),
        ("donation", "list"),
        ("household", "list"),
        ("report", "today"),
        ("report", "week"),
        ("resident", "show", "陈明"),
        ("request", "show", "1"),
    ],
    ids=" ".join,
)
def test_markdown_escapes_html_links_and_controls(register, args):
    args = tuple("#3" if a == "陈明" else a for a in args)
    text = ok(*args, "--format", "markdown").stdout
    assert "<script>" not in text and "<img" not in text and "<b>" not in text and "<i>" not in text
    assert_no_raw_controls(text)
    if args[:2] in (("resident", "list"), ("call", "due"), ("report", "today")):
        assert "&lt;i&gt;" in text  # the name written in by hand
    if args[:2] in (("request", "show"),):
        assert "&lt;script&gt;alert('x')&lt;/script&gt;" in text and "\\[点我\\](javascript" in text
    if args[:2] == ("donation", "list"):
        assert "&lt;b&gt;矿泉水&lt;/b&gt;" in text


def test_markdown_report_written_for_cron_escapes_html(register, tmp_path):
    ok("report", "today", "--format", "markdown", "--output", tmp_path / "r.md")
    text = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "<i>" not in text
    assert "陈\\x1b\\[31m明&lt;i&gt;" in text  # ESC shown escaped, the bracket too (no link)


@pytest.mark.parametrize("args", [("report", "today"), ("report", "week"), ("resident", "list")], ids=" ".join)
def test_html_escapes_stored_text(register, args):
    if args[0] == "resident":
        args = ("report", "today", "--all-communities")
    html = ok(*args, "--format", "html").stdout
    assert "<i>" not in html and "<script>" not in html and "<b>矿泉水" not in html
    assert_no_raw_controls(html)
    if args == ("report", "today"):
        assert "陈\\x1b[31m明&lt;i&gt;" in html and "&lt;b&gt;矿泉水&lt;/b&gt;" in html


@pytest.mark.parametrize(
    "args",
    [
        ("resident", "add", "张\x1b[31m三"),
        ("staff", "add", "王\x07五"),
        ("resident", "add", "李四", "--emergency-contact", "李\x1bM明 13912340000"),
        ("donation", "add", "超\x9b市", "--item", "水:1"),
        ("directory", "add", "医\x1b院", "--phone", "12345", "--kind", "hospital"),
        ("community", "add", "社\x1b区"),
        ("resident", "edit", "张桂兰", "--name", "张\x1b桂兰"),
    ],
    ids=lambda a: a[0],
)
def test_names_with_control_characters_are_refused(register, args):
    result = commcare(*args)
    assert result.returncode == 2, result.stderr
    assert "control characters" in result.stderr
    assert_no_raw_controls(result.stderr)


def test_messages_quoting_stored_names_escape_them(register):
    result = ok("resident", "archive", "#3", "--reason", "搬走")
    assert "陈\\x1b[31m明<i>" in result.stdout
    assert_no_raw_controls(result.stdout)


def test_the_round_shows_stored_escapes_escaped(register):
    """Every card of the round: the residents' compound and the last call's note, as stored."""
    result = commcare("call", "round", input="s\ns\ns\nq\n")
    assert result.returncode == 0, result.stderr
    assert_no_raw_controls(result.stdout + result.stderr)
    assert "幸福\\x1b]0;x\\x07小区" in result.stderr and "陈\\x1b[31m明<i>" in result.stderr
    assert "行动不便\\x1b[2J" in result.stderr  # 刘建国's last call's note
