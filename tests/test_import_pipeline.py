"""A roster imported chunk by chunk, checked in a child process while this one writes
(``commcare.roster.forked_producer``, ``check.Chunks``): the same register and the same problems as
checking it all in one process, every rule that spans rows kept across chunks, nothing
written when a row is refused, and a retried transaction that walks the chunks again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
from sqlalchemy import text

from commcare.roster import forked_producer

pytestmark = pytest.mark.skipif(
    not forked_producer.available(), reason="checking beside the writing needs fork (Linux)"
)


def ric(body: str) -> str:
    from stdnum.cn import ric as ric_

    return body + ric_.calc_check_digit(body + "0")


REGISTERED = ric("11010519500101001")
HEADER = "姓名,身份证号,联系电话,小区,住址,联络员,人群类别\n"  # no groups given: none wanted
ROWS = [  # spreadsheet rows 2..13
    f"甲一,{ric('11010519500101002')},13900000002,幸福小区,1-101,",
    f"乙二,{ric('11010519500101003')},13900000003,幸福小区,1-102,王秀英",
    f"丙三,{ric('11010519500101004')},13900000004,阳光花园,2-201,李强",
    f"丁四,{ric('11010519500101002')},13900000005,幸福小区,1-103,",  # the ID number of row 2
    f"戊五,{ric('11010519500101006')},13900000006,幸福小区,1-101,王秀英",  # row 2's household gets a liaison
    f"己六,{ric('11010519500101007')},13900000007,幸福小区,1-102,李强",  # row 3 gave that household 王秀英
    f"庚七,{REGISTERED},13900000008,阳光花园,2-202,",  # already in the register
    "辛八,110105195001010099,13900000009,阳光花园,2-203,",  # wrong check digit
    f"壬九,{ric('11010519500101010')},13900000010,阳光花园,2-201,",  # joins 丙三's household
    f"癸十,{ric('11010519500101011')},13900000011,,,王秀英",  # a liaison needs an address
    ",,,,,",  # blank: skipped
    f"子十一,{ric('11010519500101013')},13900000013,新村,3-301,赵六",  # no such staff
]
REFUSED = {5: "id_number", 7: "liaison", 8: "id_number", 9: "id_number", 11: "liaison", 13: "liaison"}


@pytest.fixture
def office(db_url, cli):
    assert cli("staff", "add", "王秀英").exit_code == 0
    assert cli("staff", "add", "李强").exit_code == 0
    assert cli("resident", "add", "老住户", "--id-number", REGISTERED).exit_code == 0
    return cli


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of one row, then two: every rule that spans rows crosses a chunk boundary."""
    from commcare.roster import check

    monkeypatch.setattr(check, "CHUNK", 2)
    monkeypatch.setattr(check, "FIRST_CHUNK", 1)


def beside(monkeypatch, on: bool) -> list:
    """Check in a child process (``on``) or in this one; the list returned records each child
    started."""
    monkeypatch.setattr(forked_producer, "available", lambda: on)
    started, produce = [], forked_producer.produce
    monkeypatch.setattr(forked_producer, "produce", lambda *a: started.append(a) or produce(*a))
    return started


@contextmanager
def connect(db_url):
    from sqlalchemy import create_engine

    url = db_url if "://" in db_url else f"sqlite:///{db_url}"
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def register(db_url) -> dict:
    """What the register holds, without ids and times."""
    with connect(db_url) as conn:
        people = conn.execute(
            text(
                "SELECT r.name, r.id_number, r.phone, r.born, r.sex, r.name_pinyin, h.compound, h.address "
                "FROM residents r LEFT JOIN households h ON h.id = r.household_id ORDER BY r.name"
            )
        ).all()
        houses = conn.execute(
            text(
                "SELECT h.compound, h.address, s.name FROM households h LEFT JOIN staff s ON s.id = h.liaison_id "
                "ORDER BY h.compound, h.address"
            )
        ).all()
        tags = conn.execute(text("SELECT count(*) FROM resident_tags")).scalar()
        audit = conn.execute(text("SELECT count(*) FROM audit")).scalar()
    return {
        "residents": [tuple(map(str, r)) for r in people],
        "households": [tuple(h) for h in houses],
        "tags": tags,
        "audit": audit,
    }


