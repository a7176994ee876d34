"""The request commands — add-request, request list/show/resolve/assign/start/note (and cancel,
reopen, which share resolve's path) — give the same answers, and leave the same register,
through the statement cache and the driver as through SQLAlchemy (``tests/hotcheck.py``), on
SQLite and PostgreSQL: each option, and each refusal with its exit code."""

from __future__ import annotations

import pytest
from hotcheck import both_ways, query

NOBODY = "无此人"


@pytest.fixture(scope="module")
def ref(hot_register) -> dict:
    """What the commands name, read from the demo register (its numbers, phones, names)."""
    db, actor = hot_register
    open_states = "('open', 'assigned', 'in_progress')"
    residents = query(db, "SELECT id, name, phone, id_number FROM residents ORDER BY id LIMIT 4")
    unique = query(db, "SELECT name FROM residents GROUP BY name HAVING COUNT(*) = 1 ORDER BY MIN(id) LIMIT 1")
    dup = query(db, f"SELECT resident_id, category FROM requests WHERE status IN {open_states} ORDER BY id LIMIT 1")

    def first(where: str) -> int:
        return query(db, f"SELECT MIN(id) FROM requests WHERE {where}")[0][0]

    followed = query(
        db,
        "SELECT MIN(a.id) FROM requests a JOIN requests b ON b.previous_id = a.id "
        "WHERE a.status = 'resolved' AND a.repeat_kind = 'every'",
    )[0][0]
    found = {
        "actor": actor,
        "r1": str(residents[0][0]),
        "phone2": residents[1][2],
        "idnum3": residents[2][3],
        "name": unique[0][0],
        "dup_resident": str(dup[0][0]),
        "dup_category": dup[0][1],
        "open": first("status = 'open'"),
        "assigned": first("status = 'assigned'"),
        "in_progress": first("status = 'in_progress'"),
        "resolved": first("status = 'resolved'"),
        "cancelled": first("status = 'cancelled'"),
        "every": first(f"status IN {open_states} AND repeat_kind = 'every'"),
        "every_after": first(f"status IN {open_states} AND repeat_kind = 'every_after'"),
        "followed": followed,
        "next": query(db, "SELECT MAX(id) FROM requests")[0][0] + 1,
        "compound": query(db, "SELECT compound FROM households GROUP BY compound ORDER BY COUNT(*) DESC LIMIT 1")[0][0],
    }
    assert all(v is not None for v in found.values()), found  # the demo has each kind
    return found


def hot(hot_register, ref, *args, setup=(), code=0):
    """``both_ways`` of ``commcare --as ACTOR args`` (``{name}`` filled from ``ref``); the exit
    code must be ``code``. The run through the cache is returned."""
    db, actor = hot_register
    fill = [str(a).format(**ref) for a in args]
    steps = [["--as", actor, *(str(a).format(**ref) for a in step)] for step in setup]
    fast, _ = both_ways(db, "--as", actor, *fill, setup=steps)
    assert fast.code == code, (fill, fast.code, fast.err)
    return fast


# --- add-request ----------------------------------------------------------------------------------

NAMESAKES = [
    ["resident", "add", "同名测试", "--phone", "13700000001"],
    ["resident", "add", "同名测试", "--phone", "13700000002"],
]
THREE_MORE = [["add-request", "{r1}", "{phone2}", "{idnum3}", "-c", "other", "--again"]]

