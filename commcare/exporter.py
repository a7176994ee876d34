"""Rosters out: CSV (UTF-8 with BOM, so Excel opens Chinese correctly), XLSX or JSON.

Masked by default (phones ``138****5678``, no ID numbers); ``--unmask`` is audited. Cells that
a spreadsheet would run as a formula are neutralised; ID numbers are always text.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from commcare import audit, register, render
from commcare.errors import InvalidValue, Refused

COLUMNS = ["id", "name", "sex", "born", "id_number", "phone", "compound", "address", "tags", "liaison",
           "emergency_contact", "note"]


def export_rows(s, ctx, unmask=False, tag=None, compound=None) -> list[dict]:
    rows = [register.resident_row(r, ctx.tz, unmask) for r in register.list_residents(s, ctx, tag=tag, compound=compound)]
    if unmask:
        audit.record(s, ctx, "unmask", "resident", None, ["phone", "id_number"], detail=f"export: {len(rows)} rows")
    columns = COLUMNS if unmask else [c for c in COLUMNS if c != "id_number"]
    return [{c: row.get(c) for c in columns} for row in rows]


def to_csv(rows: list[dict]) -> bytes:
    columns = list(rows[0]) if rows else COLUMNS
    return render.to_csv(rows, columns).encode("utf-8-sig")


def to_xlsx(rows: list[dict]) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("花名册")
    columns = list(rows[0]) if rows else COLUMNS
    sheet.append(columns)
    for row in rows:
        sheet.append([_xlsx_cell(c, row.get(c)) for c in columns])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _xlsx_cell(column: str, value):
    """Numbers stay numbers only for the record number; everything else is text (an ID
    number as a number loses its last three digits in Excel)."""
    if value is None or column == "id":
        return value
    return render.neutralise(render.cell(value))


def write(rows: list[dict], fmt: str, output: str | None, force: bool) -> bytes | None:
    """Write to ``output`` (0600, never over an existing file without ``force``) or return the
    bytes for standard output."""
    if fmt not in ("csv", "xlsx", "json"):
        raise InvalidValue("value.bad_choice", field="format", value=fmt, choices="csv|xlsx|json")
    if fmt == "xlsx" and not output:
        raise InvalidValue("roster.xlsx_needs_output", field="output")
    data = {"csv": to_csv, "xlsx": to_xlsx,
            "json": lambda r: (json.dumps(r, ensure_ascii=False, indent=2) + "\n").encode()}[fmt](rows)
    if not output:
        return data
    if Path(output).exists() and not force:
        raise Refused("maint.target_exists", path=output)
    render.write_private(output, data, force=True)
    return None
