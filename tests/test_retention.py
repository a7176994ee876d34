"""Retention: erased personal fields are gone from the database file's bytes."""

from __future__ import annotations

import json


def test_retention_erases_personal_fields_from_the_file(tmp_path, cli, monkeypatch):
    db = tmp_path / "r.db"
    cfg = tmp_path / "c.toml"
    cfg.write_text("retention_days = 30\n", encoding="utf-8")
    monkeypatch.setenv("COMMCARE_DB", str(db))
    monkeypatch.setenv("COMMCARE_CONFIG", str(cfg))
    monkeypatch.setenv("COMMCARE_NOW", "2026-01-01T09:00:00+08:00")
    cli(
        "resident",
        "add",
        "张桂兰",
        "--id-number",
        "11010519491231002X",
        "--phone",
        "13912345678",
        "--note",
        "secret-note-7781",
        "--tag",
        "老人",
    )
    cli("resident", "add", "刘建国", "--phone", "13800002222")
    assert cli("resident", "archive", "张桂兰", "--reason", "搬走").exit_code == 0
    monkeypatch.setenv("COMMCARE_NOW", "2026-01-20T09:00:00+08:00")
    assert "0" in cli("retention", "run").stdout  # not yet 30 days
    monkeypatch.setenv("COMMCARE_NOW", "2026-03-01T09:00:00+08:00")
    dry = json.loads(cli("retention", "run", "--dry-run", "-f", "json").stdout)
    assert dry["residents"] == [1] and b"11010519491231002X" in _bytes(tmp_path)
    assert cli("retention", "run").exit_code == 0
    data = _bytes(tmp_path)
    for secret in (b"11010519491231002X", b"13912345678", b"secret-note-7781"):
        assert secret not in data, secret
    assert b"13800002222" in data  # the other resident is untouched
    shown = json.loads(cli("resident", "show", "1", "-f", "json").stdout)
    assert shown["name"] == "张桂兰" and shown["phone"] is None and shown["tags"] == ["elderly"]


def test_retention_without_a_setting_erases_nothing(cli):
    result = cli("retention", "run")
    assert result.exit_code == 2 and "retention_days" in result.stderr


def _bytes(folder) -> bytes:
    """The database file and its WAL, as they lie on disk."""
    return b"".join(p.read_bytes() for p in sorted(folder.glob("r.db*")))
