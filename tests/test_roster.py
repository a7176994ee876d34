"""Roster import and export with real files: encodings, XLSX, bad rows, formulas, round trip."""

from __future__ import annotations

import csv
import io
import json
import stat

import pytest

HEADER = "序号,姓名,身份证号,联系电话,小区,住址,人群类别,联络员,备注\n"
GOOD = [
    "1,张桂兰,11010519491231002x,139-1234-5678,幸福小区,1-101,独居、老人,王秀英,",
    '2,阿依古丽·买买提,,０３７１-６７８９１２３４,幸福小区,1-102,残疾；体弱,王秀英,=HYPERLINK("x")',
    "3,刘建国,,13800002222,阳光花园,2-201,,,",
]


@pytest.fixture
def office(db_url, cli):
    assert cli("staff", "add", "王秀英").exit_code == 0
    assert cli("staff", "add", "李强").exit_code == 0
    return cli


def names(cli) -> list[str]:
    return [r["name"] for r in json.loads(cli("resident", "list", "-f", "json").stdout)]


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-8", "gb18030"])
def test_csv_in_the_encodings_offices_use(office, tmp_path, encoding):
    path = tmp_path / "roster.csv"
    path.write_bytes((HEADER + "\n".join(GOOD) + "\n").encode(encoding))
    result = office("resident", "import", path)
    assert result.exit_code == 0, result.stderr
    assert "序号" in result.stderr  # the unknown column is named in a warning
    assert names(office) == ["张桂兰", "阿依古丽·买买提", "刘建国"]
    shown = json.loads(office("resident", "show", "张桂兰", "-f", "json", "--unmask").stdout)
    assert shown["id_number"] == "11010519491231002X" and shown["phone"] == "13912345678"
    assert shown["tags"] == ["elderly", "lives-alone"] and shown["liaison"] == "王秀英"
    assert json.loads(office("resident", "show", "阿依古丽·买买提", "-f", "json").stdout)["phone"] == "0371-67891234"


def test_xlsx_with_chinese_headers_and_a_serial_column(office, tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["序号", "姓名", "性别", "身份证号", "手机", "小区", "地址", "类别", "联络员"])
    sheet.append([1, "张桂兰", "女", "11010519491231002X", 13912345678, "幸福小区", "1-101", "老人 独居", "王秀英"])
    sheet.append([2, "赵小宝", "男", None, "137 0000 3333", "幸福小区", "1-103", "儿童", "王秀英"])
    path = tmp_path / "roster.xlsx"
    book.save(path)
    result = office("resident", "import", path)
    assert result.exit_code == 0, result.stderr
    assert names(office) == ["张桂兰", "赵小宝"]


BAD_ROWS = [
    ("11010519491231002X", "1391234567", "老人", "王秀英", "phone"),  # short phone
    ("110105194912310021", "13912345678", "老人", "王秀英", "id_number"),  # bad check digit
    ("", "13912345678", "外星人", "王秀英", "tags"),  # unknown tag
    ("", "13912345678", "老人", "无此人", "liaison"),  # unknown liaison
]


def test_every_bad_row_is_reported_by_row_and_field_and_nothing_is_imported(office, tmp_path):
    lines = [
        f"{i},某某{i},{idn},{phone},幸福小区,9-{i},{tag},{liaison},"
        for i, (idn, phone, tag, liaison, _) in enumerate(BAD_ROWS)
    ]
    lines += [
        "9,,,13900000009,幸福小区,9-9,,,",  # empty name: row 6
        "10,甲,11010519491231002X,13900000010,幸福小区,8-1,,王秀英,",  # fine alone: row 7
        "11,乙,11010519491231002X,13900000011,幸福小区,8-2,,王秀英,",  # repeats row 7's ID: row 8
        "12,丙,,13900000012,幸福小区,8-1,,李强,",
    ]  # household liaison conflict: row 9
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    result = office("resident", "import", path)
    assert result.exit_code == 1
    report = result.stderr
    for row, field in [
        (2, "phone"),
        (3, "id_number"),
        (4, "tags"),
        (5, "liaison"),
        (6, "name"),
        (8, "id_number"),
        (9, "liaison"),
    ]:
        assert f"row {row}: {field}:" in report, (row, field, report)
    assert "row 7:" not in report
    assert names(office) == []
    skipped = office("resident", "import", path, "--skip-invalid")
    assert skipped.exit_code == 0
    assert names(office) == ["甲"]


