"""Output writers: table / json / csv / markdown (and a plain html table), pure functions of
data. Lists of records are lists of dicts; ``show`` and reports are one dict.

Phones are already masked by the domain layer; this module only lays out what it is given.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator

import orjson

from commcare.render.terminal_text import printable

FORMATS = ("table", "json", "csv", "markdown", "html")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def neutralise(value: str) -> str:
    """A spreadsheet cell that cannot run as a formula (CSV injection)."""
    return "'" + value if value.startswith(FORMULA_START) else value


def markdown_text(value) -> str:
    """A cell or heading as Markdown shows it literally: HTML escaped (``<script>`` is
    ``&lt;script&gt;``), no link or image (``[``, ``]``), no table break (``|``), one line,
    control characters escaped."""
    from html import escape

    text = printable(cell(value).replace("\r\n", " ").replace("\n", " "))
    text = escape(text, quote=False).replace("|", "\\|")
    return text.replace("[", "\\[").replace("]", "\\]")


def html_text(value) -> str:
    """A cell or heading as HTML text: escaped, control characters shown escaped (the file
    may be read in a terminal, or mailed)."""
    from html import escape

    return escape(printable(cell(value), "\n\t"))


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "✓" if value else ""
    if isinstance(value, (list, tuple)):
        return "、".join(cell(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def to_json(data) -> str:
    """``data`` as JSON, indented by two spaces, UTF-8 characters as they are.

    orjson writes it (json with ``indent`` uses its pure-Python encoder, many times slower on
    a long list); the text is the same as ``json.dumps(data,
    ensure_ascii=False, indent=2, default=str)`` for everything commcare writes, and a value
    orjson refuses (an integer beyond 64 bits) goes through json itself. Not-a-number floats
    are written ``null`` (json would write ``NaN``, which is not JSON)."""
    try:
        return orjson.dumps(data, default=str, option=_ORJSON).decode()
    except orjson.JSONEncodeError:
        return json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"


def json_bytes(data) -> bytes:
    """``to_json`` as UTF-8 bytes, written as they are: a long list (``call due`` of a whole
    community) is not held a second time as a Python string and a third as its encoding."""
    try:
        return orjson.dumps(data, default=str, option=_ORJSON)
    except orjson.JSONEncodeError:
        return to_json(data).encode()


# Two-space indent and a final newline; keys that are not strings turned into strings, as json
# does; datetimes and subclasses of str and int handed to ``default=str``, as json does.
_ORJSON = (
    orjson.OPT_INDENT_2
    | orjson.OPT_APPEND_NEWLINE
    | orjson.OPT_NON_STR_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def json_chunks(batches: Iterable[list]) -> Iterator[bytes]:
    """``json_bytes`` of the list that ``batches`` make together, batch by batch: the same
    bytes, with one batch held at a time. Each batch is written by orjson as a list, its
    brackets cut off, the batches joined by ``,`` (orjson indents an element of a list the
    same whatever list it is in)."""
    first = True
    for batch in batches:
        if not batch:
            continue
        text = json_bytes(batch)  # "[\n  {…},\n  {…}\n]\n"
        yield (b"[\n" if first else b",\n") + text[2:-3]
        first = False
    yield b"[]\n" if first else b"\n]\n"


def csv_chunks(batches: Iterable[list], columns: list[str], headers: dict | None = None) -> Iterator[str]:
    """``to_csv`` of the rows that ``batches`` make together, its header first, then batch by batch."""
    import csv  # here, not at the top: only CSV output needs it

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([(headers or {}).get(c, c) for c in columns])
    for batch in batches:
        for row in batch:
            writer.writerow([neutralise(cell(row.get(c))) for c in columns])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    yield out.getvalue()


def markdown_chunks(
    batches: Iterable[list],
    columns: list[str],
    headers: dict | None = None,
    title: str | None = None,
    year: int | None = None,
) -> Iterator[str]:
    """``to_markdown`` of the rows that ``batches`` make together, batch by batch, its heading
    with the first (nothing is written before a row has been read: a register found damaged
    first shows no heading of a list)."""
    esc = markdown_text
    lines = [f"## {esc(title)}", ""] if title else []
    lines.append("| " + " | ".join(esc((headers or {}).get(c, c)) for c in columns) + " |")
    lines.append("|" + "|".join(" --- " for _ in columns) + "|")
    head = "\n".join(lines) + "\n"
    for batch in batches:
        if batch:
            yield head + "".join(
                "| " + " | ".join(esc(_for_people(r.get(c), year)) for c in columns) + " |\n" for r in batch
            )
            head = ""
    yield head


def to_csv(rows: list[dict] | dict, columns: list[str] | None = None, headers: dict | None = None) -> str:
    rows = _as_rows(rows)
    return "".join(csv_chunks([rows], columns or _columns(rows), headers))


def to_markdown(
    rows: list[dict] | dict,
    columns: list[str] | None = None,
    headers: dict | None = None,
    title: str | None = None,
    year: int | None = None,
) -> str:
    """A Markdown table for people: times as people write them (``human_time``), like a table."""
    rows = _as_rows(rows)
    return "".join(markdown_chunks([rows], columns or _columns(rows), headers, title, year))


def to_html(
    rows: list[dict] | dict,
    columns: list[str] | None = None,
    headers: dict | None = None,
    title: str | None = None,
    year: int | None = None,
) -> str:
    rows = _as_rows(rows)
    return (
        f"<!doctype html><meta charset='utf-8'><title>{html_text(title or '')}</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:2px 6px}</style>"
        f"<h2>{html_text(title or '')}</h2>{html_table(rows, columns or _columns(rows), headers, year)}\n"
    )


def _for_people(value, year: int | None):
    from commcare.render.times import human_time, is_time

    return human_time(value, year) if is_time(value) else value


def html_table(rows: list[dict], columns: list[str], headers: dict | None = None, year: int | None = None) -> str:
    """A plain HTML ``<table>``, every cell escaped (``html_text``), times as people write them."""
    head = "".join(f"<th>{html_text((headers or {}).get(c, c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html_text(_for_people(r.get(c), year))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def to_table(
    rows: list[dict] | dict,
    columns: list[str] | None = None,
    headers: dict | None = None,
    title: str | None = None,
    color: bool = False,
    width: int | None = None,
    year: int | None = None,
) -> str:
    """A table for people; ``year``: the current year, whose times are written without it."""
    from rich.cells import cell_len
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from commcare.render.times import human_time, is_time

    # Every cell a Text: stored text is shown as it is, never read as Rich markup ("[/bold]"
    # in a note was an internal error; "[link=…]" a hyperlink), control characters escaped.
    # Times as people write them (5月8日 14:00; another year's in full), not ISO 8601.
    def shown(value) -> Text:
        return Text(printable(human_time(value, year) if is_time(value) else cell(value), "\n\t"))

    table = Table(
        title=shown(title) if title else None,
        show_lines=False,
        header_style="bold" if color else None,
        box=None,
        min_width=cell_len(title) + 2 if title else None,
    )
    if isinstance(rows, dict):  # one record (``show``): its fields, the empty ones left out
        table.add_column("")
        table.add_column("")
        for key, value in rows.items():
            if value is None or value is False or value == "" or value == []:
                continue
            table.add_row(shown((headers or {}).get(key, key)), shown(value))
    else:
        columns = columns or _columns(rows)
        for c in columns:
            table.add_column(shown((headers or {}).get(c, c)), overflow="fold")
        for row in rows:
            table.add_row(*(shown(row.get(c)) for c in columns))
    buf = io.StringIO()
    console = Console(
        file=buf,
        force_terminal=color,
        no_color=not color,
        width=width or 200,
        color_system="standard" if color else None,
        highlight=False,
        emoji=False,
    )
    console.print(table)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def _as_rows(rows) -> list[dict]:
    return [rows] if isinstance(rows, dict) else list(rows)


def _columns(rows: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


def render(data, fmt: str, columns=None, headers=None, title=None, color=False, width=None, year=None) -> str:
    if fmt == "json":
        return to_json(data)
    if fmt == "csv":
        return to_csv(data, columns, headers)
    if fmt == "markdown":
        return to_markdown(data, columns, headers, title, year)
    if fmt == "html":
        return to_html(data, columns, headers, title, year)
    return to_table(data, columns, headers, title, color, width, year)