ADD = {
    "by number, json": (["{r1}", "-c", "medicine", "-f", "json"], 0),
    "by phone, table": (["{phone2}", "-c", "gas-topup", "--channel", "hotline"], 0),
    "by ID number (audited)": (["{idnum3}", "-c", "parcel", "-f", "json"], 0),
    "by name, Chinese category": (["{name}", "-c", "代取快递", "-f", "json"], 0),
    "several, recurring, assigned": (
        [
            "{r1}",
            "{phone2}",
            "{idnum3}",
            "-c",
            "trash",
            "--every",
            "2d",
            "--until",
            "2026-06-30",
            "--assign",
            "{actor}",
            "--channel",
            "walk-in",
            "--note",
            "每两天倒一次",
            "-f",
            "json",
        ],
        0,
    ),
    "every-after, due, high": (
        ["{r1}", "-c", "repair", "--every-after", "1w", "--due", "2026-05-10 14:00", "--urgency", "high"],
        0,
    ),
    "due relative": (["{r1}", "-c", "enquiry", "--due", "+4h", "-f", "json"], 0),
    "due a day (18:00)": (["{r1}", "-c", "enquiry", "--due", "2026-05-11", "-f", "json"], 0),
    "urgent, backfilled, assigned by number": (
        ["{r1}", "-c", "medicine", "--urgency", "urgent", "--at", "2026-05-08 10:00", "--assign", "3", "-f", "json"],
        0,
    ),
    "urgency low": (["{r1}", "-c", "other", "--urgency", "low", "--note", "  两端空白  "], 0),
    "duplicate refused": (["{dup_resident}", "-c", "{dup_category}"], 1),
    "duplicate refused among several": (["{r1}", "{dup_resident}", "-c", "{dup_category}"], 1),
    "duplicate --again": (["{dup_resident}", "-c", "{dup_category}", "--again", "-f", "json"], 0),
    "number not found": (["99999", "-c", "other"], 1),
    "phone not found": (["13000000000", "-c", "other"], 1),
    "name not found": ([NOBODY, "-c", "other"], 1),
    "ID number not found (audited)": (["410105199001011234", "-c", "other"], 1),
    "bad category": (["{r1}", "-c", "bogus"], 2),
    "bad urgency": (["{r1}", "-c", "other", "--urgency", "very"], 2),
    "bad due": (["{r1}", "-c", "other", "--due", "someday"], 2),
    "bad until": (["{r1}", "-c", "other", "--every", "2d", "--until", "2026-13-01"], 2),
    "bad every": (["{r1}", "-c", "other", "--every", "3x"], 2),
    "every and every-after": (["{r1}", "-c", "other", "--every", "2d", "--every-after", "1w"], 2),
    "bad channel": (["{r1}", "-c", "other", "--channel", "fax"], 2),
    "future at": (["{r1}", "-c", "other", "--at", "2026-05-09 12:00"], 2),
    "unknown assignee": (["{r1}", "-c", "other", "--assign", NOBODY], 1),
    "empty resident": (["  ", "-c", "other"], 2),
}


@pytest.mark.parametrize("case", list(ADD))
def test_add_request(hot_register, ref, case):
    args, code = ADD[case]
    hot(hot_register, ref, "add-request", *args, code=code)


def test_add_request_json_rows_are_the_new_requests(hot_register, ref):
    fast = hot(hot_register, ref, "add-request", "{r1}", "{phone2}", "-c", "groceries", "--again", "-f", "json")
    rows = fast.json()
    assert [r["id"] for r in rows] == [ref["next"], ref["next"] + 1]
    assert {r["category"] for r in rows} == {"groceries"}


def test_add_request_refuses_an_ambiguous_name(hot_register, ref):
    fast = hot(hot_register, ref, "add-request", "同名测试", "-c", "other", setup=NAMESAKES, code=1)
    assert "13700000001" not in fast.err  # candidates are told apart by number and address
    assert fast.err.count("#") >= 2


def test_add_request_refuses_an_archived_resident(hot_register, ref):
    archive = [["resident", "archive", "{r1}", "--reason", "搬走"]]
    hot(hot_register, ref, "add-request", "{r1}", "-c", "other", setup=archive, code=1)


def test_add_request_refuses_who_is_not_staff(hot_register):
    db, _ = hot_register
    fast, _ = both_ways(db, "--as", NOBODY, "add-request", "1", "-c", "other")
    assert fast.code == 1


# --- request list and show ------------------------------------------------------------------------

LIST = {
    "default": ([], 0),
    "json": (["-f", "json"], 0),
    "csv": (["-f", "csv"], 0),
    "all": (["--status", "all", "-f", "json"], 0),
    "resolved groceries": (["--status", "resolved", "--category", "groceries", "-f", "json"], 0),
    "active, Chinese category": (["--status", "active", "--category", "代买菜", "-f", "json"], 0),
    "in progress": (["--status", "in_progress", "-f", "json"], 0),
    "assignee": (["--assignee", "{actor}", "--status", "all", "-f", "json"], 0),
    "assignee by number": (["--assignee", "3", "-f", "json"], 0),
    "overdue": (["--overdue", "-f", "json"], 0),
    "overdue, category, all": (["--overdue", "--status", "all", "--category", "medicine", "-f", "json"], 0),
    "compound, limit": (["--compound", "{compound}", "--status", "all", "--limit", "5", "-f", "json"], 0),
    "resident": (["--resident", "{r1}", "--status", "all", "-f", "json"], 0),
    "bad status": (["--status", "finished"], 2),
    "bad category": (["--category", "bogus"], 2),
    "unknown assignee": (["--assignee", NOBODY], 1),
    "unknown resident": (["--resident", "99999"], 1),
}


