"""The register: naming residents, households and their one liaison, edits, archive, audit."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def reg(db_url, cli):
    cli("staff", "add", "王秀英", "--phone", "13800001111")
    cli("staff", "add", "李强")
    return cli


def rows(cli, *args):
    result = cli(*args, "-f", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    "args, field",
    [
        (["", "--phone", "13912345678"], "name"),
        (["a\x00b"], "name"),
        (["x", "--phone", "123"], "phone"),
        (["x", "--phone", "23912345678"], "phone"),
        (["x", "--id-number", "110105194912310021"], "id_number"),
        (["x", "--id-number", "11010519491331002X"], "id_number"),
        (["x", "--born", "2026-02-30"], "born"),
        (["x", "--tag", "martian"], "tag"),
        (["x", "--sex", "?"], "sex"),
        (["x", "--emergency-contact", "李明"], "emergency-contact"),
    ],
)
def test_every_bad_value_is_exit_2_one_line_and_changes_nothing(reg, args, field):
    result = reg("resident", "add", *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and "Traceback" not in result.stderr
    assert rows(reg, "resident", "list") == []


@pytest.mark.parametrize(
    "name", ["阿依古丽·买买提", "王🌸", "Robert'); DROP TABLE residents;--", "100%_张", "  李 四  "]
)
def test_odd_names_round_trip_verbatim(reg, name):
    added = rows(reg, "resident", "add", name, "--phone", "13912345678")
    assert added["name"] == name.strip()
    assert rows(reg, "resident", "show", f"#{added['id']}")["name"] == name.strip()


def test_a_shared_name_is_ambiguous_and_lists_both(reg):
    reg("resident", "add", "张桂兰", "--compound", "幸福小区", "--address", "1-101")
    reg("resident", "add", "张桂兰", "--compound", "阳光花园", "--address", "2-202")
    result = reg("resident", "show", "张桂兰")
    assert result.exit_code == 1 and "#1" in result.stderr and "#2" in result.stderr
    assert rows(reg, "resident", "show", "2")["compound"] == "阳光花园"


def test_residents_are_named_by_number_id_number_phone_or_name(reg):
    reg("resident", "add", "张桂兰", "--phone", "139 1234 5678", "--id-number", "11010519491231002x")
    for ref in (
        "1",
        "#1",
        "11010519491231002X",
        "13912345678",
        "+86 139-1234-5678",
        "１３９１２３４５６７８",
        "张桂兰",
    ):
        assert rows(reg, "resident", "show", ref)["id"] == 1, ref
    assert reg("resident", "show", "13900000000").exit_code == 1


def test_one_liaison_per_household_is_enforced_unless_reassigned(reg):
    reg("resident", "add", "张桂兰", "--compound", "幸福小区", "--address", "1-101", "--liaison", "王秀英")
    refused = reg("resident", "add", "刘建国", "--compound", "幸福小区", "--address", "1-101", "--liaison", "李强")
    assert refused.exit_code == 1 and "household assign" in refused.stderr
    assert [r["name"] for r in rows(reg, "resident", "list")] == ["张桂兰"]
    assert reg("household", "assign", "幸福小区 1-101", "李强").exit_code == 0
    assert (
        reg("resident", "add", "刘建国", "--compound", "幸福小区", "--address", "1-101", "--liaison", "李强").exit_code
        == 0
    )
    assert {r["liaison"] for r in rows(reg, "resident", "list")} == {"李强"}
    assert rows(reg, "household", "list") == [
        {"id": 1, "compound": "幸福小区", "address": "1-101", "liaison": "李强", "members": 2, "special": 0}
    ]


def test_search_by_initials_pinyin_chinese_and_phone(reg):
    reg("resident", "add", "张桂兰", "--phone", "13912345678")
    reg("resident", "add", "赵国梁")
    assert [r["name"] for r in rows(reg, "resident", "list", "--search", "zgl")] == ["张桂兰", "赵国梁"]
    assert [r["name"] for r in rows(reg, "resident", "list", "--search", "zhangguilan")] == ["张桂兰"]
    assert [r["name"] for r in rows(reg, "resident", "list", "--search", "桂兰")] == ["张桂兰"]
    assert [r["name"] for r in rows(reg, "resident", "list", "--search", "5678")] == ["张桂兰"]


def test_phones_masked_in_lists_full_in_show_and_unmask_is_audited(reg):
    reg("resident", "add", "张桂兰", "--phone", "13912345678", "--id-number", "11010519491231002X")
    listed = rows(reg, "resident", "list")[0]
    assert listed["phone"] == "139****5678" and "id_number" not in listed
    shown = rows(reg, "resident", "show", "1")
    assert shown["phone"] == "13912345678" and "id_number" not in shown
    assert rows(reg, "resident", "list", "--unmask")[0]["id_number"] == "11010519491231002X"
    assert [e["action"] for e in rows(reg, "audit")].count("unmask") == 1


def test_edit_archive_and_unarchive(reg):
    reg("resident", "add", "张桂兰", "--compound", "幸福小区", "--address", "1-101", "--tag", "老人")
    edited = rows(
        reg, "resident", "edit", "张桂兰", "--add-tag", "独居", "--remove-tag", "elderly", "--address", "1-102"
    )
    assert edited["tags"] == ["lives-alone"] and edited["address"] == "1-102"
    assert reg("resident", "archive", "张桂兰", "--reason", "").exit_code != 0
    assert reg("resident", "archive", "张桂兰", "--reason", "随子女搬走").exit_code == 0
    assert rows(reg, "resident", "list") == [] and len(rows(reg, "resident", "list", "--archived")) == 1
    assert rows(reg, "call", "due") == []
    assert reg("resident", "archive", "1", "--reason", "again").exit_code == 1
    assert reg("resident", "unarchive", "1").exit_code == 0


def test_audit_records_who_and_field_names_never_values(reg):
    reg("--as", "王秀英", "resident", "add", "张桂兰", "--phone", "13912345678", "--id-number", "11010519491231002X")
    entries = rows(reg, "audit", "--resident", "张桂兰")
    assert entries[-1]["actor"] == "王秀英" and "phone" in entries[-1]["fields"]
    text = reg("audit", "-f", "json").stdout
    assert "13912345678" not in text and "11010519491231002X" not in text
    assert "pinyin" not in text and "initials" not in text


def test_audit_names_tags_and_household_of_a_new_resident(reg):
    reg("resident", "add", "刘伟", "--compound", "幸福小区", "--address", "1-101", "--tag", "老人")
    fields = rows(reg, "audit", "--resident", "刘伟")[-1]["fields"]
    assert "tags" in fields and "household" in fields


def test_staff_edit_inactive_leaves_the_lists(reg):
    assert reg("staff", "edit", "李强", "--inactive").exit_code == 0
    assert [s["name"] for s in rows(reg, "staff", "list")] == ["王秀英"]
    assert [s["name"] for s in rows(reg, "staff", "list", "--all")] == ["王秀英", "李强"]


def test_zh_messages(reg):
    result = reg("--lang", "zh", "resident", "add", "x", "--phone", "123")
    assert "不是有效的电话号码" in result.stderr
