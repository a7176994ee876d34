"""The directory of useful numbers: add, list by kind, pinyin search, CSV import."""

from __future__ import annotations

import json

import pytest


def entries(cli, *args):
    result = cli("directory", "list", *args, "-f", "json")
    assert result.exit_code == 0, result.stderr
    return [e["name"] for e in json.loads(result.stdout)]


@pytest.fixture
def book(db_url, cli):
    for name, phone, kind in (
        ("社区卫生服务中心", "0371-67891234", "clinic"),
        ("大药房", "13900001111", "药店"),
        ("政务服务热线", "12345", "hotline"),
        ("郑州市第一人民医院", "0371-66660000", "医院"),
    ):
        assert cli("directory", "add", name, "--phone", phone, "--kind", kind).exit_code == 0
    return cli


def test_the_directory_ships_empty(db_url, cli):
    assert entries(cli) == []


def test_search_by_pinyin_initials_full_pinyin_name_and_phone(book):
    assert entries(book, "--search", "sqws") == ["社区卫生服务中心"]
    assert entries(book, "--search", "SheQu") == ["社区卫生服务中心"]
    assert entries(book, "--search", "dyf") == ["大药房"]
    assert entries(book, "--search", "药房") == ["大药房"]
    assert entries(book, "--search", "12345") == ["政务服务热线"]
    assert entries(book, "--search", "zzz") == []


def test_list_by_kind_in_english_or_chinese(book):
    assert entries(book, "--kind", "hotline") == ["政务服务热线"]
    assert entries(book, "--kind", "医院") == ["郑州市第一人民医院"]
    assert book("directory", "list", "--kind", "bakery").exit_code == 2


@pytest.mark.parametrize(
    "args",
    [
        ["x", "--phone", "12", "--kind", "hotline"],
        ["y", "--phone", "12345", "--kind", "bakery"],
        [" ", "--phone", "12345", "--kind", "hotline"],
        ["z", "--phone", "0371-6789", "--kind", "clinic"],
    ],
)
def test_bad_entries_exit_2_naming_the_field(book, args):
    result = book("directory", "add", *args)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert len(entries(book)) == 4


def test_hours_and_address_are_kept_and_audited(db_url, cli):
    out = cli(
        "directory",
        "add",
        "24小时药店",
        "--phone",
        "0371-65550000",
        "--kind",
        "pharmacy",
        "--hours",
        "全天",
        "--address",
        "建设路1号",
        "-f",
        "json",
    )
    assert json.loads(out.stdout)["hours"] == "全天"
    row = json.loads(cli("directory", "list", "-f", "json").stdout)[0]
    assert (row["hours"], row["address"]) == ("全天", "建设路1号")
    audit = [a for a in json.loads(cli("audit", "-f", "json").stdout) if a["action"] == "directory.add"]
    assert len(audit) == 1 and "hours" in audit[0]["fields"]


def test_import_a_gbk_csv_with_chinese_headers_skipping_entries_already_listed(book, tmp_path):
    path = tmp_path / "常用电话.csv"
    path.write_bytes(
        "序号,名称,电话,类型,服务时间,地址\n1,供电抢修,95598,公用事业,24小时,\n"
        "2,大药房,13900001111,药店,,\n3,儿童医院,0371-85510000,医院,,人民路\n".encode("gbk")
    )
    result = book("directory", "import", str(path))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "imported 2 entries, skipped 1 already listed"
    assert entries(book, "--kind", "utility") == ["供电抢修"]
    assert entries(book, "--search", "etyy") == ["儿童医院"]
    again = json.loads(book("directory", "import", str(path), "-f", "json").stdout)
    assert again == {"imported": 0, "skipped": 3}


def test_an_import_with_a_bad_row_imports_nothing_and_names_every_bad_row(book, tmp_path):
    path = tmp_path / "list.csv"
    path.write_text(
        "name,phone,kind\n好药房,13900002222,pharmacy\nx,12,hotline\ny,13900001112,bakery\n", encoding="utf-8-sig"
    )
    result = book("directory", "import", str(path))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:2] == [
        (
            "row 3: phone: 12 is not a valid phone number (an 11-digit mobile 1[3-9]…, or a landline with area code "
            "such as 0371-67891234)"
        ),
        "row 4: kind: bakery is not one of hospital|clinic|pharmacy|hotline|utility|other",
    ]
    assert "好药房" not in entries(book)


def test_an_import_without_name_and_phone_columns_exits_2(book, tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("单位,地点\n好药房,建设路\n", encoding="utf-8")
    result = book("directory", "import", str(path))
    assert result.exit_code == 2 and "phone" in result.stderr
    assert book("directory", "import", str(tmp_path / "missing.csv")).exit_code == 1
