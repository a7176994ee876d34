"""The output writers: the JSON writer (orjson) is json.dumps(indent=2), character for
character, for every value commcare writes; beyond that it is still JSON of the same values."""

from __future__ import annotations

import datetime as dt
import json
import math

from hypothesis import given
from hypothesis import strategies as st

from commcare.render import formats

# What commcare writes: 64-bit integers, and floats that Python writes without an exponent
# (temperatures, quantities); JSON itself is checked beyond that in the tests at the end.
FLOATS = st.floats(min_value=-1e15, max_value=1e15).filter(lambda x: x == 0 or abs(x) >= 1e-4)
PLAIN = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    FLOATS,
    st.text(),
    st.dates(),
    st.datetimes(),
)
KEYS = st.one_of(st.text(), st.integers(), st.booleans(), st.none())
VALUES = st.recursive(
    PLAIN,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.tuples(inner, inner), st.dictionaries(KEYS, inner, max_size=4)
    ),
    max_leaves=30,
)


def dumps(data) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"


@given(VALUES)
def test_to_json_is_json_dumps_with_indent_2(data):
    assert formats.to_json(data) == dumps(data)


def test_to_json_on_a_report_shaped_value():
    rows = [
        {"id": i, "resident": f'居民"{i}"\n', "liaison": None if i % 3 else "王秀英", "due": dt.date(2026, 5, i + 1)}
        for i in range(5)
    ]
    data = {"date": "2026-05-08", "calls": {"due": 5, "missed": rows, "none": []}, "empty": {}, "x": [[], [{}]]}
    assert formats.to_json(data) == dumps(data)
    assert formats.to_json([]) == "[]\n" and formats.to_json({}) == "{}\n"


@given(st.data())
def test_to_json_on_rows_sharing_their_keys(data):
    """Rows with the same keys take the column-by-column path; keys may hold % and NUL."""
    keys = data.draw(st.lists(st.text(), min_size=1, max_size=5, unique=True))
    rows = data.draw(st.lists(st.fixed_dictionaries({k: PLAIN for k in keys}), min_size=1, max_size=6))
    nested = {"rows": rows, "more": [rows]}
    assert formats.to_json(rows) == dumps(rows)
    assert formats.to_json(nested) == dumps(nested)


@given(st.one_of(st.floats(), st.integers()))
def test_any_number_is_still_json_of_the_same_value(number):
    """Floats with an exponent (1e-07 / 1e-7) and integers beyond 64 bits (written by json
    itself) read back as the same number; NaN and infinities, which JSON cannot hold, as null."""
    back = json.loads(formats.to_json({"n": number}))["n"]
    if isinstance(number, float) and not math.isfinite(number):
        assert back is None
    else:
        assert back == number


def test_the_json_of_a_register_row_is_byte_for_byte_json_dumps():
    row = {
        "id": 12,
        "name": "张桂兰·阿依古丽",
        "phone": "139****5678",
        "tags": ["elderly", "lives-alone"],
        "temp": 36.5,
        "quantity": 50.0,
        "born": dt.date(1949, 12, 31),
        "note": '降压药\n吃完了\t"急"',
        "at": dt.datetime(2026, 5, 8, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        "archived": None,
    }
    assert formats.to_json([row, row]) == dumps([row, row])
