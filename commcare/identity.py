"""Normalise, then validate: phones, ID numbers, names, sex, tags, categories.

Identifiers are NFKC-normalised (full-width digits become ASCII) and matched with ASCII-only
patterns; names keep their form (NFC only). Every failure is an ``InvalidValue`` (exit 2)
naming the field.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from functools import cache

from commcare.errors import InvalidValue

MOBILE = re.compile(r"1[3-9][0-9]{9}", re.ASCII)
LANDLINE = re.compile(r"(0[0-9]{2,3})([1-9][0-9]{6,7})", re.ASCII)
THREE_DIGIT_AREAS = re.compile(r"0(10|2[0-9])", re.ASCII)
_PHONE_JUNK = re.compile(r"[\s\-()\u2010-\u2015\u2212]")


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def normalize_phone(raw: str, field: str = "phone") -> str:
    """A mainland mobile (``13912345678``) or landline with area code (``0371-67891234``)."""
    text = _PHONE_JUNK.sub("", nfkc(str(raw)))
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    elif len(text) == 13 and text.startswith("86"):
        text = text[2:]
    if MOBILE.fullmatch(text):
        return text
    landline = _split_landline(text)
    if landline:
        return landline
    raise InvalidValue("value.bad_phone", field=field, value=raw)


def _split_landline(digits: str) -> str | None:
    if not digits.startswith("0"):
        return None
    area_len = 3 if THREE_DIGIT_AREAS.match(digits) else 4
    area, local = digits[:area_len], digits[area_len:]
    if LANDLINE.fullmatch(digits) and 7 <= len(local) <= 8 and local[0] != "0":
        return f"{area}-{local}"
    return None


def mask_phone(phone: str | None) -> str | None:
    """``138****5678``; a landline keeps its area code and last four digits."""
    if not phone:
        return phone
    if "-" in phone:
        area, local = phone.split("-", 1)
        return f"{area}-{'*' * (len(local) - 4)}{local[-4:]}"
    if len(phone) <= 7:
        return "*" * len(phone)
    return f"{phone[:3]}{'*' * (len(phone) - 7)}{phone[-4:]}"


def normalize_id_number(raw: str, field: str = "id_number") -> str:
    """An 18-character GB 11643 citizen ID number, check digit and date verified."""
    from stdnum import exceptions
    from stdnum.cn import ric

    text = re.sub(r"\s", "", nfkc(str(raw))).upper()
    if not re.fullmatch(r"[0-9]{17}[0-9X]", text, re.ASCII):
        raise InvalidValue("value.bad_id_format", field=field, value=_hide_id(text))
    # The check digit and the birth date, as GB 11643 defines them. Not ric.validate(): it also
    # requires the region code to have existed in the birth year, which refuses a 1935-born
    # resident of a county created in 1955 whose card carries today's code.
    if text[-1] != ric.calc_check_digit(text):
        raise InvalidValue("value.bad_id_checksum", field=field, value=_hide_id(text))
    try:
        born = ric.get_birth_date(text)
    except exceptions.ValidationError:
        raise InvalidValue("value.bad_id_date", field=field, value=_hide_id(text))
    if born.year < 1880 or born > dt.date.today():
        raise InvalidValue("value.bad_id_date", field=field, value=_hide_id(text))
    return text


def _hide_id(text: str) -> str:
    """An ID number as it may appear in an error message: first six and last two only."""
    return text if len(text) < 10 else f"{text[:6]}{'*' * (len(text) - 8)}{text[-2:]}"


def id_birth_date(id_number: str) -> dt.date:
    return dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def id_sex(id_number: str) -> str:
    return "M" if int(id_number[16]) % 2 else "F"


def normalize_name(raw: str | None, field: str = "name") -> str:
    text = unicodedata.normalize("NFC", raw or "").strip()
    if not text:
        raise InvalidValue("value.empty", field=field)
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise InvalidValue("value.control_chars", field=field)
    if len(text) > 200:
        raise InvalidValue("value.too_long", field=field, limit=200)
    return text


def normalize_text(raw: str | None, field: str = "note", limit: int = 4000) -> str | None:
    """Free text (notes, reasons): NFC, stripped, no NUL; None when empty."""
    if raw is None:
        return None
    text = unicodedata.normalize("NFC", raw).strip()
    if "\x00" in text:
        raise InvalidValue("value.control_chars", field=field)
    if len(text) > limit:
        raise InvalidValue("value.too_long", field=field, limit=limit)
    return text or None


SEXES = {"m": "M", "male": "M", "男": "M", "f": "F", "female": "F", "女": "F"}


def normalize_sex(raw: str | None, field: str = "sex") -> str | None:
    if raw is None or not str(raw).strip():
        return None
    value = SEXES.get(nfkc(str(raw)).strip().lower())
    if value is None:
        raise InvalidValue("value.bad_sex", field=field, value=raw)
    return value


def parse_birth_date(raw: str | None, field: str = "born", today: dt.date | None = None) -> dt.date | None:
    if raw is None or not str(raw).strip():
        return None
    text = nfkc(str(raw)).strip()
    m = re.fullmatch(r"([0-9]{4})[-/.年]?([0-9]{1,2})[-/.月]?([0-9]{1,2})日?", text, re.ASCII)
    try:
        if not m:
            raise ValueError
        born = dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise InvalidValue("value.bad_date", field=field, value=raw)
    if born > (today or dt.date.today()) or born.year < 1880:
        raise InvalidValue("value.date_out_of_range", field=field, value=raw)
    return born


# --- tags and categories -------------------------------------------------------------------

def tag_table(extra: dict | None = None) -> dict[str, dict]:
    """The shipped tags, extended by the config file's ``[tags.NAME]`` tables."""
    from commcare.resources import load_toml

    table = {slug: dict(spec) for slug, spec in load_toml("tags").items()}
    for slug, spec in (extra or {}).items():
        if isinstance(spec, dict):
            merged = table.setdefault(slug, {"zh": slug, "en": slug, "aliases": [], "daily_call": True})
            merged.update(spec)
    return table


