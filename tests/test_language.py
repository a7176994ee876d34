"""Chinese end to end: the default language, help, displayed values, option words, exports,
and a message catalogue that cannot rot (issue 17)."""

from __future__ import annotations

import ast
import csv
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from usercli import EXE, commcare, ok

ROOT = Path(__file__).resolve().parent.parent
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
ASCII_WORD = re.compile(r"[A-Za-z]+")


def cjk_ratio(text: str) -> float:
    """Chinese characters against Chinese characters and English words together."""
    cjk = len(CJK.findall(text))
    words = len(ASCII_WORD.findall(text))
    return cjk / (cjk + words) if cjk + words else 1.0


def zh_env(**extra) -> dict:
    """No language asked for, a C locale (cron's): the default. Empty means unset to commcare."""
    return {"COMMCARE_LANG": "", "LC_ALL": "", "LC_MESSAGES": "", "LANG": "C", **extra}


# --- the default language ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "lang"),
    [
        ({"LANG": "C"}, "zh"),
        ({"LANG": "POSIX"}, "zh"),
        ({"LANG": "C.UTF-8"}, "zh"),
        ({}, "zh"),
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "zh_CN.UTF-8", "LC_ALL": "en_GB.UTF-8"}, "en"),
        ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "C"}, "zh"),
        ({"LANG": "en_US.UTF-8", "COMMCARE_LANG": "zh"}, "zh"),
        ({"LANG": "C", "COMMCARE_LANG": "en"}, "en"),
    ],
)
def test_chinese_unless_english_is_asked_for(env, lang, monkeypatch):
    from commcare import i18n

    for var in ("LANG", "LC_ALL", "LC_MESSAGES", "COMMCARE_LANG"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert i18n.resolve_lang() == lang


def test_the_installed_script_speaks_chinese_in_a_c_locale_and_english_when_asked(tmp_path):
    config = tmp_path / "commcare.toml"
    zh = commcare("--help", env=zh_env())
    assert zh.returncode == 0 and "用法" in zh.stdout and "选项" in zh.stdout and "命令" in zh.stdout
    for how in (["--lang", "en"], ["--lang=en"]):
        assert "Usage:" in commcare(*how, "--help", env=zh_env()).stdout
    assert "Usage:" in commcare("--help", env=zh_env(COMMCARE_LANG="en")).stdout
    assert "Usage:" in commcare("--help", env=zh_env(LANG="en_US.UTF-8")).stdout
    config.write_text('lang = "en"\n', encoding="utf-8")
    assert "Usage:" in commcare("--help", env=zh_env(COMMCARE_CONFIG=str(config))).stdout
    assert "Usage:" in commcare("--config", config, "--help", env=zh_env(COMMCARE_CONFIG="/nonexistent")).stdout
    assert "用法" in commcare("--lang", "zh", "--config", config, "--help", env=zh_env()).stdout


@pytest.mark.parametrize(
    "args",
    [["call"], ["request"], ["call", "log", "--help"], ["call", "log", "-h"], ["add-request", "--help"]],
)
def test_help_shown_without_help_asked_for_is_localised_too(args):
    """Help is localised when Click makes its formatter (commcare.helptext.localise_when_shown),
    not when every command is built: a group named without its command, ``-h``, and ``--help``
    all show the Chinese help, with the Example lines as written."""
    shown = commcare(*args, env=zh_env())
    text = shown.stdout + shown.stderr
    assert "用法" in text and cjk_ratio(text.split("示例", 1)[0].split("选项", 1)[0]) > 0.3, text
    english = commcare("--lang", "en", *args, env=zh_env())
    before_examples = english.stdout.split("Example", 1)[0]
    assert "Usage:" in english.stdout and not CJK.search(before_examples), english.stdout


def test_a_command_that_runs_leaves_its_help_as_written():
    from commcare import cli

    command = cli.build(["--lang", "zh", "call", "log", "#1", "--outcome", "ok"])
    log = command.commands["call"].commands["log"]
    assert getattr(log, "_commcare_lang", None) is None and log.help.startswith("Record a check-in call")
    from typer._click.core import Context

    ctx = Context(log, info_name="log", parent=Context(command.commands["call"], info_name="call"))
    assert CJK.search(log.get_help(ctx))  # made on demand, when help is shown


def test_a_message_is_in_the_default_chinese_too(tmp_path):
    result = commcare("resident", "show", "无此人", env=zh_env())
    assert result.returncode in (1, 3) and CJK.search(result.stderr), result.stderr


# --- help ----------------------------------------------------------------------------------


def every_command(lang: str):
    """(path, Click command) of every command of the tree, its help in ``lang``."""
    from commcare import cli

    root = cli.build(["--lang", lang, "--help"])
    found = []

    def walk(command, path):
        found.append((path, command))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(root, [])
    return found


def rendered_help(path: list[str], lang: str) -> str:
    from typer._click.core import Context

    from commcare import cli

    command = cli.build(["--lang", lang, *path, "--help"])
    ctx = Context(command, info_name="commcare", terminal_width=80)
    for name in path:
        command = command.commands[name]
        ctx = Context(command, info_name=name, parent=ctx)
    return command.get_help(ctx)


def prose(help_text: str) -> str:
    """A command's help without its Example block (commands stay as typed)."""
    return help_text.split("\b", 1)[0]


def test_every_command_and_option_has_chinese_help():
    commands = every_command("zh")
    assert len(commands) > 60
    missing = []
    for path, command in commands:
        name = " ".join(path) or "commcare"
        if cjk_ratio(prose(command.help or "")) < 0.5:
            missing.append(f"{name}: {command.help!r}")
        for param in command.params:
            if getattr(param, "help", None) and cjk_ratio(param.help) < 0.4:
                missing.append(f"{name} {param.opts[0] if param.opts else param.name}: {param.help!r}")
        text = rendered_help(path, "zh")
        assert "用法：" in text and "选项：" in text and "显示此帮助并退出" in text, text
        assert "Usage" not in text and "Options:" not in text and "Show this message" not in text
    assert not missing, "help without Chinese (add it to data/help/zh.json):\n" + "\n".join(missing)


def test_chinese_help_fits_an_80_column_terminal():
    """A Chinese character takes two columns: help is wrapped by columns, not characters
    (example lines are kept whole, to be copied)."""
    from commcare.helptext import cells

    for path, _command in every_command("zh"):
        for line in rendered_help(path, "zh").splitlines():
            if not line.strip().startswith("commcare") and CJK.search(line):
                assert cells(line) <= 80, (path, line)
                assert not line.lstrip().startswith(("，", "。", "、", "）", "]")), (path, line)


def test_every_command_has_english_help_when_asked():
    for path, _command in every_command("en"):
        text = rendered_help(path, "en")  # English quotes a Chinese word here and there (社区)
        assert cjk_ratio(prose(text)) < 0.35, (path, text)
        assert "Usage:" in text and "Show this message and exit." in text and "用法" not in text


def test_no_chinese_help_is_left_without_its_english():
    """Every entry of data/help/zh.json is the help of some command or option (an English
    text that changed leaves its old translation behind: it must go)."""
    from commcare import helptext

    used = set()
    for _path, command in every_command("en"):
        for paragraph in helptext.PARAGRAPHS.split(command.help or ""):
            used.add(" ".join(paragraph.split()))
        used.update(" ".join(p.help.split()) for p in command.params if getattr(p, "help", None))
    click_words = {"Usage: ", "Options", "Commands", "Arguments", "Show this message and exit."}
    click_words |= {"default: {default}", "required", "env var: {var}", "(dynamic)", "Example:", "Examples:"}
    stale = [k for k in helptext.zh_help() if k not in used and k not in click_words]
    assert not stale, stale


def test_examples_are_kept_line_by_line_for_copying():
    text = commcare("add-request", "--help", env=zh_env()).stdout
    assert "示例：" in text
    lines = [line.strip() for line in text.splitlines()]
    assert "commcare add-request 13912345678 --category 燃气圈存 --channel hotline" in lines
    assert "commcare add-request 张桂兰 --category medical-visit --every 2d --until 2026-06-30" in lines
    english = commcare("--lang", "en", "request", "list", "--help", env=zh_env()).stdout
    assert "commcare request list --overdue" in [line.strip() for line in english.splitlines()]


# --- values --------------------------------------------------------------------------------


def slugs() -> set[str]:
    """Every canonical English slug a person must not read in Chinese output."""
    import tomli

    data = ROOT / "data"
    found: set[str] = set()
    words = tomli.loads((data / "words.toml").read_text(encoding="utf-8"))
    for values in words.values():
        found.update(values)
        found.update(v["en"] for v in values.values())
    for name in ("categories", "tags"):
        table = tomli.loads((data / f"{name}.toml").read_text(encoding="utf-8"))
        found.update(table)
        found.update(v["en"] for v in table.values())
    return found - {"-", "+"}


@pytest.fixture(scope="module")
def demo_register(tmp_path_factory):
    home = tmp_path_factory.mktemp("demo")
    env = zh_env(
        COMMCARE_DB=str(home / "demo.db"),
        COMMCARE_CONFIG=str(home / "commcare.toml"),
        XDG_DATA_HOME=str(home / "xdg"),
        XDG_CONFIG_HOME=str(home / "xdg"),
        COMMCARE_USER="王秀英",
    )
    ok("demo", "--residents", "80", "--requests", "60", "--days", "4", env=env)
    import sqlite3

    con = sqlite3.connect(home / "demo.db")  # writes are by a staff member: the demo's first
    env["COMMCARE_USER"] = con.execute("SELECT name FROM staff WHERE active ORDER BY id").fetchone()[0]
    con.close()
    ok("community", "rename", "default", "幸福社区", env=env)
    env["COMMCARE_COMMUNITY"] = "幸福社区"  # config show would otherwise show the word default
    ok("call", "log", "#1", "--outcome", "无人接听", env=env)
    return env


READS = [
    ["resident", "list"],
    ["resident", "show", "1"],
    ["household", "list"],
    ["staff", "list"],
    ["request", "list", "--status", "all"],
    ["request", "show", "1"],
    ["call", "list"],
    ["call", "due"],
    ["health", "list"],
    ["health", "due"],
    ["donation", "list"],
    ["directory", "list"],
    ["community", "list"],
    ["config", "show"],
    ["audit"],
    ["resident", "duplicates"],
    ["donation", "list", "--totals"],
    ["schedule", "status"],
    ["report", "today"],
    ["report", "week"],
    ["report", "range", "--from", "2026-01-01", "--to", "2026-01-03"],
]


def cells(text: str, fmt: str) -> list[str]:
    if fmt == "csv":
        return [c.strip() for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))) for c in row]
    if fmt == "markdown":
        return [c.strip() for line in text.splitlines() if line.startswith("|") for c in line.strip("|").split(" | ")]
    return [c for line in text.splitlines() for c in re.split(r"\s{2,}", line.strip())]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["table", "csv", "markdown"])
