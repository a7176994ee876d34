"""What the fast start-up relies on: Core alone (never ``sqlalchemy.orm``, which costs about
as much to import as a short command does), and Typer's registry of commands, which the
console script narrows to the command named (``commcare.cli._only``)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import commcare

# One process runs a command of every group through the CLI, then tells whether the ORM loaded.
EVERY_GROUP = """
import sys
from typer.testing import CliRunner
from commcare.cli import app
runner = CliRunner()
roster = sys.argv[1]
for args in (["init"], ["staff", "add", "王秀英"], ["staff", "list", "--unmask"],
             ["resident", "add", "张桂兰", "--tag", "独居", "--compound", "幸福小区", "--address", "3-2-101",
              "--liaison", "王秀英"],
             ["resident", "edit", "张桂兰", "--add-tag", "体弱"], ["resident", "list", "--unmask"],
             ["resident", "show", "张桂兰"], ["resident", "import", roster], ["resident", "export", "-f", "json"],
             ["resident", "duplicates"], ["resident", "merge", "张桂兰", "李四", "--dismiss"],
             ["household", "list"], ["household", "assign", "幸福小区 3-2-101", "王秀英"],
             ["add-request", "张桂兰", "-c", "trash"], ["request", "resolve", "1"], ["request", "show", "1"],
             ["call", "log", "张桂兰", "--outcome", "ok"], ["call", "due", "-f", "json"], ["call", "list"],
             ["health", "log", "王秀英", "--temp", "36.5"], ["health", "due"], ["health", "list"],
             ["donation", "add", "超市", "--item", "水:5:箱"], ["donation", "list"],
             ["directory", "add", "药店", "--phone", "12345", "--kind", "pharmacy"], ["directory", "list"],
             ["report", "today", "-f", "json"], ["report", "week", "-f", "csv"],
             ["report", "today", "--all-communities"], ["community", "list"], ["audit"], ["audit", "verify"],
             ["config", "show"],
             ["resident", "archive", "李四", "--reason", "搬走"], ["retention", "run", "--dry-run"],
             ["db", "check"]):
    result = runner.invoke(app, args)
    assert result.exit_code in (0, 2), (args, result.exit_code, result.stderr)
print("orm" if any(m.startswith("sqlalchemy.orm") for m in sys.modules) else "core only")
"""


def test_no_command_loads_the_orm(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("姓名,小区,住址,人群类别\n李四,幸福小区,3-2-102,独居\n", encoding="utf-8")
    env = {
        "COMMCARE_DB": str(tmp_path / "c.db"),
        "COMMCARE_CONFIG": str(tmp_path / "c.toml"),
        "COMMCARE_USER": "王秀英",
        "COMMCARE_RETENTION_DAYS": "30",
        "XDG_DATA_HOME": str(tmp_path / "xdg-data"),  # the audit anchors
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-c", EVERY_GROUP, str(roster)], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["core", "only"], done.stdout


def test_no_module_imports_the_orm():
    """Core is the one way to the data: no module of the package names ``sqlalchemy.orm``."""
    root = Path(commcare.__file__).parent
    found = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            found += [f"{path.relative_to(root)}: {n}" for n in names if n.startswith("sqlalchemy.orm")]
    assert found == []


def test_help_imports_no_sqlalchemy():
    code = "import commcare.cli, sys; assert not [m for m in sys.modules if m.startswith('sqlalchemy')]"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_typers_registry_is_what_the_console_script_narrows():
    """``cli._only`` reads and swaps Typer's private lists of a group's commands and sub-groups.
    Should a Typer release rename or reshape them, this fails here, loudly, rather than every
    command being built for every run (or none)."""
    import typer
    import typer.main
    from typer.models import CommandInfo, TyperInfo

    from commcare.cli import _group_name, _only, app

    assert isinstance(app.registered_commands, list) and isinstance(app.registered_groups, list)
    assert all(isinstance(c, CommandInfo) and isinstance(c.name, str) for c in app.registered_commands)
    assert all(isinstance(g, TyperInfo) and isinstance(g.typer_instance, typer.Typer) for g in app.registered_groups)
    resident = next(g for g in app.registered_groups if g.name == "resident").typer_instance
    assert [_group_name(g) for g in resident.registered_groups] == [None]  # the roster commands join it unnamed

    whole = typer.main.get_command(app)
    with _only(["resident", "import", "roster.csv"]):
        narrow = typer.main.get_command(app)
    assert list(narrow.commands) == ["resident"] and list(narrow.commands["resident"].commands) == ["import"]
    with _only(["add-request", "#1"]):
        assert list(typer.main.get_command(app).commands) == ["add-request"]
    assert set(typer.main.get_command(app).commands["resident"].commands) == set(whole.commands["resident"].commands)
    assert {"add", "list", "import", "export", "merge"} <= set(whole.commands["resident"].commands)
