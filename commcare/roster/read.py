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
from pathlib import Path

from commcare import identity
from commcare.errors import InvalidValue, NotFound

FIELDS = ("name", "sex", "id_number", "phone", "compound", "address", "tags", "liaison", "note",
          "born", "emergency_contact", "emergency_phone")

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
    return csv.reader(io.StringIO(text)), max(lines - 1, 0)


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
    """The first sheet, streamed (openpyxl's read-only mode); a file that is not a workbook
    is refused as such."""
    import zipfile

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(file, read_only=True, data_only=True)
        sheet = book.worksheets[0]
    except (zipfile.BadZipFile, InvalidFileException, KeyError, IndexError, ValueError) as exc:
        raise InvalidValue("roster.not_workbook", field="FILE", path=path) from exc

    def rows() -> Iterator[list[str]]:
        try:
            for row in sheet.iter_rows(values_only=True):
                yield [_cell(v) for v in row]
        finally:
            book.close()

    return rows(), max((sheet.max_row or 1) - 1, 0)


def _cell(value) -> str:
    import datetime as dt

    if value is None:
        return ""
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
    return {identity.nfkc(word).strip().lower(): field
            for field, words in table.items() if isinstance(words, list) for word in words}


def map_headers(header: list[str], overrides: dict | None = None, fields=FIELDS, section: str | None = None,
                required: tuple[str, ...] = ("name",)) -> tuple[dict[int, str], list[str]]:
    """column index -> field, and the unknown headers (ignored with a warning). A roster
    without a name column is refused (``required``)."""
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
    """A roster's header understood (a file with no name column, or none at all, is refused
    here, before anything is checked); ``rows``, the rows after it, to be read as they are
    checked; ``estimate``, about how many there are."""

    def __init__(self, rows, overrides: dict | None = None, estimate: int | None = None) -> None:
        rows = iter(rows)
        header = next(rows, None)
        if header is None:
            raise InvalidValue("roster.empty", field="FILE")
        self.mapping, self.unknown = map_headers(header, overrides)
        self.rows = rows
        self.estimate = estimate or 0

