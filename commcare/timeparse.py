"""WHEN and intervals, in the configured time zone; day boundaries for reports.

Every time is stored in UTC; "today" is computed in the configured zone.
"""

from __future__ import annotations

import datetime as dt
import re

from commcare.errors import InvalidValue
from commcare.identity import nfkc
from commcare.patterns import Pattern

UTC = dt.UTC
RELATIVE = Pattern(r"([+-])\s*([0-9]+)\s*(m|min|h|d|w)", re.ASCII | re.IGNORECASE)
UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(
    raw: str, tz: dt.tzinfo, now: dt.datetime, field: str = "when", date_time: dt.time = dt.time(12, 0)
) -> dt.datetime:
    """``2026-05-08`` (at ``date_time``), ``2026-05-08 14:00``, ISO 8601, ``+2d``/``+4h``,
    ``now``, ``today``, ``tomorrow`` — as an aware UTC datetime."""
    text = nfkc(str(raw)).strip()
    low = text.lower()
    m = RELATIVE.fullmatch(low)
    if m:
        delta = dt.timedelta(**{UNITS[m[3]]: int(m[2])})
        return (now + delta if m[1] == "+" else now - delta).astimezone(UTC)
    if low in ("now", "现在"):
        return now.astimezone(UTC)
    named = {"today": 0, "今天": 0, "tomorrow": 1, "明天": 1, "yesterday": -1, "昨天": -1}
    if low in named:
        day = now.astimezone(tz).date() + dt.timedelta(days=named[low])
        return dt.datetime.combine(day, date_time, tz).astimezone(UTC)
    return _parse_absolute(text, tz, field, date_time)


def _parse_absolute(text: str, tz, field: str, date_time: dt.time) -> dt.datetime:
    if re.fullmatch(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}", text, re.ASCII):
        return dt.datetime.combine(_date(text, field), date_time, tz).astimezone(UTC)
    candidate = text.replace("/", "-")
    if not re.fullmatch(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{1,2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?",
        candidate,
        re.ASCII | re.IGNORECASE,
    ):
        raise InvalidValue("value.bad_when", field=field, value=text)
    try:
        value = dt.datetime.fromisoformat(candidate.replace("z", "Z"))
    except ValueError:
        raise InvalidValue("value.bad_date", field=field, value=text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def _date(text: str, field: str) -> dt.date:
    try:
        y, m, d = (int(p) for p in text.split("-"))
        return dt.date(y, m, d)
    except ValueError:
        raise InvalidValue("value.bad_date", field=field, value=text)


def parse_date(raw: str, tz: dt.tzinfo, now: dt.datetime, field: str = "date") -> dt.date:
    """A calendar day: ``2026-05-08``, ``today``, ``yesterday``, or ``-1d``."""
    text = nfkc(str(raw)).strip()
    low = text.lower()
    local_today = now.astimezone(tz).date()
    named = {"today": 0, "今天": 0, "yesterday": -1, "昨天": -1, "tomorrow": 1, "明天": 1}
    if low in named:
        return local_today + dt.timedelta(days=named[low])
    m = re.fullmatch(r"([+-])([0-9]+)d", low, re.ASCII)
    if m:
        return local_today + dt.timedelta(days=int(m[2]) * (1 if m[1] == "+" else -1))
    if not re.fullmatch(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}", text.replace("/", "-"), re.ASCII):
        raise InvalidValue("value.bad_date", field=field, value=text)
    return _date(text.replace("/", "-"), field)


INTERVAL = Pattern(r"([0-9]+)\s*(h|d|w)", re.ASCII | re.IGNORECASE)
NAMED_INTERVALS = {"daily": "1d", "每天": "1d", "weekly": "1w", "每周": "1w", "hourly": "1h"}


def parse_interval(raw: str, field: str = "every") -> tuple[str, dt.timedelta]:
    """(canonical text, length) of ``2d``, ``daily``, ``weekly``, ``12h``, ``2w``."""
    text = nfkc(str(raw)).strip().lower()
    canonical = NAMED_INTERVALS.get(text, text)
    m = INTERVAL.fullmatch(canonical)
    if not m or int(m[1]) == 0:
        raise InvalidValue("value.bad_interval", field=field, value=raw)
    unit = {"h": "hours", "d": "days", "w": "weeks"}[m[2]]
    delta = dt.timedelta(**{unit: int(m[1])})
    if delta > dt.timedelta(days=366):
        raise InvalidValue("value.bad_interval", field=field, value=raw)
    return f"{int(m[1])}{m[2]}", delta


def day_bounds(day: dt.date, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants [start, end) of a calendar day in ``tz``."""
    start = dt.datetime.combine(day, dt.time(0), tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def days_bounds(
    date_from: str | None, date_to: str | None, tz: dt.tzinfo, now: dt.datetime
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The start of the first day and the end of the last one, from ``--from`` and ``--to``
    (either may be absent: no bound on that side)."""
    start = day_bounds(parse_date(date_from, tz, now, "from"), tz)[0] if date_from else None
    end = day_bounds(parse_date(date_to, tz, now, "to"), tz)[1] if date_to else None
    return start, end


def iso(moment: dt.datetime | None, tz: dt.tzinfo) -> str | None:
    """ISO 8601 with the UTC offset of the configured zone."""
    return None if moment is None else moment.astimezone(tz).isoformat(timespec="seconds")
