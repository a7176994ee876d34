"""Every key of the config file is checked for its type and range: a wrong one is exit 2 in
one line naming the key (it was an OverflowError, a RecursionError, or accepted)."""

from __future__ import annotations

import pytest

CASES = [
    ("retention_days = 99999999999", "retention_days", "out of range"),
    ("retention_days = 0", "retention_days", "out of range"),
    ("retention_days = 1.5", "retention_days", "whole number"),
    ("community = [1, 2]", "community", "text"),
    ("database = 5", "database", "text"),
    ("timezone = true", "timezone", "text"),
    ("operator = {a = 1}", "operator", "text"),
    ("lang = 1", "lang", "text"),
    ('db_timeout = "fast"', "db_timeout", "a number"),
    ("db_timeout = 0", "db_timeout", "out of range"),
    ("db_timeout = nan", "db_timeout", "a number"),
    ('unreached_days = "2"', "unreached_days", "whole number"),
    ("fever_at = true", "fever_at", "a number"),
    ("tags = 3", "tags", "table"),
    ("[tags.bedridden]\naliases = 5", "tags.bedridden.aliases", "list of text"),
    ('[tags.bedridden]\ndaily_call = "yes"', "tags.bedridden.daily_call", "true or false"),
    ("x = " + "[" * 2000 + "]" * 2000, "commcare.toml", "nested too deeply"),
]


@pytest.mark.parametrize("text, key, said", CASES, ids=[c[1] + ":" + c[0][:20] for c in CASES])
def test_a_config_key_of_the_wrong_type_is_exit_2_naming_it(cli, tmp_path, text, key, said):
    (tmp_path / "commcare.toml").write_text(text + "\n", encoding="utf-8")
    result = cli("call", "due")
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert key in lines[0] and said in lines[0], lines[0]
    assert not (tmp_path / "commcare.db").exists()


def test_the_same_in_chinese(cli, tmp_path):
    (tmp_path / "commcare.toml").write_text("community = [1, 2]\n", encoding="utf-8")
    result = cli("--lang", "zh", "call", "due")
    assert result.exit_code == 2 and "community" in result.stderr and "文字" in result.stderr


def test_sound_values_are_taken(cli, tmp_path):
    (tmp_path / "commcare.toml").write_text(
        'community = "幸福社区"\nretention_days = 1095\ndb_timeout = 2.5\nunreached_days = 3\nfever_at = 37.3\n'
        '[tags.bedridden]\nzh = "卧床"\naliases = ["卧床", "失能"]\ndaily_call = true\n',
        encoding="utf-8",
    )
    assert cli("resident", "add", "张桂兰", "--tag", "卧床").exit_code == 0
    assert cli("call", "due").exit_code == 0


def test_a_busy_timeout_that_is_not_a_number_is_exit_2(cli, monkeypatch):
    assert cli("init").exit_code == 0
    monkeypatch.setenv("COMMCARE_BUSY_TIMEOUT", "abc")
    result = cli("call", "due")
    assert result.exit_code == 2 and "COMMCARE_BUSY_TIMEOUT" in result.stderr and "internal" not in result.stderr
