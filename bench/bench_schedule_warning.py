"""What the scheduled summary's warning costs every interactive command, side by side in one run.

    python bench/bench_schedule_warning.py [--runs 15]

Every command reads the small record beside the register (``commcare.schedule.history``) to tell
whether the last scheduled run failed or one was missed. This times, interleaved, the whole
process of ``commcare staff list -f json`` (a short command that opens the register) against
a register with no record, and against one whose record holds 200 lines ending in a failed run
(the warning is printed), and prints the medians and their ratio; then the check alone,
in-process, in microseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def commcare() -> list[str]:
    return [shutil.which("commcare") or str(Path(sys.executable).with_name("commcare"))]


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-warning-"))
    base = {
        **os.environ,
        "COMMCARE_CONFIG": str(work / "none.toml"),
        "COMMCARE_LANG": "zh",
        "COMMCARE_NOW": "2026-05-09T08:00:00+08:00",
    }
    plain, warned = dict(base, COMMCARE_DB=str(work / "plain.db")), dict(base, COMMCARE_DB=str(work / "warned.db"))
    for env in (plain, warned):
        subprocess.run(commcare() + ["staff", "add", "王秀英"], env=env, check=True, capture_output=True)
    lines = [
        {
            "kind": "run",
            "time": f"2026-04-{1 + n % 28:02d}T20:00:01+08:00",
            "exit": 0,
            "message": "x" * 80,
            "slot": f"2026-04-{1 + n % 28:02d}T20:00:00+08:00",
        }
        for n in range(199)
    ]
    lines.append(
        {
            "kind": "run",
            "time": "2026-05-08T20:00:01+08:00",
            "exit": 3,
            "message": "坏了",
            "slot": "2026-05-08T20:00:00+08:00",
        }
    )
    (work / "warned.db.schedule.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    cmd = commcare() + ["staff", "list", "-f", "json"]
    shown = subprocess.run(cmd, env=warned, capture_output=True, text=True, check=True).stderr.strip()
    times: dict[str, list[float]] = {"no record": [], "failed run, warned": []}
    for _ in range(args.runs):
        times["no record"].append(timed(cmd, plain))
        times["failed run, warned"].append(timed(cmd, warned))
    medians = {k: statistics.median(v) for k, v in times.items()}
    for name, value in medians.items():
        print(f"{name:20s} {value * 1000:7.1f} ms (median of {args.runs})")
    print(f"ratio warned / none   {medians['failed run, warned'] / medians['no record']:.3f}")
    print(f"the line: {shown}")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.update(warned)
    from commcare.config import load_settings
    from commcare.schedule import history

    settings = load_settings()
    start, n = time.perf_counter(), 200
    for _ in range(n):
        history.warning(settings)
    print(f"the check alone       {(time.perf_counter() - start) / n * 1e6:7.0f} µs (200 lines, in-process)")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