def test_an_id_number_already_registered_is_invalid(office, tmp_path):
    office("resident", "add", "张桂兰", "--id-number", "11010519491231002X")
    path = tmp_path / "r.csv"
    path.write_text(HEADER + GOOD[0] + "\n", encoding="utf-8")
    result = office("resident", "import", path)
    assert result.exit_code == 1 and "row 2: id_number" in result.stderr


def test_dry_run_writes_nothing(office, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(HEADER + "\n".join(GOOD) + "\n", encoding="utf-8")
    result = office("resident", "import", path, "--dry-run")
    assert result.exit_code == 0 and "3" in result.stdout
    assert names(office) == []


def test_export_is_masked_private_and_neutralised(office, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(HEADER + "\n".join(GOOD) + "\n", encoding="utf-8")
    office("resident", "import", path)
    out = tmp_path / "export.csv"
    assert office("resident", "export", "-o", out).exit_code == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and stat.S_IMODE(out.stat().st_mode) == 0o600
    text = raw.decode("utf-8-sig")
    assert "13912345678" not in text and "139****5678" in text and "11010519491231002X" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[1]["note"] == '\'=HYPERLINK("x")'
    assert office("resident", "export", "-o", out).exit_code == 1  # never overwritten silently
    assert office("resident", "export", "-o", out, "--force").exit_code == 0


def test_xlsx_export_keeps_id_numbers_as_text(office, tmp_path):
    from openpyxl import load_workbook

    office("resident", "add", "张桂兰", "--id-number", "11010519491231002X", "--note", "@SUM(A1)")
    out = tmp_path / "r.xlsx"
    assert office("resident", "export", "-f", "xlsx", "-o", out, "--unmask").exit_code == 0
    sheet = load_workbook(out).active
    header = [c.value for c in sheet[2]]  # under the title row
    row = [c.value for c in sheet[3]]
    assert row[header.index("id_number")] == "11010519491231002X"
    assert row[header.index("note")] == "'@SUM(A1)"
    audit = json.loads(office("audit", "-f", "json").stdout)
    assert any(e["action"] == "unmask" for e in audit)


def test_round_trip_export_unmask_then_import_gives_the_same_register(office, tmp_path, cli, monkeypatch):
    path = tmp_path / "r.csv"
    path.write_text(HEADER + "\n".join(GOOD) + "\n", encoding="utf-8")
    office(
        "resident",
        "add",
        "李大爷",
        "--phone",
        "13700001111",
        "--emergency-contact",
        "李明 13600002222",
        "--compound",
        "阳光花园",
        "--address",
        "5-501",
        "--liaison",
        "李强",
        "--tag",
        "sick",
    )
    office("resident", "import", path)
    out = tmp_path / "all.csv"
    assert office("resident", "export", "--unmask", "-o", out).exit_code == 0
    before = json.loads(office("resident", "list", "--unmask", "-f", "json").stdout)
    fresh = tmp_path / "fresh.db"
    monkeypatch.setenv("COMMCARE_DB", str(fresh))
    cli("staff", "add", "王秀英")
    cli("staff", "add", "李强")
    result = cli("resident", "import", out)
    assert result.exit_code == 0, result.stderr
    after = json.loads(cli("resident", "list", "--unmask", "-f", "json").stdout)
    strip = lambda rows: sorted(
        ({k: v for k, v in r.items() if k not in ("id", "created_at")} for r in rows), key=lambda r: r["name"]
    )
    assert strip(after) == strip(before)


def test_duplicates_listed_then_merged(office):
    office("resident", "add", "张桂兰", "--phone", "13912345678")
    office("resident", "add", "张桂兰", "--phone", "139 1234 5678", "--tag", "老人")
    dups = json.loads(office("resident", "duplicates", "-f", "json").stdout)
    assert dups == [{"a": 1, "b": 2, "name": "张桂兰", "reason": "same phone"}]
    assert office("resident", "merge", "1", "2").exit_code == 0
    assert json.loads(office("resident", "duplicates", "-f", "json").stdout) == []
    assert json.loads(office("resident", "show", "#1", "-f", "json").stdout)["tags"] == ["elderly"]


def test_mojibake_is_refused_not_imported(office, tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(HEADER.encode("utf-16"))
    result = office("resident", "import", path)
    assert result.exit_code == 2 and "FILE" in result.stderr


@pytest.mark.parametrize("content", [b"not a workbook", b"PK\x03\x04 a damaged zip", b""])
def test_a_file_named_xlsx_that_is_not_a_workbook_is_refused_in_one_line(office, tmp_path, content):
    """Not "internal error (BadZipFile)": exit 2, one line naming FILE, the register unchanged."""
    before = names(office)
    path = tmp_path / "花名册.xlsx"
    path.write_bytes(content)
    result = office("resident", "import", path)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"commcare: FILE: {path} is not an Excel workbook (.xlsx), or it is damaged"
    ]
    assert names(office) == before


def test_a_header_alone_imports_nothing(office, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(HEADER, encoding="utf-8")
    result = office("resident", "import", path)
    assert result.exit_code == 0, result.stderr
    assert names(office) == []


def test_every_bad_field_of_a_row_is_reported(office, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(HEADER + "1,某某,110105194912310021,1391234567,幸福小区,1-1,外星人,,\n", encoding="utf-8")
    result = office("resident", "import", path)
    assert result.exit_code == 1
    for field in ("id_number", "phone", "tags"):
        assert f"row 2: {field}:" in result.stderr, result.stderr


def test_a_row_refused_for_a_registered_id_number_does_not_give_its_household_a_liaison(office, tmp_path):
    office("resident", "add", "张桂兰", "--id-number", "11010519491231002X")
    path = tmp_path / "r.csv"
    path.write_text(
        HEADER + "1,张桂兰,11010519491231002X,,幸福小区,1-101,,王秀英,\n2,刘建国,,,幸福小区,1-101,,李强,\n",
        encoding="utf-8",
    )
    result = office("resident", "import", path, "--skip-invalid")
    assert result.exit_code == 0
    assert "row 2: id_number" in result.stderr and "row 3" not in result.stderr
    assert json.loads(office("resident", "show", "刘建国", "-f", "json").stdout)["liaison"] == "李强"


def test_a_household_in_the_register_without_a_liaison_gets_the_rosters(office, tmp_path):
    office("resident", "add", "张桂兰", "--compound", "幸福小区", "--address", "1-101")
    path = tmp_path / "r.csv"
    path.write_text(HEADER + "1,刘建国,,,幸福小区,1-101,,李强,\n", encoding="utf-8")
    assert office("resident", "import", path).exit_code == 0
    assert json.loads(office("resident", "show", "张桂兰", "-f", "json").stdout)["liaison"] == "李强"


def test_imported_rows_are_stored_exactly_as_resident_add_stores_them(office, tmp_path, monkeypatch, db_url):
    """The SQLite fast path hands the driver text it formats itself: it must be the text the
    column types would have written (times in UTC, dates in ISO form)."""
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-08 14:30:15.123456")
    office(
        "resident",
        "add",
        "甲",
        "--id-number",
        "11010519491231002X",
        "--phone",
        "13900000001",
        "--compound",
        "幸福小区",
        "--address",
        "1-1",
        "--tag",
        "老人",
        "--emergency-contact",
        "李明 13600002222",
    )
    path = tmp_path / "r.csv"
    path.write_text(
        "姓名,身份证号,联系电话,小区,住址,人群类别,emergency_contact\n"
        "乙,110105194912310046,13900000002,幸福小区,1-1,老人,李明 13600002222\n",
        encoding="utf-8",
    )
    assert office("resident", "import", path).exit_code == 0
    from sqlalchemy import create_engine, text

    url = db_url if "://" in db_url else f"sqlite:///{db_url}"
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    columns = "name_pinyin, sex, born, created_at, updated_at, version, emergency_name, emergency_phone"
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            columns = columns.replace("born", "CAST(born AS TEXT)").replace("created_at", "CAST(created_at AS TEXT)")
        added, imported = conn.execute(text(f"SELECT {columns} FROM residents ORDER BY id")).all()
        tags = conn.execute(text("SELECT resident_id, tag FROM resident_tags ORDER BY resident_id")).all()
    engine.dispose()
    assert imported[1:] == added[1:] and imported[0] == "yi" and added[0] == "jia"
    assert [t[1] for t in tags] == ["elderly", "elderly"]
    shown = json.loads(office("resident", "show", "乙", "-f", "json").stdout)
    assert shown["created_at"] == "2026-05-08T14:30:15+08:00" and shown["born"] == "1949-12-31"


def test_import_and_export_say_nothing_extra_when_piped(tmp_path):
    """Progress bars are for terminals: piped, standard error holds the messages and nothing else."""
    import os
    import subprocess
    import sys

    path = tmp_path / "r.csv"
    path.write_text(HEADER + "\n".join(GOOD[2:]) + "\n", encoding="utf-8")
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    run = lambda *args: subprocess.run(
        [sys.executable, "-m", "commcare", *args], env=env, capture_output=True, text=True, check=False
    )
    assert run("init").returncode == 0
    result = run("resident", "import", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == "ignored unknown columns: 序号\n"
    assert result.stdout == "residents imported: 1; invalid rows: 0\nresidents in the daily round: 0\n"
    exported = run("resident", "export", "-o", str(tmp_path / "out.csv"))
    assert exported.returncode == 0 and exported.stdout == "" and "\x1b" not in exported.stderr
    assert len(exported.stderr.splitlines()) == 1


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_the_progress_bar_shows_on_a_terminal_only():
    from commcare.commands.common import ProgressBar

    with ProgressBar("roster.step", io.StringIO()) as progress:
        assert progress is None
    terminal = FakeTerminal()
    with ProgressBar("roster.step", terminal) as progress:
        progress("check", 5_000, 10_000)
        progress("check", 10_000, 10_000)
    assert "checking rows" in terminal.getvalue()


def test_an_import_does_not_load_the_phrase_dictionary(tmp_path):
    """pypinyin without the phrase dictionary it never uses (its start-up is part of the rate)."""
    import subprocess
    import sys

    path = tmp_path / "r.csv"
    path.write_text(HEADER + GOOD[2] + "\n", encoding="utf-8")
    code = (
        "import sys\nfrom commcare.cli import main\nsys.argv = ['commcare', 'resident', 'import', sys.argv[1]]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "print(sorted(m for m in ('pypinyin.phrases_dict',) if m in sys.modules))"
    )
    for _ in range(2):  # the first run creates the database
        result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "[]", result.stdout + result.stderr


def test_blank_and_short_rows_keep_the_spreadsheet_row_numbers(office, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(
        HEADER + ",,,,,,,,\n"  # row 2: blank, skipped
        "\n"  # row 3: empty line
        "3,刘建国\n"  # row 4: short, fine
        "4,赵小宝,１１０１０５１９４９１２３１００２ｘ,13800002222\n"  # row 5: full-width, fine
        "5,钱多多,110105194912310021,13800003333\n"  # row 6: bad check digit
        "6,孙小小,11010519491231002X\n",
        encoding="utf-8",
    )  # row 7: repeats row 5
    result = office("resident", "import", path)
    assert result.exit_code == 1
    assert "row 6: id_number:" in result.stderr and "row 7: id_number:" in result.stderr
    assert "row 5:" not in result.stderr and "row 4:" not in result.stderr and "of row 5" in result.stderr
    assert office("resident", "import", path, "--skip-invalid").exit_code == 0
    assert names(office) == ["刘建国", "赵小宝"]


def test_export_filters_by_tag_and_compound_and_leaves_out_archived_residents(office, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(HEADER + "\n".join(GOOD) + "\n", encoding="utf-8")
    office("resident", "import", path)
    office("resident", "add", "周搬走", "--compound", "幸福小区", "--address", "1-109", "--tag", "老人")
    office("resident", "archive", "周搬走", "--reason", "moved away")
    export = lambda *args: json.loads(office("resident", "export", "-f", "json", *args).stdout)
    assert [r["name"] for r in export()] == ["张桂兰", "阿依古丽·买买提", "刘建国"]
    assert [r["name"] for r in export("--tag", "体弱")] == ["阿依古丽·买买提"]
    assert [r["name"] for r in export("--compound", "幸福小区")] == ["张桂兰", "阿依古丽·买买提"]
    assert [r["name"] for r in export("--compound", "幸福小区", "--tag", "老人")] == ["张桂兰"]
    first = export("--tag", "elderly")[0]
    assert first["tags"] == ["elderly", "lives-alone"] and first["liaison"] == "王秀英"
    assert first["phone"] == "139****5678" and "id_number" not in first


def test_the_export_progress_bar_is_told_how_far_it_has_got(office, tmp_path):
    from commcare.commands.common import state
    from commcare.roster import export as exporter

    path = tmp_path / "r.csv"
    path.write_text(HEADER + "\n".join(GOOD) + "\n", encoding="utf-8")
    office("resident", "import", path)
    seen = []
    rows = state().read(exporter.export_rows, False, None, None, lambda *step: seen.append(step))
    assert len(rows) == 3 and seen == [("read", 3, 3)]


def test_a_first_import_builds_the_residents_indexes_again_exactly(office, tmp_path, monkeypatch, db_url):
    """A load into a table no bigger than itself drops the plain indexes and builds them after
    (SQLite): the schema afterwards is the schema before, and the indexes serve."""
    if "://" in db_url:
        pytest.skip("SQLite only")
    import sqlite3

    from commcare.roster import write as roster_write

    monkeypatch.setattr(roster_write, "REBUILD_MIN_ROWS", 1)
    schema = lambda: (
        sqlite3.connect(db_url).execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall()
    )
    before = schema()
    path = tmp_path / "r.csv"
    path.write_text(HEADER + "\n".join(GOOD) + "\n", encoding="utf-8")
    assert office("resident", "import", path).exit_code == 0
    assert schema() == before
    con = sqlite3.connect(db_url)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    plan = con.execute("EXPLAIN QUERY PLAN SELECT id FROM residents WHERE name_initials = 'zgl'").fetchall()
    assert "ix_residents_name_initials" in str(plan)
    assert [r["name"] for r in json.loads(office("resident", "list", "--search", "zgl", "-f", "json").stdout)] == [
        "张桂兰"
    ]


def test_an_import_that_fails_keeps_the_indexes(office, tmp_path, monkeypatch, db_url):
    if "://" in db_url:
        pytest.skip("SQLite only")
    import sqlite3

    from commcare.roster import write as roster_write

    monkeypatch.setattr(roster_write, "REBUILD_MIN_ROWS", 1)
    before = sqlite3.connect(db_url).execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()

    def fail(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(roster_write.audit, "record", fail)
    path = tmp_path / "r.csv"
    path.write_text(HEADER + "\n".join(GOOD) + "\n", encoding="utf-8")
    result = office("resident", "import", path)
    assert result.exit_code != 0 and "RuntimeError" in result.stderr
    assert sqlite3.connect(db_url).execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall() == before
    assert names(office) == []


def test_columns_a_roster_leaves_empty_are_stored_as_null(office, tmp_path, db_url):
    """The bulk insert leaves out the columns no row gives (a value of None costs the driver
    dearly): they must still read back as NULL, and a column some rows give and others not
    keeps both."""
    path = tmp_path / "r.csv"
    path.write_text("姓名,联系电话,小区,住址\n甲,13900000001,幸福小区,1-1\n乙,,幸福小区,1-2\n", encoding="utf-8")
    assert office("resident", "import", path, "--no-groups").exit_code == 0
    from sqlalchemy import create_engine, text

    url = db_url if "://" in db_url else f"sqlite:///{db_url}"
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT name, phone, id_number, note, emergency_name, archived_at, erased_at, "
                "household_id IS NOT NULL FROM residents ORDER BY id"
            )
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("甲", "13900000001", None, None, None, None, None, True),
        ("乙", None, None, None, None, None, None, True),
    ]