@pytest.mark.parametrize("case", list(LIST))
def test_request_list(hot_register, ref, case):
    args, code = LIST[case]
    hot(hot_register, ref, "request", "list", *args, code=code)


def test_request_list_overdue_lists_only_late_open_requests(hot_register, ref):
    rows = hot(hot_register, ref, "request", "list", "--overdue", "-f", "json").json()
    assert rows and all(r["overdue"] and r["status"] in ("open", "assigned", "in_progress") for r in rows)


def test_request_list_by_ambiguous_resident(hot_register, ref):
    hot(hot_register, ref, "request", "list", "--resident", "同名测试", setup=NAMESAKES, code=1)


SHOW = {
    "json": (["{followed}", "-f", "json"], 0),
    "table": (["{in_progress}"], 0),
    "with #": (["#{open}", "-f", "json"], 0),
    "not found": (["99999"], 1),
    "bad number": (["abc"], 2),
}


@pytest.mark.parametrize("case", list(SHOW))
def test_request_show(hot_register, ref, case):
    args, code = SHOW[case]
    hot(hot_register, ref, "request", "show", *args, code=code)


# --- the lifecycle --------------------------------------------------------------------------------

CHANGE = {
    "resolve a recurring one": (["resolve", "{every}", "--note", "已陪诊", "-f", "json"], 0, ()),
    "resolve, every-after": (["resolve", "{every_after}"], 0, ()),
    "resolve several": (["resolve", "{open}", "{assigned}", "{in_progress}"], 0, ()),
    "resolve a range and a list": (["resolve", "{next}-{next_2},{next_1}"], 0, THREE_MORE),
    "resolve a list": (["resolve", "{next},{next_2}", "-f", "json"], 0, THREE_MORE),
    "resolve a resolved one": (["resolve", "{resolved}"], 1, ()),
    "resolve, all or none": (["resolve", "{open}", "{resolved}"], 1, ()),
    "resolve, not found": (["resolve", "99999"], 1, ()),
    "resolve, backwards range": (["resolve", "5-3"], 2, ()),
    "resolve, too long a range": (["resolve", "1-5000"], 2, ()),
    "resolve, series ended": (
        ["resolve", "{next}", "-f", "json"],
        0,
        [["add-request", "{r1}", "-c", "medical-visit", "--every", "2d", "--until", "2026-05-09", "--again"]],
    ),
    "assign": (["assign", "{open}", "{actor}", "-f", "json"], 0, ()),
    "assign by number": (["assign", "{in_progress}", "3"], 0, ()),
    "assign, unknown staff": (["assign", "{open}", NOBODY], 1, ()),
    "assign, not found": (["assign", "99999", "{actor}"], 1, ()),
    "assign a resolved one": (["assign", "{resolved}", "{actor}"], 1, ()),
    "start": (["start", "{assigned}"], 0, ()),
    "start an open one, json": (["start", "{open}", "-f", "json"], 0, ()),
    "start one in progress": (["start", "{in_progress}"], 1, ()),
    "note": (["note", "{open}", "已联系药店，明早送达"], 0, ()),
    "note on a resolved one": (["note", "#{resolved}", "回访：满意"], 0, ()),
    "empty note": (["note", "{open}", "   "], 2, ()),
    "note, not found": (["note", "99999", "x"], 1, ()),
    "note, bad number": (["note", "x1", "x"], 2, ()),
    "cancel": (["cancel", "{open}", "--reason", "家属已代办"], 0, ()),
    "cancel, empty reason": (["cancel", "{open}", "--reason", " "], 2, ()),
    "reopen": (["reopen", "{cancelled}", "-f", "json"], 0, ()),
    "reopen an open one": (["reopen", "{open}"], 1, ()),
}


