"""Rosters out: CSV (UTF-8 with BOM, so Excel opens Chinese correctly), XLSX or JSON.

Masked by default (phones ``138****5678``, no ID numbers); ``--unmask`` is audited. Cells that
a spreadsheet would run as a formula are neutralised. Two queries (residents with household
and liaison, then the tags), so 100,000 residents export in seconds.

CSV and XLSX are for people and for ``resident import``: headers in the command's language
(the words the import accepts), sex and groups in words. An XLSX has a title row naming the
community and the day, the header row frozen under it, columns as wide as their contents,
and every cell but the record number text. A spreadsheet opening a CSV turns a cell of digits
into a number (an ID number's last three digits lost, a phone's digits a number), whatever
the quotes: the CSV writes ID numbers and mobile numbers in groups (410105 19421103 1236,
139 1234 5678), which it keeps as text and ``resident import`` reads back. JSON keeps the
English keys, the slugs and the numbers as stored, for scripts.
"""

from __future__ import annotations

import io
import json
import re

from sqlalchemy import func, select

from commcare import audit, identity
from commcare.errors import InvalidValue
from commcare.patterns import Pattern
from commcare.render import formats
from commcare.storage import integrity
from commcare.storage.tables import households, resident_tags, residents, staff

COLUMNS = [
    "id",
    "name",
    "sex",
    "born",
    "id_number",
    "phone",
    "compound",
    "address",
    "tags",
    "liaison",
    "emergency_contact",
    "note",
]


def export_rows(conn, ctx, unmask=False, tag=None, compound=None, progress=None) -> list[dict]:
    """The register's active residents as export rows (``COLUMNS``; no ID numbers unless
    ``unmask``, which is audited). Core queries only: one for the residents with their
    household and liaison, one for the tags. ``progress("read", done, total)`` when given."""
    cid = ctx.community_id(conn)
    integrity.verify(conn, cid, [identity.parse_tag(tag, ctx.extra_tags)] if tag else ())
    query = _filtered(select(*_SELECTED).select_from(_JOINED), ctx, cid, tag, compound).order_by(residents.c.id)
    counted = _JOINED if compound else residents
    total = conn.scalar(_filtered(select(func.count()).select_from(counted), ctx, cid, tag, compound))
    tags = _tags(conn, ctx, cid, tag, compound)
    rows: list[dict] = []
    for part in conn.execute(query.execution_options(yield_per=CHUNK)).partitions():
        rows += _rows(part, tags, unmask)
        if progress:
            progress("read", len(rows), max(total, len(rows)))
    if unmask:
        audit.unmasked(conn, ctx, "resident", "export", len(rows))
    return Export(rows, ctx)


class Export(list):
    """An export's rows, and what a sheet made of them names in words: its title (the
    community and the day) and each group's word, in the command's language."""

    def __init__(self, rows: list[dict], ctx=None) -> None:
        from commcare.i18n import get_lang, t
        from commcare.render.report import community_name

        super().__init__(rows)
        self.lang = get_lang()
        self.title = (
            t("rosters.export_title", community=community_name(ctx.community), date=ctx.today().isoformat())
            if ctx
            else ""
        )
        table = identity.tag_table(ctx.extra_tags if ctx else None)
        self.tag_words = {slug: spec.get("zh", slug) if self.lang == "zh" else slug for slug, spec in table.items()}


CHUNK = 10_000
_JOINED = residents.outerjoin(households, residents.c.household_id == households.c.id).outerjoin(
    staff, households.c.liaison_id == staff.c.id
)
_SELECTED = (
    residents.c.id,
    residents.c.name,
    residents.c.sex,
    residents.c.born,
    residents.c.id_number,
    residents.c.phone,
    households.c.compound,
    households.c.address,
    staff.c.name.label("liaison"),
    residents.c.emergency_name,
    residents.c.emergency_phone,
    residents.c.note,
)


def _filtered(query, ctx, cid, tag, compound):
    # ``community_id + 0``: an expression, so that SQLite scans the table in id order instead of
    # walking the (community, name) index and sorting (an export reads the whole community).
    query = query.where(residents.c.community_id + 0 == cid, residents.c.archived_at.is_(None))
    if tag:
        slug = identity.parse_tag(tag, ctx.extra_tags)
        rt = resident_tags.c
        query = query.where(residents.c.id.in_(select(rt.resident_id).where(rt.community_id == cid, rt.tag == slug)))
    if compound:
        query = query.where(households.c.compound == identity.normalize_text(compound, "compound"))
    return query


def _tags(conn, ctx, cid, tag, compound) -> dict[int, list[str]]:
    joined = (_JOINED if compound else residents).join(resident_tags, resident_tags.c.resident_id == residents.c.id)
    query = _filtered(
        select(resident_tags.c.resident_id, resident_tags.c.tag).select_from(joined), ctx, cid, tag, compound
    )
    out: dict[int, list[str]] = {}
    for rid, name in conn.execute(query.order_by(resident_tags.c.resident_id, resident_tags.c.tag)):
        out.setdefault(rid, []).append(name)
    return out


def _rows(part, tags: dict[int, list[str]], unmask: bool) -> list[dict]:
    """Residents as ``resident_rows.resident_row`` shows them, in the export's columns."""
    mask = (lambda p: p) if unmask else identity.mask_phone
    out = []
    for rid, name, sex, born, id_number, phone, compound, address, liaison, e_name, e_phone, note in part:
        row = {"id": rid, "name": name, "sex": sex, "born": born.isoformat() if born else None}
        if unmask:
            row["id_number"] = id_number
        row.update(
            phone=mask(phone),
            compound=compound,
            address=address,
            tags=tags.get(rid, []),
            liaison=liaison,
            emergency_contact=" ".join(p for p in (e_name, mask(e_phone)) if p) or None,
            note=note,
        )
        out.append(row)
    return out


