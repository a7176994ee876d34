"""``call due``, ``call log`` and ``health log`` give the same answers, refuse the same way and
leave the same register through the statement cache and the driver as through SQLAlchemy
(``tests/hotcheck.py``), on SQLite and PostgreSQL."""

import pytest
from hotcheck import both_ways, query


def a_liaison(db: str) -> str:
    """The liaison with the most special-group residents in her households."""
    return query(
        db,
        "SELECT s.name FROM staff s JOIN households h ON h.liaison_id = s.id"
        " JOIN residents r ON r.household_id = h.id JOIN resident_tags t ON t.resident_id = r.id"
        " GROUP BY s.id, s.name ORDER BY count(*) DESC, s.id LIMIT 1",
    )[0][0]


def a_unique_resident(db: str) -> str:
    """The name of a resident no one else shares."""
    found = query(db, "SELECT min(name) FROM residents GROUP BY name HAVING count(*) = 1 ORDER BY min(id) LIMIT 1")
    return found[0][0]


def a_shared_name(db: str) -> str | None:
    found = query(db, "SELECT name FROM residents GROUP BY name HAVING count(*) > 1 ORDER BY name LIMIT 1")
    return found[0][0] if found else None


def a_special_resident(db: str) -> int:
    """A resident of the special groups (due a call each day)."""
    return query(db, "SELECT min(resident_id) FROM resident_tags WHERE tag = 'elderly'")[0][0]


# --- call due ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "table", "csv"])
def test_call_due_in_each_format(hot_register, fmt):
    db, actor = hot_register
    fast, _ = both_ways(db, "--as", actor, "call", "due", "--format", fmt)
    if fmt == "json":
        rows = fast.json()
        assert rows and {"liaison", "calls_today", "escalate", "days_unreached"} <= rows[0].keys()
    else:
        assert fast.out.strip()


def test_call_due_of_one_liaison(hot_register):
    db, actor = hot_register
    liaison = a_liaison(db)
    fast, _ = both_ways(db, "--as", actor, "call", "due", "--liaison", liaison, "--format", "json")
    rows = fast.json()
    assert rows and {r["liaison"] for r in rows} == {liaison}


def test_call_due_as_a_liaison_puts_her_own_first(hot_register):
    db, _ = hot_register
    liaison = a_liaison(db)
    fast, _ = both_ways(db, "--as", liaison, "call", "due", "--format", "json")
    rows = fast.json()
    assert rows[0]["liaison"] == liaison
    assert {r["liaison"] for r in rows} != {liaison}  # everyone else's follow
    both_ways(db, "--as", liaison, "call", "due")  # the table marks her own group


def test_call_due_of_an_unknown_liaison_is_refused(hot_register):
    db, actor = hot_register
    fast, _ = both_ways(db, "--as", actor, "call", "due", "--liaison", "无此人")
    assert fast.code == 1 and fast.err


# --- call log ---------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["ok", "needs-help", "no-answer", "unreachable"])
def test_call_log_each_outcome(hot_register, outcome):
    db, actor = hot_register
    rid = a_special_resident(db)
    fast, _ = both_ways(db, "--as", actor, "call", "log", str(rid), "--outcome", outcome, "--format", "json")
    assert fast.code == 0, fast.err
    row = fast.json()
    assert fast.code == 0 and row["outcome"] == outcome and row["resident_id"] == rid and row["by"] == actor
    assert len(fast.tables["calls"]) > 0


def test_call_log_by_name_with_a_note_and_a_time(hot_register):
    db, actor = hot_register
    name = a_unique_resident(db)
    args = ("call", "log", name, "--outcome", "no-answer", "--note", "家里没人 ", "--at", "2026-05-08 09:15")
    fast, _ = both_ways(db, "--as", actor, *args, "--format", "json")
    row = fast.json()
    assert row["resident"] == name and row["note"] == "家里没人" and row["at"].startswith("2026-05-08T09:15")
    fast, _ = both_ways(db, "--as", actor, *args)  # the confirmation line
    assert fast.code == 0 and name in fast.out


def test_call_log_needs_help_opens_a_request(hot_register):
    db, actor = hot_register
    rid = a_special_resident(db)
    args = ("call", "log", str(rid), "--outcome", "needs-help", "--request", "medicine", "--note", "降压药吃完了")
    fast, _ = both_ways(db, "--as", actor, *args, "--format", "json")
    row = fast.json()
    assert row["request"] is not None
    assert any(r[0] == row["request"] for r in fast.tables["requests"])
    both_ways(db, "--as", actor, *args)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("无此居民", "--outcome", "ok"), 1),
        (("#99999", "--outcome", "ok"), 1),
        ("RID --outcome maybe".split(), 2),
        ("RID --outcome ok --request medicine".split(), 2),
        ("RID --outcome needs-help --request 无此类别".split(), 2),
        ("RID --outcome ok --at 2099-01-01".split(), 2),
        ("RID --outcome ok --at 昨天下午".split(), 2),
    ],
)
def test_call_log_refusals(hot_register, args, code):
    db, actor = hot_register
    args = [str(a_special_resident(db)) if a == "RID" else a for a in args]
    fast, _ = both_ways(db, "--as", actor, "call", "log", *args)
    assert fast.code == code and fast.err
    assert not fast.out


def test_call_log_of_a_shared_name_is_refused(hot_register):
    db, actor = hot_register
    name = a_shared_name(db)
    if name is None:
        pytest.skip("the demo has no two residents of one name")
    fast, _ = both_ways(db, "--as", actor, "call", "log", name, "--outcome", "ok")
    assert fast.code == 1 and name in fast.err


def test_call_log_by_someone_not_staff_is_refused(hot_register):
    db, _ = hot_register
    rid = a_special_resident(db)
    fast, _ = both_ways(db, "--as", "路人甲", "call", "log", str(rid), "--outcome", "ok")
    assert fast.code != 0 and fast.err


# --- health log -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        ("--temp", "36.5"),
        ("--temp", "36.54", "--test", "negative"),
        ("--temp", "38.2", "--test", "pending", "--at", "2026-05-08 07:30"),
    ],
)
def test_health_log(hot_register, extra):
    db, actor = hot_register
    fast, _ = both_ways(db, "--as", actor, "health", "log", actor, *extra, "--format", "json")
    row = fast.json()
    assert row["staff"] == actor and row["temp"] == round(float(extra[1]), 1)
    assert row["fever"] is (row["temp"] >= row["fever_at"])
    fast, _ = both_ways(db, "--as", actor, "health", "log", actor, *extra)  # the line, and the fever warning
    assert fast.code == 0 and fast.out.strip()
    if float(extra[1]) >= 37.3:
        assert fast.err


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("ACTOR", "--temp", "45"), 2),
        (("ACTOR", "--temp", "36.5", "--test", "maybe"), 2),
        (("ACTOR", "--temp", "36.5", "--at", "2099-01-01 08:00"), 2),
        (("无此人", "--temp", "36.5"), 1),
    ],
)
def test_health_log_refusals(hot_register, args, code):
    db, actor = hot_register
    args = [actor if a == "ACTOR" else a for a in args]
    fast, _ = both_ways(db, "--as", actor, "health", "log", *args)
    assert fast.code == code and fast.err
    assert not fast.out