@pytest.mark.parametrize("case", list(CHANGE))
def test_request_change(hot_register, ref, case):
    args, code, setup = CHANGE[case]
    refs = {**ref, "next_1": ref["next"] + 1, "next_2": ref["next"] + 2}
    hot(hot_register, refs, "request", *args, setup=setup, code=code)


def test_resolving_a_recurring_request_opens_the_next(hot_register, ref):
    fast = hot(hot_register, ref, "request", "resolve", "{every}", "--note", "ok")
    assert f"#{ref['next']}" in fast.out  # the next occurrence, named


def test_resolving_after_reopen_opens_no_second_occurrence(hot_register, ref):
    reopen = [["request", "reopen", "{followed}"]]
    fast = hot(hot_register, ref, "request", "resolve", "{followed}", setup=reopen)
    assert f"#{ref['next']}" not in fast.out and fast.out.count("\n") == 1


def test_a_change_by_who_is_not_staff_is_refused(hot_register, ref):
    db, _ = hot_register
    fast, _ = both_ways(db, "--as", NOBODY, "request", "start", str(ref["open"]))
    assert fast.code == 1


# --- a next occurrence that exists already: Conflict, on both connections -------------------------


def test_a_second_next_occurrence_is_a_conflict_on_both_connections(db_url, write, read, ctx):
    """The UNIQUE ``previous_id`` refuses a second next occurrence (two people resolving one
    recurring request at once): exit 1, through SQLAlchemy and straight from the driver."""
    from typer.testing import CliRunner

    from commcare import help_requests as hr
    from commcare.cli import app
    from commcare.errors import Conflict
    from commcare.storage.fast import open_fast

    runner = CliRunner()  # the first occurrence, resolved: its next one is open
    for args in (
        ["staff", "add", "王秀英"],
        ["resident", "add", "张桂兰", "--phone", "13912345678"],
        ["add-request", "张桂兰", "-c", "medical-visit", "--every", "2d"],
        ["request", "resolve", "1"],
    ):
        done = runner.invoke(app, args, catch_exceptions=False)
        assert done.exit_code == 0, done.stderr
    first = read(lambda s, c: hr.find_request(s, c, "1"))
    resident = read(lambda s, c: hr.lookup.resident(s, c, "张桂兰"))
    spec = {
        "category": first.category,
        "urgency": first.urgency,
        "note": None,
        "channel": None,
        "opened_at": ctx.now(),
        "due_at": ctx.now(),
        "repeat_kind": first.repeat_kind,
        "repeat_interval": first.repeat_interval,
        "repeat_until": None,
    }
    with pytest.raises(Conflict):
        write(lambda s, c: hr._insert(s, c, resident, spec, None, previous_id=first.id))
    fast = open_fast(db_url)
    assert fast is not None
    try:
        ctx._community_id = None
        with pytest.raises(Conflict):
            fast.transact(lambda s: hr._insert(s, ctx, resident, spec, None, previous_id=first.id))
    finally:
        fast.dispose()
    assert read(lambda s, c: len(hr.list_requests(s, c, status="all"))) == 2


def test_add_request_writes_the_timelines_first_lines_in_one_statement(hot_register, ref, tmp_path):
    """An assigned request's "opened" and "assigned" lines go in one INSERT (a round trip fewer
    on PostgreSQL), in that order, as the timeline shows them."""
    import json

    import hotcheck

    db, actor = hot_register
    copied = hotcheck.copy(db)
    trace = tmp_path / "trace.jsonl"
    try:
        done = hotcheck.run(
            copied,
            "--as",
            actor,
            *("add-request", ref["r1"], "-c", "trash", "--assign", actor, "--again", "-f", "json"),
            env={"COMMCARE_SQL_TRACE": str(trace)},
        )
        assert done.code == 0, done.err
        rid = done.json()["id"]  # one resident: the request itself
        sent = [json.loads(line)["sql"] for line in trace.read_text(encoding="utf-8").splitlines()]
        lines = query(
            copied,
            f"SELECT kind, from_status, to_status, note FROM request_events WHERE request_id = {rid} ORDER BY id",
        )
    finally:
        hotcheck.drop(copied)
    timeline = [s for s in sent if s.startswith("INSERT INTO request_events")]
    assert len(timeline) == 1 and timeline[0].count("), (") == 1, timeline
    assert lines == [("opened", None, "open", None), ("assigned", "open", "assigned", actor)]
