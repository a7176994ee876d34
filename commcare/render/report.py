"""One renderer over report data: table, markdown, csv (section,key,value), html (one
self-contained file with inline CSS and SVG bars), json. Labels in zh or en."""

from __future__ import annotations

from collections.abc import Sequence

from commcare.i18n import get_lang, t
from commcare.render import formats
from commcare.render.terminal_text import printable

escape = formats.html_text  # every text an HTML report shows: escaped, controls too


def category_label(slug: str) -> str:
    from commcare.identity import categories

    spec = categories().get(slug, {})
    return spec.get(get_lang(), slug)


def sections(data: dict) -> list[tuple[str, list[dict], list[str]]]:
    """The day report as (title, rows, columns) sections, shared by every text format."""
    r, c, h, d = data["requests"], data["calls"], data["staff_health"], data["donations"]
    summary = [
        {"measure": t("report.opened"), "count": r["opened"]},
        {"measure": t("report.resolved"), "count": r["resolved"]},
        {"measure": t("report.open"), "count": r["open"]},
        {"measure": t("report.overdue"), "count": r["overdue"]},
        {"measure": t("report.calls_due"), "count": c["due"]},
        {"measure": t("report.calls_made"), "count": c["made"]},
        {"measure": t("report.calls_missed"), "count": len(c["missed"])},
        {"measure": t("report.calls_escalated"), "count": len(c.get("escalated", []))},
        {"measure": t("report.health_due"), "count": h["due"]},
        {"measure": t("report.health_missing"), "count": len(h["missing"])},
        {"measure": t("report.health_fever"), "count": len(h.get("fever", []))},
        {"measure": t("report.donations_received"), "count": d["received"]},
    ]
    by_cat = [
        {"category": category_label(x["category"]), "opened": x["opened"], "resolved": x["resolved"], "open": x["open"]}
        for x in r["by_category"]
    ]
    overdue = [
        {
            **x,
            "category": category_label(x["category"]),
            "due": _short(x["due"], int(data["date"][:4]) if data.get("date") else None),
            "urgency": t(f"urgency.{x['urgency']}"),
        }
        for x in r["overdue_items"]
    ]
    escalated = [{**x, "to_do": t(f"escalate.{x['action']}")} for x in c.get("escalated", [])]
    apart = {x["id"] for x in escalated}
    merely_missed = [x for x in c["missed"] if x.get("id") not in apart]
    return [
        (t("report.summary"), summary, ["measure", "count"]),
        (t("report.by_category"), by_cat, ["category", "opened", "resolved", "open"]),
        (t("report.overdue_items"), overdue, ["id", "resident", "category", "due", "urgency"]),
        (t("report.escalated"), escalated, ["resident", "liaison", "unanswered", "to_do"]),
        (t("report.missed_only") if escalated else t("report.missed"), merely_missed, ["resident", "liaison"]),
        (
            t("report.liaisons"),
            data["liaisons"],
            ["staff", "residents", "calls_made", "calls_missing", "open_requests"],
        ),
        (t("report.health_missing"), [{"staff": n} for n in h["missing"]], ["staff"]),
        (t("report.health_fever"), [{"staff": n} for n in h.get("fever", [])], ["staff"]),
        (t("report.donations"), [{**x, "item": x["name"]} for x in d["items"]], ["item", "quantity", "unit"]),
    ]


def _short(iso_time: str | None, year: int | None = None) -> str:
    """``2026-05-08T14:00:00+08:00`` as a person writes it: ``5月8日 14:00`` / ``05-08 14:00``
    in the report's year, the year written out in another."""
    from commcare.render.times import human_time

    return human_time(iso_time, year)


def title(data: dict) -> str:
    return t("report.title", date=data.get("date", ""), community=community_name(data.get("community", "")))


def headers(columns) -> dict:
    from commcare.i18n import column

    return {col: column(col) for col in columns}


