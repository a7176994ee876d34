"""Error messages mask phone and ID numbers as lists do (the contract's *Output files* and
*Exit codes and errors*), whatever the command, the language, and whether the number is
valid: through the installed ``commcare`` as a user runs it, stderr grepped for the numbers."""

from __future__ import annotations

import pytest
from usercli import commcare, ok

ID = "11010519491231002X"  # valid (GB 11643)
ID_WRONG_CHECK = "110105194912310021"
PHONE = "13912345678"
ODD_PHONE = "1391234000"  # ten digits: not a valid phone, still a person's number
FULL = (ID, ID.lower(), ID_WRONG_CHECK, PHONE, ODD_PHONE, "139 1234 5678", "１３９１２３４５６７８")


@pytest.fixture
def register():
    ok("init")
    ok("staff", "add", "王秀英")
    ok(
        "resident",
        "add",
        "张桂兰",
        "--phone",
        "13800001111",
        "--id-number",
        ID,
        "--compound",
        "幸福小区",
        "--address",
        "1-101",
        "--liaison",
        "王秀英",
        "--tag",
        "elderly",
    )


def assert_masked(result, code: int, *masked: str) -> None:
    everything = result.stdout + result.stderr
    assert result.returncode == code, (result.returncode, result.stderr)
    for number in FULL:
        assert number not in everything, (number, result.stderr)
    assert "Traceback" not in everything and "internal error" not in everything
    for form in masked:
        assert form in result.stderr, (form, result.stderr)


LOOKUPS = [
    ("resident", "show", "{n}"),
    ("resident", "edit", "{n}", "--note", "x"),
    ("call", "log", "{n}", "--outcome", "ok"),
    ("add-request", "{n}", "--category", "groceries"),
    ("audit", "--resident", "{n}"),
    ("household", "assign", "{n}", "王秀英"),
    ("resident", "archive", "{n}", "--reason", "moved"),
    ("request", "list", "--resident", "{n}"),
    ("call", "due", "--liaison", "{n}"),
]


@pytest.mark.parametrize("args", LOOKUPS, ids=lambda a: " ".join(a[:2]))
@pytest.mark.parametrize(
    ("number", "masked"),
    [(PHONE, "139****5678"), ("110105194912310037", "110105**********37"), ("139 1234 5678", "139****5678")],
)
def test_a_lookup_that_finds_nobody_masks_the_number(register, args, number, masked):
    result = commcare(*[a.format(n=number) for a in args])
    assert_masked(result, 1, masked)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_invalid_numbers_are_masked_in_their_errors(register, lang):
    cases = [
        (("resident", "add", "李四", "--phone", ODD_PHONE), "139***4000"),
        (("resident", "add", "李四", "--id-number", ID_WRONG_CHECK), "110105**********21"),
        (("resident", "add", "李四", "--phone", "１３９１２３４５６７８９"), "139*****6789"),
        (("resident", "add", "李四", "--emergency-contact", f"李明 {ODD_PHONE}"), "139***4000"),
        (("staff", "add", "赵敏", "--phone", ODD_PHONE), "139***4000"),
        (("directory", "add", "医院", "--phone", ODD_PHONE, "--kind", "hospital"), "139***4000"),
        (("resident", "edit", "张桂兰", "--phone", ODD_PHONE), "139***4000"),
    ]
    for args, masked in cases:
        assert_masked(commcare("--lang", lang, *args), 2, masked)


def test_an_id_number_already_registered_is_not_repeated(register):
    result = commcare("resident", "add", "张桂兰二", "--id-number", ID)
    assert_masked(result, 1)
    assert "张桂兰" in result.stderr


def test_import_problems_mask_every_number(register, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(
        f"姓名,联系电话,身份证号,人群类别\n李四,{ODD_PHONE},{ID_WRONG_CHECK},老人\n王五,{PHONE},{ID},老人\n",
        encoding="utf-8",
    )
    result = commcare("resident", "import", roster)
    assert_masked(result, 1, "row 2", "139***4000", "110105**********21")
    assert "0371-67891234" in result.stderr  # the message's own example stays whole
    assert_masked(commcare("resident", "import", roster, "--skip-invalid"), 0, "139***4000")


def test_a_usage_error_quoting_a_number_masks_it(register):
    result = commcare("request", "list", "--limit", f"{PHONE}.5")
    assert_masked(result, 2, "139****5678")
    assert_masked(commcare("resident", "list", "--tag", PHONE), 2, "139****5678")


def test_dates_in_errors_are_not_masked(register):
    result = commcare("report", "range", "--from", "2026-05-08", "--to", "2026-05-01")
    assert result.returncode == 2 and "2026-05-01" in result.stderr