def test_no_list_show_or_report_shows_an_english_slug_in_chinese(demo_register, fmt):
    english = slugs()
    for args in READS:
        result = commcare(*args, "--format", fmt, env=demo_register)
        if result.returncode == 2 and "format" in result.stderr:
            continue  # this command has no such format
        assert result.returncode in (0, 1), (args, result.stderr)
        shown = []
        for cell in cells(result.stdout, fmt):
            cell = re.sub(r"commcare( [a-z][a-z-]*)+", "", cell)  # a command to type, not a value
            shown += [w for w in re.split(r"[、，,\s]+", cell) if w]
        leaked = sorted({w for w in shown if w in english or w.lower() in english})
        assert not leaked, (args, fmt, leaked, result.stdout[:2000])
        assert CJK.search(result.stdout), (args, result.stdout)


def test_json_keeps_the_slugs(demo_register):
    rows = json.loads(ok("request", "list", "--status", "all", "--format", "json", env=demo_register).stdout)
    assert rows and {r["status"] for r in rows} <= {"open", "assigned", "in_progress", "resolved", "cancelled"}
    assert all(not CJK.search(r["category"]) for r in rows)


# --- option words --------------------------------------------------------------------------


@pytest.fixture
def register(db_url):
    env = {"COMMCARE_DB": db_url, "COMMCARE_LANG": "zh", "COMMCARE_USER": "王秀英"}
    ok("init", "--community", "幸福社区", env=env)
    ok("staff", "add", "王秀英", "--role", "联络员", env=env)
    ok("resident", "add", "张桂兰", "--phone", "13912345678", "--tag", "老人", env=env)
    return env