def audit_line(data: dict) -> str:
    """The audit trail's number of entries and head hash, as every report prints them (keep a
    report, and ``audit verify --anchor REPORT`` checks the trail against it later)."""
    found = data.get("audit") or {"entries": 0, "head": ""}
    return t("report.audit_line", entries=found["entries"], head=found["head"] or "-")


def to_markdown(data: dict) -> str:
    parts = [f"# {formats.markdown_text(title(data))}\n"]
    for name, rows, cols in sections(data):
        if rows or name == t("report.summary"):
            parts.append(formats.to_markdown(rows, cols, headers(cols), name))
        else:
            parts.append(f"## {name}\n\n{t('report.none')}\n")
    parts.append(formats.markdown_text(audit_line(data)) + "\n")
    return "\n".join(parts)


def to_table(data: dict, color: bool = False, width: int | None = None) -> str:
    parts = [printable(title(data)) + "\n"]
    for name, rows, cols in sections(data):
        if rows:
            parts.append(formats.to_table(rows, cols, headers(cols), name, color, width or 80))
        else:
            parts.append(f"{name}: {t('report.none')}\n")
    parts.append(audit_line(data) + "\n")
    return "\n".join(parts)


def to_csv(data: dict) -> str:
    """The report as a person reads it in a spreadsheet: each section its title, its column
    headers and its rows, in the command's language, a blank row between sections."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([title(data)])
    for name, rows, cols in sections(data):
        writer.writerow([])
        writer.writerow([name])
        if not rows:
            writer.writerow([t("report.none")])
            continue
        names = headers(cols)
        writer.writerow([names[c] for c in cols])
        writer.writerows([formats.neutralise(formats.cell(row.get(c))) for c in cols] for row in rows)
    writer.writerow([])
    writer.writerow([audit_line(data)])
    return out.getvalue()


CSS = (
    "body{font-family:'Noto Sans CJK SC','Microsoft YaHei',sans-serif;margin:1.5em;color:#222}"
    "h1{font-size:1.4em}h2{font-size:1.1em;border-bottom:1px solid #ccc;margin-top:1.4em}"
    "table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #bbb;padding:2px 8px;text-align:left}"
    "th{background:#f0f0f0}.none{color:#777}.made{color:#555;font-size:.9em;margin-top:2em}svg text{font-size:12px}"
    "@page{size:A4;margin:15mm}@media print{body{margin:0}}"
)


def bars(pairs: Sequence[tuple[str, float, float]], width: int = 520) -> str:
    """An inline SVG bar chart: (label, value, out-of) per row; out-of 0 draws one bar."""
    if not pairs:
        return ""
    top = max(max(v, o) for _, v, o in pairs) or 1
    row_h, label_w = 22, 150
    body = []
    for i, (label, value, whole) in enumerate(pairs):
        y = i * row_h
        if whole:
            body.append(
                f"<rect x='{label_w}' y='{y + 3}' width='{(width - label_w - 60) * whole / top:.1f}' height='14' fill='#ddd'/>"
            )
        body.append(
            f"<rect x='{label_w}' y='{y + 3}' width='{(width - label_w - 60) * value / top:.1f}' height='14' fill='#3b7dd8'/>"
        )
        text = f"{value:g}" + (f" / {whole:g}" if whole else "")
        body.append(f"<text x='0' y='{y + 15}'>{escape(label)}</text><text x='{width - 55}' y='{y + 15}'>{text}</text>")
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{len(pairs) * row_h}'>{''.join(body)}</svg>"
    )


def made_line(made: str | None) -> str:
    return f"<p class='made'>{escape(made)}</p>" if made else ""


def to_html(data: dict, made: str | None = None) -> str:
    parts = [
        f"<!doctype html><html lang='{get_lang()}'><meta charset='utf-8'><title>{escape(title(data))}</title>",
        f"<style>{CSS}</style><h1>{escape(title(data))}</h1>",
    ]
    # what is still to do, per category (opened + open would count a request opened today and
    # still open twice)
    cats = [(category_label(x["category"]), x["open"], 0) for x in data["requests"]["by_category"] if x["open"]]
    if cats:
        parts.append(f"<h2>{escape(t('report.chart_categories'))}</h2>" + bars(cats))
    calls = [(x["staff"], x["calls_made"], x["residents"]) for x in data["liaisons"]]
    if calls:
        parts.append(f"<h2>{escape(t('report.chart_calls'))}</h2>" + bars(calls))
    for name, rows, cols in sections(data):
        if rows:
            parts.append(f"<h2>{escape(name)}</h2>" + formats.html_table(rows, cols, headers(cols)))
        else:
            parts.append(f"<h2>{escape(name)}</h2><p class='none'>{escape(t('report.none'))}</p>")
    parts.append(f"<p class='audit'>{escape(audit_line(data))}</p>")
    return "".join(parts) + made_line(made) + "</html>\n"


def render_day(data: dict, fmt: str, color=False, width=None, made: str | None = None) -> str:
    if fmt == "json":
        return formats.to_json(data)
    if fmt == "html":
        return to_html(data, made)
    return {"markdown": to_markdown, "csv": to_csv}.get(fmt, lambda d: to_table(d, color, width))(data)


def render_range(data: dict, fmt: str, color=False, width=None, made: str | None = None) -> str:
    """Week and range reports: a row per day, with totals."""
    if fmt == "json":
        return formats.to_json(data)
    cols = ["date", "opened", "resolved", "open", "overdue", "calls_due", "calls_made", "donations"]
    heading = t("report.range_title", start=data["from"], end=data["to"], community=community_name(data["community"]))
    if fmt == "csv":
        return formats.to_csv(data["days"], cols, headers(cols) if get_lang() != "en" else None)
    if fmt == "markdown":
        return (
            f"# {formats.markdown_text(heading)}\n\n"
            + formats.to_markdown(data["days"], cols, headers(cols))
            + f"\n{formats.markdown_text(audit_line(data))}\n"
        )
    if fmt == "html":
        trend = [(d["date"][5:], d["calls_made"], d["calls_due"]) for d in data["days"]]
        return (
            f"<!doctype html><meta charset='utf-8'><title>{escape(heading)}</title><style>{CSS}</style>"
            f"<h1>{escape(heading)}</h1><h2>{escape(t('report.chart_trend'))}</h2>{bars(trend)}"
            + formats.html_table(data["days"], cols, headers(cols))
            + f"<p class='audit'>{escape(audit_line(data))}</p>"
            + made_line(made)
            + "\n"
        )
    return formats.to_table(data["days"], cols, headers(cols), heading, color, width or 100) + audit_line(data) + "\n"


def render_all(data: dict, fmt: str, made: str | None = None) -> str:
    """The all-communities summary: a row per community and the sum (Σ)."""
    if fmt == "json":
        return formats.to_json(data)
    rows = data["communities"] + [{"community": "Σ", **data["total"]}]
    cols = ["community", "opened", "resolved", "open", "overdue", "calls_due", "calls_made", "missed"]
    text = formats.render(rows, fmt, cols, headers(cols), t("report.all_title", date=data["date"]), False, 100)
    if fmt == "html" and made:
        text = text.replace("\n", made_line(made) + "\n", 1)
    if fmt == "csv":
        return text
    line = audit_line(data)
    if fmt == "html":
        return text + f"<p class='audit'>{escape(line)}</p>\n"
    return text + "\n" + (formats.markdown_text(line) if fmt == "markdown" else line) + "\n"


def community_name(name: str) -> str:
    """The community as a heading names it: a register that never named its community (config
    ``community``) is "本社区" / "our community", not the word ``default``."""
    from commcare.config import DEFAULT_COMMUNITY
    from commcare.i18n import t

    return t("report.default_community") if name == DEFAULT_COMMUNITY else name
