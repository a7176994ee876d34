"""Phone and ID numbers masked in what a person reads on stderr (the contract's *Output*:
"errors … mask phone and ID numbers as lists do"), whatever their shape: a number that
failed its check is masked like a valid one.

Every run of seven digits or more (full-width digits, spaces and dashes between them
included) is masked: an ID number keeps its first six and last two characters
(``110105**********18``), any other number its first three and last four
(``139****5678``), a short one its last four (``****1234``). Dates and times
(``2026-05-08 14:00``, ``20260508``) are not numbers to mask. Stdlib only: errors.py uses it.
"""

from __future__ import annotations

import re
import unicodedata

from commcare.patterns import Pattern

_DIGIT = "[0-9\uff10-\uff19]"
_NUMBER = Pattern(
    rf"(?<![0-9\uff10-\uff19]){_DIGIT}(?:[ \-\u3000]?{_DIGIT}){{6,}}(?:[ \-]?[xX\uff38\uff58])?"
    r"(?![0-9\uff10-\uff19])"
)
_DATE = Pattern(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[ T][0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?)?", re.ASCII)
_COMPACT_DATE = Pattern(r"(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])", re.ASCII)
KEPT = frozenset({"path", "member"})  # values that name files, not people
# Values shown whole only to a person at a terminal: the command that registers an unknown
# caller, with the number just typed (masked, it would register no one). In a pipe, a log or
# a cron mail it is masked like every other number.
ON_TERMINAL = frozenset({"register_line"})


def mask_numbers(text: str) -> str:
    """``text`` with every phone- or ID-like number in it masked."""
    if not any(c.isdigit() for c in text):
        return text
    out, at = [], 0
    for date in _DATE.finditer(text):  # dates and times stay; the text between them is masked
        out += [_mask_segment(text[at : date.start()]), date[0]]
        at = date.end()
    out.append(_mask_segment(text[at:]))
    return "".join(out)


def _mask_segment(text: str) -> str:
    return _NUMBER.sub(lambda m: m[0] if _COMPACT_DATE.fullmatch(m[0]) else _mask(m[0]), text)


def _mask(found: str) -> str:
    digits = re.sub(r"[ \-\u3000]", "", unicodedata.normalize("NFKC", found)).upper()
    if len(digits) in (15, 18):  # an ID number (old or new form)
        return digits[:6] + "*" * (len(digits) - 8) + digits[-2:]
    if len(digits) >= 10:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    return "*" * (len(digits) - 4) + digits[-4:]


def mask_values(values: dict, terminal: bool = False) -> dict:
    """A message's values with the numbers in their text masked (file names kept; with
    ``terminal``, the values of ``ON_TERMINAL`` too)."""
    kept = KEPT | ON_TERMINAL if terminal else KEPT
    return {k: mask_numbers(v) if isinstance(v, str) and k not in kept else v for k, v in values.items()}
