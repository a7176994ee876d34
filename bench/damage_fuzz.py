"""Random damage against the daily reads: how often a damaged register is told, and how often
a read still exits 0 with an answer that differs from the undamaged one (silent).

    python bench/damage_fuzz.py [--tries 60] [--residents 2000] [--seed 1] [--objects residents,…]

A demo register is built once. Each try copies it, writes 16 random bytes at a random offset
of a random page of one named table or index (pages found with SQLite's ``dbstat`` table), and
runs ``call due`` and ``report day`` of yesterday (JSON) with the installed commcare. Each read is then:

same    exit 0, the same answer as on the undamaged copy
told    exit 3 naming ``commcare db check``
silent  exit 0 and a different answer (the failure 不漏一人 forbids); ``hid`` when a resident
        of the undamaged ``call due`` is missing from it
other   any other exit (a traceback, exit 1): a defect of its own

Then ``schedule run`` (the evening run, which checks the whole file first) is tried on the same
damaged copy: ``evening told`` counts the tries it refused.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

YESTERDAY = (datetime.date.today() - datetime.timedelta(days=1)).isoformat()
# Yesterday's report, not today's: today's counts what is overdue as of now, which moves while
# the tries run; yesterday's reads the same pages and says the same thing each time.
READS = (("call", "due", "--format", "json"), ("report", "day", YESTERDAY, "--format", "json"))
OBJECTS = "residents,resident_tags,ix_resident_tags_community_tag,households,register_counts,calls,ix_calls_resident_at"


def commcare(db: Path, *args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("commcare") or str(Path(sys.executable).with_name("commcare"))
    env = {**os.environ, "COMMCARE_DB": str(db), "COMMCARE_LANG": "en"}
    return subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=600, check=False)


def pages(db: Path, name: str) -> list[int]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [row[0] for row in con.execute("SELECT pageno FROM dbstat WHERE name = ?", (name,))]
    finally:
        con.close()


def damage(db: Path, page: int, rng: random.Random) -> None:
    size = 4096
    with open(db, "r+b") as fh:
        fh.seek((page - 1) * size + rng.randrange(size - 16))
        fh.write(bytes(rng.randrange(256) for _ in range(16)))


def answer(data: object) -> object:
    """What a read says of the register: its JSON without the moment it was made."""
    return {k: v for k, v in data.items() if k != "as_of"} if isinstance(data, dict) else data


def verdict(done: subprocess.CompletedProcess, base: str, due: set) -> str:
    if done.returncode == 3 and "db check" in done.stderr:
        return "told"
    if done.returncode != 0:
        return "other"
    try:
        rows = json.loads(done.stdout)
    except ValueError:
        return "silent"
    if answer(rows) == answer(json.loads(base)):
        return "same"
    if isinstance(rows, list) and not due <= {row["resident"] for row in rows}:
        return "silent (hid a resident)"
    return "silent"


def fresh(damaged: Path, folder: Path) -> Path:
    """A copy of the damaged file with nothing beside it (no damage marker, no run history)."""
    for extra in folder.glob("copy.db*"):
        extra.unlink()
    copy = folder / "copy.db"
    shutil.copy(damaged, copy)
    return copy


def build(folder: Path, residents: int) -> Path:
    db = folder / "demo.db"
    done = commcare(db, "demo", "--residents", str(residents), "--requests", str(residents), "--days", "3")
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return db


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tries", type=int, default=60)
    ap.add_argument("--residents", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--objects", default=OBJECTS)
    ap.add_argument("--keep", help="a folder to keep each silently damaged file in, to look at")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        demo = build(folder, args.residents)
        base = {read: commcare(demo, *read).stdout for read in READS}
        due = {row["resident"] for row in json.loads(base[READS[0]])}
        objects = {name: pages(demo, name) for name in args.objects.split(",")}
        tally: dict[str, Counter] = {}
        for _ in range(args.tries):
            name = rng.choice([n for n in objects if objects[n]])
            damaged = folder / "damaged.db"
            shutil.copy(demo, damaged)
            page = rng.choice(objects[name])
            damage(damaged, page, rng)
            said = {}
            for read in READS:  # each read on a fresh copy: no marker left by the one before
                said[read] = verdict(commcare(fresh(damaged, folder), *read), base[read], due)
                tally.setdefault(" ".join(read[:2]), Counter())[said[read]] += 1
            evening = commcare(fresh(damaged, folder), "schedule", "run", "--dir", str(folder / "reports"))
            told = "told" if evening.returncode == 3 else "not told"
            tally.setdefault("schedule run", Counter())[told] += 1
            for read, what in said.items():
                if what.startswith(("silent", "other")):
                    print(f"{' '.join(read[:2])}: {what} ({name}, page {page}); the evening run: {told}")
                    if args.keep:
                        Path(args.keep).mkdir(parents=True, exist_ok=True)
                        shutil.copy(damaged, Path(args.keep) / f"{name}-{page}-{read[0]}.db")
        print(f"{args.tries} tries of 16 random bytes in {args.objects} ({args.residents} residents, seed {args.seed})")
        for read, counts in tally.items():
            print(f"{read}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
