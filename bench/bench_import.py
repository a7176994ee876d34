"""Roster import rate beside a raw sqlite3 executemany of the same rows, in one run.

    python bench/bench_import.py [--rows 100000]

Both write the same generated roster into a fresh SQLite file; commcare's figure is end to
end (reading the CSV, validating every row, pinyin keys, households, one transaction).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_roster(path: Path, rows: int) -> list[tuple]:
    from stdnum.cn import ric

    rng = random.Random(7)
    surnames, given = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗", ["桂兰", "秀英", "建国", "玉兰", "志强", "丽娟", "明", "伟", "芳", "静"]
    out = []
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["姓名", "身份证号", "联系电话", "小区", "住址", "人群类别"])
        for i in range(rows):
            born = datetime.date(1930, 1, 1) + datetime.timedelta(days=i % 25_000)
            body = f"410105{born:%Y%m%d}{i // 25_000:03d}"
            number = body + ric.calc_check_digit(body + "0")
            row = (rng.choice(surnames) + rng.choice(given), number, f"139{i:08d}",
                   f"小区{i % 10}", f"{i // 3}号", "老人" if i % 4 == 0 else "")
            writer.writerow(row)
            out.append(row)
    return out


def raw(rows: list[tuple], db: Path) -> float:
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE r (name TEXT, id_number TEXT UNIQUE, phone TEXT, compound TEXT, address TEXT, tags TEXT)")
    start = time.perf_counter()
    con.executemany("INSERT INTO r VALUES (?,?,?,?,?,?)", rows)
    con.commit()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = make_roster(tmp / "roster.csv", args.rows)
        raw_s = raw(rows, tmp / "raw.db")
        env = {**os.environ, "COMMCARE_DB": str(tmp / "cc.db"), "COMMCARE_CONFIG": str(tmp / "none.toml")}
        exe = [sys.executable, "-m", "commcare"]
        subprocess.run(exe + ["init"], env=env, check=True, capture_output=True)
        start = time.perf_counter()
        subprocess.run(exe + ["resident", "import", str(tmp / "roster.csv")], env=env, check=True, capture_output=True)
        cc_s = time.perf_counter() - start
    print(f"rows: {args.rows:,}")
    print(f"raw sqlite3 executemany: {args.rows / raw_s:12,.0f} rows/s")
    print(f"commcare resident import: {args.rows / cc_s:11,.0f} rows/s (whole process, incl. validation)")
    print(f"ratio commcare/raw: {raw_s / cc_s:.3f} (goal >= 0.2)")


if __name__ == "__main__":
    main()
