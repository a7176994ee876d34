"""Rosters in, the checking: every row validated without the database, chunk by chunk, with
the same rules as ``resident add`` (``identity.clean_resident_fields``), column by column: each
distinct value of a column is cleaned once, and values that are already clean (an ASCII
mobile number, an upper-case ID number) take a fast path. ``commcare.roster.write`` then takes
each checked chunk in the one write transaction: the checks that need the register, and the
bulk inserts. A bad row is reported by its spreadsheet row number (the header is row 1) and
field.

``Chunks`` hands the checked chunks to the transaction; the reading and checking can run in a
child process meanwhile (``commcare.roster.forked_producer``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Generator, Iterator
from itertools import islice
from operator import itemgetter
from typing import TYPE_CHECKING, Self

from commcare import identity
from commcare.errors import InvalidValue
from commcare.roster.read import Roster, read_rows

if TYPE_CHECKING:
    from commcare.roster.layout import Heading

CHUNK = 10_000  # rows per step of the progress bar, and per executemany
FIRST_CHUNK = 1_000
MEMO_LIMIT = 20_000  # checked values kept per column, to check a value that recurs only once
RESIDENT_COLUMNS = (
    "name",
    "name_pinyin",
    "name_initials",
    "sex",
    "born",
    "id_number",
    "phone",
    "emergency_name",
    "emergency_phone",
    "note",
)


class Checked:
    """A chunk of a roster after the checks that need no database: for each row that passed
    them, its spreadsheet row number and its clean values, column by column; and the
    problems of the others."""

    def __init__(self, rows: int) -> None:
        self.rows = rows  # how many of the roster's rows it covers, valid or not
        self.numbers: list[int] = []
        self.columns: dict[str, list] = {f: [] for f in RESIDENT_COLUMNS + ("tags", "compound", "address", "liaison")}
        self.problems: list[tuple[int, str, str]] = []

    def __getstate__(self) -> dict:
        """Pickled for the parent process (``commcare.roster.forked_producer``): birth dates as day
        numbers, as a date object pickles ten times slower than an integer. Each distinct
        day is converted once, both ways (a roster's birth days recur from chunk to chunk),
        and the column is mapped in one C call rather than a Python call per row."""
        state = dict(self.__dict__)
        born = state["columns"]["born"]
        numbers = _DAY_NUMBERS
        for day in set(born).difference(numbers):
            numbers[day] = day.toordinal()
        state["columns"] = {**state["columns"], "born": list(map(numbers.__getitem__, born))}
        return state

    def __setstate__(self, state: dict) -> None:
        import datetime as dt

        born, days = state["columns"]["born"], _DAYS
        for n in set(born).difference(days):
            days[n] = dt.date.fromordinal(n)
        state["columns"]["born"] = list(map(days.__getitem__, born))
        self.__dict__.update(state)


# day <-> day number, for the chunks' birth dates (a few tens of thousands of days at most)
_DAY_NUMBERS: dict = {None: None}
_DAYS: dict = {None: None}


def checked_chunks(roster: Roster, ctx, size: int | None = None) -> Iterator[Checked]:
    """Every row of ``roster`` validated without touching the database, up to ``size`` rows
    at a time. A row is judged by itself and the rows before it (an ID number an earlier row
    gave is refused), so each chunk is final when it is handed on. The first chunks are
    smaller (``FIRST_CHUNK``, doubling), so that the writing can begin early."""
    cleaners = _cleaners(ctx)
    memos: dict[str, tuple[dict, set]] = {field: ({}, set()) for field in [*cleaners, "name"]}
    seen: dict[str, int] = {}  # ID number -> the row that gave it
    size = size or CHUNK
    start, step = 0, min(FIRST_CHUNK, size)
    while rows := list(islice(roster.rows, step)):
        out = Checked(len(rows))
        numbers, raw = _raw_columns(rows, start + roster.first_row, roster.mapping)
        del rows
        start, step = start + out.rows, min(step * 2, size)
        if numbers:
            _check_chunk(out, numbers, raw, cleaners, memos)
            _refuse_repeated_ids(out, seen)
            for field, (results, failed) in memos.items():
                # mostly distinct values (names): keeping them all would hold the whole file
                # for little gain (the ID numbers' memo holds birth days, some 40,000 at most)
                if len(results) > MEMO_LIMIT and field != "id_number":
                    results.clear()
                    failed.clear()
        yield out


def read_and_check(path: str, ctx, overrides: dict | None = None, size: int | None = None) -> Generator:
    """Read the roster at ``path``: first its heading (``roster.layout.Heading``: the columns
    ignored, about how many rows, a sample of what the ignored columns hold), then its checked
    chunks (``checked_chunks``), each as soon as it is read and checked."""
    rows, estimate = read_rows(path)
    roster = Roster(rows, overrides, estimate, headers=ctx.extra_headers, tags=ctx.extra_tags)
    yield roster.heading
    yield from checked_chunks(roster, ctx, size)


class Chunks:
    """A roster file read and checked, for the write transaction to walk chunk by chunk.
    ``background``: the reading and checking run in a child process (``commcare.roster.forked_producer``)
    while this one writes what was checked before. ``progress("check", done, total)`` is told
    as chunks come. Only the chunk being written is held: a transaction the database makes us
    retry (locked, a serialization failure) walks them again by reading the file again.

    ``heading()`` waits for the file to be read and its header understood: a file that cannot
    be read or has no name column is refused there (call it before opening the database)."""

    def __init__(
        self, path: str, ctx, overrides: dict | None = None, background: bool = False, size: int | None = None
    ) -> None:
        from commcare.roster import forked_producer

        self.progress = None
        self._start = lambda: (
            forked_producer.produce(read_and_check, path, ctx, overrides, size)
            if background
            else read_and_check(path, ctx, overrides, size)
        )
        self._source: Generator | forked_producer.Produced | None = self._start()
        self._heading: Heading | None = None
        self._walked = False

    def heading(self) -> Heading:
        """The roster's ``roster.layout.Heading``: its columns ignored, the number of rows
        after the header, a sample of what the ignored columns hold."""
        if self._heading is None:
            assert self._source is not None
            self._heading = next(self._source)
        return self._heading

    @property
    def unknown(self) -> list[str]:
        return self.heading().unknown

    @property
    def total(self) -> int:
        """About how many rows follow the header (``read_rows``): the progress bar's length,
        and the size a large load is prepared for."""
        return self.heading().estimate

    def __iter__(self) -> Iterator[Checked]:
        if self._walked:  # again, for a retried transaction: from the start of the file
            self.close()
            self._source, self._heading = self._start(), None
        self._walked = True
        self.heading()
        done = 0
        assert self._source is not None
        for chunk in self._source:
            done += chunk.rows
            if self.progress:
                self.progress("check", done, self.total)
            yield chunk
        self.close()

    def close(self) -> None:
        """Stop reading and checking (a child process is ended)."""
        if self._source is not None:
            self._source.close()
            self._source = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _raw_columns(rows: list[list[str]], first: int, mapping: dict[int, str]) -> tuple[list[int], dict]:
    """The row numbers of the rows that are not blank, and their stripped cells by field: the
    columns of a field read from several joined (``layout.JOINED``), the address and
    its parts joined into one address, the emergency contact's name and phone columns joined,
    as ``resident add`` takes them."""
    from commcare.roster.layout import ADDRESS_PARTS, JOINED, join_address

    width = max(mapping) + 1
    if min(map(len, rows)) < width:
        rows = [r if len(r) >= width else r + [""] * (width - len(r)) for r in rows]
    raw: dict[str, list[str]] = {}
    for i, field in mapping.items():
        cells = _cells(rows, i)
        raw[field] = (
            cells if field not in raw else [JOINED[field].join(filter(None, pair)) for pair in zip(raw[field], cells)]
        )
    if not raw.keys().isdisjoint(ADDRESS_PARTS):
        parts = {f: raw.pop(f) for f in ("address",) + ADDRESS_PARTS if f in raw}
        raw["address"] = join_address(parts, len(rows))
    if "emergency_phone" in raw:
        phones = raw.pop("emergency_phone")
        names = raw.get("emergency_contact", [""] * len(phones))
        raw["emergency_contact"] = [f"{n} {p}".strip() for n, p in zip(names, phones)]
    columns = list(raw.values())
    blank = {i for i, name in enumerate(raw["name"]) if not name and not any(c[i] for c in columns)}
    if not blank:
        return list(range(first, first + len(rows))), raw
    keep = [i for i in range(len(rows)) if i not in blank]
    return [first + i for i in keep], {field: [values[i] for i in keep] for field, values in raw.items()}


def _cells(rows: list[list[str]], index: int) -> list[str]:
    """One column's cells, stripped, with an export's formula guard taken off."""
    cells = list(map(str.strip, map(itemgetter(index), rows)))
    if "'" in "".join(cells):
        cells = [_unneutralise(c) for c in cells]
    return cells


def _unneutralise(value: str) -> str:
    """Undo the ``'`` an export puts before a formula-like cell, so a round trip is exact."""
    if value[:1] != "'":
        return value
    from commcare.render.formats import FORMULA_START

    return value[1:] if value[1:2] and value[1:2] in FORMULA_START else value


def _cleaners(ctx) -> dict:
    """field -> function of one non-empty cell: ``identity.clean_resident_fields`` for a
    resident's own fields, and the household's compound, address and liaison name. (Names
    are checked as a column: ``_clean_names``.)"""

    def resident_field(field):
        return lambda value: identity.clean_resident_fields(ctx, **{field: value})

    cleaners = {f: resident_field(f) for f in ("sex", "born", "tags", "emergency_contact", "note")}
    cleaners["phone"] = identity.normalize_phone
    cleaners["id_number"] = identity.normalize_id_number
    cleaners["compound"] = lambda v: identity.normalize_text(v, "compound", 200)
    cleaners["address"] = lambda v: identity.normalize_text(v, "address", 300)
    cleaners["liaison"] = lambda v: unicodedata.normalize("NFC", v)
    return cleaners


class _Bad:
    """A value that failed its check (cached like a good one)."""

    def __init__(self, exc: InvalidValue) -> None:
        self.field, self.message = exc.field, exc.message()


# Nearly every value distinct: no cache; a value already in its clean form (an ASCII mobile
# number, an upper-case ID number) is found by one pattern over the column, and only the
# others go through the full normalisation.
UNIQUE_FIELDS = {"phone": identity.MOBILE, "id_number": identity.ID_FORMAT}


def _check_chunk(out: Checked, numbers: list[int], raw: dict, cleaners: dict, memos: dict) -> None:
    clean: dict[str, list] = {}
    bad: dict[int, list] = {}
    for field, values in raw.items():
        if field == "id_number":
            clean[field] = _clean_id_numbers(values, bad, memos[field])
        elif field in UNIQUE_FIELDS:
            clean[field] = _clean_each(values, cleaners[field], UNIQUE_FIELDS[field], bad)
        elif field == "name":
            clean[field] = _clean_names(values, memos[field], bad)
        else:
            clean[field] = _clean_cached(values, cleaners[field], memos[field], bad)
    for i, problems in sorted(bad.items()):
        out.problems += [(numbers[i], p.field, p.message) for p in problems]
    _append_rows(out, numbers, clean, bad)


def _clean_each(values: list[str], fn, clean_form, bad: dict) -> list:
    """Values already in ``clean_form`` are kept; the others (and only they) go through ``fn``."""
    column: list = list(values)
    match = clean_form.compiled.fullmatch  # the compiled method: one call a value, not two
    for i in [i for i, value in enumerate(values) if value and not match(value)]:
        try:
            column[i] = fn(values[i])
        except InvalidValue as exc:
            bad.setdefault(i, []).append(_Bad(exc))
            column[i] = None
    return [v or None for v in column] if "" in values else column


def _clean_id_numbers(values: list[str], bad: dict, memo: tuple[dict, set]) -> list:
    """ID numbers: the format for the column, the check digits in one pass, and each distinct
    birth date once for the whole file (``memo``: day -> whether it is plausible)."""
    column = _clean_each(values, identity.normalize_id_number, identity.ID_FORMAT, bad)
    plausible, today = memo[0], identity.system_date()
    for day in {v[6:14] for v in column if v}.difference(plausible):
        plausible[day] = identity.plausible_birth_date(day, today)
    wrong = set(identity.wrong_check_digits(column))
    wrong.update(i for i, v in enumerate(column) if v and not plausible[v[6:14]])
    for i in sorted(wrong):
        bad.setdefault(i, []).append(_attempt(identity.normalize_id_number, column[i]))
        column[i] = None
    return column


def _clean_cached(values: list[str], fn, memo: tuple[dict, set], bad: dict) -> list:
    """Each distinct value is checked once (a roster repeats its tags and compounds); an
    empty cell is None. ``memo`` holds the results so far and the values that failed."""
    results, failed = memo
    for value in set(values).difference(results):
        results[value] = result = _attempt(fn, value) if value else None
        if type(result) is _Bad:
            failed.add(value)
    return _column(values, memo, bad)


def _clean_names(values: list[str], memo: tuple[dict, set], bad: dict) -> list:
    """Names, as ``resident add`` takes them (``identity.normalize_name``), each distinct one
    once, and the pinyin keys of all the new ones in one call: four in five of a register's
    names are distinct, so this is the check's largest part."""
    results, failed = memo
    new = list(set(values).difference(results))
    if identity.names_clean(new):  # nearly always: all of them are their own normal form
        names = dict(zip(new, new))
    else:
        names = {}
        for value in new:
            name = _attempt(identity.normalize_name, value)
            if type(name) is _Bad:
                results[value] = name
                failed.add(value)
            else:
                names[value] = name
    keys = identity.pinyin_keys_many(list(names.values()))
    for (value, name), (full, initials) in zip(names.items(), keys):
        results[value] = (name, full, initials)
    return _column(values, memo, bad)


def _column(values: list[str], memo: tuple[dict, set], bad: dict) -> list:
    """``values`` replaced by their checked form; the rows of those that failed go in ``bad``."""
    results, failed = memo
    column = list(map(results.__getitem__, values))
    if failed:
        for i, value in enumerate(values):
            if value in failed:
                bad.setdefault(i, []).append(results[value])
                column[i] = None
    return column


def _attempt(fn, value):
    try:
        return fn(value)
    except InvalidValue as exc:
        return _Bad(exc)


def _append_rows(out: Checked, numbers: list[int], clean: dict, bad: dict) -> None:
    """The good rows of a chunk, as the columns the register's tables take."""
    good = [i for i in range(len(numbers)) if i not in bad]
    none = [None] * len(good)

    def col(field, key=None):
        values = clean.get(field)
        if values is None:
            return none
        if bad:
            values = [values[i] for i in good]
        return values if key is None else [v[key] if v else None for v in values]

    names, ids = col("name"), col("id_number")  # a name: (name, pinyin, initials)
    born, sex = identity.born_and_sex(col("born", "born"), col("sex", "sex"), ids)
    emergency = col("emergency_contact")
    columns = {
        "name": list(map(itemgetter(0), names)),
        "name_pinyin": list(map(itemgetter(1), names)),
        "name_initials": list(map(itemgetter(2), names)),
        "sex": sex,
        "born": born,
        "id_number": ids,
        "phone": col("phone"),
        "emergency_name": [e["emergency_name"] if e else None for e in emergency],
        "emergency_phone": [e["emergency_phone"] if e else None for e in emergency],
        "note": col("note", "note"),
        "tags": [t or () for t in col("tags", "tags")],
        "compound": [c or "" for c in col("compound")],
        "address": [a or "" for a in col("address")],
        "liaison": col("liaison"),
    }
    out.numbers += [numbers[i] for i in good]
    for field, values in columns.items():
        out.columns[field].extend(values)


def _refuse_repeated_ids(out: Checked, seen: dict[str, int]) -> None:
    """An ID number given by an earlier row (of this chunk or one before: ``seen``, which is
    brought up to date) makes this row invalid."""
    ids = out.columns["id_number"]
    given = dict(zip(ids, out.numbers))
    given.pop(None, None)
    if len(given) == len(ids) - ids.count(None) and seen.keys().isdisjoint(given):
        seen.update(given)  # the usual case, told by a dict and a set in C
        return
    drop = []
    for i, (number, id_number) in enumerate(zip(out.numbers, ids)):
        if not id_number:
            continue
        if id_number in seen:
            out.problems.append((number, "id_number", _t("roster.id_repeated", row=seen[id_number])))
            drop.append(i)
        else:
            seen[id_number] = number
    _drop(out, drop)


def _drop(out: Checked, rows: list[int]) -> None:
    if not rows:
        return
    gone = set(rows)
    keep = [i for i in range(len(out.numbers)) if i not in gone]
    out.numbers = [out.numbers[i] for i in keep]
    out.columns = {field: [values[i] for i in keep] for field, values in out.columns.items()}


def _t(key, **values):
    from commcare.i18n import t

    return t(key, **values)
