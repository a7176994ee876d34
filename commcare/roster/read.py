"""Rosters in, the reading: the office's CSV (UTF-8, UTF-8 with BOM, GBK/GB18030) or XLSX (first
sheet), row by row as they are asked for, and the header understood through the words of
``data/headers.toml`` (the roster's, and the directory's in its ``[directory]`` table).

The rows are checked by ``commcare.roster.check`` and written by ``commcare.roster.write``.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from commcare import identity
from commcare.errors import InvalidValue, NotFound


def read_table(path: str) -> list[list[str]]:
    """The rows of a CSV or XLSX file as lists of strings (the first row is the header)."""
    return list(read_rows(path)[0])


def read_rows(path: str) -> tuple[Iterator[list[str]], int]:
    """The rows of a CSV or XLSX file as lists of strings, read as they are asked for (the
    first is the header), and about how many there are after the header: a CSV's lines (a
    quoted cell may hold a line break), an XLSX sheet's stated size. A roster is checked as
    it is read, so the first chunk is written before the last row is read, and the whole
    table is never held."""
    file = Path(path)
    if not file.exists():
        raise NotFound("roster.no_file", path=path)
    if file.suffix.lower() in (".xlsx", ".xlsm"):
        return _xlsx_rows(file, path)
    if file.suffix.lower() not in (".csv", ".txt"):
        raise InvalidValue("roster.bad_type", field="FILE", path=path)
    text = decode(file.read_bytes(), path)
    lines = text.count("\n") + (not text.endswith("\n"))
    return _csv_rows(text, path), max(lines - 1, 0)


def _csv_rows(text: str, path: str) -> Iterator[list[str]]:
    """The CSV's records. One the csv module cannot read — a field longer than its limit
    (128 KiB: an unclosed quotation mark swallows the lines after it) — refuses the whole file
    (exit 2) naming its row and column: importing the rows around it would hide the people
    it swallowed, even with --skip-invalid."""
    reader = csv.reader(io.StringIO(text))
    try:
        yield from reader
    except csv.Error as exc:
        raise _unreadable_csv(text, path, exc) from None


def _unreadable_csv(text: str, path: str, exc: csv.Error) -> InvalidValue:
    """Where the csv module stopped: the record (its spreadsheet row number) and the column
    whose field is too long, found by reading again without the limit (only on this path)."""
    limit = csv.field_size_limit()
    csv.field_size_limit(max(len(text) + 1, limit))
    try:
        header: list[str] = []
        for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
            header = header or row
            long = [i for i, cell in enumerate(row) if len(cell) > limit]
            if long:
                name = header[long[0]].strip() if number > 1 and long[0] < len(header) else ""
                column = name if name and len(name) <= 40 else f"#{long[0] + 1}"
                return InvalidValue(
                    "roster.csv_field_too_long", field=column, path=path, row=number, limit=f"{limit // 1024} KiB"
                )
    except csv.Error:
        pass
    finally:
        csv.field_size_limit(limit)
    return InvalidValue("roster.csv_unreadable", field="FILE", path=path, problem=str(exc))


def decode(data: bytes, path: str = "") -> str:
    """UTF-8 (with or without BOM), else GB18030 (a superset of GBK, as Excel on a Chinese
    system writes it). Text that is neither is refused, never imported as mojibake."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text and not any(unicodedata.category(c) == "Co" for c in text[:5000]):
            return text
    raise InvalidValue("roster.encoding", field="FILE", path=path)


def _xlsx_rows(file: Path, path: str) -> tuple[Iterator[list[str]], int]:
    """The first sheet, streamed, every row it holds, within bounds (``commcare.roster.workbook``);
    a file that is not a workbook, or promises more than a roster can be, is refused."""
    from commcare.roster.workbook import first_sheet_rows

    sheet, estimate = first_sheet_rows(file, path)
    return ([_cell(v) for v in row] for row in sheet), estimate


def _cell(value) -> str:
    import datetime as dt

    if value is None:
        return ""
    if type(value) in (int, float) and abs(value) >= 1e15:
        # more digits than a spreadsheet keeps (15): shown as it shows them, 4.10105194211031E+17,
        # so that an ID number stored as a number is told as such, never taken with lost digits
        return f"{value:.14E}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dt.datetime, dt.date)):
        return value.strftime("%Y-%m-%d")
    return str(value)


def header_words(section: str | None = None) -> dict[str, str]:
    """Each header word of ``data/headers.toml`` (normalised) -> the field it names: the
    roster's words, or those of the table ``section`` (``directory``)."""
    from commcare.resources import load_toml

    table = load_toml("headers")
    if section is not None:
        table = table[section]
    return {
        identity.nfkc(word).strip().lower(): field
        for field, words in table.items()
        if isinstance(words, list)
        for word in words
    }


def map_headers(
    header: list[str],
    fields: tuple[str, ...],
    overrides: dict | None = None,
    section: str | None = None,
    required: tuple[str, ...] = ("name",),
) -> tuple[dict[int, str], list[str]]:
    """column index -> field of ``fields``, and the unknown headers (ignored with a warning), by
    the words of ``data/headers.toml`` (its table ``section``). A table without a name column
    is refused (``required``). (A roster's own layout is ``commcare.roster.layout``.)"""
    words = header_words(section)
    words.update({identity.nfkc(k).strip().lower(): v for k, v in (overrides or {}).items()})
    mapping: dict[int, str] = {}
    unknown: list[str] = []
    for i, raw in enumerate(header):
        key = identity.nfkc(raw or "").strip().lower()
        field = words.get(key)
        if field is not None and field in fields and field not in mapping.values():
            mapping[i] = field
        elif key:
            unknown.append(raw)
    if "name" in required and "name" not in mapping.values():
        raise InvalidValue("roster.no_name_column", field="FILE")
    return mapping, unknown


class Roster:
    """A roster's layout understood (``commcare.roster.layout``: the header row, found below
    any title rows, and each column's field; a file with no name column, or none at all, is
    refused here, before anything is checked); ``rows``, the rows after the header, to be read
    as they are checked; ``first_row``, the spreadsheet row number of the first of them;
    ``heading``, what the header and a sample of the first rows tell."""

    def __init__(
        self,
        rows,
        overrides: dict | None = None,
        estimate: int | None = None,
        *,
        headers: dict | None = None,
        tags: dict | None = None,
    ) -> None:
        from itertools import chain

        from commcare.roster import layout as roster_layout

        rows = iter(rows)
        top = list(islice(rows, roster_layout.HEADER_SEARCH))
        if not any(any(c.strip() for c in row) for row in top):
            raise InvalidValue("roster.empty", field="FILE")
        layout = roster_layout.find_layout(top, overrides, headers)
        sample = top[layout.header_row :]
        sample += islice(rows, max(roster_layout.SAMPLE_ROWS - len(sample), 0))
        self.mapping = layout.columns
        self.rows = chain(sample, rows)
        self.first_row = layout.header_row + 1
        self.estimate = max((estimate or 0) - (layout.header_row - 1), 0)
        self.heading = roster_layout.heading(layout, sample, self.estimate, tags)
        self.unknown = self.heading.unknown
