"""Every user-facing string, in zh and en.

The strings live in ``data/messages/*.json`` (one file per area of the tool), each entry
``"area.key": {"zh": "…", "en": "…"}`` with ``{name}`` placeholders. JSON rather than TOML
because every command prints a message and the C JSON parser reads the whole catalogue in
about a millisecond, where a pure-Python TOML parser took some 60 ms of each command's start. ``t(key, **values)``
picks the language set by ``set_lang`` (the CLI sets it from --lang, COMMCARE_LANG, the
config or the locale).
"""

from __future__ import annotations

import os
from functools import cache

LANGS = ("zh", "en")
_current: list[str] = []


def detect_lang() -> str:
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "")
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def set_lang(lang: str | None) -> None:
    _current[:] = [lang if lang in LANGS else detect_lang()]


def get_lang() -> str:
    if not _current:
        set_lang(os.environ.get("COMMCARE_LANG"))
    return _current[0]


@cache
def catalog() -> dict[str, dict[str, str]]:
    import json

    from commcare.resources import data_dir

    merged: dict[str, dict[str, str]] = {}
    for path in sorted((data_dir() / "messages").glob("*.json")):
        _flatten(json.loads(path.read_text(encoding="utf-8")), "", merged)
    return merged


def _flatten(table: dict, prefix: str, out: dict) -> None:
    for key, value in table.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict) and ("zh" in value or "en" in value):
            out[full] = value
        elif isinstance(value, dict):
            _flatten(value, full + ".", out)


def t(key: str, lang: str | None = None, /, **values: object) -> str:
    """The message ``key`` in ``lang`` (default: the current language), filled in."""
    entry = catalog().get(key)
    if entry is None:
        return key if not values else f"{key}: " + ", ".join(f"{k}={v}" for k, v in values.items())
    text = entry.get(lang or get_lang()) or entry.get("en") or next(iter(entry.values()))
    try:
        return text.format(**values)
    except (KeyError, IndexError):
        return text
