"""Every user-facing string, in zh and en.

The strings live in ``data/messages/*.json`` (one file per area of the tool), each entry
``"area.key": {"zh": "…", "en": "…"}`` with ``{name}`` placeholders. JSON rather than TOML
because every command prints a message and the C JSON parser reads the whole catalogue in
about a millisecond, where a pure-Python TOML parser took some 60 ms of each command's start. ``t(key, **values)``
picks the language set by ``set_lang`` (the CLI sets it from --lang, COMMCARE_LANG, the
config or the locale; Chinese unless one of them asks for English: a C/POSIX locale, cron's and
a container's, is no choice). ``COMMCARE_STRICT_I18N=1`` (the tests set it) makes a missing key
an error rather than the key itself. ``plural(n, key)`` picks ``key.one`` or ``key.other`` in
English (Chinese has one form).
"""

from __future__ import annotations

import os
from functools import cache

LANGS = ("zh", "en")
_current: list[str] = []


def locale_lang() -> str:
    """English for a locale whose language is English (en_US.UTF-8), else Chinese: the first of
    LC_ALL, LC_MESSAGES, LANG that is set decides, as the C library does; C and POSIX are Chinese."""
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "")
        if value:
            return "en" if value.lower().startswith("en") else "zh"
    return "zh"


def config_lang(path: str | None = None) -> str | None:
    """The ``lang`` of the config file (``--config``, COMMCARE_CONFIG or the default place),
    read cheaply before the command is built (help must be in the right language): the
    top-level ``lang = "…"`` line, before any ``[table]``. The config is read properly later."""
    import re

    path = path or os.environ.get("COMMCARE_CONFIG")
    if not path:
        base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        path = os.path.join(base, "commcare", "commcare.toml")
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as fh:
            text = fh.read(65536)
    except (OSError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        if line.lstrip().startswith("["):
            return None
        found = re.match(r"""\s*lang\s*=\s*["']([a-z]+)["']""", line)
        if found and found.group(1) in LANGS:
            return found.group(1)
    return None


def resolve_lang(option: str | None = None, config: str | None = None) -> str:
    """--lang, else COMMCARE_LANG, else the config's ``lang``, else the locale."""
    for lang in (option, os.environ.get("COMMCARE_LANG")):
        if lang in LANGS:
            return lang
    return config_lang(config) or locale_lang()


def early_lang(args: list[str]) -> str:
    """The language from the command line's global options before Click parses them."""
    option = config = None
    for i, arg in enumerate(args):
        for name in ("--lang", "--config"):
            if arg == name and i + 1 < len(args):
                value: str | None = args[i + 1]
            elif arg.startswith(name + "="):
                value = arg.split("=", 1)[1]
            else:
                continue
            if name == "--lang":
                option = value
            else:
                config = value
    return resolve_lang(option, config)


def set_lang(lang: str | None) -> None:
    _current[:] = [lang if lang in LANGS else resolve_lang()]


def get_lang() -> str:
    if not _current:
        set_lang(None)
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
        if os.environ.get("COMMCARE_STRICT_I18N") == "1":
            raise KeyError(f"message {key!r} is not in data/messages")
        return key if not values else f"{key}: " + ", ".join(f"{k}={v}" for k, v in values.items())
    text = entry.get(lang or get_lang()) or entry.get("en") or next(iter(entry.values()))
    try:
        return text.format(**values)
    except (KeyError, IndexError):
        return text


def column(name: str, key: str | None = None) -> str:
    """A column's header: the message ``key`` (default ``col.NAME``), or the name itself when
    the catalogue has none (a column added by a newer branch, an ad-hoc key)."""
    key = key or f"col.{name}"
    return t(key) if key in catalog() else name


def field_label(name: str, lang: str | None = None) -> str:
    """A field as an error message names it: 「联系电话」 in Chinese, ``phone`` in English (an
    option or a name without a catalogue entry as it is)."""
    entry = catalog().get(f"field.{name}")
    return (entry.get(lang or get_lang()) or name) if entry else name


def plural(count: int, key: str, lang: str | None = None, /, **values: object) -> str:
    """``key.one`` for one and ``key.other`` otherwise, with ``count`` among the values (English
    reads "1 entry", "2 entries"; the Chinese of both is the same)."""
    return t(f"{key}.one" if count == 1 else f"{key}.other", lang, count=count, **values)
