"""Roster import rate beside a raw sqlite3 executemany of the same rows, in one run.

    python bench/bench_import.py [--rows 100000] [--runs 3]

One generated roster (UTF-8 CSV with BOM, Chinese headers, households of three residents at one
compound and address, a quarter of them elderly), then, interleaved so that machine noise hits
all alike, medians of ``--runs``:

raw       in this process: read the same CSV file (decode, ``csv.reader``), one ``executemany``
          of its rows as they are into a plain table (one UNIQUE column, the ID number), commit.
          No process start, no validation, no derived values, one table, no other index.
commcare  the whole process of ``commcare resident import roster.csv`` into a fresh,
          initialised SQLite register: interpreter and library start-up, reading, validating
          every row, pinyin keys, households, residents and tags, one transaction, audit entry.
          (A roster this size is read and checked in a child process while the parent writes
          the chunks already checked: docs/roster.md.)
schema    the floor commcare's own tables set: raw sqlite3 executemany of the rows commcare
          writes (households, residents with their derived values, tags; computed before the
          clock starts) into an empty commcare register with commcare's pragmas (WAL,
          foreign keys, secure_delete), one transaction.

On a first import commcare builds the residents' plain indexes after the load rather than row
by row (``roster_write.indexes_built_after``); the schema floor does not, so commcare's inserts
can come in under it. The goal (issue #3) is commcare >= 1/5 of the raw rate. A breakdown of
one in-process import with every step one after the other (start-up, reading, checking, checks
against the register, each table's inserts, commit) follows, to show where commcare's time
goes; the whole process takes less than its sum because checking overlaps writing.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_roster(path: Path, rows: int) -> None:
    from stdnum.cn import ric

    rng = random.Random(7)
    # Names as a community's are: a hundred surnames (two of two characters), given names of
    # one or two characters from sixty: four in five of 100,000 names are distinct, as in a
    # real register (a roster of a few hundred names repeated would check each only once).
    surnames = list(
        "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡"
        "贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段"
    ) + ["欧阳", "司马"]
    chars = "桂兰秀英建国玉志强丽娟明伟芳静敏军磊洋勇艳杰娜涛超霞平刚辉鹏华红梅琴云飞凤宇浩然子轩欣怡雨晨思淑珍德福"
    given = [a + b for a in chars for b in chars] + list(chars)
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["姓名", "身份证号", "联系电话", "小区", "住址", "人群类别"])
        for i in range(rows):
            born = datetime.date(1930, 1, 1) + datetime.timedelta(days=i % 25_000)
            body = f"410105{born:%Y%m%d}{i // 25_000:03d}"
            house = i // 3
            writer.writerow(
                (
                    rng.choice(surnames) + rng.choice(given),
                    body + ric.calc_check_digit(body + "0"),
                    f"139{i:08d}",
                    f"小区{house % 10}",
                    f"{house // 10 + 1}号",
                    "老人" if i % 4 == 0 else "",
                )
            )


def raw(csv_path: Path, db: Path) -> float:
    """Seconds to read the CSV and executemany its rows into a plain table."""
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE r (name TEXT, id_number TEXT UNIQUE, phone TEXT, compound TEXT, address TEXT, tags TEXT)")
    start = time.perf_counter()
    rows = list(csv.reader(io.StringIO(csv_path.read_bytes().decode("utf-8-sig"))))[1:]
    con.executemany("INSERT INTO r VALUES (?,?,?,?,?,?)", rows)
    con.commit()
    took = time.perf_counter() - start
    con.close()
    return took


def commcare(exe: list[str], env: dict, csv_path: Path) -> float:
    """Seconds of a whole ``commcare resident import`` process."""
    start = time.perf_counter()
    subprocess.run(exe + ["resident", "import", str(csv_path)], env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def schema_rows(csv_path: Path) -> dict[str, list[tuple]]:
    """What commcare writes for the roster, in each table's column order."""
    from commcare import identity

    rows = list(csv.reader(io.StringIO(csv_path.read_bytes().decode("utf-8-sig"))))[1:]
    now = "2026-01-01 00:00:00.000000"
    houses: dict[tuple[str, str], int] = {}
    residents, tags = [], []
    for rid, (name, idn, phone, compound, address, tag) in enumerate(rows, start=1):
        hid = houses.setdefault((compound, address), len(houses) + 1)
        full, initials = identity.pinyin_keys(name)
        born = f"{idn[6:10]}-{idn[10:12]}-{idn[12:14]}"
        residents.append(
            (rid, 1, hid, name, full, initials, "MF"[int(idn[16]) % 2 == 0], born, idn, phone, now, now, 1)
        )
        if tag:
            tags.append((rid, "elderly", 1))
    return {
        "households": [(hid, 1, c, a, None, now) for (c, a), hid in houses.items()],
        "residents": residents,
        "resident_tags": tags,
    }