@pytest.mark.parametrize("on", [False, True], ids=["in-process", "child-process"])
def test_rules_that_span_rows_hold_across_chunks(office, db_url, tmp_path, monkeypatch, small_chunks, on):
    started = beside(monkeypatch, on)
    path = tmp_path / "roster.csv"
    path.write_text(HEADER + "\n".join(ROWS) + "\n", encoding="utf-8")
    result = office("resident", "import", path, "--skip-invalid", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert len(started) == (1 if on else 0)
    summary = json.loads(result.stdout)
    assert (summary["imported"], summary["invalid"], summary["households"]) == (5, 6, 3)
    problems = {int(line.split()[1].rstrip(":")): line for line in summary["problems"]}
    assert {row: line.split()[2].rstrip(":") for row, line in problems.items()} == REFUSED
    assert "2" in problems[5]  # the row that gave the ID number first
    held = register(db_url)
    assert [r[0] for r in held["residents"]] == sorted(["老住户", "甲一", "乙二", "丙三", "戊五", "壬九"])
    assert held["households"] == [
        ("幸福小区", "1-101", "王秀英"),
        ("幸福小区", "1-102", "王秀英"),
        ("阳光花园", "2-201", "李强"),
    ]


def test_even_a_small_roster_and_a_dry_run_are_checked_beside(office, db_url, tmp_path, monkeypatch):
    """On Linux every import checks in a child process: three rows, and a dry run, are done
    sooner so (the child checks while this process loads SQLAlchemy and opens the register)."""
    started, produce = [], forked_producer.produce
    monkeypatch.setattr(forked_producer, "produce", lambda *a: started.append(a) or produce(*a))
    path = tmp_path / "roster.csv"
    path.write_text(HEADER + "\n".join(ROWS[:3]) + "\n", encoding="utf-8")
    dry = office("resident", "import", path, "--dry-run", "-f", "json")
    assert dry.exit_code == 0, dry.stderr
    assert (json.loads(dry.stdout)["valid"], len(started)) == (3, 1)
    done = office("resident", "import", path, "-f", "json")
    assert done.exit_code == 0, done.stderr
    assert (json.loads(done.stdout)["imported"], len(started)) == (3, 2)


def test_the_child_process_and_this_one_give_the_same_register(office, db_url, tmp_path, monkeypatch, small_chunks):
    path = tmp_path / "roster.csv"
    path.write_text(HEADER + "\n".join(ROWS) + "\n", encoding="utf-8")
    before = register(db_url)
    outcomes = []
    for on in (False, True):
        beside(monkeypatch, on)
        result = office("resident", "import", path, "--skip-invalid", "-f", "json")
        outcomes.append((json.loads(result.stdout), register(db_url)))
        office("resident", "import", path, "--dry-run")  # nothing changes
        assert register(db_url) == outcomes[-1][1]
        with connect(db_url) as conn:  # back to the register as it was, for the other way
            conn.execute(text("DELETE FROM residents WHERE name <> '老住户'"))
            conn.execute(text("DELETE FROM households"))
            conn.execute(text("DELETE FROM audit WHERE action = 'resident.import'"))
            conn.commit()
        assert register(db_url) == before
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("on", [False, True], ids=["in-process", "child-process"])
def test_a_refused_row_in_a_late_chunk_leaves_the_register_untouched(
    office, db_url, tmp_path, monkeypatch, small_chunks, on
):
    beside(monkeypatch, on)
    good = [r for i, r in enumerate(ROWS, start=2) if i not in REFUSED and r != ",,,,,"]
    path = tmp_path / "roster.csv"
    path.write_text(HEADER + "\n".join(good + [ROWS[-1]]) + "\n", encoding="utf-8")  # last row: unknown liaison
    before = register(db_url)
    result = office("resident", "import", path)
    assert result.exit_code == 1
    assert "row 7: liaison" in result.stderr
    assert register(db_url) == before


def test_a_retried_transaction_walks_the_chunks_again(office, db_url, tmp_path, monkeypatch, small_chunks):
    """A transaction the database makes us retry (locked, serialization failure) starts over,
    reading and checking the file again (only the chunk being written is held): every valid
    row goes in once."""
    import sqlite3

    from sqlalchemy import exc

    from commcare.roster import write as roster_write

    started = beside(monkeypatch, True)
    finish, calls = roster_write.Writer.finish, []

    def busy_once(self, source):
        calls.append(self.written)
        if len(calls) == 1:
            raise exc.OperationalError("COMMIT", {}, sqlite3.OperationalError("database is locked"))
        return finish(self, source)

    monkeypatch.setattr(roster_write.Writer, "finish", busy_once)
    path = tmp_path / "roster.csv"
    path.write_text(HEADER + "\n".join(ROWS) + "\n", encoding="utf-8")
    result = office("resident", "import", path, "--skip-invalid", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert calls == [5, 5] and len(started) == 2
    assert json.loads(result.stdout)["imported"] == 5
    assert len(register(db_url)["residents"]) == 6


def test_text_that_every_row_shares_is_stored_exactly(office, db_url, tmp_path):
    """A column whose value is the same in every row (a name with a quote, a note written as
    SQL) is stored as it was written, whatever the import does with constant columns."""
    path = tmp_path / "roster.csv"
    hostile = "1') ; DROP TABLE residents; --"
    path.write_text(
        f"name,compound,address,note\nO'Brien,Gate ' 1,Flat 2,{hostile}\nO'Brien,Gate ' 1,Flat 3,{hostile}\n",
        encoding="utf-8",
    )
    assert office("resident", "import", path, "--no-groups").exit_code == 0
    held = register(db_url)
    assert [r[0] for r in held["residents"]].count("O'Brien") == 2
    assert ("Gate ' 1", "Flat 2", None) in held["households"] and ("Gate ' 1", "Flat 3", None) in held["households"]
    shown = json.loads(office("resident", "list", "--search", "O'Brien", "-f", "json").stdout)
    assert [r["note"] for r in shown] == [hostile, hostile]


# --- the installed console script, a roster large enough to be checked beside the writing ----


def big_roster(path, rows: int, last: str | None = None) -> None:
    import datetime

    lines = [HEADER.strip()]
    for i in range(rows):
        born = datetime.date(1930, 1, 1) + datetime.timedelta(days=i % 25_000)
        lines.append(f"居民{i},{ric(f'410105{born:%Y%m%d}{i // 25_000:03d}')},139{i:08d},小区{i // 3 % 7},{i // 3}号,")
    if last:
        lines.append(last)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(*args, env):
    exe = os.path.join(os.path.dirname(sys.executable), "commcare")
    return subprocess.run([exe, *map(str, args)], env=env, capture_output=True, text=True, check=False)


@pytest.mark.slow
def test_a_large_roster_through_the_console_script(db_url, tmp_path):
    env = {**os.environ, "COMMCARE_DB": db_url, "COMMCARE_CONFIG": str(tmp_path / "none.toml")}
    assert run("staff", "add", "王秀英", env=env).returncode == 0
    path = tmp_path / "big.csv"
    big_roster(path, 20_000, last="坏行,,139,小区1,1号,王秀英")  # a short phone in the last row
    refused = run("resident", "import", path, env=env)
    assert refused.returncode == 1
    assert "row 20002: phone" in refused.stderr
    assert register(db_url)["residents"] == []
    skipped = run("resident", "import", path, "--skip-invalid", "-f", "json", env=env)
    assert skipped.returncode == 0, skipped.stderr
    summary = json.loads(skipped.stdout)
    assert (summary["imported"], summary["invalid"]) == (20_000, 1)
    held = register(db_url)
    assert len(held["residents"]) == 20_000 and len(held["households"]) == 6_667


@pytest.mark.slow
def test_ctrl_c_at_any_moment_exits_130_with_nothing_imported(db_url, tmp_path):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while the roster is
    read, checked, written or indexed: exit 130, no "internal error" (the page cache setting
    was once put back on the broken connection), nothing imported, no process left. The
    moments differ from run to run; every one must end so."""
    import signal

    env = {**os.environ, "COMMCARE_DB": db_url, "COMMCARE_CONFIG": str(tmp_path / "none.toml"), "COMMCARE_LANG": "en"}
    path = tmp_path / "big.csv"
    big_roster(path, 30_000)
    before = register(db_url)
    exe = os.path.join(os.path.dirname(sys.executable), "commcare")
    for delay in (0.4, 0.8, 1.2, 1.6):
        proc = subprocess.Popen(
            [exe, "resident", "import", str(path)],
            env=env,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            assert proc.returncode == 130, err
            assert "error" not in err and "Traceback" not in err, err
        # All or nothing: on a slow machine the interrupt may come only after the commit (exit 0,
        # or 130 if it lands while the summary is printed) and find the whole roster imported.
        imported = len(register(db_url)["residents"]) - len(before["residents"])
        assert imported in (0, 30_000)
        if imported:  # take it back for the next moment
            with connect(db_url) as conn:
                conn.execute(text("DELETE FROM residents"))
                conn.execute(text("DELETE FROM households"))
                conn.execute(text("DELETE FROM audit WHERE action = 'resident.import'"))
                conn.commit()
        for _ in range(500):  # the child is ended by the parent as it exits
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.01)
        else:
            pytest.fail("a process of the interrupted import is still running")
        assert register(db_url) == before


def test_a_large_file_that_cannot_be_read_changes_nothing(tmp_path):
    """Read in the child, refused in the parent before the database is opened or created."""
    path = tmp_path / "big.csv"
    path.write_bytes(os.urandom(1_200_000))
    db = tmp_path / "new.db"
    env = {**os.environ, "COMMCARE_DB": str(db), "COMMCARE_CONFIG": str(tmp_path / "none.toml")}
    result = run("resident", "import", path, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().endswith('save it from Excel as "CSV UTF-8"') or "UTF-8" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not db.exists()


# --- commcare.roster.forked_producer on its own -------------------------------------------------------------


def numbers(n):
    yield from range(n)


def refuses():
    from commcare.errors import InvalidValue

    yield 1
    raise InvalidValue("value.bad_phone", field="phone", value="139")


class Unpicklable(Exception):
    def __init__(self, a, b):
        super().__init__(a)


def raises_unpicklable():
    raise Unpicklable("x", "y")
    yield


def dies():
    yield 1
    os._exit(3)


def forever():
    while True:
        yield os.getpid()


def test_items_come_in_order():
    assert list(forked_producer.produce(numbers, 2500)) == list(range(2500))


def test_a_refusal_in_the_child_is_raised_here_whole():
    from commcare.errors import InvalidValue

    items = forked_producer.produce(refuses)
    assert next(items) == 1
    with pytest.raises(InvalidValue) as caught:
        next(items)
    assert caught.value.field == "phone" and caught.value.key == "value.bad_phone"
    assert "139" in caught.value.message("en")


def test_an_exception_that_cannot_be_pickled_comes_as_its_traceback():
    with pytest.raises(RuntimeError, match="Unpicklable"):
        list(forked_producer.produce(raises_unpicklable))


def yields_unpicklable():
    yield 1
    yield lambda: None  # cannot be pickled
    yield from range(2, 100)  # more than the child may hold: it must not wait for ever


def test_an_item_that_cannot_be_pickled_is_an_error_not_a_hang():
    items = forked_producer.produce(yields_unpicklable)
    with pytest.raises(RuntimeError, match="pickle"):
        list(items)


def test_a_child_that_dies_is_an_error_not_an_early_end():
    """Whatever it had handed over before (the item it made may not have been sent yet), a
    child that dies ends the walk with an error, never as if the roster had ended."""
    items = forked_producer.produce(dies)
    got = []
    with pytest.raises(RuntimeError, match="ended early"):
        got.extend(items)
    assert got in ([], [1])


def big_items(tally: str):
    """Items too large for the pipe to hold, each counted in ``tally`` as it is made."""
    for i in range(100):
        with open(tally, "a") as fh:
            fh.write("x")
        yield i, b"\0" * 300_000


def test_the_child_gets_ahead_while_the_parent_is_busy(tmp_path):
    """While this process is busy (starting up, writing), the child goes on checking up to
    ``AHEAD`` chunks beyond the one in the pipe, instead of waiting at a full pipe."""
    tally = tmp_path / "made"
    items = forked_producer.produce(big_items, str(tally))
    try:
        assert next(items)[0] == 0
        for _ in range(1000):  # up to 10 s for the child to make what it may
            if tally.exists() and len(tally.read_text()) >= forked_producer.AHEAD + 2:
                break
            time.sleep(0.01)
        assert len(tally.read_text()) >= forked_producer.AHEAD + 2
        assert [i for i, _ in items] == list(range(1, 100))
    finally:
        items.close()


def test_closing_early_ends_the_child():
    items = forked_producer.produce(forever)
    pid = next(items)
    assert pid != os.getpid()
    items.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert list(items) == []


def test_a_checked_chunk_crosses_the_pipe_whole():
    """Birth dates travel as day numbers and come back as the same dates; nothing else changes."""
    import datetime as dt
    import pickle

    from commcare.roster.check import Checked

    chunk = Checked(3)
    chunk.numbers = [2, 3, 4]
    chunk.columns["born"] = [dt.date(1949, 12, 31), None, dt.date(2026, 2, 28)]
    chunk.columns["name"] = ["张桂兰", "O'Brien", "阿依古丽·买买提"]
    chunk.problems = [(5, "phone", "too short")]
    back = pickle.loads(pickle.dumps(chunk))
    assert (back.rows, back.numbers, back.columns, back.problems) == (
        chunk.rows,
        chunk.numbers,
        chunk.columns,
        chunk.problems,
    )
    assert [type(d) for d in back.columns["born"]] == [dt.date, type(None), dt.date]
    assert chunk.columns["born"][0] == dt.date(1949, 12, 31)  # the sender's own chunk is left as it was


def test_a_large_load_leaves_the_connection_as_it_found_it(office, db_url, tmp_path, monkeypatch):
    """SQLite only: a load large enough for the larger page cache (the threshold lowered to
    one row) imports every row, and the connection's own cache setting is back after it."""
    if db_url.startswith("postgresql"):
        pytest.skip("a SQLite setting")
    from commcare.commands.common import state
    from commcare.roster import check
    from commcare.roster import write as roster_write

    monkeypatch.setattr(roster_write, "REBUILD_MIN_ROWS", 1)
    path = tmp_path / "roster.csv"
    path.write_text(HEADER + "\n".join(ROWS[:3]) + "\n", encoding="utf-8")
    st = state()

    def run(conn, ctx):
        before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
        summary = roster_write.import_roster(conn, ctx, check.Chunks(str(path), ctx), str(path))
        return before, summary, conn.exec_driver_sql("PRAGMA cache_size").scalar()

    before, summary, after = st.write(run)
    assert summary["imported"] == 3 and after == before
    assert len(register(db_url)["residents"]) == 4


def test_a_roster_is_checked_as_it_is_read(office):
    """The first chunk is checked and handed on when its rows have been read, not after the
    whole file (which is never held): a failure further on comes after it."""
    from commcare.commands.common import state
    from commcare.roster import check

    read = []

    def rows():
        yield ["姓名", "联系电话"]
        for i in range(5000):
            read.append(i)
            yield [f"居民{i}", f"139{i:08d}"]
        raise OSError("the rest of the file could not be read")

    chunks = check.checked_chunks(check.Roster(rows(), estimate=5000), state().ctx)
    first = next(chunks)
    assert first.rows == len(first.numbers) == check.FIRST_CHUNK == len(read)
    assert first.numbers[:2] == [2, 3] and first.columns["phone"][0] == "13900000000"
    with pytest.raises(OSError, match="could not be read"):
        list(chunks)
    assert len(read) == 5000


def test_an_interrupted_load_is_reported_as_itself(db_url):
    """A Ctrl-C in the middle of an insert leaves the connection invalid; the larger page
    cache is not put back then (the connection is thrown away), so the interruption is what
    the command reports, not an internal error."""
    if db_url.startswith("postgresql"):
        pytest.skip("a SQLite setting")
    from commcare.roster import write as roster_write

    with (
        connect(db_url) as conn,
        pytest.raises(KeyboardInterrupt),
        roster_write.larger_cache(conn, roster_write.REBUILD_MIN_ROWS),
    ):
        conn.invalidate()
        raise KeyboardInterrupt
