"""The foundation: storage, the error boundary, start-up, help text, the register basics."""

from __future__ import annotations

import os
import stat
import subprocess
import sys


def test_new_sqlite_database_is_private_wal_and_at_head(tmp_path, cli):
    path = tmp_path / "new.db"
    result = cli("--db", path, "init")
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    import sqlite3

    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    from commcare.db import HEAD

    assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == HEAD
    assert cli("--db", path, "init").exit_code == 0  # safe to run twice


def test_foreign_file_exits_3_and_is_untouched(tmp_path, cli):
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 100)
    before = path.read_bytes()
    result = cli("--db", path, "resident", "list")
    assert result.exit_code == 3
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert path.read_bytes() == before


def test_foreign_sqlite_database_exits_3(tmp_path, cli):
    import sqlite3

    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t(x)")
    con.commit()
    con.close()
    before = path.read_bytes()
    assert cli("--db", path, "staff", "list").exit_code == 3
    assert path.read_bytes() == before


def test_empty_database_upgraded_to_head_matches_the_tables(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from commcare.db import make_engine
    from commcare.storage.tables import include_on, metadata

    engine = make_engine(db_url)
    with engine.connect() as conn:
        opts = {"compare_type": True, "include_object": include_on(conn.dialect.name)}
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), metadata)
    engine.dispose()
    assert diff == []


def test_revisions_constant_matches_alembic():
    from alembic.script import ScriptDirectory

    from commcare.db import REVISIONS, alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    chain = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    assert tuple(chain) == REVISIONS


def test_import_cli_loads_no_heavy_libraries():
    code = (
        "import commcare.cli, sys; heavy = [m for m in ('sqlalchemy', 'alembic', 'openpyxl', "
        "'pypinyin') if m in sys.modules]; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _all_commands():
    from typer.main import get_command

    from commcare.cli import app

    def walk(cmd, path):
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, path + [name])

    return list(walk(get_command(app), []))


def test_every_command_has_help_text():
    missing = [" ".join(p) for p, cmd in _all_commands() if p and not (cmd.help or "").strip()]
    assert missing == []


def test_every_leaf_command_help_has_an_example():
    leaves = [(p, c) for p, c in _all_commands() if p and not hasattr(c, "commands")]
    missing = [" ".join(p) for p, c in leaves if "Example" not in (c.help or "")]
    assert missing == []


def test_bad_option_is_one_line_exit_2(cli):
    result = cli("resident", "add", "张三", "--bogus")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_broken_config_names_the_file(tmp_path, cli, monkeypatch):
    bad = tmp_path / "broken.toml"
    bad.write_text("database = [unclosed\n", encoding="utf-8")
    result = cli("--config", bad, "staff", "list")
    assert result.exit_code == 2
    assert str(bad) in result.stderr


def test_precedence_option_over_env_over_file(tmp_path, monkeypatch):
    from commcare.config import load_settings

    cfg = tmp_path / "c.toml"
    cfg.write_text('database = "from-file.db"\ncommunity = "阳光社区"\n', encoding="utf-8")
    monkeypatch.setenv("COMMCARE_CONFIG", str(cfg))
    monkeypatch.delenv("COMMCARE_DB")
    assert load_settings().database == "from-file.db"
    monkeypatch.setenv("COMMCARE_DB", "from-env.db")
    assert load_settings().database == "from-env.db"
    assert load_settings(database="from-option.db").database == "from-option.db"
    assert load_settings().community == "阳光社区"


def test_resident_add_show_list_round_trip(cli):
    assert cli("staff", "add", "王秀英", "--phone", "13800001111").exit_code == 0
    result = cli(
        "resident",
        "add",
        "张桂兰",
        "--phone",
        "139-1234-5678",
        "--compound",
        "幸福小区",
        "--address",
        "3-2-101",
        "--tag",
        "独居",
        "--tag",
        "老人",
        "--liaison",
        "王秀英",
        "--id-number",
        "11010519491231002x",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    import json

    row = json.loads(result.stdout)
    assert row["born"] == "1949-12-31" and row["sex"] == "F"
    assert row["tags"] == ["elderly", "lives-alone"]
    listed = json.loads(cli("resident", "list", "--search", "zgl", "--format", "json").stdout)
    assert [r["name"] for r in listed] == ["张桂兰"]
    assert listed[0]["phone"] == "139****5678" and "id_number" not in listed[0]
    shown = json.loads(cli("resident", "show", "13912345678", "--format", "json").stdout)
    assert shown["phone"] == "13912345678"


def test_sqlite_times_read_back_as_aware_utc_whatever_text_form_they_were_stored_in(tmp_path):
    """``UTCDateTime`` reads SQLite's text in one step when it is commcare's own form (naive
    UTC), and the generic way otherwise (an offset, a ``T``, no fraction): the same instant."""
    import datetime as dt

    from sqlalchemy import (
        Column,
        Integer,
        MetaData,
        Table,
        create_engine,
        insert,
        select,
        text,
    )

    from commcare.storage.tables import UTCDateTime

    t = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime))
    engine = create_engine(f"sqlite:///{tmp_path / 't.db'}")
    t.metadata.create_all(engine)
    when = dt.datetime(2026, 5, 8, 6, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with engine.begin() as conn:
        conn.execute(insert(t), [{"id": 1, "at": when}, {"id": 2, "at": None}])
        for i, stored in enumerate(
            ("2026-05-07T22:30:15.123456", "2026-05-08 06:30:15.123456+08:00", "2026-05-07 22:30:15.123456"), start=3
        ):
            conn.execute(text("INSERT INTO t (id, at) VALUES (:i, :s)"), {"i": i, "s": stored})
        got = conn.execute(select(t.c.at).order_by(t.c.id)).scalars().all()
    engine.dispose()
    assert got[1] is None
    assert all(g == when and g.utcoffset() == dt.timedelta(0) for g in got[:1] + got[2:])
