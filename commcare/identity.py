"""Normalise, then validate: phones, ID numbers, names, sex, tags, categories.

Identifiers are NFKC-normalised (full-width digits become ASCII) and matched with ASCII-only
patterns; names keep their form (NFC only). Every failure is an ``InvalidValue`` (exit 2)
naming the field.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
import time
import unicodedata
from functools import cache, lru_cache

from commcare.errors import InvalidValue
from commcare.patterns import Pattern

MOBILE = Pattern(r"1[3-9][0-9]{9}", re.ASCII)
LANDLINE = Pattern(r"(0[0-9]{2,3})([1-9][0-9]{6,7})", re.ASCII)
THREE_DIGIT_AREAS = Pattern(r"0(10|2[0-9])", re.ASCII)
_PHONE_JUNK = Pattern(r"[\s\-()\u2010-\u2015\u2212]")
ID_FORMAT = Pattern(r"[0-9]{17}[0-9X]", re.ASCII)
# A number as a spreadsheet shows one too large for its 15 digits: 4.10105194211031E+17
AS_NUMBER = Pattern(r"[0-9](\.[0-9]*)?E\+?[0-9]+", re.ASCII)
_CONTROL = Pattern(r"[\x00-\x1f\x7f-\x9f]")  # exactly the code points of category Cc


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def normalize_phone(raw: str, field: str = "phone") -> str:
    """A mainland mobile (``13912345678``) or landline with area code (``0371-67891234``)."""
    if type(raw) is str and MOBILE.fullmatch(raw):
        return raw  # already clean: ASCII digits only, nothing to normalise
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
    text = raw
    if type(raw) is not str or not ID_FORMAT.fullmatch(raw):  # else already clean
        text = re.sub(r"\s", "", nfkc(str(raw))).upper()
        if not ID_FORMAT.fullmatch(text):
            if AS_NUMBER.fullmatch(text):  # 4.10105194211031E+17: a spreadsheet's number
                raise InvalidValue("rosters.id_as_number", field=field)
            raise InvalidValue("value.bad_id_format", field=field, value=_hide_id(text))
    # The check digit and the birth date, as GB 11643 defines them. Not stdnum's ric.validate():
    # it also requires the region code to have existed in the birth year, which refuses a
    # 1935-born resident of a county created in 1955 whose card carries today's code.
    if text[17] != id_check_digit(text[:17]):
        # A spreadsheet keeps 15 significant digits of a number: the last three become 000.
        key = "rosters.id_digits_lost" if text.endswith("000") else "value.bad_id_checksum"
        raise InvalidValue(key, field=field, value=_hide_id(text))
    if not plausible_birth_date(text[6:14], system_date()):
        raise InvalidValue("value.bad_id_date", field=field, value=_hide_id(text))
    return text


def id_check_digit(body: str) -> str:
    """The ISO 7064 MOD 11-2 check character of an ID number's first 17 (ASCII) digits: the
    weights are the powers of 2 mod 11, and 13 = 2 (mod 11), so reading the digits in base 13
    (one C call) gives the weighted sum, halved."""
    return CHECK_CHARACTERS[(1 - 2 * int(body, 13)) % 11]


CHECK_CHARACTERS = "0123456789X"


def wrong_check_digits(numbers: list[str | None]) -> list[int]:
    """The positions in ``numbers`` (ID numbers of 18 characters, or None) of those whose
    check character is wrong: ``id_check_digit`` for a whole column, without a call each."""
    check = CHECK_CHARACTERS
    return [i for i, n in enumerate(numbers) if n and n[17] != check[(1 - 2 * int(n[:17], 13)) % 11]]


_clock: list = [0.0, None]


def system_date() -> dt.date:
    """``date.today()``, read again at most once a second (reading it costs more than the rest
    of an ID number's check, done 100,000 times in an import)."""
    now = time.monotonic()
    if now - _clock[0] >= 1.0 or _clock[1] is None:
        _clock[:] = [now, dt.date.today()]
    return _clock[1]


def plausible_birth_date(yyyymmdd: str, today: dt.date) -> bool:
    """A real calendar date from 1880 up to today."""
    born = birth_date(yyyymmdd)
    return born is not None and born.year >= 1880 and born <= today


@cache
def birth_date(yyyymmdd: str) -> dt.date | None:
    """The day an ID number's digits 7-14 name, or None if there is none (cached: a roster
    repeats birthdays, and there are only some 50,000 days to cache)."""
    try:
        return dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return None


def _hide_id(text: str) -> str:
    """An ID number as it may appear in an error message: first six and last two only."""
    return text if len(text) < 10 else f"{text[:6]}{'*' * (len(text) - 8)}{text[-2:]}"


def normalize_name(raw: str | None, field: str = "name") -> str:
    text = unicodedata.normalize("NFC", raw or "").strip()
    if not text:
        raise InvalidValue("value.empty", field=field)
    if _CONTROL.search(text):
        raise InvalidValue("value.control_chars", field=field)
    if len(text) > 200:
        raise InvalidValue("value.too_long", field=field, limit=200)
    return text


def names_clean(names: list[str]) -> bool:
    """Whether every one of ``names`` (stripped) is what ``normalize_name`` would make of it,
    checked for all at once: none empty or too long, no control character, all in NFC (a line
    break between them composes with nothing, so their join is NFC only if each is)."""
    return (
        "" not in names
        and max(map(len, names), default=0) <= 200
        and not _CONTROL.search("".join(names))
        and unicodedata.is_normalized("NFC", "\n".join(names))
    )


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


# --- a resident's fields --------------------------------------------------------------------


def clean_resident_fields(ctx, **raw) -> dict:
    """Normalise and validate what was given (keys left out are not touched): the one set of
    rules for ``resident add``/``edit`` and each row of an import. ``ctx`` gives today and the
    configured tags."""
    out: dict = {}
    if "name" in raw:
        out["name"] = normalize_name(raw["name"])
        out["name_pinyin"], out["name_initials"] = pinyin_keys(out["name"])
    if raw.get("phone") is not None:
        out["phone"] = normalize_phone(raw["phone"]) if str(raw["phone"]).strip() else None
    if raw.get("id_number") is not None:
        out["id_number"] = normalize_id_number(raw["id_number"]) if str(raw["id_number"]).strip() else None
    if raw.get("sex") is not None:
        out["sex"] = normalize_sex(raw["sex"])
    if raw.get("born") is not None:
        out["born"] = parse_birth_date(raw["born"], today=ctx.today())
    if out.get("id_number"):
        (out["born"],), (out["sex"],) = born_and_sex([out.get("born")], [out.get("sex")], [out["id_number"]])
    if raw.get("tags") is not None:
        out["tags"] = parse_tags(raw["tags"], ctx.extra_tags)
    if raw.get("emergency_contact") is not None:
        out["emergency_name"], out["emergency_phone"] = parse_emergency_contact(raw["emergency_contact"])
    if raw.get("note") is not None:
        out["note"] = normalize_text(raw["note"])
    return out


def born_and_sex(born: list, sex: list, id_numbers: list) -> tuple[list, list]:
    """Birth dates and sexes of several residents, each taken from the resident's ID number
    where it was not given (column by column, as an import checks a roster)."""
    day = {d: birth_date(d) for d in {n[6:14] for n in id_numbers if n}}
    born = [b or (day[n[6:14]] if n else None) for b, n in zip(born, id_numbers)]
    sex = [x or (("M" if n[16] in "13579" else "F") if n else None) for x, n in zip(sex, id_numbers)]
    return born, sex


_PHONE_RUN = Pattern(r"\+?[0-9][0-9\s\-]{6,}[0-9]", re.ASCII)


def parse_emergency_contact(raw: str) -> tuple[str | None, str | None]:
    """``"李明 13912345678"`` (name and phone, in either order) -> (name, phone)."""
    text = nfkc(raw).strip()
    if not text:
        return None, None
    for m in _PHONE_RUN.finditer(text):
        words = m[0].split()
        for i in range(len(words)):  # "家属0 159…": a digit that ends the name is not the phone's
            try:
                phone = normalize_phone(" ".join(words[i:]), "emergency-contact")
            except InvalidValue:
                continue
            start = m.start() + m[0].index(words[i])
            name = (text[:start] + text[m.end() :]).strip(" ,，:：") or None
            return (normalize_name(name, "emergency-contact") if name else None), phone
    raise InvalidValue("value.bad_emergency_contact", field="emergency-contact", value=raw)


# --- tags and categories -------------------------------------------------------------------


def tag_table(extra: dict | None = None) -> dict[str, dict]:
    """The shipped tags, extended by the config file's ``[tags.NAME]`` tables: a new NAME adds
    a tag; for a shipped one, the words of its ``aliases`` are added to the shipped words and
    its other keys replace the shipped ones."""
    from commcare.resources import load_toml

    table = {slug: dict(spec) for slug, spec in load_toml("tags").items()}
    for slug, spec in (extra or {}).items():
        if isinstance(spec, dict):
            merged = table.setdefault(slug, {"zh": slug, "en": slug, "aliases": [], "daily_call": True})
            shipped = list(merged.get("aliases", []))
            merged.update(spec)
            merged["aliases"] = shipped + [a for a in spec.get("aliases", []) if a not in shipped]
    return table


_TAG_WORDS: dict[int, tuple] = {}


def tag_words(extra: dict | None = None) -> dict[str, tuple[str, ...]]:
    """Each word that means a tag (its slug, its Chinese label, its aliases; NFKC, lower-case)
    -> the tags it means, in the table's order. A word listed under two tags means both
    (独居老人: lives-alone and elderly). Built once per configuration."""
    extra = extra or None  # an empty configuration is the shipped one
    cached = _TAG_WORDS.get(id(extra))
    if cached is not None and cached[0] is extra:
        return cached[1]
    words: dict[str, tuple[str, ...]] = {}
    for slug, spec in tag_table(extra).items():
        for word in (slug, spec.get("zh", ""), *spec.get("aliases", [])):
            key = nfkc(str(word)).strip().lower()
            if key and slug not in words.get(key, ()):
                words[key] = words.get(key, ()) + (slug,)
    _TAG_WORDS[id(extra)] = (extra, words)
    return words


def _tag_listing(extra: dict | None) -> str:
    """The tags an error lists: their Chinese words (老年人、独居 …), or the slugs in English."""
    from commcare.i18n import get_lang

    table = tag_table(extra)
    return ", ".join(table) if get_lang() == "en" else "、".join(str(s.get("zh", k)) for k, s in table.items())


def parse_tag(raw: str, extra: dict | None = None, field: str = "tag") -> str:
    """One tag, as a filter names it (``--tag``). A word that means two tags (独居老人) is
    refused: a filter takes one."""
    found = tag_words(extra).get(nfkc(raw).strip().lower())
    if not found:
        raise InvalidValue("value.bad_tag", field=field, value=raw, choices=_tag_listing(extra))
    if len(found) > 1:
        raise InvalidValue("rosters.tag_means_several", field=field, value=raw, tags=", ".join(found))
    return found[0]


TAG_SEPARATORS = Pattern(r"[、，,;；/\s]+")


def parse_tags(raw: str | list[str] | None, extra: dict | None = None, field: str = "tags") -> list[str]:
    """Tags from a list, or from one string separated by 、，,;； or spaces; deduplicated. A word
    that means two tags gives both."""
    if raw is None:
        return []
    parts = raw if isinstance(raw, list) else [raw]
    words = tag_words(extra)
    found: set[str] = set()
    for word in (w for part in parts for w in TAG_SEPARATORS.split(nfkc(part)) if w):
        slugs = words.get(word.strip().lower())
        if not slugs:
            raise InvalidValue("value.bad_tag", field=field, value=word, choices=_tag_listing(extra))
        found.update(slugs)
    return sorted(found)


def call_tags(extra: dict | None = None) -> list[str]:
    """Tags whose residents are due a check-in call every day."""
    return [slug for slug, spec in tag_table(extra).items() if spec.get("daily_call", True)]


def categories() -> dict[str, dict]:
    from commcare.resources import load_toml

    return load_toml("categories")


def parse_category(raw: str, field: str = "category") -> str:
    text = nfkc(raw).strip().lower()
    for slug, spec in categories().items():
        words = (slug, spec.get("zh"), spec.get("en"), *spec.get("zh", "").split("/"), *spec.get("aliases", []))
        if text in {nfkc(str(w)).strip().lower() for w in words if w}:
            return slug
    from commcare.i18n import get_lang

    listed = (
        ", ".join(categories()) if get_lang() == "en" else "、".join(s.get("zh", k) for k, s in categories().items())
    )
    raise InvalidValue("value.bad_category", field=field, value=raw, choices=listed)


# The option whose value names each list of ``data/words.toml``.
CHOICE_FIELDS = {"for": "recipients", "fail-on": "fail_on"}


def parse_choice(raw: str, choices: tuple[str, ...], field: str) -> str:
    """One of ``choices``, named by its slug or a word of ``data/words.toml`` (热线, 无人接听)."""
    from commcare import words

    return words.parse(CHOICE_FIELDS.get(field, field), raw, choices, option=field)


@lru_cache(maxsize=1 << 16)
def pinyin_keys(name: str) -> tuple[str, str]:
    """(full pinyin, initials) of a name, lower-case, for an indexed search (cached: a roster
    repeats its names)."""
    syllables = [_char_pinyin(ch) for ch in name]
    syllables = [p for p in syllables if p]
    full = "".join(syllables)
    initials = "".join(p[:1] for p in syllables)
    return full[:400], initials[:100]


def pinyin_keys_many(names: list[str]) -> list[tuple[str, str]]:
    """``pinyin_keys`` of many names at once (an import's name column): each distinct character
    is read once, then each name is two ``str.translate`` calls (81,500 names: 0.12 s, against
    0.23 s one by one). The cache of ``pinyin_keys`` is left alone: a roster's names are mostly
    distinct, and would only push out what the commands that look residents up put there."""
    reading = {ord(ch): _char_pinyin(ch) for ch in set("".join(names))}
    initial = {ch: p[:1] for ch, p in reading.items()}  # a character without pinyin adds ""
    return [(name.translate(reading)[:400], name.translate(initial)[:100]) for name in names]


@cache
def _char_pinyin(ch: str) -> str:
    """One character's pinyin (cached: a roster of 100,000 names has a few thousand
    distinct characters). Latin letters and digits stand for themselves."""
    if ch.isascii():
        return ch.lower() if ch.isalnum() else ""
    return re.sub(r"[^0-9a-z]", "", _lazy_pinyin()(ch, errors="default")[0].lower())


@cache
def _lazy_pinyin():
    """pypinyin's ``lazy_pinyin``, imported without its phrase dictionary when it is not loaded
    yet: one character's reading never comes from a phrase (the dictionary has no one-character
    entries), and loading it costs some 0.35 s of every command that computes a key."""
    if "pypinyin" not in sys.modules:
        saved = os.environ.get("PYPINYIN_NO_PHRASES")
        os.environ["PYPINYIN_NO_PHRASES"] = "1"
        try:
            from pypinyin import lazy_pinyin
        finally:
            if saved is None:
                del os.environ["PYPINYIN_NO_PHRASES"]
            else:
                os.environ["PYPINYIN_NO_PHRASES"] = saved
    from pypinyin import lazy_pinyin

    return lazy_pinyin
