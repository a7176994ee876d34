"""``report today`` and ``report day`` give the same report, in every format, and leave the same
register, through the statement cache and the driver as through SQLAlchemy
(``tests/hotcheck.py``), on SQLite and PostgreSQL; so do the all-communities summary, week and
range, and the refusals. No statement of the report's own modules is compiled on the spot
(``COMMCARE_SQL_ONSPOT``): each is declared."""

import re
import tempfile
import uuid
from pathlib import Path

import pytest
from hotcheck import both_ways as checked_both_ways

REPORT_MODULES = (
    "commcare/reports.py",
    "commcare/donations.py",
    "commcare/render/report.py",
    "commcare/commands/report.py",
)


def run_both_ways(db: str, *args):
    """``hotcheck.both_ways``, and the statements the fast runs compiled on the spot (file:line
    function), none of them the report's own."""
    onspot = Path(tempfile.gettempdir()) / f"commcare-onspot-{uuid.uuid4().hex}.txt"
    try:
        fast, slow = checked_both_ways(db, *args, env={"COMMCARE_SQL_ONSPOT": str(onspot)})
        undeclared = onspot.read_text().splitlines() if onspot.exists() else []
    finally:
        onspot.unlink(missing_ok=True)
    assert not [line for line in undeclared if line.split(":")[0].endswith(REPORT_MODULES)], undeclared
    return fast, slow, undeclared


def both_ways(db: str, *args):
    fast, slow, _ = run_both_ways(db, *args)
    return fast, slow


@pytest.mark.parametrize("fmt", ["json", "csv", "markdown", "html", "table"])
def test_report_today_is_the_same_both_ways_in_every_format(hot_register, fmt):
    db, actor = hot_register
    fast, _ = both_ways(db, "--as", actor, "report", "today", "--format", fmt)
    assert fast.code == 0, fast.err
    if fmt == "json":
        data = fast.json()
        assert data["date"] == "2026-05-08"
        assert data["requests"]["opened"] and data["requests"]["overdue_items"]  # the demo leaves work undone
        assert data["calls"]["due"] > data["calls"]["made"] > 0
        assert data["liaisons"] and data["donations"]["items"] and data["audit"]["entries"] > 0
    else:
        assert "2026-05-08" in fast.out
        assert re.search(r"\b[0-9a-f]{64}\b", fast.out)  # the audit head: the report's last line


def test_a_past_day_is_the_same_both_ways_as_it_stood_at_its_end(hot_register):
    """2026-05-07 of the demo (seed 7) has an escalation, a fever, a missing temperature and a
    donation: every statement of the report returns rows."""
    db, actor = hot_register
    fast, _ = both_ways(db, "--as", actor, "report", "day", "2026-05-07", "--format", "json")
    data = fast.json()
    assert data["date"] == "2026-05-07" and data["as_of"].startswith("2026-05-08T00:00:00")
    assert data["calls"]["escalated"] and data["calls"]["missed"]
    assert data["staff_health"]["fever"] and data["staff_health"]["fever_reports"] > 0
    assert data["staff_health"]["missing"] and data["donations"]["received"] > 0
    assert data["requests"]["overdue"] > 0 and data["requests"]["resolved"] > 0


def test_a_past_day_in_markdown_is_the_same_both_ways(hot_register):
    db, actor = hot_register
    fast, _ = both_ways(db, "--as", actor, "report", "day", "2026-05-04", "--format", "markdown")
    assert fast.code == 0 and fast.out.startswith("# ")


@pytest.mark.parametrize("day", [None, "2026-05-06"])
def test_the_all_communities_summary_is_the_same_both_ways(hot_register, day, monkeypatch):
    """The summary's own statements are declared; on PostgreSQL the check that every
    community's special groups are read whole (``integrity.verify_all``) may still be compiled
    on the spot, and only then may the summary import SQLAlchemy."""
    db, actor = hot_register
    args = ("report", "today") if day is None else ("report", "day", day)
    monkeypatch.setenv("HOTCHECK_SKIP_IMPORTS", "1")  # checked here, against what was compiled on the spot
    for fmt in ("json", "csv"):
        fast, _, undeclared = run_both_ways(db, "--as", actor, *args, "--all-communities", "--format", fmt)
        assert "sqlalchemy" not in fast.imported or undeclared, "imported SQLAlchemy with every statement declared"
        if fmt == "json":
            data = fast.json()
            assert len(data["communities"]) == 1
            assert data["total"]["calls_due"] > 0 and data["total"]["opened"] > 0
        else:
            assert fast.code == 0 and "Σ" in fast.out


def test_fail_on_exits_1_after_the_report_both_ways(hot_register):
    db, actor = hot_register
    fast, _ = both_ways(db, "--as", actor, "report", "today", "--format", "json", "--fail-on", "any")
    assert fast.code == 1 and fast.json()["calls"]["missed"]
    assert "commcare:" in fast.err


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("report", "day", "2026-13-40"), 2),  # not a date
        (("report", "today", "--format", "yaml"), 2),  # not a format
        (("--community", "无此社区", "report", "today"), 1),  # no such community
    ],
)
def test_refusals_are_the_same_both_ways(hot_register, args, code):
    db, actor = hot_register
    fast, _ = both_ways(db, "--as", actor, *args)
    assert fast.code == code and fast.out == ""
    assert fast.err.startswith("commcare: ") and len(fast.err.splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ("report", "week", "--format", "json"),
        ("report", "range", "--from", "2026-05-03", "--to", "2026-05-06", "--format", "markdown"),
        ("report", "range", "--from", "2026-05-06", "--to", "2026-05-03"),  # refused: the range ends first
    ],
)
def test_week_and_range_are_the_same_both_ways(hot_register, args):
    """A week or a range is a day report per day: the same statements, through the same path."""
    db, actor = hot_register
    fast, _ = both_ways(db, "--as", actor, *args)
    if "week" in args:
        assert len(fast.json()["days"]) == 7 and fast.json()["totals"]["calls_made"] > 0
    elif "markdown" in args:
        assert fast.code == 0 and "2026-05-05" in fast.out
    else:
        assert fast.code == 2 and fast.out == "" and fast.err.startswith("commcare: ")
