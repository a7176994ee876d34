"""``request list`` writes its rows as it reads them (``commcare.commands.streamed``), in
batches of ``COMMCARE_LIST_BATCH``: the output must be the bytes the whole list gave before
(``emit`` of every row at once), for each format, to standard output and to ``--output``, with
no row, one row, and rows across batch boundaries; and a damaged page met after the first
batch was written still exits 3 in one line, with no ``--output`` file left behind.

The installed ``commcare`` runs on a real SQLite demo register; the old output is made in this
process by the code the command ran before (``list_requests`` of every row, then ``emit``)."""

from __future__ import annotations

import io
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from commcare.render import formats

COMMCARE = str(Path(sys.executable).with_name("commcare"))
NOW = "2026-05-08 16:30"
COLUMNS = ["id", "resident", "category", "status", "urgency", "due", "assignee", "overdue"]
DUE_COLUMNS = [
    "liaison",
    "id",
    "resident",
    "phone",
    "compound",
    "address",
    "calls_today",
    "escalate",
    "escalate_action",
    "emergency_contact",
    "days_unreached",
    "unreached_flag",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    """A demo register (300 residents, 400 requests), its WAL folded in, and its environment."""
    folder = tmp_path_factory.mktemp("streamed")
    path = folder / "demo.db"
    env = {
        **os.environ,
        "COMMCARE_CONFIG": str(folder / "c.toml"),
        "COMMCARE_AUDIT_KEY": str(folder / "audit.key"),
        "XDG_DATA_HOME": str(folder / "xdg-data"),
        "COMMCARE_CACHE_DIR": str(folder / "cache"),
        "COMMCARE_NOW": NOW,
        "COMMCARE_DB": str(path),
    }
    env.pop("COMMCARE_LANG", None)
    done = subprocess.run(
        [COMMCARE, "--db", str(path), "demo", "--residents", "300", "--requests", "400", "--seed", "3"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    con = sqlite3.connect(path)
    # a note with a phone-like number and a formula, and a resident's name with markup: shown as
    # before (request rows carry no phone column; nothing in them is masked, before or now)
    con.execute("UPDATE requests SET note = '=1+2 打 13912345678 | [x]' WHERE id = (SELECT MIN(id) FROM requests)")
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return path, env


def commcare(env: dict, *args: str, batch: int | None = None) -> subprocess.CompletedProcess:
    full = {**env, **({"COMMCARE_LIST_BATCH": str(batch)} if batch else {})}
    return subprocess.run([COMMCARE, *args], env=full, capture_output=True, timeout=300, check=False)


def old_output(
    db: Path, env: dict, filters: dict, fmt: str, to_file: bool, lang: str = "zh", due: bool = False, actor=None
) -> bytes:
    """What ``request list`` (``due``: ``call due``) wrote before it streamed: every row read,
    then ``emit``."""
    from commcare import calls, i18n
    from commcare import help_requests as hr
    from commcare.commands import common

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        i18n.set_lang(lang)
        st = common.start(database=str(db), config=None, operator=actor, lang=lang, community=None)
        if due:
            rows = st.read(calls.due_calls, filters.get("liaison"))
        else:
            rows = st.read(lambda s, ctx: hr.request_rows(s, ctx, hr.list_requests(s, ctx, **filters)))
        columns = None if fmt == "json" else (DUE_COLUMNS if due else COLUMNS)
        if to_file:
            target = db.parent / f"old-{os.getpid()}.{fmt}"
            target.unlink(missing_ok=True)
            common.emit(rows, fmt, str(target), columns=columns)
            data = target.read_bytes()
            target.unlink()
            return data
        raw = io.BytesIO()
        out = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        with redirect_stdout(out):
            common.emit(rows, fmt, None, columns=columns)
        out.flush()
        return raw.getvalue()
    finally:
        common.finish()
        common._current[:] = []
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def count(db: Path, where: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        return con.execute(f"SELECT COUNT(*) FROM requests WHERE {where}").fetchone()[0]


CASES = {
    # name: (command options, list_requests filters)
    "none": (["--category", "trash", "--status", "cancelled", "--compound", "无此小区"], {}),
    "one": (["--status", "all", "--limit", "1"], {"status": "all", "limit": 1}),
    "active": ([], {}),
    "all": (["--status", "all"], {"status": "all"}),
}
CASES["none"] = (CASES["none"][0], {"category": "trash", "status": "cancelled", "compound": "无此小区"})


@pytest.mark.parametrize("fmt", ["json", "csv", "markdown"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("batch", [1, 7, 1000])
def test_the_streamed_list_is_the_whole_list_byte_for_byte(demo, tmp_path, fmt, case, batch):
    db, env = demo
    args, filters = CASES[case]
    done = commcare(env, "request", "list", *args, "-f", fmt, batch=batch)
    assert done.returncode == 0, done.stderr
    assert done.stdout == old_output(db, env, filters, fmt, to_file=False)
    target = tmp_path / f"list.{fmt}"
    written = commcare(env, "request", "list", *args, "-f", fmt, "-o", str(target), batch=batch)
    assert written.returncode == 0, written.stderr
    assert target.read_bytes() == old_output(db, env, filters, fmt, to_file=True)
    assert (target.stat().st_mode & 0o777) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left


def test_the_cases_cover_empty_one_and_many_batches(demo):
    db, _ = demo
    assert count(db, "category = 'trash' AND status = 'cancelled'") >= 0
    assert count(db, "status IN ('open', 'assigned', 'in_progress')") > 7 * 3
    assert count(db, "1 = 1") > 7 * 3


def test_english_csv_and_the_filters_are_the_same_streamed(demo):
    db, env = demo
    for args, filters in [
        (["--overdue"], {"overdue": True}),
        (["--status", "resolved", "--category", "groceries"], {"status": "resolved", "category": "groceries"}),
        (["--assignee", "1", "--status", "all"], {"assignee": "1", "status": "all"}),
    ]:
        done = commcare(env, "--lang", "en", "request", "list", *args, "-f", "csv", batch=3)
        assert done.returncode == 0, done.stderr
        assert done.stdout == old_output(db, env, filters, "csv", to_file=False, lang="en"), args


def test_a_table_is_still_the_whole_list(demo):
    _, env = demo
    streamed = commcare(env, "request", "list", "--status", "all", batch=5)
    whole = commcare(env, "request", "list", "--status", "all")
    assert streamed.returncode == 0 and streamed.stdout == whole.stdout


def test_through_sqlalchemy_the_stream_is_the_same(demo):
    """``COMMCARE_FAST=0``: the rows through SQLAlchemy's ``yield_per``."""
    db, env = demo
    slow = {**env, "COMMCARE_FAST": "0"}
    for fmt in ("json", "csv"):
        done = commcare(slow, "request", "list", "--status", "all", "-f", fmt, batch=7)
        assert done.returncode == 0, done.stderr
        assert done.stdout == old_output(db, env, {"status": "all"}, fmt, to_file=False)


def busiest_liaison(db: Path) -> str:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        return con.execute(
            "SELECT s.name FROM staff s JOIN households h ON h.liaison_id = s.id "
            "GROUP BY s.id ORDER BY COUNT(*) DESC, s.id LIMIT 1"
        ).fetchone()[0]


@pytest.mark.parametrize("fmt", ["json", "csv", "markdown"])
def test_call_due_is_written_a_batch_at_a_time_the_same(demo, tmp_path, fmt):
    """``call due``: its rows in order as before (the acting liaison's own first), phones in
    full as before (the liaison calls them), across batch boundaries."""
    db, env = demo
    liaison = busiest_liaison(db)
    for case, (actor, filters) in enumerate([(None, {}), (liaison, {}), (None, {"liaison": liaison})]):
        args = [*(["--as", actor] if actor else []), "call", "due"]
        args += ["--liaison", filters["liaison"]] if filters else []
        done = commcare(env, *args, "-f", fmt, batch=4)
        assert done.returncode == 0, done.stderr
        old = old_output(db, env, filters, fmt, to_file=False, due=True, actor=actor)
        assert done.stdout == old, args
        target = tmp_path / f"due-{case}.{fmt}"
        assert commcare(env, *args, "-f", fmt, "-o", str(target), batch=4).returncode == 0
        assert target.read_bytes() == old_output(db, env, filters, fmt, to_file=True, due=True, actor=actor)
    rows = commcare(env, "call", "due", "-f", "json", batch=4).stdout
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        phones = [r[0] for r in con.execute("SELECT phone FROM residents WHERE phone IS NOT NULL LIMIT 200")]
    assert any(p.encode() in rows for p in phones)  # in full


def test_json_chunks_are_json_bytes_of_the_whole_list():
    rows = [{"id": i, "text": "a\nb \u4e2d", "none": None, "nested": [1, {"k": []}], "empty": {}} for i in range(9)]
    for size in (1, 2, 4, 9, 20):
        batches = [[], *[rows[i : i + size] for i in range(0, len(rows), size)], []]
        assert b"".join(formats.json_chunks(batches)) == formats.json_bytes(rows)
    assert b"".join(formats.json_chunks([])) == formats.json_bytes([]) == b"[]\n"
    assert b"".join(formats.json_chunks([[], []])) == b"[]\n"


# --- a damaged page met in the middle of the list -------------------------------------------------


def leaf_of(db: Path, table: str, rowid: int) -> int:
    """The leaf page of ``table``'s b-tree that holds ``rowid``, found by walking down it."""
    data = db.read_bytes()
    size = int.from_bytes(data[16:18], "big")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        page = con.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    while True:
        at = (page - 1) * size + (100 if page == 1 else 0)
        if data[at] == 0x0D:  # a leaf of a table b-tree
            return page
        assert data[at] == 0x05, data[at]
        cells = int.from_bytes(data[at + 3 : at + 5], "big")
        child = int.from_bytes(data[at + 8 : at + 12], "big")  # the rightmost
        for i in range(cells):
            cell = (page - 1) * size + int.from_bytes(data[at + 12 + 2 * i : at + 14 + 2 * i], "big")
            key, n = 0, cell + 4
            while True:  # the key: a varint
                byte = data[n]
                key = (key << 7) | (byte & 0x7F)
                n += 1
                if byte < 0x80:
                    break
            if rowid <= key:
                child = int.from_bytes(data[cell : cell + 4], "big")
                break
        page = child


def damage_page(db: Path, page: int) -> None:
    size = int.from_bytes(db.read_bytes()[16:18], "big")
    rng = random.Random(1)
    with open(db, "r+b") as fh:
        fh.seek((page - 1) * size)  # a page of no kind, and its cell pointers garbled
        fh.write(b"\xff" + bytes(rng.randrange(256) for _ in range(15)))


@pytest.fixture
def damaged_mid_list(demo, tmp_path) -> tuple[Path, dict, int]:
    """A copy of the register whose residents' page behind a later batch of the open requests
    (their names are read batch by batch) is damaged, while the first batch's read whole."""
    db, env = demo
    copy = tmp_path / "register.db"
    shutil.copy(db, copy)
    os.chmod(copy, 0o600)
    batch = 5
    with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as con:
        order = [
            r[0]
            for r in con.execute(
                "SELECT resident_id FROM requests WHERE status IN ('open', 'assigned', 'in_progress') "
                "ORDER BY due_at, id"
            )
        ]
    first = {leaf_of(copy, "residents", r) for r in order[:batch]}
    later = [leaf_of(copy, "residents", r) for r in order[batch:]]
    at = next(i for i, p in enumerate(later) if p not in first)
    damage_page(copy, later[at])
    with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as con:
        marks = ",".join("?" * batch)
        con.execute(f"SELECT name FROM residents WHERE id IN ({marks})", order[:batch]).fetchall()
        with pytest.raises(sqlite3.DatabaseError):
            con.execute("SELECT name FROM residents WHERE id = ?", (order[batch + at],)).fetchall()
    return copy, {**env, "COMMCARE_DB": str(copy)}, batch


@pytest.mark.parametrize("fast", ["1", "0"])
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_damage_in_the_middle_exits_3_and_leaves_no_output_file(damaged_mid_list, tmp_path, fmt, fast):
    copy, env, batch = damaged_mid_list
    env = {**env, "COMMCARE_FAST": fast}
    target = tmp_path / "out" / f"list.{fmt}"
    target.parent.mkdir()
    done = commcare(env, "request", "list", "-f", fmt, "-o", str(target), batch=batch)
    assert done.returncode == 3, (done.returncode, done.stderr)
    err = done.stderr.decode()
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "db check" in err, err
    assert list(target.parent.iterdir()) == []  # neither the file nor its temporary
    assert Path(f"{copy}.damaged").exists()  # the register is marked damaged, as any read marks it


def test_damage_in_the_middle_on_standard_output_is_exit_3_after_the_rows_before_it(damaged_mid_list):
    """On standard output the batches already written stay written; the exit code says the
    list is not whole (and the JSON is not closed: no script reads it as a whole list)."""
    _, env, batch = damaged_mid_list
    done = commcare(env, "request", "list", "-f", "json", batch=batch)
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith(b"[\n  {") and not done.stdout.rstrip().endswith(b"]")


def test_the_batches_send_few_look_up_texts(demo, tmp_path):
    """The names of each batch are looked up with one of a few SQL texts (the numbers padded
    to a power of two): sqlite3 keeps every text it has seen prepared, and one text per
    length kept 128 statements of a thousand parameters each (24 MiB at 100,000 residents)."""
    import json

    _, env = demo
    trace = tmp_path / "trace.jsonl"
    done = commcare(
        {**env, "COMMCARE_SQL_TRACE": str(trace)}, "request", "list", "--status", "all", "-f", "json", batch=30
    )
    assert done.returncode == 0, done.stderr
    sent = [json.loads(line)["sql"] for line in trace.read_text(encoding="utf-8").splitlines()]
    lookups = [text for text in sent if "FROM residents" in text and " IN (" in text]
    assert len(lookups) >= 10 and len(set(lookups)) <= 2, sorted({text.count(":ids") for text in lookups})
    staff = [text for text in sent if "FROM staff" in text and " IN (" in text]
    assert staff and len(set(staff)) <= 2


# --- both ways, on SQLite and PostgreSQL, across batches -------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["request", "list", "--status", "all", "-f", "json"],
        ["request", "list", "--status", "all", "-f", "csv"],
        ["request", "list", "-f", "markdown"],
        ["call", "due", "-f", "json"],
    ],
    ids=["list-json", "list-csv", "list-markdown", "due-json"],
)
def test_batches_of_seven_both_ways_are_the_whole_list(hot_register, args):
    """Batches of 7 through the driver (on PostgreSQL a server-side cursor) and through
    SQLAlchemy (``yield_per``) give what one batch of every row gives."""
    from hotcheck import both_ways

    db, actor = hot_register
    fast, _ = both_ways(db, "--as", actor, *args, env={"COMMCARE_LIST_BATCH": "7"})
    whole, _ = both_ways(db, "--as", actor, *args, env={"COMMCARE_LIST_BATCH": "100000"})
    assert fast.code == 0, fast.err
    assert fast.out == whole.out and len(fast.out) > 7 * 200


@pytest.mark.parametrize("fmt", ["json", "csv", "markdown"])
def test_a_register_found_damaged_before_the_first_row_shows_no_heading(demo, tmp_path, fmt):
    """``call due`` checks the special groups read whole before its query (``integrity.verify``):
    a damaged register is exit 3 with nothing on standard output, not a list's heading."""
    db, env = demo
    copy = tmp_path / "register.db"
    shutil.copy(db, copy)
    os.chmod(copy, 0o600)
    with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as con:
        root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'residents'").fetchone()[0]
    damage_page(copy, root)
    done = commcare({**env, "COMMCARE_DB": str(copy)}, "call", "due", "-f", fmt, batch=4)
    assert done.returncode == 3, done.stderr
    assert done.stdout == b"", done.stdout[:200]


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1e3", "200000"])
def test_a_batch_size_that_is_not_a_whole_number_in_range_is_exit_2(tmp_path, value):
    env = {**os.environ, "COMMCARE_DB": str(tmp_path / "c.db"), "COMMCARE_LIST_BATCH": value, "COMMCARE_LANG": "en"}
    done = subprocess.run([COMMCARE, "request", "list", "--format", "json"], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "COMMCARE_LIST_BATCH" in done.stderr and "Traceback" not in done.stderr and done.stdout == ""
    assert not (tmp_path / "c.db").exists()  # refused before anything was opened or made
