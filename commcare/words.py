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
}


def configure(file: dict | None) -> None:
    """The config file's ``[words]`` and ``[tags]`` tables (called when the settings load)."""
    file = file if isinstance(file, dict) else {}
    extra = dict(file.get("words") or {}) if isinstance(file.get("words"), dict) else {}
    extra["__tags__"] = file.get("tags") if isinstance(file.get("tags"), dict) else None
    if extra != _extra[0]:
        _extra[0] = extra
        table.cache_clear()


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
    if slug is None or slug == "":
        return slug
    if isinstance(slug, (list, tuple)):
        return [label(field, s, lang) for s in slug]
    from commcare.i18n import get_lang

    lang = lang or get_lang()
    if field == "category":
        from commcare.identity import categories

        spec = categories().get(slug)
    elif field == "tags":
        from commcare.identity import tag_table

        spec = tag_table(_extra[0].get("__tags__")).get(slug)
    elif field == "source" and isinstance(slug, str) and slug.startswith("env "):
        return f"{label(field, 'env', lang)} {slug[4:]}"
    elif field == "action" and isinstance(slug, str) and "." in slug:
        entity, _, verb = slug.partition(".")
        return slug if lang == "en" else f"{label('entity', entity, lang)}·{label('verb', verb, lang)}"
    elif field == "fields" and isinstance(slug, str):
        from commcare.i18n import field_label

        return field_label(slug, lang).strip("「」")
    else:
        spec = table().get(field, {}).get(slug)
    if not isinstance(spec, dict):
        return slug
    return spec.get(lang) or slug


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
    """``rows`` (a list of dicts, or one dict) with the slugs of known columns in words."""
    if isinstance(rows, dict):
        return {k: (label(COLUMN_FIELDS[k], v, lang) if k in COLUMN_FIELDS else v) for k, v in rows.items()}
    return [display(row, lang) for row in rows]
