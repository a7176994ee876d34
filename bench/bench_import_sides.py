"""One roster import, two versions of commcare, side by side in one run.

    python bench/bench_import_sides.py --before DIR [--rows 100000] [--runs 7] [--office]

DIR holds another checkout of commcare (``git archive COMMIT | tar -x -C DIR``); this
checkout is "after". The same generated roster (``bench_import.make_roster``: Chinese
headers, a quarter elderly) is imported by the whole ``python -m commcare resident import``
process into a fresh register, the two versions interleaved run by run so that machine noise
hits both alike, after ``os.sync()``. Prints the medians and after/before.

``--office`` times this checkout alone on the same residents laid out as an office keeps them
(a title row, 序号 and 年龄 columns ignored, the address in 小区 | 楼栋 | 单元 | 门牌, a liaison
column with the liaison's phone beside it) against the plain layout: the cost of reading a
real roster's layout.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_import import make_roster  # noqa: E402


def officed(plain: Path, office: Path) -> None:
    """``plain``'s residents in an office's layout, with one liaison (王秀英) for every household."""
    with (
        open(plain, encoding="utf-8-sig", newline="") as src,
        open(office, "w", encoding="utf-8-sig", newline="") as out,
    ):
        rows = csv.reader(src)
        next(rows)
        writer = csv.writer(out)
        writer.writerow(["幸福社区特殊群体台账"])
        writer.writerow(
            [
                "序号",
                "姓名",
                "年龄",
                "身份证号码",
                "联系电话",
                "小区",
                "楼栋",
                "单元",
                "门牌",
                "人员类别",
                "包保人",
                "联系方式",
            ]
        )
        for n, (name, idn, phone, compound, address, tag) in enumerate(rows, start=1):
            house = int(address.rstrip("号"))
            writer.writerow(
                [
                    n,
                    name,
                    80,
                    idn,
                    phone,
                    compound,
                    house // 100 + 1,
                    house // 10 % 10 + 1,
                    house % 10 + 101,
                    tag,
                    "王秀英",
                    "13700000001",
                ]
            )


def run(source: Path | None, env: dict, roster: Path, db: Path) -> tuple[float, float]:
    """Seconds of one whole import process into a fresh register, wall-clock and CPU (user and
    system, of the process and the child that checks the rows: on a shared machine the CPU
    time moves less with the other work than the wall-clock). ``source``: the checkout to run,
    first on the path; None: this one."""
    import resource

    env = dict(env)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    for f in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        f.unlink(missing_ok=True)
    exe = [sys.executable, "-m", "commcare"]
    # run from the register's directory: ``-m`` puts the working directory first on the path
    sh = lambda *a: subprocess.run(exe + list(a), env=env, check=True, capture_output=True, cwd=db.parent)
    sh("init")
    sh("staff", "add", "王秀英")
    os.sync()
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    sh("resident", "import", str(roster))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - used.ru_utime) + (after.ru_stime - used.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", type=Path)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--office", action="store_true")
    args = ap.parse_args()
    import compileall

    for tree in filter(None, (args.before, HERE.parent)):
        compileall.compile_dir(tree / "commcare", quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plain, office = tmp / "roster.csv", tmp / "office.csv"
        make_roster(plain, args.rows)
        env = {
            **os.environ,
            "COMMCARE_DB": str(tmp / "cc.db"),
            "COMMCARE_CONFIG": str(tmp / "none.toml"),
            "COMMCARE_USER": "bench",
        }
        sides = {}
        if args.before:
            sides["before"] = (args.before, plain)
        sides["after"] = (None, plain)
        if args.office:
            officed(plain, office)
            sides["after, office layout"] = (None, office)
        times: dict[str, list[float]] = {k: [] for k in sides}
        cpu: dict[str, list[float]] = {k: [] for k in sides}
        for _ in range(args.runs):
            for name, (source, roster) in sides.items():
                wall, used = run(source, env, roster, tmp / "cc.db")
                times[name].append(wall)
                cpu[name].append(used)
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"rows: {args.rows:,}; medians of {args.runs} interleaved runs (whole process)")
    for name, seconds in med.items():
        print(
            f"  {name:24} wall {seconds:6.2f} s  {args.rows / seconds:10,.0f} rows/s   CPU {med_cpu[name]:6.2f} s   "
            "wall runs: " + " ".join(f"{t:.2f}" for t in times[name])
        )
    for label, base in (("after/before", "before"), ("office layout/plain", "after")):
        other = "after" if base == "before" else "after, office layout"
        if base in med and other in med:
            print(f"{label}: wall {med[other] / med[base]:.3f}, CPU {med_cpu[other] / med_cpu[base]:.3f}")


if __name__ == "__main__":
    main()
