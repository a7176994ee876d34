"""The fixed lists of values in the words people use: ``data/words.toml`` (status, urgency,
channel, outcome, test, recipients, kind, sex, event, role, source), extended by the config's
``[words.FIELD.SLUG]`` tables. The database and JSON hold the slugs; a person reads and types
the words of the command's language (``label``, ``parse``). Categories and tags have their own
files (``data/categories.toml``, ``data/tags.toml``) and are labelled here too.
"""

from __future__ import annotations

import unicodedata
from functools import cache

_extra: list[dict] = [{}]

# Columns of a list, a ``show`` or a report whose values are slugs of a field.
COLUMN_FIELDS = {
    "status": "status",
    "from": "status",
    "to": "status",
    "urgency": "urgency",
    "channel": "channel",
    "outcome": "outcome",
    "last_outcome": "outcome",
    "test": "test",
    "for": "recipients",
    "recipients": "recipients",
    "kind": "kind",
    "sex": "sex",
    "event": "event",
    "role": "role",
    "source": "source",
    "category": "category",
    "tags": "tags",
    "special": "tags",
    "entity": "entity",
    "action": "action",
    "fields": "fields",
    "key": "setting",
    "detail": "detail",
    "check": "check",
    "escalate_action": "escalation",
}


# Words made of parts: env NAME, ENTITY.VERB, field names, an audit detail's "resident #12".
SPECIAL = ("source", "action", "fields", "detail", "check")


def configure(file: dict | None) -> None:
    """The config file's ``[words]`` and ``[tags]`` tables (called when the settings load)."""
    file = file if isinstance(file, dict) else {}
    extra = dict(file.get("words") or {}) if isinstance(file.get("words"), dict) else {}
    extra["__tags__"] = file.get("tags") if isinstance(file.get("tags"), dict) else None
    if extra != _extra[0]:
        _extra[0] = extra
        table.cache_clear()
        _words_of.cache_clear()


@cache
def table() -> dict[str, dict[str, dict]]:
    from commcare.resources import load_toml

    merged = {field: {slug: dict(spec) for slug, spec in slugs.items()} for field, slugs in load_toml("words").items()}
    for field, slugs in _extra[0].items():
        if field == "__tags__":
            continue
        for slug, spec in slugs.items() if isinstance(slugs, dict) else ():
            known = merged.get(field, {}).get(slug)
            if known is None or not isinstance(spec, dict):
                continue
            known.update({k: v for k, v in spec.items() if k in ("zh", "en") and isinstance(v, str)})
            known["aliases"] = [*known.get("aliases", []), *[str(a) for a in spec.get("aliases", [])]]
    return merged


def _key(text: str) -> str:
    return unicodedata.normalize("NFKC", str(text)).strip().lower()


def label(field: str, slug, lang: str | None = None):
    """The word a person reads for ``slug`` of ``field`` in ``lang``; anything that is not a
    known slug (a free-text value, None) as it is."""
    from commcare.i18n import get_lang

    return _shown(slug, words_of(field, lang or get_lang()), field, lang or get_lang())


def _shown(value, known: dict, field: str, lang: str):
    if isinstance(value, (list, tuple)):
        return [_shown(v, known, field, lang) for v in value]
    if not isinstance(value, str) or not value:
        return value
    word = known.get(value)
    if word is not None:
        return word
    if field == "check" and value.startswith("mode "):  # a file's mode: 文件权限 commcare.db
        return f"{label(field, 'mode', lang)} {value[5:]}"
    if field == "source" and value.startswith("env "):
        return f"{label(field, 'env', lang)} {value[4:]}"
    if field == "action" and "." in value and lang != "en":
        entity, _, verb = value.partition(".")
        return f"{label('entity', entity, lang)}·{label('verb', verb, lang)}"
    if field == "fields":
        from commcare.i18n import field_label

        return field_label(value, lang).strip("「」")
    if field == "detail" and lang != "en":
        import re

        return re.sub(r"\b([a-z_]+) #", lambda m: f"{label('entity', m.group(1), lang)} #", value)
    return value


def words_of(field: str, lang: str) -> dict[str, str]:
    """slug -> the word of ``lang``, for each value of ``field`` (cached with the table)."""
    return _words_of(field, lang, id(_extra[0]))


@cache
def _words_of(field: str, lang: str, _config: int) -> dict[str, str]:
    if field == "category":
        from commcare.identity import categories

        specs = categories()
    elif field == "tags":
        from commcare.identity import tag_table

        specs = tag_table(_extra[0].get("__tags__"))
    else:
        specs = table().get(field, {})
    return {slug: str(spec.get(lang) or slug) for slug, spec in specs.items() if isinstance(spec, dict)}


def parse(field: str, raw: str, choices: tuple[str, ...] | None = None, option: str | None = None) -> str:
    """The slug ``raw`` names among ``field``'s values (its slug, its zh or en word, an alias),
    limited to ``choices``; an unknown word is refused listing the words of the language."""
    from commcare.errors import InvalidValue

    text = _key(raw)
    for slug, spec in table().get(field, {}).items():
        if choices is not None and slug not in choices:
            continue
        if text in {_key(w) for w in (slug, spec.get("zh", ""), spec.get("en", ""), *spec.get("aliases", [])) if w}:
            return slug
    raise InvalidValue("value.bad_choice", field=option or field, value=raw, choices=listing(field, choices))


def listing(field: str, choices: tuple[str, ...] | None = None) -> str:
    """The values of ``field`` as the language lists them: 待处理、已指派 … or open|assigned …"""
    from commcare.i18n import get_lang

    slugs = [s for s in table().get(field, {}) if choices is None or s in choices]
    if get_lang() == "en":
        return "|".join(slugs)
    return "、".join(label(field, s, "zh") for s in slugs)


def display(rows, lang: str | None = None):
    """``rows`` (a list of dicts, or one dict) with the slugs of known columns in words: each
    column's words are looked up once, then each row is one dictionary lookup per such column
    (100,000 residents' tags and sexes)."""
    from commcare.i18n import get_lang

    lang = lang or get_lang()
    if isinstance(rows, dict):
        return display([rows], lang)[0]
    rows = list(rows)
    columns = {c for row in rows[:1] for c in row if c in COLUMN_FIELDS}
    if not columns:
        return rows
    plain = {c: words_of(COLUMN_FIELDS[c], lang) for c in columns if COLUMN_FIELDS[c] not in SPECIAL}
    special = [c for c in columns if COLUMN_FIELDS[c] in SPECIAL]
    out = []
    for row in rows:
        row = dict(row)
        for c, known in plain.items():
            value = row.get(c)
            if isinstance(value, list):
                row[c] = [known.get(v, v) for v in value]
            elif isinstance(value, str):
                row[c] = known.get(value, value)
        for c in special:
            row[c] = label(COLUMN_FIELDS[c], row.get(c), lang)
        out.append(row)
    return out
