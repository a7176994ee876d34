"""A roster's workbook (XLSX) read within bounds: every row its first sheet holds, whatever
the sheet's own dimension record says, and nothing inflated past sane sizes.

An XLSX file is a zip archive of XML members. Before openpyxl opens it, the archive's
directory is checked (``check_archive``): at most ``MAX_MEMBERS`` members; a worksheet at most
``MAX_SHEET`` bytes once inflated, any other member (shared strings, styles: read whole) at
most ``MAX_OTHER``; and no member over ``RATIO_FLOOR`` that inflates more than ``MAX_RATIO``
times its stored size (rosters inflate 10 to 20 times; a "zip bomb" a thousand). Python's
zipfile stops at a member's declared size (a member that would inflate past it fails its
CRC), so the directory bounds what can be inflated. Then, as the shared strings and the sheet
are inflated, no run of text between two XML tags may pass ``MAX_TEXT`` bytes (an Excel cell
holds at most 32,767 characters, under 160 KiB of XML however escaped), so no single cell is
ever held whole past that. Any of these: one line, exit 2, before the database is opened.

openpyxl's read-only mode reads rows up to the ``<dimension ref>`` the sheet states, and many
generators write it wrong (too small: rows silently dropped). The dimension is set aside
(``reset_dimensions``) and the sheet read to its last row, still streamed; its stated size is
kept only as the progress bar's estimate. A sheet holds at most ``MAX_ROWS`` rows (Excel's
limit): a row numbered past it is refused rather than padded out with empty rows.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

from commcare.errors import InvalidValue

MAX_MEMBERS = 10_000
MAX_SHEET = 1 << 30  # 1 GiB of worksheet XML: some 3 million roster rows
MAX_OTHER = 128 << 20  # shared strings, styles, …: openpyxl reads each whole
RATIO_FLOOR = 1 << 20  # members smaller than this may inflate as much as they like
MAX_RATIO = 100
MAX_TEXT = 256 << 10  # bytes of XML text between two tags: one cell
MAX_ROWS = 1_048_576  # the rows of an Excel sheet
SHARED_STRINGS = "xl/sharedStrings.xml"


def check_archive(file: Path, path: str) -> None:
    """Refuse (exit 2) a workbook whose directory promises more than a roster can be."""
    try:
        with zipfile.ZipFile(file) as archive:
            members = archive.infolist()
            if len(members) > MAX_MEMBERS:
                raise InvalidValue(
                    "roster.workbook_members", field="FILE", path=path, count=len(members), limit=MAX_MEMBERS
                )
            for member in members:
                _check_member(member, path)
            if SHARED_STRINGS in archive.NameToInfo:
                with archive.open(SHARED_STRINGS) as src:
                    _drain(Bounded(src, SHARED_STRINGS, path))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, RuntimeError) as exc:
        raise InvalidValue("roster.not_workbook", field="FILE", path=path) from exc


def _check_member(member: zipfile.ZipInfo, path: str) -> None:
    if member.file_size > RATIO_FLOOR and member.file_size > MAX_RATIO * max(member.compress_size, 1):
        raise InvalidValue(
            "roster.workbook_ratio",
            field="FILE",
            path=path,
            member=member.filename,
            ratio=member.file_size // max(member.compress_size, 1),
            limit=MAX_RATIO,
        )
    limit = MAX_SHEET if member.filename.startswith("xl/worksheets/") else MAX_OTHER
    if member.file_size > limit:
        raise InvalidValue(
            "roster.workbook_member_size",
            field="FILE",
            path=path,
            member=member.filename,
            size=_mib(member.file_size),
            limit=_mib(limit),
        )


def _mib(size: int) -> str:
    return f"{size / (1 << 20):,.1f} MiB"


def _drain(stream) -> None:
    while stream.read(1 << 16):
        pass


class Bounded:
    """A member being inflated, read through: a run of text between two tags longer than
    ``MAX_TEXT`` bytes is refused as it comes (two C calls per block read: only a run that
    spans blocks can grow past one block)."""

    def __init__(self, raw, member: str, path: str) -> None:
        self.raw, self.member, self.path = raw, member, path
        self.run = 0  # bytes since the last "<"

    def read(self, size: int = -1) -> bytes:
        """At most ``MAX_TEXT`` bytes (as a raw stream may return less than asked), so a run
        inside one block is within bounds by itself."""
        block = self.raw.read(MAX_TEXT if size is None or not 0 <= size <= MAX_TEXT else size)
        first = block.find(b"<")
        if first < 0:
            self.run += len(block)
        else:
            self.run += first
            if self.run <= MAX_TEXT:
                self.run = len(block) - block.rfind(b"<") - 1
        if self.run > MAX_TEXT:
            raise InvalidValue(
                "roster.workbook_cell", field="FILE", path=self.path, member=self.member, limit=f"{MAX_TEXT >> 10} KiB"
            )
        return block

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> Bounded:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def first_sheet_rows(file: Path, path: str) -> tuple[Iterator[tuple], int]:
    """The first sheet's rows (tuples of cell values), streamed, every one of them; and the
    rows it states it has after the header (the progress bar's length)."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    check_archive(file, path)
    try:
        book = load_workbook(file, read_only=True, data_only=True)
        sheet = book.worksheets[0]
    except (zipfile.BadZipFile, InvalidFileException, KeyError, IndexError, ValueError) as exc:
        raise InvalidValue("roster.not_workbook", field="FILE", path=path) from exc
    stated = min(sheet.max_row or 1, MAX_ROWS)
    sheet.reset_dimensions()  # the dimension record may be wrong: read to the last row
    source = sheet._get_source  # openpyxl's read-only sheet opens its member through this
    sheet._get_source = lambda: Bounded(source(), sheet._worksheet_path, path)

    def rows() -> Iterator[tuple]:
        try:
            for number, row in enumerate(sheet.iter_rows(min_row=1, min_col=1, values_only=True), 1):
                if number > MAX_ROWS:
                    raise InvalidValue("roster.workbook_rows", field="FILE", path=path, limit=MAX_ROWS)
                yield row
        finally:
            book.close()

    return rows(), max(stated - 1, 0)