def parse_tag(raw: str, extra: dict | None = None, field: str = "tag") -> str:
    text = nfkc(raw).strip().lower()
    for slug, spec in tag_table(extra).items():
        if text == slug or text in [nfkc(a).lower() for a in spec.get("aliases", [])] or text == spec.get("zh"):
            return slug
    raise InvalidValue("value.bad_tag", field=field, value=raw, choices=", ".join(tag_table(extra)))


TAG_SEPARATORS = re.compile(r"[、，,;；/\s]+")


def parse_tags(raw: str | list[str] | None, extra: dict | None = None, field: str = "tags") -> list[str]:
    """Tags from a list, or from one string separated by 、，,;； or spaces; deduplicated."""
    if raw is None:
        return []
    parts = raw if isinstance(raw, list) else [raw]
    words = [w for part in parts for w in TAG_SEPARATORS.split(nfkc(part)) if w]
    return sorted({parse_tag(w, extra, field) for w in words})


def call_tags(extra: dict | None = None) -> list[str]:
    """Tags whose residents are due a check-in call every day."""
    return [slug for slug, spec in tag_table(extra).items() if spec.get("daily_call", True)]


def categories() -> dict[str, dict]:
    from commcare.resources import load_toml

    return load_toml("categories")


def parse_category(raw: str, field: str = "category") -> str:
    text = nfkc(raw).strip().lower()
    for slug, spec in categories().items():
        if text in (slug, spec.get("zh"), spec.get("en")) or text in spec.get("zh", "").split("/"):
            return slug
    raise InvalidValue("value.bad_category", field=field, value=raw, choices=", ".join(categories()))


def parse_choice(raw: str, choices: tuple[str, ...], field: str) -> str:
    text = nfkc(raw).strip().lower()
    if text not in choices:
        raise InvalidValue("value.bad_choice", field=field, value=raw, choices="|".join(choices))
    return text


def pinyin_keys(name: str) -> tuple[str, str]:
    """(full pinyin, initials) of a name, lower-case, for an indexed search."""
    syllables = [_char_pinyin(ch) for ch in name]
    syllables = [p for p in syllables if p]
    full = "".join(syllables)
    initials = "".join(p[:1] for p in syllables)
    return full[:400], initials[:100]


@cache
def _char_pinyin(ch: str) -> str:
    """One character's pinyin (cached: a roster of 100,000 names has a few thousand
    distinct characters). Latin letters and digits stand for themselves."""
    from pypinyin import lazy_pinyin

    if ch.isascii():
        return ch.lower() if ch.isalnum() else ""
    return re.sub(r"[^0-9a-z]", "", lazy_pinyin(ch, errors="default")[0].lower())
