"""Rosters that misstate themselves or were made to hurt, imported through the installed
``commcare`` as a user runs it: a workbook whose sheet misstates its size gives every row it
holds; a zip bomb, an oversized cell or member, a CSV field past the csv module's limit are
refused in one line, exit 2, with nothing imported (docs/roster.md, "Bounds")."""

from __future__ import annotations

import io
import json
import random
import re
import subprocess
import sys
import zipfile

import pytest
from usercli import EXE, commcare, ok

SHEET = "xl/worksheets/sheet1.xml"
HEADER = ["姓名", "联系电话", "小区", "住址", "人群类别", "备注"]


def workbook(rows: int, write_only: bool = False) -> bytes:
    """A real roster workbook written by openpyxl (residents 居民0 …, all elderly)."""
    from openpyxl import Workbook

    book = Workbook(write_only=write_only)
    sheet = book.create_sheet("花名册") if write_only else book.active
    sheet.append(HEADER)
    for i in range(rows):
        sheet.append([f"居民{i}", f"139{i:08d}", "幸福小区", f"{i // 3}-101", "老人", f"第{i}位"])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def rewrite(data: bytes, path, members: dict) -> None:
    """``data`` (a workbook) saved at ``path`` with its ``members`` (name -> function of the
    member's bytes, or bytes) replaced, or added when it has no such member."""
    todo = dict(members)
    source = zipfile.ZipFile(io.BytesIO(data))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            change = todo.pop(info.filename, None)
            body = source.read(info.filename)
            out.writestr(info.filename, change if isinstance(change, bytes) else change(body) if change else body)
        for name, body in todo.items():
            out.writestr(name, body)


def shared_string(text: bytes) -> dict:
    """The members that make cell F3 a shared string (as Excel and LibreOffice write every
    text cell): the table of shared strings, its relationship and content type."""
    strings = (
        b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/'
        b'spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>' + text + b"</t></si></sst>"
    )
    relation = (
        b'<Relationship Id="rIdStrings" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        b'relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
    )
    content = (
        b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
        b'officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
    )
    return {
        "xl/sharedStrings.xml": strings,
        "xl/_rels/workbook.xml.rels": lambda b: b.replace(b"</Relationships>", relation),
        "[Content_Types].xml": lambda b: b.replace(b"</Types>", content),
        SHEET: lambda b: re.sub(rb'<c r="F3"[^>]*>.*?</c>', b'<c r="F3" t="s"><v>0</v></c>', b, count=1, flags=re.S),
    }


def with_dimension(ref: str | None):
    """The sheet's ``<dimension ref>`` set to ``ref`` (None: no dimension element at all)."""

    def change(xml: bytes) -> bytes:
        xml = re.sub(rb"<dimension[^>]*/>", b"", xml)
        if ref is None:
            return xml
        element = f'<dimension ref="{ref}"/>'.encode()
        at = (
            xml.index(b"</sheetPr>") + len(b"</sheetPr>")
            if b"</sheetPr>" in xml
            else xml.index(b">", xml.index(b"<worksheet")) + 1
        )
        return xml[:at] + element + xml[at:]

    return change


def stated_dimension(path) -> bytes | None:
    found = re.search(rb'<dimension ref="([^"]*)"', zipfile.ZipFile(path).read(SHEET))
    return found[1] if found else None


