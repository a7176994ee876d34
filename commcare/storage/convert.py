"""The values the DB-API drivers give and take, converted as SQLAlchemy's column types would:
the one place where the fast path (``commcare.storage.sql``) turns a stored value into what the
domain reads, and a value the domain gives into what the driver sends.

Each column or parameter has a *kind*, decided once, when its statement is compiled:

- ``utc``: an aware datetime stored in UTC (``tables.UTCDateTime``): naive UTC text on SQLite
  (``2026-05-08 06:00:00.000000``, SQLAlchemy's own SQLite format), ``timestamptz`` on
  PostgreSQL; read back as an aware datetime in UTC.
- ``date``: ISO text on SQLite, ``date`` on PostgreSQL.
- ``bool``: 0/1 on SQLite, ``boolean`` on PostgreSQL.
- ``json``: text on SQLite, ``json``/``jsonb`` on PostgreSQL (psycopg loads it itself).
- ``plain``: what the driver gives (text, integers, floats, NULL).
"""

from __future__ import annotations

import datetime as dt
import json

UTC = dt.UTC
_parse = dt.datetime.fromisoformat


def kind_of(sqltype) -> str:
    """The kind of a SQLAlchemy type (called only while compiling, with SQLAlchemy loaded)."""
    from sqlalchemy import JSON, Boolean, Date, DateTime

    from commcare.storage.tables import UTCDateTime

    if isinstance(sqltype, UTCDateTime):
        return "utc"
    if isinstance(sqltype, DateTime):
        raise TypeError("a datetime column that is not UTCDateTime")
    if isinstance(sqltype, Date):
        return "date"
    if isinstance(sqltype, Boolean):
        return "bool"
    if isinstance(sqltype, JSON):
        return "json"
    return "plain"


# --- values going to the driver ---------------------------------------------------------------


def _utc_sqlite(value):
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    v = value.astimezone(UTC)
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d} {v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"


def _utc_server(value):
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime")
    return None if value is None else value.astimezone(UTC)


def _date_sqlite(value):
    return None if value is None else value.isoformat()


def _bool_sqlite(value):
    return None if value is None else int(bool(value))


def _json_sqlite(value):
    return None if value is None else json.dumps(value)


def _json_server(value):
    if value is None:
        return None
    from psycopg.types.json import Json

    return Json(value)


BIND = {
    "sqlite": {"utc": _utc_sqlite, "date": _date_sqlite, "bool": _bool_sqlite, "json": _json_sqlite},
    "postgresql": {"utc": _utc_server, "json": _json_server},
}


# --- values coming from the driver -------------------------------------------------------------


def _utc_from_text(value):
    if value is None:
        return None
    if isinstance(value, str):
        return _parse(value + "+00:00") if len(value) <= 26 else _parse(value).astimezone(UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_from_server(value):
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _date_from_text(value):
    return None if value is None or isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _bool_from_int(value):
    return None if value is None else bool(value)


def _json_from_text(value):
    return json.loads(value) if isinstance(value, str) else value


RESULT = {
    "sqlite": {"utc": _utc_from_text, "date": _date_from_text, "bool": _bool_from_int, "json": _json_from_text},
    "postgresql": {"utc": _utc_from_server},
}


def binder(dialect: str, kind: str):
    """The function that turns a value of ``kind`` into what the driver takes, or None."""
    return BIND[dialect].get(kind)


def reader(dialect: str, kind: str):
    """The function that turns what the driver gives for ``kind`` into the value, or None."""
    return RESULT[dialect].get(kind)
