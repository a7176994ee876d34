"""How an office's roster is laid out, and what its columns hold.

Offices keep rosters their own way: a title row above the headers, a second header row under
a merged cell (家庭住址 over 楼栋 | 单元 | 门牌), the address split over columns, the liaison
called 包保人 or 网格员 with their own phone beside them. This module finds the header row,
gives each column its field (by the words of ``data/headers.toml`` and the config's
``[headers]``, by its place, or as ``--map`` says), joins the address again, and looks at a
bounded sample of the columns left out: one that holds group words or staff names is not
left out silently (``refusals``). The rows themselves are checked by ``commcare.roster.check``.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from dataclasses import dataclass, field

from commcare import identity
from commcare.errors import InvalidValue

HEADER_SEARCH = 10  # the header row is looked for among the first rows (title rows above it)
SAMPLE_ROWS = 200  # rows after the header whose cells tell what a column left out holds
MOSTLY = 0.5  # the share of a column's cells that makes it a group or a staff column

IMPORTED = (
    "name",
    "sex",
    "id_number",
    "phone",
    "compound",
    "address",
    "tags",
    "liaison",
    "note",
    "born",
    "emergency_contact",
    "emergency_phone",
)
ADDRESS_PARTS = ("building", "unit", "room")
# What ``--map HEADER=FIELD`` may name: the imported fields, the address parts, the liaison's
# phone (read, not imported) and ``ignore`` (left out on purpose).
MAP_FIELDS = IMPORTED + ADDRESS_PARTS + ("liaison_phone", "ignore")
# Fields several columns may fill, joined with this: tags by their headers (人员类别 and 困难类型
# are both groups), the others when ``--map`` says so.
JOINED = {"tags": "、", "note": "；", "address": "", "building": "", "unit": "", "room": ""}
SUFFIX = {"building": "号楼", "unit": "单元"}  # added to a bare number


def key(text: str | None) -> str:
    """A header as it is compared: NFKC, lower-case, no spaces or line breaks, no required-
    field marks (``*姓名``), no trailing remark in brackets (``身份证号码(18位)``)."""
    text = re.sub(r"\s+", "", identity.nfkc(text or "")).strip("*").lower()
    return re.sub(r"\([^()]*\)$", "", text) or text


def vocabulary(extra: dict | None = None) -> dict[str, str]:
    """Header word -> field: ``data/headers.toml``, the config's ``[headers]`` (same shape;
    its words win), and every liaison or emergency-contact word followed by a phone word that
    names nobody (包保人电话, 网格员联系电话, 监护人电话) or by 姓名 (包保人姓名)."""
    from commcare.resources import load_toml

    shipped = load_toml("headers")
    words: dict[str, str] = {}
    for table in (shipped, extra if isinstance(extra, dict) else {}):
        for name, names in table.items():
            if isinstance(names, list):
                words.update({key(w): name for w in names if isinstance(w, str)})
    phones = [key(p) for p in generic_phones()]
    for person, phone_field in (("liaison", "liaison_phone"), ("emergency_contact", "emergency_phone")):
        for word in [w for w, f in list(words.items()) if f == person and not w.isascii()]:
            words.setdefault(word + "姓名", person)
            for phone in phones:
                words.setdefault(word + phone, phone_field)
    return words


def generic_phones() -> list[str]:
    from commcare.resources import load_toml

    return list(load_toml("headers").get("generic", {}).get("phone", []))


# --- the header row --------------------------------------------------------------------------


@dataclass
class Layout:
    """Which row holds the headers and which column holds which field."""

    header_row: int  # its spreadsheet row number (the lower one of two header rows)
    headers: list[str]  # the header cells as written (a second header row merged in)
    columns: dict[int, str] = field(default_factory=dict)  # column index -> field imported
    unknown: list[int] = field(default_factory=list)  # ignored, with a warning
    ignored: list[int] = field(default_factory=list)  # left out on purpose (--map …=ignore)
    liaison_phones: list[int] = field(default_factory=list)  # the liaison's phone: not imported

    def names(self, indexes: list[int]) -> list[str]:
        return [self.headers[i].strip() for i in indexes]

    def column_of(self, wanted: str) -> str | None:
        """The header of the (first) column read as ``wanted``."""
        return next((self.headers[i].strip() for i, f in self.columns.items() if f == wanted), None)


def find_layout(top: list[list[str]], overrides: dict | None = None, extra: dict | None = None) -> Layout:
    """The layout of a roster whose first rows are ``top``: the header row is the first that
    names the name column; the rows above it are titles. A row right under it that names
    columns and holds no name is a second header row (its words win where it has any)."""
    words = vocabulary(extra)
    wanted = {key(k): v for k, v in (overrides or {}).items()}
    words.update(wanted)
    for at, row in enumerate(top):
        if "name" not in [words.get(key(c)) for c in row]:
            continue
        header, row_number = list(row), at + 1
        below = top[at + 1] if at + 1 < len(top) else []
        if _is_second_header(below, header, words):
            header = [b if b.strip() else h for h, b in _zip_longest(header, below)]
            row_number += 1
        _check_map(wanted, header)
        return _assign(header, row_number, words, set(wanted))
    raise InvalidValue("roster.no_name_column", field="FILE")


def _zip_longest(a: list[str], b: list[str]) -> list[tuple[str, str]]:
    n = max(len(a), len(b))
    return list(zip(a + [""] * (n - len(a)), b + [""] * (n - len(b))))


def _is_second_header(row: list[str], header: list[str], words: dict[str, str]) -> bool:
    """A row of header words under a header row whose name column it leaves empty."""
    cells = [c for c in row if c.strip()]
    name_at = [words.get(key(c)) for c in header].index("name")
    return bool(cells) and not (row[name_at : name_at + 1] or [""])[0].strip() and all(key(c) in words for c in cells)


def _check_map(wanted: dict[str, str], header: list[str]) -> None:
    """Every ``--map`` names a column the roster has."""
    present = {key(c) for c in header}
    for column in wanted:
        if column not in present:
            raise InvalidValue(
                "rosters.map_no_column",
                field="map",
                column=column,
                columns="、".join(c.strip() for c in header if c.strip()),
            )


def _assign(header: list[str], row_number: int, words: dict[str, str], explicit: set[str]) -> Layout:
    """Each column's field. A field is read from its first column only, but for tags (and any
    field ``--map`` joins, see ``JOINED``). A phone column that names nobody, right after a
    liaison column, is the liaison's phone; right after an emergency contact, the contact's."""
    layout = Layout(row_number, header)
    generic = {key(p) for p in generic_phones()}
    used: set[str] = set()
    before = None  # the field of the nearest column to the left that has a header
    for i, raw in enumerate(header):
        k = key(raw)
        if not k:
            continue
        name = words.get(k)
        if name == "phone" and k in generic and k not in explicit and before in ("liaison", "emergency_contact"):
            name = "liaison_phone" if before == "liaison" else "emergency_phone"
        before = name
        if name is None:
            layout.unknown.append(i)
        elif name == "ignore":
            layout.ignored.append(i)
        elif name == "liaison_phone":
            layout.liaison_phones.append(i)
        elif name in used and not (name in JOINED and (name == "tags" or k in explicit)):
            layout.unknown.append(i)  # a second column for a field read once
        else:
            layout.columns[i] = name
            used.add(name)
    return layout


# --- the address -------------------------------------------------------------------------------


def join_address(columns: dict[str, list[str]], rows: int) -> list[str]:
    """One address per row from the address and its parts (``ADDRESS_PARTS``), in that order:
    3 | 2 | 101 -> 3号楼2单元101. 号楼 and 单元 are added to a bare number only; any other
    cell is kept as it is written (3号, 2单元, 东区)."""
    parts = [columns.get("address")] + [_suffixed(columns.get(p), SUFFIX.get(p, "")) for p in ADDRESS_PARTS]
    present = [p for p in parts if p is not None]
    if len(present) == 1:
        return present[0]
    return ["".join(cells) for cells in zip(*present)] if present else [""] * rows


def _suffixed(cells: list[str] | None, suffix: str) -> list[str] | None:
    if cells is None or not suffix:
        return cells
    done: dict[str, str] = {}
    for cell in set(cells):
        plain = identity.nfkc(cell)
        done[cell] = plain + suffix if plain.isascii() and plain.isdigit() else cell
    return list(map(done.__getitem__, cells))


# --- what the columns left out hold ------------------------------------------------------------


@dataclass
class Heading:
    """A roster's header understood, and a sample of what its ignored columns hold: what the
    import tells before any row is written. ``samples``: for each ignored column (by header),
    the non-empty cells of the first ``SAMPLE_ROWS`` rows."""

    estimate: int  # about how many rows follow the header
    header_row: int
    unknown: list[str]
    liaison_phones: list[str]
    tags_column: str | None
    liaison_column: str | None
    has_rows: bool
    samples: dict[str, list[str]] = field(default_factory=dict)
    group_columns: list[str] = field(default_factory=list)


def heading(layout: Layout, sample: list[list[str]], estimate: int, extra_tags: dict | None) -> Heading:
    """What ``layout`` and the first rows after its header (``sample``) tell."""
    samples = {}
    for i in layout.unknown:
        cells = [r[i].strip() for r in sample if i < len(r) and r[i].strip()]
        samples[layout.headers[i].strip()] = cells
    groups = [column for column, cells in samples.items() if cells and _share(cells, _is_group(extra_tags)) >= MOSTLY]
    return Heading(
        estimate,
        layout.header_row,
        layout.names(layout.unknown),
        layout.names(layout.liaison_phones),
        layout.column_of("tags"),
        layout.column_of("liaison"),
        any(any(c.strip() for c in row) for row in sample),
        samples,
        groups,
    )


def _share(cells: list[str], test) -> float:
    return sum(map(test, cells)) / len(cells)


def _is_group(extra_tags: dict | None):
    def test(cell: str) -> bool:
        try:
            return bool(identity.parse_tags(cell, extra_tags))
        except InvalidValue:
            return False

    return test


def refusals(found: Heading, staff: dict, no_groups: bool = False) -> list[str]:
    """Why an import would leave special groups or liaisons out silently, one line each: an
    ignored column that mostly holds group words or the names of ``staff`` (name -> ids),
    or, with rows to import, no group column at all. ``no_groups``: groups left out on
    purpose. Empty when the import may go on."""
    from commcare.i18n import t

    lines = []
    for column, cells in found.samples.items():
        if column in found.group_columns:
            if not no_groups:
                lines.append(
                    t("rosters.groups_ignored", column=column, examples=_examples(cells), map=_map(column, "tags"))
                )
        elif cells and _share(cells, lambda c: _nfc(c) in staff) >= MOSTLY:
            names = _examples([c for c in cells if _nfc(c) in staff])
            if found.liaison_column is None:
                lines.append(
                    t(
                        "rosters.staff_ignored",
                        column=column,
                        examples=names,
                        map=_map(column, "liaison"),
                        ignore=_map(column, "ignore"),
                    )
                )
            else:
                lines.append(
                    t(
                        "rosters.staff_beside_liaison",
                        column=column,
                        examples=names,
                        liaison=found.liaison_column,
                        ignore=_map(column, "ignore"),
                    )
                )
    if found.has_rows and found.tags_column is None and not found.group_columns and not no_groups:
        lines.append(t("rosters.no_group_column"))
    return lines


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _examples(cells: list[str]) -> str:
    return "、".join(list(dict.fromkeys(cells))[:3])


def _map(column: str, to: str) -> str:
    """The option as it is typed in a shell: quoted only where the header needs it (a space,
    a bracket), Chinese left as it is."""
    option = f"{column}={to}"
    return "--map " + (shlex.quote(option) if re.search(r"[\s'\"\\$`!*?&|;<>()\[\]{}#~]", option) else option)