def refused(result, *words: str, code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("commcare: ")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def register_size() -> int:
    return len(json.loads(ok("resident", "list", "-f", "json").stdout))


# --- the sheet's stated size -------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["A1:E4", "A1:B2", "A1:A1", "C3:E4", "A1:Z500", "A1:F1048576", None])
def test_every_row_the_sheet_holds_is_imported_whatever_its_dimension_says(tmp_path, ref):
    path = tmp_path / "roster.xlsx"
    rewrite(workbook(10), path, {SHEET: with_dimension(ref)})
    assert stated_dimension(path) == (ref.encode() if ref else None)
    result = ok("resident", "import", path)
    assert "residents imported: 10; invalid rows: 0" in result.stdout
    rows = json.loads(ok("resident", "list", "-f", "json").stdout)
    assert [r["name"] for r in rows] == [f"居民{i}" for i in range(10)]
    assert all(r["tags"] == ["elderly"] and r["compound"] == "幸福小区" for r in rows)  # columns past B kept
    assert len(json.loads(ok("call", "due", "-f", "json").stdout)) == 10
    shown = json.loads(ok("resident", "show", "居民9", "-f", "json").stdout)
    assert shown["note"] == "第9位" and shown["phone"] == "13900000009"


def test_a_large_roster_misstating_its_size_is_read_whole_and_streamed(tmp_path):
    """30,000 rows under a dimension of three: all imported, and the import's peak memory
    stays that of a streamed read (measured on the import process alone)."""
    path = tmp_path / "large.xlsx"
    rewrite(workbook(30_000, write_only=True), path, {SHEET: with_dimension("A1:F4")})
    measure = (
        "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
        "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    done = subprocess.run(
        [sys.executable, "-c", measure, EXE, "resident", "import", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    code, peak_kib = map(int, done.stdout.split()[-2:])
    assert code == 0, done.stderr
    assert "residents imported: 30000" in done.stdout
    assert register_size() == 30_000
    assert peak_kib < 250 * 1024, peak_kib


# --- bounds on a workbook ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """A real roster workbook of about 1 MB whose sheet holds one cell of 1 GiB once inflated."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.xlsx"
    source = zipfile.ZipFile(io.BytesIO(workbook(3)))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        for info in source.infolist():
            body = source.read(info.filename)
            if info.filename != SHEET:
                out.writestr(info.filename, body)
                continue
            head, tail = body.split(b"</sheetData>")
            with out.open(SHEET, "w", force_zip64=True) as member:
                member.write(head + b'<row r="5"><c r="A5" t="inlineStr"><is><t>')
                block = b"A" * (1 << 20)
                for _ in range(1 << 10):  # 1 GiB
                    member.write(block)
                member.write(b"</t></is></c></row></sheetData>" + tail)
    return path


@pytest.mark.slow
def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path, bomb):
    assert bomb.stat().st_size < 1100 << 10
    assert zipfile.ZipFile(bomb).getinfo(SHEET).file_size > 1 << 30
    measure = (
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "sys.stderr.write(r.stderr); print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    for args in (
        ("resident", "import", bomb),
        ("resident", "import", bomb, "--skip-invalid", "--dry-run"),
        ("directory", "import", bomb),
    ):
        done = subprocess.run([sys.executable, "-c", measure, EXE, *map(str, args)], capture_output=True, text=True)
        code, peak_kib = map(int, done.stdout.split()[-2:])
        assert code == 2, done.stderr
        assert "zip bomb" in done.stderr and "sheet1.xml" in done.stderr and "Traceback" not in done.stderr
        assert peak_kib < 200 * 1024, peak_kib  # today's main: 2.1 GB
    assert register_size() == 0


def test_a_shared_strings_bomb_is_refused(tmp_path):
    """The same attack in the table of shared strings, which openpyxl reads whole."""
    path = tmp_path / "strings.xlsx"
    rewrite(workbook(3), path, shared_string(b"A" * (300 << 20)))
    refused(commcare("resident", "import", path), "zip bomb", "sharedStrings.xml")
    assert register_size() == 0


def test_a_workbook_with_shared_strings_imports(tmp_path):
    """The shared strings as the attacks above use them, at a sane size: read as usual."""
    path = tmp_path / "strings.xlsx"
    rewrite(workbook(3), path, {**shared_string("住一楼".encode()), SHEET: shared_string(b"")[SHEET]})
    ok("resident", "import", path)
    assert json.loads(ok("resident", "show", "居民1", "-f", "json").stdout)["note"] == "住一楼"


def test_a_member_larger_than_a_roster_can_be_is_refused(tmp_path):
    """Stored without compression (no ratio to tell): its size alone is refused."""
    path = tmp_path / "styles.xlsx"
    source = zipfile.ZipFile(io.BytesIO(workbook(3)))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            body = source.read(info.filename)
            if info.filename == "xl/styles.xml":
                out.writestr(info.filename, body + b" " * (129 << 20), compress_type=zipfile.ZIP_STORED)
            else:
                out.writestr(info.filename, body)
    refused(commcare("resident", "import", path), "styles.xml", "128.0 MiB")


@pytest.mark.parametrize("where", ["sheet", "shared strings"])
def test_a_cell_longer_than_excel_allows_is_refused_as_it_is_read(tmp_path, where):
    """300 KiB of varied text in one cell: too little to inflate suspiciously, too much for a
    cell (Excel's limit is 32,767 characters); refused while the member is read."""
    rng = random.Random(7)
    text = "".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(100_000)).encode()  # 300 KB
    path = tmp_path / "cell.xlsx"
    if where == "sheet":

        def change(xml):
            cell = b'<c r="F3" t="inlineStr"><is><t>' + text + b"</t></is></c>"
            return re.sub(rb'<c r="F3"[^>]*>.*?</c>', cell, xml, count=1, flags=re.S)

        rewrite(workbook(5), path, {SHEET: change})
    else:
        rewrite(workbook(5), path, shared_string(text))
    member = "sheet1.xml" if where == "sheet" else "sharedStrings.xml"
    refused(commcare("resident", "import", path), member, "32,767")
    assert register_size() == 0


def test_a_workbook_of_too_many_members_is_refused(tmp_path):
    path = tmp_path / "members.xlsx"
    data = workbook(3)
    with zipfile.ZipFile(path, "w") as out:
        source = zipfile.ZipFile(io.BytesIO(data))
        for info in source.infolist():
            out.writestr(info.filename, source.read(info.filename))
        for i in range(10_001):
            out.writestr(f"customXml/item{i}.xml", b"")
    refused(commcare("resident", "import", path), "10010 members", "10000")


def test_a_row_past_the_last_row_of_a_sheet_is_refused(tmp_path):
    """A row numbered past Excel's 1,048,576 would be padded out with empty rows for ever."""
    path = tmp_path / "rows.xlsx"
    far = b'<row r="99999999999"><c r="A99999999999" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'
    rewrite(workbook(3), path, {SHEET: lambda xml: xml.replace(b"</sheetData>", far)})
    refused(commcare("resident", "import", path, timeout=120), "1048576")
    assert register_size() == 0


# --- a CSV field past the csv module's limit ---------------------------------------------------


def test_a_csv_field_over_128_kib_names_its_row_and_column(tmp_path):
    path = tmp_path / "big.csv"
    rows = ["姓名,联系电话,备注", "张三,13900000001,好", "李四,13900000002," + "很" * 140_000, "王五,13900000003,好"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    for extra in ((), ("--skip-invalid",), ("--dry-run",)):
        message = refused(commcare("resident", "import", path, *extra), "备注", "row 3", "128 KiB")
        assert "nothing was imported" in message
    assert register_size() == 0
    zh = refused(commcare("--lang", "zh", "resident", "import", path))
    assert "第 3 行" in zh


def test_an_unclosed_quote_swallowing_the_rest_refuses_the_whole_file(tmp_path):
    """A stray quotation mark makes the rest of the file one field: importing the rows before
    it (--skip-invalid) would silently miss every person after it."""
    path = tmp_path / "quote.csv"
    rows = ["姓名,联系电话,备注", '张三,13900000001,"没有闭合'] + [f"居民{i},139{i:08d},x" for i in range(20_000)]
    path.write_text("\n".join(rows) + "\n", encoding="gb18030")
    refused(commcare("resident", "import", path, "--skip-invalid"), "row 2", "备注", "quotation")
    assert register_size() == 0


def test_a_header_field_over_the_limit_is_named_by_position(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("姓名,联系电话," + "备" * 140_000 + "\n张三,13900000001,x\n", encoding="utf-8")
    refused(commcare("resident", "import", path), "#3", "row 1")
