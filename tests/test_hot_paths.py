"""The hot commands give the same answers, and leave the same register, through the statement
cache and the driver as through SQLAlchemy (``tests/hotcheck.py``), on SQLite and PostgreSQL."""

from hotcheck import both_ways


def test_call_due_is_the_same_both_ways(hot_register):
    db, actor = hot_register
    fast, _ = both_ways(db, "--as", actor, "call", "due", "--format", "json")
    assert fast.json()  # the demo leaves residents due a call (4 at its fixed 16:30)
