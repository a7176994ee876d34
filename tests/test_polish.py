"""What a Chinese community worker reads: words, not slugs, field names in errors, exit codes
(small defects found by trying the product as a new worker would)."""

from __future__ import annotations

import json


def zh(cli, *args):
    return cli("--lang", "zh", *args)


def test_db_check_names_every_row_and_detail_in_chinese(cli):
    assert cli("init").exit_code == 0
    table = zh(cli, "db", "check")
    assert table.exit_code == 0, table.stderr
    assert "文件权限 commcare.db" in table.stdout and "正常" in table.stdout
    assert "mode " not in table.stdout and " ok" not in table.stdout
    rows = json.loads(zh(cli, "db", "check", "--format", "json").stdout)
    assert {"check": "integrity", "ok": True, "detail": "ok"} in rows  # JSON keeps the keys
    assert any(r["check"] == "mode commcare.db" for r in rows)