def test_each_fixed_list_option_takes_its_chinese_words(register):
    env = register
    opened = json.loads(
        ok(
            "add-request",
            "张桂兰",
            "--category",
            "燃气",
            "--channel",
            "热线",
            "--urgency",
            "紧急",
            "-f",
            "json",
            env=env,
        ).stdout
    )
    assert (opened["category"], opened["channel"], opened["urgency"]) == ("gas-topup", "hotline", "urgent")
    called = json.loads(ok("call", "log", "张桂兰", "--outcome", "无人接听", "-f", "json", env=env).stdout)
    assert called["outcome"] == "no-answer"
    helped = json.loads(
        ok("call", "log", "张桂兰", "--outcome", "需要帮助", "--request", "买药", "-f", "json", env=env).stdout
    )
    assert helped["outcome"] == "needs-help" and helped["request"]
    health = json.loads(ok("health", "log", "王秀英", "--temp", "36.6", "--test", "阴性", "-f", "json", env=env).stdout)
    assert health["test"] == "negative"
    gift = json.loads(
        ok("donation", "add", "爱心超市", "--item", "矿泉水:5:箱", "--for", "工作人员", "-f", "json", env=env).stdout
    )
    assert gift["for"] == "staff"
    place = json.loads(
        ok("directory", "add", "大药房", "--phone", "0371-67885566", "--kind", "药店", "-f", "json", env=env).stdout
    )
    assert place["kind"] == "pharmacy"
    ok("request", "resolve", str(opened["id"]), env=env)
    done = json.loads(ok("request", "list", "--status", "已办结", "-f", "json", env=env).stdout)
    assert [r["id"] for r in done] == [opened["id"]]
    shown = ok("request", "list", "--status", "已办结", env=env).stdout
    assert "已办结" in shown and "燃气圈存" in shown and "紧急" in shown
    assert ok("directory", "list", "--kind", "药店", env=env).stdout.count("大药房") == 1
    assert "张桂兰" in ok("resident", "list", "--tag", "老人", env=env).stdout
    for word in ("未联系到", "逾期", "任一"):  # 张桂兰 was reached (需要帮助) and nothing is overdue
        assert commcare("report", "today", "--fail-on", word, env=env).returncode == 0
    refused = commcare("report", "today", "--fail-on", "迟了", env=env)
    assert refused.returncode == 2 and "逾期、未联系到、任一" in refused.stderr


