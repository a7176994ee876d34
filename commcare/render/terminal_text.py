"""Stored text as a terminal may show it: control characters escaped, never acted on.

Stdlib only, and small: every confirmation and message goes through ``printable``.
"""

from __future__ import annotations

from commcare.patterns import Pattern

# What a terminal acts on instead of showing: C0 and C1 control characters (ESC, CSI, BEL,
# carriage return …), line and paragraph separators, and the bidirectional overrides that
# make text read backwards.
_CONTROLS = Pattern("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str, keep: str = "") -> str:
    """``text`` with terminal control characters shown escaped (ESC as ``\\x1b``), so that a
    stored value — a note an import or an older version let in — never moves the cursor,
    retitles the window or recolours the screen. ``keep``: controls left as they are (a
    multi-line cell's line breaks)."""
    if text.isprintable() or not _CONTROLS.search(text):
        return text
    return _CONTROLS.sub(lambda m: m[0] if m[0] in keep else repr(m[0])[1:-1], text)
