"""The output writers: the fast JSON writer is json.dumps(indent=2), character for character."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import given
from hypothesis import strategies as st

from commcare import render

PLAIN = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(),
                  st.dates())
KEYS = st.one_of(st.text(), st.integers(), st.booleans(), st.none())
VALUES = st.recursive(PLAIN, lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                                                     st.dictionaries(KEYS, inner, max_size=4)), max_leaves=30)


def dumps(data) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"


@given(VALUES)
def test_to_json_is_json_dumps_with_indent_2(data):
    assert render.to_json(data) == dumps(data)


def test_to_json_on_a_report_shaped_value():
    rows = [{"id": i, "resident": f"居民\"{i}\"\n", "liaison": None if i % 3 else "王秀英", "due": dt.date(2026, 5, i + 1)}
            for i in range(5)]
    data = {"date": "2026-05-08", "calls": {"due": 5, "missed": rows, "none": []}, "empty": {}, "x": [[], [{}]]}
    assert render.to_json(data) == dumps(data)
    assert render.to_json([]) == "[]\n" and render.to_json({}) == "{}\n"


@given(st.data())
def test_to_json_on_rows_sharing_their_keys(data):
    """Rows with the same keys take the column-by-column path; keys may hold % and NUL."""
    keys = data.draw(st.lists(st.text(), min_size=1, max_size=5, unique=True))
    rows = data.draw(st.lists(st.fixed_dictionaries({k: PLAIN for k in keys}), min_size=1, max_size=6))
    nested = {"rows": rows, "more": [rows]}
    assert render.to_json(rows) == dumps(rows)
    assert render.to_json(nested) == dumps(nested)