def test_the_round_reads_a_category_by_its_everyday_word():
    from commcare.identity import parse_category

    assert [parse_category(w) for w in ("燃气", "买药", "看病", "快递", "gas-topup")] == [
        "gas-topup",
        "medicine",
        "medical-visit",
        "parcel",
        "gas-topup",
    ]


def test_an_unknown_word_is_refused_listing_the_chinese_words(register):
    result = commcare("call", "log", "张桂兰", "--outcome", "没接", env=register)
    assert result.returncode == 2
    assert "平安、需要帮助、无人接听、联系不上" in result.stderr and "no-answer" not in result.stderr
    result = commcare("add-request", "张桂兰", "--category", "洗衣服", env=register)
    assert result.returncode == 2 and "燃气圈存" in result.stderr and "gas-topup" not in result.stderr
    result = commcare("resident", "list", "--tag", "外星人", env=register)
    assert result.returncode == 2 and "老年人" in result.stderr and "elderly" not in result.stderr
    english = commcare("--lang", "en", "call", "log", "张桂兰", "--outcome", "nope", env=register)
    assert "ok|needs-help|no-answer|unreachable" in english.stderr


def test_an_office_adds_its_own_words_in_the_config(register, tmp_path):
    with open(os.environ["COMMCARE_CONFIG"], "a", encoding="utf-8") as fh:
        fh.write('\n[words.channel.hotline]\naliases = ["市长热线"]\n')
    made = json.loads(
        ok("add-request", "张桂兰", "-c", "咨询", "--channel", "市长热线", "-f", "json", env=register).stdout
    )
    assert made["channel"] == "hotline"