SCHEMA_SQL = {
    "households": "INSERT INTO households (id, community_id, compound, address, liaison_id, created_at) VALUES (?,?,?,?,?,?)",
    "residents": "INSERT INTO residents (id, community_id, household_id, name, name_pinyin, name_initials, sex, born, "
    "id_number, phone, created_at, updated_at, version) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
    "resident_tags": "INSERT INTO resident_tags (resident_id, tag, community_id) VALUES (?,?,?)",
}


def schema_floor(empty: Path, db: Path, data: dict[str, list[tuple]]) -> float:
    """Seconds to executemany commcare's rows into a copy of an empty commcare register."""
    shutil.copy(empty, db)
    con = sqlite3.connect(db, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON", "secure_delete = ON"):
        con.execute(f"PRAGMA {pragma}")
    con.execute("INSERT INTO communities (id, name, created_at) VALUES (1, 'x', '2026-01-01 00:00:00.000000')")
    start = time.perf_counter()
    con.execute("BEGIN IMMEDIATE")
    for table, rows in data.items():
        con.executemany(SCHEMA_SQL[table], rows)
    con.execute("COMMIT")
    took = time.perf_counter() - start
    con.close()
    return took


BREAKDOWN = r"""
import sys, time
from contextlib import contextmanager
T = time.perf_counter
from commcare.commands.common import state
from commcare.roster import check
from commcare.roster import write as roster_write
st = state(); ctx = st.ctx; st.database()
times = {}
def timed(owner, name, label):
    fn = getattr(owner, name)
    def wrapper(*args, **kwargs):
        s = T()
        try:
            return fn(*args, **kwargs)
        finally:
            times[label(*args)] = times.get(label(*args), 0) + T() - s
    setattr(owner, name, wrapper)
for step in ("_raw_columns", "_check_chunk", "_refuse_repeated_ids"):
    timed(check, step, lambda *a: "checking")
islice = check.islice
def reading(rows, n):  # the rows are read (parsed) as each chunk is taken
    s = T(); out = list(islice(rows, n)); times["reading"] = times.get("reading", 0) + T() - s
    return out
check.islice = reading
timed(roster_write, "bulk_insert", lambda conn, table, *rest: "insert " + table.name)
timed(roster_write.Plan, "__init__", lambda *a: "checks against the register")
timed(roster_write.Plan, "take", lambda *a: "checks against the register")
build = roster_write.indexes_built_after
@contextmanager
def timed_build(conn, tables, rows):
    s = T(); step = build(conn, tables, rows); step.__enter__(); times["indexes"] = T() - s
    yield
    s = T(); step.__exit__(None, None, None); times["indexes"] += T() - s
roster_write.indexes_built_after = timed_build
t1 = T(); chunks = check.Chunks(sys.argv[1], ctx); chunks.heading(); t2 = T()
def run(conn, ctx):
    s = T(); roster_write.import_roster(conn, ctx, chunks, sys.argv[1]); times["writing (all)"] = T() - s
    times["commit_from"] = T()
st.write(run)
end = T()
print(f"reading the CSV\t{t2 - t1 + times['reading']:.3f}")
print(f"checking every row (incl. pinyin)\t{times['checking']:.3f}")
print(f"checks against the register\t{times['checks against the register']:.3f}")
for k in ("insert households", "insert residents", "insert resident_tags"):
    print(f"{k}\t{times.get(k, 0):.3f}")
print(f"plain indexes dropped and built again after\t{times['indexes']:.3f}")
parts = ("insert ", "indexes", "checks against", "checking", "reading")
other = times["writing (all)"] - sum(v for k, v in times.items() if k.startswith(parts))
print(f"ids, households' liaisons, audit entry\t{other:.3f}")
print(f"commit\t{end - times['commit_from']:.3f}")
print(f"in-process total, checking and writing one after the other\t{end - t1:.3f}")
"""


def breakdown(env: dict, csv_path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", BREAKDOWN, str(csv_path)], env=env, check=True, capture_output=True, text=True
    ).stdout
    return {k: float(v) for k, v in (line.split("\t") for line in out.splitlines())}


def fresh_register(exe: list[str], env: dict) -> None:
    db = Path(env["COMMCARE_DB"])
    for f in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        f.unlink(missing_ok=True)
    subprocess.run(exe + ["init"], env=env, check=True, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        roster, header_only = tmp / "roster.csv", tmp / "header.csv"
        make_roster(roster, args.rows)
        header_only.write_text(roster.read_text(encoding="utf-8-sig").splitlines()[0] + "\n", encoding="utf-8")
        exe = [sys.executable, "-m", "commcare"]
        env = {**os.environ, "COMMCARE_DB": str(tmp / "cc.db"), "COMMCARE_CONFIG": str(tmp / "none.toml")}
        from run import byte_compile

        byte_compile()
        fresh_register(exe, env)
        shutil.copy(tmp / "cc.db", tmp / "empty.db")
        data = schema_rows(roster)
        times: dict[str, list[float]] = {"raw": [], "commcare": [], "schema": [], "fixed": [], "breakdown": []}
        parts: list[dict[str, float]] = []
        for _ in range(args.runs):
            # each side writes and fsyncs tens of MB: the writeback of what ran before it is
            # flushed first, so that no side waits for another's (bench/run.py does likewise)
            (tmp / "raw.db").unlink(missing_ok=True)
            os.sync()
            times["raw"].append(raw(roster, tmp / "raw.db"))
            fresh_register(exe, env)
            os.sync()
            times["commcare"].append(commcare(exe, env, roster))
            for f in ("schema.db", "schema.db-wal", "schema.db-shm"):
                (tmp / f).unlink(missing_ok=True)
            os.sync()
            times["schema"].append(schema_floor(tmp / "empty.db", tmp / "schema.db", data))
            fresh_register(exe, env)
            times["fixed"].append(commcare(exe, env, header_only))
            fresh_register(exe, env)
            start = time.perf_counter()
            parts.append(breakdown(env, roster))
            times["breakdown"].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = lambda s: args.rows / s
    print(f"rows: {args.rows:,}; medians of {args.runs} interleaved runs")
    print(f"raw sqlite3 (read CSV + executemany, plain table): {rate(med['raw']):10,.0f} rows/s  {med['raw']:.2f} s")
    print(
        f"commcare resident import (whole process):          {rate(med['commcare']):10,.0f} rows/s  {med['commcare']:.2f} s"
    )
    print(
        f"raw sqlite3 into commcare's schema (floor):         {rate(med['schema']):10,.0f} rows/s  {med['schema']:.2f} s"
    )
    print(
        f"ratio commcare/raw: {med['raw'] / med['commcare']:.3f} (goal >= 0.2); "
        f"schema floor/raw: {med['raw'] / med['schema']:.3f}"
    )
    print(f"\nwhere commcare's {med['commcare']:.2f} s go (medians):")
    print(f"  {'fixed cost: a header-only import (process start, imports, database open)':62} {med['fixed']:.2f} s")
    for key in parts[0]:
        print(f"  {key:62} {statistics.median(p[key] for p in parts):.2f} s")


if __name__ == "__main__":
    main()
