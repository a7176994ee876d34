"""Start-up with help and values in Chinese, beside another commit (default ``main``), in one run.

    python bench/bench_language.py [--against main] [--runs 15]

Extracts the other commit into a temporary directory (``git archive``) and runs both trees with
this interpreter (the same libraries), interleaved so that machine noise hits both alike:
``commcare --help`` in Chinese (the default) and in English, ``add-request --help``, and an
``add-request`` that writes (each side on its own register, made once). Prints the medians and
the ratio this tree / the other.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RUN = "import sys; from commcare.cli import main; sys.argv[0] = 'commcare'; main()"


def tree(commit: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def runner(source: Path, home: Path):
    env = {
        **os.environ,
        "PYTHONPATH": str(source),
        "PYTHONDONTWRITEBYTECODE": "",
        "COMMCARE_DB": str(home / "commcare.db"),
        "COMMCARE_CONFIG": str(home / "commcare.toml"),
        "COMMCARE_USER": "王秀英",
        "LANG": "C",
        "XDG_DATA_HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
    }
    env.pop("COMMCARE_LANG", None)

    def run(*args: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", RUN, *args], env=env, capture_output=True, check=True)
        return time.perf_counter() - start

    run("init", "--community", "幸福社区")
    run("staff", "add", "王秀英")
    run("resident", "add", "张桂兰", "--phone", "13912345678", "--tag", "elderly")
    return run


CASES = {
    "--help (zh, default)": ["--help"],
    "--help (en)": ["--lang", "en", "--help"],
    "add-request --help": ["add-request", "--help"],
    "add-request (writes)": ["add-request", "张桂兰", "--category", "gas-topup"],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--against", default="main")
    ap.add_argument("--runs", type=int, default=15)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        other_src = tree(opts.against, (base / "other").resolve() if (base / "other").mkdir() is None else base)
        sides = {
            "this": runner(ROOT, base / "home-this" if (base / "home-this").mkdir() is None else base),
            opts.against: runner(other_src, base / "home-other" if (base / "home-other").mkdir() is None else base),
        }
        times: dict[tuple[str, str], list[float]] = {(c, s): [] for c in CASES for s in sides}
        for _ in range(opts.runs):
            for case, args in CASES.items():
                for side, run in sides.items():
                    times[(case, side)].append(run(*args))
    print(f"{'command':24} {'this':>9} {opts.against:>9} {'ratio':>7}")
    for case in CASES:
        mine = statistics.median(times[(case, "this")])
        theirs = statistics.median(times[(case, opts.against)])
        print(f"{case:24} {mine:8.3f}s {theirs:8.3f}s {mine / theirs:7.2f}")


if __name__ == "__main__":
    main()
