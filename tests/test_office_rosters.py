"""Rosters as community offices keep them, in and out, as a user runs them: the installed
``commcare`` console script on the office-style fixtures of tests/fixtures/make_office_rosters.py.
Every special-group resident of a roster is in the daily round after its import, or the import
is refused naming the column; exports open intact in LibreOffice and import again unchanged."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
import make_office_rosters as offices  # noqa: E402

EXE = os.path.join(os.path.dirname(sys.executable), "commcare")


class Register:
    """One register, driven through the console script."""

    def __init__(self, db: str, tmp: Path, config: str = "", lang: str = "en") -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "commcare.toml").write_text(config, encoding="utf-8")
        self.env = {
            **os.environ,
            "COMMCARE_DB": db,
            "COMMCARE_CONFIG": str(tmp / "commcare.toml"),
            "COMMCARE_LANG": lang,
            "COMMCARE_USER": "王秀英",
            "COMMCARE_COMMUNITY": "如意湖社区",
        }
        self.staffed = False
        for var in ("COMMCARE_NOW", "COMMCARE_TZ", "COMMCARE_DEBUG"):
            self.env.pop(var, None)
        assert self("init").returncode == 0

    def __call__(self, *args) -> subprocess.CompletedProcess:
        return subprocess.run([EXE, *map(str, args)], env=self.env, capture_output=True, text=True, check=False)

    def json(self, *args):
        result = self(*args, "--format", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def staff(self, *names) -> None:
        """Add staff; the first one added is who acts from then on (writes need a staff member)."""
        for name in names:
            assert self("staff", "add", name).returncode == 0
            if not self.staffed:
                self.env["COMMCARE_USER"], self.staffed = name, True

    def residents(self) -> list[dict]:
        return self.json("resident", "list", "--unmask")

    def due(self) -> set[str]:
        return {row["resident"] for row in self.json("call", "due")}


@pytest.fixture
def register(db_url, tmp_path):
    return lambda config="", lang="en": Register(db_url, tmp_path / "register", config, lang)


def fresh(tmp_path, name: str, config: str = "", lang: str = "en") -> Register:
    return Register(str(tmp_path / f"{name}.db"), tmp_path / name, config, lang)


@pytest.mark.parametrize("office", offices.OFFICES, ids=lambda o: o["file"])
def test_every_special_group_resident_is_in_the_round_or_the_import_is_refused(register, office):
    reg = register(office.get("config", ""))
    reg.staff(*office["staff"])
    path = FIXTURES / office["file"]
    if office["refused"]:
        refused = reg("resident", "import", path)
        assert refused.returncode == 1, refused.stdout
        for named in office["refused"]:
            assert named in refused.stderr
        for option in office["map"][1::2] if office["map"][:1] == ["--map"] else []:
            assert f"--map {option}" in refused.stderr  # the --map that would read the column
        assert reg.residents() == []
    done = reg("resident", "import", path, *office["map"])
    assert done.returncode == 0, done.stderr
    assert f"residents in the daily round: {len(office['round'])}" in done.stdout
    assert sorted(r["name"] for r in reg.residents()) == sorted(office["residents"])
    assert reg.due() == set(office["round"])


def test_a_roster_without_a_group_column_says_so_and_no_groups_imports_it(register):
    reg = register()
    refused = reg("resident", "import", FIXTURES / "office_plain_roster.csv")
    assert refused.returncode == 1
    assert "no group column" in refused.stderr and "--map COLUMN=tags" in refused.stderr
    assert "--no-groups" in refused.stderr and "nothing was imported" in refused.stderr
    done = reg("resident", "import", FIXTURES / "office_plain_roster.csv", "--no-groups")
    assert done.returncode == 0 and "residents in the daily round: 0" in done.stdout


def test_the_summary_counts_the_round_in_chinese_too(register):
    reg = register(lang="zh")
    reg.staff("李金芳", "王建军")
    dry = reg("resident", "import", FIXTURES / "office_taizhang_gbk.csv", "--dry-run")
    assert dry.returncode == 0 and "将纳入每日电话关怀：10 位" in dry.stdout and reg.residents() == []
    done = reg("resident", "import", FIXTURES / "office_taizhang_gbk.csv")
    assert "纳入每日电话关怀：10 位" in done.stdout and "另有 1 位" in done.stdout
    summary = json.loads(
        reg(
            "resident",
            "import",
            FIXTURES / "office_unknown_headers.csv",
            "--map",
            "情况=tags",
            "--map",
            "负责同志=liaison",
            "--format",
            "json",
        ).stdout
    )
    assert summary["daily_round"] == 3 and summary["imported"] == 4


def test_the_liaisons_phone_beside_them_is_not_the_residents(register):
    reg = register()
    reg.staff("李金芳", "王建军")
    done = reg("resident", "import", FIXTURES / "office_taizhang_gbk.csv")
    assert "the liaison's phone is not imported: 联系方式" in done.stderr
    assert "ignored unknown columns: 序号、年龄" in done.stderr
    by_name = {r["name"]: r for r in reg.residents()}
    assert by_name["张桂兰"]["phone"] == "13912340001" and by_name["张桂兰"]["liaison"] == "李金芳"
    assert by_name["赵小宝"]["phone"] is None  # his cell is empty: not his liaison's 13700000002
    assert by_name["吴玉兰"]["tags"] == ["elderly", "lives-alone", "sick"]
    assert by_name["冯淑珍"]["tags"] == ["elderly", "incapacitated"]


def test_an_address_in_parts_is_joined_and_makes_the_households(register):
    reg = register()
    reg.staff("张敏", "杨帆")
    done = reg("resident", "import", FIXTURES / "office_split_address.xlsx")
    assert done.returncode == 0, done.stderr
    assert "the headers are on row 3" in done.stderr
    by_name = {r["name"]: r for r in reg.residents()}
    assert (by_name["李翠花"]["compound"], by_name["李翠花"]["address"]) == ("如意湖小区", "1号楼1单元101")
    assert by_name["李长顺"]["address"] == "1号楼1单元101"  # one household of two
    assert by_name["高福来"]["address"] == "3号2单元102"  # 3号 is kept as written
    households = {(r["compound"], r["address"]) for r in by_name.values()}
    assert len(households) == 8
    assert by_name["何思雨"]["liaison"] == by_name["何建设"]["liaison"] == "杨帆"
    # the second 联系电话, right after 紧急联系人, is the contact's phone
    assert by_name["李翠花"]["emergency_contact"] == "李明 13600002222"
    assert by_name["马玉珍"]["emergency_contact"] == "马丽 0371-67891234"
    assert by_name["李翠花"]["phone"] == "13512340001"


def test_two_header_rows_under_a_title(register):
    config = offices.OFFICES[2]["config"]
    reg = register(config)
    reg.staff("杨帆", "李金芳")
    done = reg("resident", "import", FIXTURES / "office_two_header_rows.xlsx")
    assert done.returncode == 0, done.stderr
    assert "the liaison's phone is not imported: 联系电话" in done.stderr
    by_name = {r["name"]: r for r in reg.residents()}
    assert by_name["白玉兰"]["address"] == "2号楼1单元302" and by_name["白玉兰"]["liaison"] == "杨帆"
    assert by_name["程丽娟"]["tags"] == ["left-behind-women"]


def test_the_ignored_columns_are_told_when_the_import_is_refused(register, tmp_path):
    """Issue 18: the warning used to be suppressed when an import was refused."""
    reg = register()
    reg.staff("张敏")
    path = tmp_path / "r.csv"
    path.write_text(
        "序号,姓名,小区,楼栋,单元,门牌,类别,包保人\n1,甲,幸福小区,1,1,101,老人,张敏\n"
        "2,乙,幸福小区,1,1,101,老人,无此人\n",
        encoding="utf-8",
    )
    refused = reg("resident", "import", path)
    assert refused.returncode == 1 and "row 3: liaison" in refused.stderr
    assert "ignored unknown columns: 序号" in refused.stderr


def test_map_joins_columns_and_names_only_columns_that_exist(register, tmp_path):
    reg = register()
    path = tmp_path / "r.csv"
    path.write_text(
        "姓名,街路巷,门牌号,人员类别,困难类型,备注,走访情况\n甲,和平路,12号,独居,低保,腿脚不便,每周两次\n",
        encoding="utf-8",
    )
    done = reg("resident", "import", path, "--map", "街路巷=address", "--map", "走访情况=note")
    assert done.returncode == 0, done.stderr
    (row,) = reg.residents()
    assert row["address"] == "和平路12号"
    assert row["tags"] == ["lives-alone", "low-income"]  # two group columns, read together
    shown = reg.json("resident", "show", "甲")
    assert shown["note"] == "腿脚不便；每周两次"
    missing = reg("resident", "import", path, "--map", "人员属性=tags")
    assert missing.returncode == 2 and "no column 人员属性" in missing.stderr
    bad = reg("resident", "import", path, "--map", "街路巷=street")
    assert bad.returncode == 2 and "building" in bad.stderr


def test_a_column_left_out_on_purpose(register, tmp_path):
    reg = register()
    reg.staff("张敏", "杨帆")
    path = tmp_path / "r.csv"
    path.write_text(
        "姓名,住址,类别,包保人,网格员\n甲,1-101,老人,张敏,杨帆\n乙,1-102,老人,张敏,杨帆\n", encoding="utf-8"
    )
    refused = reg("resident", "import", path)
    assert refused.returncode == 1
    assert "column 网格员 holds staff members too" in refused.stderr and "--map 网格员=ignore" in refused.stderr
    done = reg("resident", "import", path, "--map", "网格员=ignore")
    assert done.returncode == 0 and "网格员" not in done.stderr
    assert {r["liaison"] for r in reg.residents()} == {"张敏"}


def test_config_adds_header_words_and_group_words(register, tmp_path):
    config = '[headers]\ntags = ["帮扶类型"]\nliaison = ["楼长"]\n[tags.elderly]\naliases = ["长者"]\n'
    reg = register(config)
    reg.staff("张敏")
    path = tmp_path / "r.csv"
    path.write_text("姓名,住址,帮扶类型,楼长\n甲,1-101,长者,张敏\n乙,1-102,老人,张敏\n", encoding="utf-8")
    done = reg("resident", "import", path)
    assert done.returncode == 0, done.stderr
    assert reg.due() == {"甲", "乙"}  # the config's word and the shipped one


def test_an_id_number_a_spreadsheet_stored_as_a_number_is_told_so(register, tmp_path):
    reg = register()
    refused = reg("resident", "import", FIXTURES / "office_lost_digits.xlsx")
    assert refused.returncode == 1
    assert refused.stderr.count("stored this ID number as a number") == 2
    assert "row 2: id_number" in refused.stderr and "row 3: id_number" in refused.stderr
    assert "41010519421103" not in refused.stderr  # the digits are not shown
    path = tmp_path / "r.csv"
    path.write_text("姓名,身份证号,类别\n甲,4.10105E+17,老人\n乙,410105194211031000,老人\n", encoding="utf-8")
    refused = reg("resident", "import", path)
    assert "row 2: id_number" in refused.stderr and "stored this ID number as a number" in refused.stderr
    assert "row 3: id_number" in refused.stderr and "ends in 000" in refused.stderr


def test_a_word_of_two_groups_is_refused_as_a_filter(register):
    reg = register()
    assert reg("resident", "add", "甲", "--tag", "独居老人").returncode == 0
    assert reg.json("resident", "show", "甲")["tags"] == ["elderly", "lives-alone"]
    refused = reg("resident", "list", "--tag", "独居老人")
    assert refused.returncode == 2 and "means several groups" in refused.stderr
    assert [r["name"] for r in reg.json("resident", "list", "--tag", "独居")] == ["甲"]


# --- out: exports an office can send up the line, and import again -------------------------------


def imported(tmp_path, name: str, office: dict, lang: str = "en") -> Register:
    reg = fresh(tmp_path, name, office.get("config", ""), lang)
    reg.staff(*office["staff"])
    done = reg("resident", "import", FIXTURES / office["file"], *office["map"])
    assert done.returncode == 0, done.stderr
    return reg


def households(rows: list[dict]) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault((r["compound"], r["address"], r["liaison"]), set()).add(r["name"])
    return out


def comparable(rows: list[dict]) -> list[dict]:
    return sorted(
        ({k: v for k, v in r.items() if k not in ("id", "created_at")} for r in rows), key=lambda r: r["name"]
    )


@pytest.mark.parametrize(
    ("office", "lang"),
    [(o, "en" if i == 3 else "zh") for i, o in enumerate(offices.OFFICES[:4])],
    ids=lambda v: v["file"] if isinstance(v, dict) else v,
)
def test_an_export_imports_again_unchanged(tmp_path, office, lang):
    """Imported from the office's file, exported (CSV and XLSX), imported into new registers:
    the same residents, fields, groups, households and liaisons."""
    source = imported(tmp_path, "source", office, lang)
    before = source.residents()
    for fmt in ("csv", "xlsx"):
        out = tmp_path / f"export.{fmt}"
        assert source("resident", "export", "--unmask", "--format", fmt, "--output", out).returncode == 0
        again = fresh(tmp_path, f"again-{fmt}", office.get("config", ""), lang)
        again.staff(*office["staff"])
        done = again("resident", "import", out)
        assert done.returncode == 0, done.stderr
        assert f"{len(office['round'])}" in done.stdout.splitlines()[1]  # the same daily round
        after = again.residents()
        assert comparable(after) == comparable(before)
        assert households(after) == households(before)


def test_the_export_speaks_the_commands_language(tmp_path):
    office = offices.OFFICES[0]
    for lang, header, words in (
        (
            "zh",
            "编号,姓名,性别,出生日期,联系电话,小区,住址,人群类别,联络员,紧急联系人,备注",
            ("女", "老年人、独居/空巢"),
        ),
        (
            "en",
            "id,name,sex,born,phone,compound,address,tags,liaison,emergency_contact,note",
            ("female", "elderly, lives-alone"),
        ),
    ):
        reg = imported(tmp_path, lang, office, lang)
        text = reg("resident", "export").stdout  # masked: no ID numbers
        lines = text.lstrip("\ufeff").splitlines()
        assert lines[0] == header
        first = next(csv.reader(io.StringIO(lines[1])))
        assert (first[2], first[7]) == words
        assert first[4] == "139****0001"
        data = reg.json("resident", "show", "张桂兰")
        exported = json.loads(reg("resident", "export", "--format", "json").stdout)[0]
        assert exported["sex"] == "F" and exported["tags"] == ["elderly", "lives-alone"] == data["tags"]


def test_an_xlsx_export_has_a_title_a_frozen_header_and_widths(tmp_path):
    from openpyxl import load_workbook

    reg = imported(tmp_path, "office", offices.OFFICES[1], "zh")
    out = tmp_path / "花名册.xlsx"
    assert reg("resident", "export", "--unmask", "--format", "xlsx", "--output", out).returncode == 0
    sheet = load_workbook(out).active
    title = sheet["A1"].value
    assert "如意湖社区" in title and title.endswith(f"（{reg.json('report', 'today')['date']}）")
    assert sheet["A1"].font.b and sheet["B2"].font.b and sheet["B2"].value == "姓名"
    assert sheet.freeze_panes == "A3"
    header = [c.value for c in sheet[2]]
    width = lambda name: sheet.column_dimensions[chr(ord("A") + header.index(name))].width
    assert width("身份证号") >= 18 and width("性别") < width("住址")
    ids = [row[header.index("身份证号")] for row in sheet.iter_rows(min_row=3, values_only=True)]
    assert all(isinstance(v, str) and len(v) == 18 for v in ids)


# --- LibreOffice opens what commcare writes ------------------------------------------------------

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
needs_soffice = pytest.mark.skipif(
    SOFFICE is None, reason="LibreOffice (soffice) is not installed: apt-get install libreoffice-calc-nogui"
)


def convert(path: Path, to: str, outdir: Path, infilter: str | None = None) -> Path:
    """``path`` opened by LibreOffice and saved as ``to``, as a person opening it would get it
    (its own profile, so that parallel runs do not share one)."""
    outdir.mkdir(exist_ok=True)
    args = [SOFFICE, f"-env:UserInstallation=file://{outdir / 'profile'}", "--headless"]
    if infilter:
        args.append(f"--infilter={infilter}")
    subprocess.run(
        args + ["--convert-to", to, "--outdir", str(outdir), str(path)], check=True, capture_output=True, timeout=180
    )
    return outdir / f"{path.stem}.{to.split(':')[0]}"


@needs_soffice
def test_libreoffice_opens_the_csv_export_with_every_digit(tmp_path):
    """A plain CSV of digits opens as numbers (4.10105194211031E+17: the ID's last digits gone);
    the export's groups of digits open as text, and that sheet imports again unchanged."""
    from openpyxl import load_workbook

    office = offices.OFFICES[0]
    reg = imported(tmp_path, "office", office, "zh")
    out = tmp_path / "export.csv"
    assert reg("resident", "export", "--unmask", "--output", out).returncode == 0
    # UTF-8 (76), comma, double quote, from row 1: the import dialog's choices for this file
    sheet = load_workbook(convert(out, "xlsx", tmp_path / "lo", "CSV:44,34,76,1")).active
    header = [c.value for c in sheet[1]]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    stored = {r["name"]: r for r in reg.residents()}
    for row in rows:
        resident = stored[row[header.index("姓名")]]
        id_cell, phone_cell = row[header.index("身份证号")], row[header.index("联系电话")]
        assert isinstance(id_cell, str) and id_cell.replace(" ", "") == resident["id_number"]
        if resident["phone"]:
            assert isinstance(phone_cell, str) and phone_cell.replace(" ", "") == resident["phone"]
    again = fresh(tmp_path, "again", "", "zh")
    again.staff(*office["staff"])
    done = again("resident", "import", tmp_path / "lo" / "export.xlsx")
    assert done.returncode == 0, done.stderr
    assert comparable(again.residents()) == comparable(reg.residents())


@needs_soffice
def test_libreoffice_opens_the_xlsx_export_with_every_digit(tmp_path):
    reg = imported(tmp_path, "office", offices.OFFICES[1], "zh")
    out = tmp_path / "export.xlsx"
    assert reg("resident", "export", "--unmask", "--format", "xlsx", "--output", out).returncode == 0
    text = convert(out, "csv", tmp_path / "lo").read_text(encoding="utf-8", errors="replace")
    for resident in reg.residents():
        assert resident["id_number"] in text
        assert resident["phone"] is None or resident["phone"] in text
    assert "E+17" not in text


def test_headers_and_address_parts_as_offices_write_them(register, tmp_path):
    """Required-field marks, a line break or a remark in brackets in a header; full-width
    digits in an address part; a building written out is kept as it is."""
    reg = register()
    ident = offices.id_number("410105", "19421103", 777)
    path = tmp_path / "r.csv"
    path.write_text(
        '*姓名,"身份证号码\n（18位）",楼 栋,单元,室,人员类别（独居/空巢等）\n'
        f"甲,{ident},３,２,１０１,独居老人\n乙,,东区7栋,2,1-1,老人\n",
        encoding="utf-8",
    )
    done = reg("resident", "import", path)
    assert done.returncode == 0, done.stderr
    by_name = {r["name"]: r for r in reg.residents()}
    assert by_name["甲"]["id_number"] == ident and by_name["甲"]["address"] == "3号楼2单元１０１"
    assert by_name["乙"]["address"] == "东区7栋2单元1-1"
    assert reg.due() == {"甲", "乙"}
