"""Times as people write them in a table: ``5月8日 14:00`` (zh) or ``05-08 14:00`` (en) in the
current year, ``2025-05-08 14:00`` in another. JSON and CSV keep ISO 8601: this is only for
what a person reads. Pure functions of the ISO text (its own offset is the zone it is in)."""

from __future__ import annotations

import re

from commcare.patterns import Pattern

ISO_TIME = Pattern(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2})(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})",
    re.ASCII,
)


def human_time(text: str | None, this_year: int | None = None, lang: str | None = None) -> str:
    """``2026-05-08T14:00:00+08:00`` as ``5月8日 14:00`` / ``05-08 14:00`` when it is of
    ``this_year``, else ``2026-05-08 14:00``; anything else unchanged."""
    if not text:
        return ""
    m = ISO_TIME.fullmatch(text)
    if m is None:
        return text
    year, month, day, hour, minute = m.groups()
    if this_year is None or int(year) != this_year:
        return f"{year}-{month}-{day} {hour}:{minute}"
    if (lang or _lang()) == "zh":
        return f"{int(month)}月{int(day)}日 {hour}:{minute}"
    return f"{month}-{day} {hour}:{minute}"


def is_time(value) -> bool:
    return isinstance(value, str) and len(value) >= 16 and ISO_TIME.fullmatch(value) is not None


def _lang() -> str:
    from commcare.i18n import get_lang

    return get_lang()