def test_confirmations_say_the_word_not_the_slug(register):
    said = ok("call", "log", "张桂兰", "--outcome", "ok", env=register).stdout
    assert "平安" in said and " ok" not in said
    made = json.loads(ok("add-request", "张桂兰", "-c", "修理", "-f", "json", env=register).stdout)
    said = ok("request", "start", str(made["id"]), env=register).stdout
    assert "办理中" in said and "in_progress" not in said


def test_an_import_error_names_the_field_in_chinese(register, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("姓名,联系电话,人群类别\n李四,12345,老人\n", encoding="utf-8")
    result = commcare("resident", "import", roster, env=register)
    assert result.returncode == 1
    assert "「联系电话」" in result.stderr and "phone" not in result.stderr, result.stderr


# --- reports for people --------------------------------------------------------------------


def test_report_csv_is_a_table_a_spreadsheet_opens(register, tmp_path):
    out = tmp_path / "today.csv"
    ok("report", "today", "--format", "csv", "--output", out, env=register)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert ["项目", "数量"] in rows and any(r[:1] == ["新增求助"] for r in rows)
    stdout = subprocess.run(
        [EXE, "report", "today", "-f", "csv"],
        env={**os.environ, **register},
        capture_output=True,
        check=True,
    ).stdout
    assert stdout.startswith(b"\xef\xbb\xbf")


def test_the_html_report_says_when_and_by_whom(register, tmp_path):
    out = tmp_path / "today.html"
    ok("--as", "王秀英", "report", "today", "--format", "html", "--output", out, env=register)
    html = out.read_text(encoding="utf-8")
    assert re.search(r"<p class='made'>\d{4}-\d\d-\d\d \d\d:\d\d 由 王秀英 生成", html)


def test_the_html_report_renders_chinese_in_a_browser(register, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        pytest.skip("chromium is not installed: the HTML report cannot be rendered headless")
    out = tmp_path / "today.html"
    ok("report", "today", "--format", "html", "--output", out, env=register)
    shot = tmp_path / "shot.png"
    run = [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*run, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120)
    assert "工作日报" in dom.stdout and "新增求助" in dom.stdout, dom.stderr[-2000:]
    subprocess.run(
        [*run, f"--screenshot={shot}", "--window-size=900,700", out.as_uri()], capture_output=True, timeout=120
    )
    assert shot.exists() and shot.stat().st_size > 5000
    if shutil.which("fc-list"):
        fonts = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout
        assert fonts.strip(), "no CJK font: install fonts-noto-cjk for the report to render"


# --- the catalogue -------------------------------------------------------------------------

CALLS_WITH_KEYS = {"t", "say", "note", "plural", "confirm", "_t"}
KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_\-]+)+$")


def used_keys() -> set[str]:
    """Every message key written out in the code: the first string argument of t(), say(),
    note(), plural(), confirm()'s key, and of every CommcareError raised."""
    keys = set()
    for path in (ROOT / "commcare").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None) or ""
            if name in CALLS_WITH_KEYS or name.endswith(("Error", "Rejected", "Refused", "Value", "Found")):
                for arg in node.args[:3]:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and KEY.match(arg.value):
                        keys.add(arg.value)
    return keys


def placeholders(text: str) -> set[str]:
    return {m.split(":")[0].split("!")[0] for m in re.findall(r"\{([^{}]*)\}", text)}


def test_every_key_in_the_code_is_in_the_catalogue_in_both_languages():
    from commcare import i18n

    catalog = i18n.catalog()
    keys = used_keys()
    assert len(keys) > 200
    missing = sorted(k for k in keys if k not in catalog and f"{k}.one" not in catalog)
    assert not missing, missing
    for key, entry in catalog.items():
        assert entry.get("zh") is not None and entry.get("en") is not None, key
        assert placeholders(entry["zh"]) == placeholders(entry["en"]), key


def test_a_missing_key_fails_loudly_in_tests():
    from commcare import i18n

    with pytest.raises(KeyError):
        i18n.t("no.such.message")


def test_english_plurals_read_right():
    from commcare import i18n

    assert i18n.plural(1, "audit.entries", "en") == "1 entry"
    assert i18n.plural(2, "audit.entries", "en") == "2 entries"
    assert i18n.plural(2, "audit.entries", "zh") == "2 条记录"
