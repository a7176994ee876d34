"""The statement cache and the value conversions of the fast path (``commcare.storage.sql``,
``commcare.storage.convert``), against SQLAlchemy's own processing of the same values."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commcare.storage import convert, sql

AWARE = st.datetimes(
    min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.timezones()
).filter(lambda v: v.utcoffset() is not None)


_ENGINE: list = []


def _sa_sqlite_roundtrip(value: dt.datetime):
    """What SQLAlchemy stores for a UTCDateTime on SQLite (the text in the file), and what it
    reads back: a real engine, a real table."""
    from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select, text

    from commcare.storage.tables import UTCDateTime

    if not _ENGINE:
        engine, meta = create_engine("sqlite://"), MetaData()
        table = Table("t", meta, Column("id", Integer, primary_key=True), Column("at", UTCDateTime))
        meta.create_all(engine)
        _ENGINE.extend([engine, table])
    engine, table = _ENGINE
    with engine.begin() as conn:
        conn.execute(table.delete())
        conn.execute(insert(table).values(at=value))
        stored = conn.execute(text("SELECT at FROM t")).scalar_one()
        read = conn.execute(select(table.c.at)).scalar_one()
    return stored, read


@settings(max_examples=100, deadline=None)
@given(AWARE)
def test_a_utc_time_is_stored_and_read_as_sqlalchemy_does(value):
    stored, read = _sa_sqlite_roundtrip(value)
    assert convert.binder("sqlite", "utc")(value) == stored
    assert convert.reader("sqlite", "utc")(stored) == read
    assert read.tzinfo is not None and read == value.astimezone(dt.UTC)


def test_a_naive_time_is_refused_as_sqlalchemy_refuses_it():
    with pytest.raises(ValueError, match="naive"):
        convert.binder("sqlite", "utc")(dt.datetime(2026, 5, 8, 12, 0))
    with pytest.raises(ValueError, match="naive"):
        convert.binder("postgresql", "utc")(dt.datetime(2026, 5, 8, 12, 0))


def test_dates_booleans_and_nulls_convert_both_ways():
    day = dt.date(2026, 5, 8)
    assert convert.binder("sqlite", "date")(day) == "2026-05-08"
    assert convert.reader("sqlite", "date")("2026-05-08") == day
    assert convert.binder("sqlite", "bool")(True) == 1
    assert convert.reader("sqlite", "bool")(0) is False
    for kind in ("utc", "date", "bool", "json"):
        assert convert.binder("sqlite", kind)(None) is None
        assert convert.reader("sqlite", kind)(None) is None


@sql.statement
def _residents_named(with_phone: bool):
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import residents

    query = select(residents.c.id, residents.c.name, residents.c.created_at).where(
        residents.c.name.in_(bindparam("names", expanding=True))
    )
    if with_phone:
        query = query.where(residents.c.phone == bindparam("phone"))
    return query.order_by(residents.c.id)


def test_a_declared_statement_is_compiled_once_per_shape_and_kept_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMMCARE_CACHE_DIR", str(tmp_path / "cache"))
    cache = sql.StatementCache()
    plain = cache.get(_residents_named(False), "sqlite")
    phoned = cache.get(_residents_named(True), "sqlite")
    assert "phone" not in plain.sql and ":phone" in phoned.sql
    assert [name for name, _ in plain.columns] == ["id", "name", "created_at"]
    assert dict(plain.columns)["created_at"] == "utc"
    files = list((tmp_path / "cache").iterdir())
    assert len(files) == 1 and files[0].stat().st_mode & 0o777 == 0o600
    again = sql.StatementCache()  # a new process: read from the file, not compiled
    monkeypatch.setattr(sql, "compile_entry", lambda *a: pytest.fail("compiled again"))
    assert again.get(_residents_named(True), "sqlite").sql == phoned.sql


def test_a_damaged_cache_file_is_compiled_again(tmp_path, monkeypatch):
    monkeypatch.setenv("COMMCARE_CACHE_DIR", str(tmp_path))
    sql.cache_path().write_bytes(b"{not json")
    found = sql.StatementCache().get(_residents_named(False), "sqlite")
    assert found.sql.startswith("SELECT")


def test_the_cache_file_is_named_by_the_version_and_the_source(tmp_path, monkeypatch):
    from commcare import __version__

    monkeypatch.setenv("COMMCARE_CACHE_DIR", str(tmp_path))
    name = sql.cache_path().name
    assert name.startswith(f"statements-{__version__}-")
    sql._STAMP.clear()
    monkeypatch.setattr("commcare.__version__", "9.9.9")
    try:
        assert sql.cache_path().name.startswith("statements-9.9.9-")
    finally:
        sql._STAMP.clear()


def test_lists_expand_on_the_driver_including_an_empty_one(tmp_path, monkeypatch):
    monkeypatch.setenv("COMMCARE_CACHE_DIR", str(tmp_path))
    compiled = sql.StatementCache().get(_residents_named(False), "sqlite")
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE residents (id INTEGER, name TEXT, created_at TEXT)")
    con.executemany(
        "INSERT INTO residents VALUES (?, ?, ?)",
        [(1, "张桂兰", "2026-05-08 01:00:00.000000"), (2, "刘建国", "2026-05-08 02:00:00.000000")],
    )
    text, params = compiled.parameters({"names": ["张桂兰", "刘建国"]}, "sqlite")
    rows = con.execute(text, params).fetchall()
    assert [r[1] for r in rows] == ["张桂兰", "刘建国"]
    text, params = compiled.parameters({"names": []}, "sqlite")
    assert con.execute(text, params).fetchall() == []


def test_rows_read_like_sqlalchemy_rows():
    cls = sql.row_class(("id", "name"))
    row = cls._make((3, "张桂兰"))
    assert row.id == 3 and row[1] == "张桂兰" and row._mapping == {"id": 3, "name": "张桂兰"}
    id_, name = row
    assert (id_, name) == (3, "张桂兰")


@sql.statement
def _named_twice():
    from sqlalchemy import bindparam, or_, select

    from commcare.storage.tables import residents

    names = bindparam("names", expanding=True)
    return select(residents.c.id).where(or_(residents.c.name.in_(names), residents.c.phone.in_(names)))


def test_a_list_used_twice_in_one_statement_is_sent_for_both(tmp_path, monkeypatch):
    monkeypatch.setenv("COMMCARE_CACHE_DIR", str(tmp_path))
    compiled = sql.StatementCache().get(_named_twice(), "sqlite")
    assert compiled.sql.count("POSTCOMPILE_names") == 2
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE residents (id INTEGER, name TEXT, phone TEXT)")
    con.executemany("INSERT INTO residents VALUES (?, ?, ?)", [(1, "张桂兰", "139"), (2, "刘建国", "138")])
    text, params = compiled.parameters({"names": ["张桂兰", "138"]}, "sqlite")
    assert sorted(r[0] for r in con.execute(text, params)) == [1, 2]


@pytest.mark.parametrize(
    "names",
    [
        ("id", "name"),
        ("id", "name", "id"),  # a join's two ids
        ("count_1", "class", "_hidden", "has space", "名字"),
        ("count", "index"),  # tuple's own methods, shadowed as namedtuple shadows them
    ],
)
def test_row_classes_name_their_columns_as_namedtuple_does(names):
    from collections import namedtuple

    cls = sql.row_class(names)
    values = tuple(range(len(names)))
    row = cls._make(values)
    assert row._fields == namedtuple("Row", names, rename=True)._fields
    assert row == values and isinstance(row, tuple)
    assert [getattr(row, f) for f in row._fields] == list(values)
    assert row._mapping == dict(zip(row._fields, values, strict=True))
    assert sql.row_class(names) is cls  # one class per list of columns
