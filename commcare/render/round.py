"""How ``call due`` is laid out as a table: grouped by liaison.

Pure functions of the rows ``commcare.calls.due_calls`` returns. The table is plain aligned
text (no box, no colour), written row by row: at 15,000 residents due a Rich table took
seconds, this takes milliseconds.
"""

from __future__ import annotations

import re


def json_rows(rows: list[dict]) -> str:
    """The rows as ``formats.to_json`` writes them."""
    from commcare.render.formats import to_json

    return to_json(rows)


def due_table(rows: list[dict], me: str | None = None) -> str:
    """One block per liaison: a heading with the count, then the residents in aligned columns,
    escalations and long-unreached residents spelled out; a summary line closes the list."""
    from commcare.i18n import t

    columns = ["id", "resident", "phone", "address", "calls_today", "alert"]
    cells = [[t(f"col.{c}") for c in columns]] + [_due_cells(r, t) for r in rows]
    sizes = [[display_width(v) for v in values] for values in cells]
    widths = [max(size[i] for size in sizes) for i in range(len(columns))]

    def line(n: int) -> str:
        return "  ".join(v + " " * (w - k) for v, w, k in zip(cells[n], widths, sizes[n])).rstrip()

    out: list[str] = []
    start = 0
    while start < len(rows):
        stop = start
        while stop < len(rows) and rows[stop]["liaison"] == rows[start]["liaison"]:
            stop += 1
        name = rows[start]["liaison"]
        if not name:
            title = t("call.due_no_liaison", n=stop - start)
        else:
            title = t("call.due_group_mine" if name == me else "call.due_group", liaison=name, n=stop - start)
        out += [title, "  " + line(0)]
        out += ["  " + line(n) for n in range(start + 1, stop + 1)]
        out.append("")
        start = stop
    escalate = sum(1 for r in rows if r["escalate"])
    out.append(t("call.due_summary", n=len(rows), escalate=escalate) if rows else t("call.none_due"))
    return "\n".join(out) + "\n"


def _due_cells(r: dict, t) -> list[str]:
    alerts = []
    if r["escalate"] and r.get("escalate_action") == "visit":
        alerts.append(t("call.alert_visit"))
    elif r["escalate"]:
        alerts.append(t("call.alert_escalate", contact=r["emergency_contact"] or "-"))
    if r["unreached_flag"]:
        alerts.append(t("call.alert_unreached", days=r["days_unreached"]))
    place = " ".join(p for p in (r["compound"], r["address"]) if p)
    return [
        f"#{r['id']}",
        _clean(r["resident"]),
        r["phone"] or "-",
        _clean(place),
        str(r["calls_today"]),
        _clean("; ".join(alerts)),
    ]


WIDE = (
    "[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf"
    "\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\U00020000-\U0003fffd]"
)


def display_width(text: str) -> int:
    """Columns on a terminal: East Asian wide characters (Han, kana, Hangul, full-width
    forms) take two. One regex pass, not a Python loop per character (``re`` compiles the
    pattern on the first wide text and keeps it, which JSON output never pays for)."""
    return len(text) if text.isascii() else len(text) + len(re.findall(WIDE, text))


def _clean(value: str | None) -> str:
    """No line breaks or escape sequences from a stored value reach the terminal: they are
    shown escaped (``\\x1b``, ``\\n``)."""
    from commcare.render.terminal_text import printable

    return printable(value or "")
