"""Identifiers: GB 11643 ID numbers (property tests) and phone normalisation."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commcare import identity
from commcare.errors import InvalidValue


def check_char(body: str) -> str:
    weights = [pow(2, 17 - i, 11) for i in range(17)]
    value = (12 - sum(int(d) * w for d, w in zip(body, weights)) % 11) % 11
    return "X" if value == 10 else str(value)


bodies = st.builds(
    lambda region, day, seq: f"{region:06d}{day:%Y%m%d}{seq:03d}",
    st.integers(110000, 659999),
    st.dates(dt.date(1900, 1, 1), dt.date(2025, 12, 31)),
    st.integers(0, 999),
)


@given(bodies)
def test_17_digits_and_the_computed_check_character_always_pass(body):
    number = body + check_char(body)
    assert identity.normalize_id_number(number.lower()) == number


@given(bodies, st.integers(0, 17), st.integers(1, 9))
def test_any_one_digit_change_always_fails(body, position, delta):
    number = body + check_char(body)
    if position == 17 and number[17] == "X":
        changed = number[:17] + str(delta)
    else:
        digit = int(number[position]) if number[position] != "X" else 10
        changed = number[:position] + str((digit + delta) % 10) + number[position + 1 :]
    if changed == number:
        return
    with pytest.raises(InvalidValue):
        identity.normalize_id_number(changed)


@pytest.mark.parametrize("date", ["19490230", "19491301", "20991231"])
def test_impossible_birth_dates_fail(date):
    body = f"110105{date}002"
    with pytest.raises(InvalidValue) as info:
        identity.normalize_id_number(body + check_char(body))
    assert info.value.key == "value.bad_id_date"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("13912345678", "13912345678"),
        ("139-1234-5678", "13912345678"),
        ("139 1234 5678", "13912345678"),
        ("１３９１２３４５６７８", "13912345678"),
        ("+86 139 1234 5678", "13912345678"),
        ("8613912345678", "13912345678"),
        ("0371-67891234", "0371-67891234"),
        ("037167891234", "0371-67891234"),
        ("010-12345678", "010-12345678"),
        ("(021) 6543 2100", "021-65432100"),
    ],
)
def test_phone_normalisation(raw, expected):
    assert identity.normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw", ["1391234567", "23912345678", "12912345678", "139123456789", "0371-0123", "abc", "١٣٩١٢٣٤٥٦٧٨"]
)
def test_bad_phones_fail(raw):
    with pytest.raises(InvalidValue):
        identity.normalize_phone(raw)


def test_masking():
    assert identity.mask_phone("13812345678") == "138****5678"
    assert identity.mask_phone("0371-67891234") == "0371-****1234"


@given(bodies)
def test_the_check_character_agrees_with_stdnum(body):
    from stdnum.cn import ric

    assert identity.id_check_digit(body) == ric.calc_check_digit(body + "0") == check_char(body)


@pytest.mark.parametrize(
    "raw", ["11010519491231002x", " 110105 19491231 002X ", "１１０１０５１９４９１２３１００２Ｘ"]
)
def test_id_numbers_that_need_normalising_still_pass(raw):
    assert identity.normalize_id_number(raw) == "11010519491231002X"


def test_the_control_character_pattern_is_exactly_category_cc():
    import unicodedata

    for code in range(0x3000):
        ch = chr(code)
        assert bool(identity._CONTROL.search(ch)) == (unicodedata.category(ch) == "Cc"), hex(code)


def test_born_and_sex_come_from_the_id_number_where_not_given():
    born, sex = identity.born_and_sex(
        [None, dt.date(1950, 1, 1), None], [None, None, "F"], ["11010519491231002X", "11010519491231001X", None]
    )
    assert born == [dt.date(1949, 12, 31), dt.date(1950, 1, 1), None]
    assert sex == ["F", "M", "F"]


READINGS = """
import json, sys
chars = [chr(c) for c in range(0x3400, 0x9fff + 1)]
if sys.argv[1] == "full":
    from pypinyin import lazy_pinyin
    import re
    print(json.dumps([re.sub(r"[^0-9a-z]", "", lazy_pinyin(ch, errors="default")[0].lower()) for ch in chars]))
else:
    import os
    from commcare import identity
    readings = [identity._char_pinyin(ch) for ch in chars]
    assert "pypinyin.phrases_dict" not in sys.modules and "PYPINYIN_NO_PHRASES" not in os.environ
    print(json.dumps(readings))
"""


def test_pinyin_without_the_phrase_dictionary_reads_every_character_alike():
    """commcare loads pypinyin without its phrase dictionary (0.35 s saved): a character's own
    reading must be what the full library gives, for every CJK character."""
    import json
    import subprocess
    import sys

    full, lean = (
        json.loads(
            subprocess.run([sys.executable, "-c", READINGS, mode], capture_output=True, text=True, check=True).stdout
        )
        for mode in ("full", "lean")
    )
    assert lean == full
    assert identity.pinyin_keys("张桂兰") == ("zhangguilan", "zgl")


names = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x9FFF, blacklist_categories=("Cs",)), max_size=6)


@given(st.lists(names, max_size=20))
def test_pinyin_keys_of_a_column_are_each_names_keys(column):
    """The import's column-wise keys are exactly ``pinyin_keys`` of each name (what ``resident
    add`` stores and ``--search`` looks up), whatever the characters."""
    assert identity.pinyin_keys_many(column) == [identity.pinyin_keys(n) for n in column]


def test_pinyin_keys_of_a_column_of_real_names():
    column = ["张桂兰", "欧阳明", "Anna·Li", "李-明2", "王 芳", ""]
    assert identity.pinyin_keys_many(column) == [
        ("zhangguilan", "zgl"),
        ("ouyangming", "oym"),
        ("annali", "annali"),
        ("liming2", "lm2"),
        ("wangfang", "wf"),
        ("", ""),
    ]


@given(st.lists(st.text(max_size=8).map(str.strip), max_size=10))
def test_a_column_of_names_is_clean_only_if_each_name_is_its_own_normal_form(column):
    def own_form(name):
        try:
            return identity.normalize_name(name) == name
        except InvalidValue:
            return False

    assert identity.names_clean(column) == all(own_form(n) for n in column)


@given(
    st.lists(
        st.one_of(
            st.none(),
            bodies.map(lambda b: b + check_char(b)),
            st.tuples(bodies, st.sampled_from("0123456789X")).map("".join),
        ),
        max_size=12,
    )
)
def test_wrong_check_digits_of_a_column_are_those_id_check_digit_refuses(column):
    expected = [i for i, n in enumerate(column) if n and n[17] != identity.id_check_digit(n[:17])]
    assert identity.wrong_check_digits(column) == expected