def to_csv(rows: list[dict]) -> bytes:
    """UTF-8 with BOM; every cell as ``formats.to_csv`` writes it (formulas neutralised), built
    column by column; ID numbers and mobile numbers in groups, which a spreadsheet keeps."""
    import csv

    rows = rows if isinstance(rows, Export) else Export(rows)
    columns = list(rows[0]) if rows else COLUMNS
    cells = [_csv_cells(_grouped(c, _in_words(c, [row[c] for row in rows], rows))) for c in columns]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers(columns))
    writer.writerows(zip(*cells))
    return out.getvalue().encode("utf-8-sig")


def headers(columns: list[str]) -> list[str]:
    """The columns' headers in the command's language: words ``resident import`` reads."""
    from commcare.i18n import t

    return [t(f"rosters.header.{c}") for c in columns]


def _in_words(column: str, values: list, rows: Export) -> list:
    """Sex and groups in words of the export's language (the JSON keeps M/F and slugs)."""
    if column == "sex":
        from commcare.i18n import t

        words = {s: t(f"rosters.sex.{s}") for s in ("M", "F")}
        return [words.get(v, v) for v in values]
    if column == "tags":
        words, joiner = rows.tag_words, "、" if rows.lang == "zh" else ", "
        return [joiner.join(words.get(tag, tag) for tag in tags) for tags in values]
    return values


_MOBILE_IN_TEXT = Pattern(r"(?<![0-9])(1[3-9][0-9])([0-9]{4})([0-9]{4})(?![0-9])", re.ASCII)


def _grouped(column: str, values: list) -> list:
    """ID numbers as 410105 19421103 1236 and mobile numbers as 139 1234 5678 (in the phone and
    the emergency contact's columns): LibreOffice, Excel and WPS read a CSV cell of digits as a
    number, and one of 18 digits keeps only 15 of them; digits in groups stay text."""
    if column == "id_number":
        return [f"{v[:6]} {v[6:14]} {v[14:]}" if v else v for v in values]
    if column in ("phone", "emergency_contact"):
        return [_MOBILE_IN_TEXT.sub(r"\1 \2 \3", v) if v else v for v in values]
    return values


_FORMULA_AFTER_NUL = Pattern("\x00[" + re.escape("".join(formats.FORMULA_START)) + "]")


def _csv_cells(values: list) -> list[str]:
    """One column's cells: ``formats.cell`` of each value, neutralised where it could run as a
    formula (looked for in the whole column at once: cells never hold a NUL)."""
    kinds = set(map(type, values))
    if kinds <= {str, type(None)}:
        text = ["" if v is None else v for v in values]
    elif kinds == {int}:  # the record number
        text = list(map(str, values))
    else:
        text = [formats.cell(v) for v in values]
    if _FORMULA_AFTER_NUL.search("\x00" + "\x00".join(text)):
        text = [formats.neutralise(t) for t in text]
    return text


TEXT_COLUMNS = ("id_number", "phone", "emergency_contact")  # formatted as text, for what is typed in later


def to_xlsx(rows: list[dict]) -> bytes:
    """A title row (the community, the day), the header row frozen under it, columns as wide
    as their contents, every cell text but the record number."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    from commcare.i18n import t

    rows = rows if isinstance(rows, Export) else Export(rows)
    book = Workbook(write_only=True)
    sheet = book.create_sheet(t("rosters.header.sheet"))
    columns = list(rows[0]) if rows else COLUMNS
    values = {c: _in_words(c, [row[c] for row in rows], rows) for c in columns}
    names = headers(columns)
    for i, column in enumerate(columns):
        dimension = sheet.column_dimensions[get_column_letter(i + 1)]
        dimension.width = _width([names[i], *values[column][:WIDTH_SAMPLE]])
        if column in TEXT_COLUMNS:
            dimension.number_format = "@"
    sheet.freeze_panes = "A3"
    title = WriteOnlyCell(sheet, value=rows.title)
    title.font = Font(bold=True, size=14)
    sheet.append([title])
    bold = Font(bold=True)
    sheet.append([_styled(WriteOnlyCell(sheet, value=name), bold) for name in names])
    cells = [[_xlsx_cell(c, v) for v in values[c]] for c in columns]
    for row in zip(*cells):
        sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


WIDTH_SAMPLE = 2000  # rows whose cells set a column's width


def _styled(cell, font):
    cell.font = font
    return cell


def _width(cells: list) -> float:
    """A column's width in characters: its widest cell (a Chinese character counts two),
    between 6 and 40."""
    import unicodedata

    widest = max(
        (sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in formats.cell(v)) for v in cells), default=0
    )
    return float(min(max(widest + 2, 6), 40))


def _xlsx_cell(column: str, value):
    """Numbers stay numbers only for the record number; everything else is text (an ID
    number as a number loses its last three digits in Excel)."""
    if value is None or column == "id":
        return value
    return formats.neutralise(formats.cell(value))


def check_format(fmt: str, output: str | None) -> None:
    """An export's format: csv, xlsx or json; a workbook goes to a file, never a terminal."""
    if fmt not in ("csv", "xlsx", "json"):
        raise InvalidValue("value.bad_choice", field="format", value=fmt, choices="csv|xlsx|json")
    if fmt == "xlsx" and not output:
        raise InvalidValue("roster.xlsx_needs_output", field="output")


def encode(rows: list[dict], fmt: str) -> bytes:
    """The export's bytes, for a file (``outfile.write_file``) or standard output."""
    return {
        "csv": to_csv,
        "xlsx": to_xlsx,
        "json": lambda r: (json.dumps(r, ensure_ascii=False, indent=2) + "\n").encode(),
    }[fmt](rows)
