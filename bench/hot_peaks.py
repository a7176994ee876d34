"""Peak memory of each hot command (issue #22: at most 50 MiB at 100,000 residents and
1,000,000 requests), beside another build of commcare and the physical limit, in one run.

    python bench/hot_peaks.py [--residents 100000] [--requests 1000000] [--days 60] [--runs 3]
                              [--before PATH] [--after PATH] [--dir bench/results]

The register is bench/run.py's demo (built if the file is missing); the commands, the register
state each runs on (a scratch copy restored before every run that follows a write) and the
limit (bench/limit.py replaying the command's own SQL) are bench/hot.py's. ``--before`` is
another ``commcare`` executable (an older build) run on the same state in the same rounds, so
that the two columns are measured side by side; the sides alternate in order from round to
round.

Each figure is the largest maximum resident set size of the command over the rounds,
measured by GNU time (``/usr/bin/time -f %M``, ``run.timed``): the command's own, not the
benchmark's (a child forked from this Python process could not read below its size). The
seconds and the CPU time (user + system, which a loaded machine moves least) are medians, for a
look at what a change cost or saved in time; bench/run.py is the benchmark of time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import hot  # noqa: E402 - beside this file
import run  # noqa: E402 - beside this file

GOAL_MIB = 50


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--residents", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--before", default=None, help="another commcare executable, measured beside this one")
    ap.add_argument("--after", default=None, help="the commcare executable measured (default: this install's)")
    ap.add_argument("--dir", default=str(HERE / "results"))
    args = ap.parse_args()
    if not run.GNU_TIME:
        raise SystemExit("bench: /usr/bin/time (GNU time) is needed to measure each command's own peak")
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    db = out / f"demo-{args.residents}-{args.requests}.db"
    env = {**os.environ, "COMMCARE_DB": str(db), "COMMCARE_CONFIG": str(out / "none.toml"), "NO_COLOR": "1"}
    env.pop("COMMCARE_NOW", None)
    run.byte_compile()
    run.build(db, args.residents, args.requests, args.days, env)
    after = [args.after] if args.after else run.commcare()
    hots = hot.Hot(out / "peaks", db, env, after, None)
    sides = {"after": after, **({"before": [args.before]} if args.before else {})}
    if args.before:  # its statement cache filled (compiling imports SQLAlchemy): as warm as this one's
        for argv in hots.cases.values():
            if hots.dirty:
                hots.restore()
            hots.run_once(argv, hots.env, [args.before])
            hots.dirty = True
    peaks: dict[tuple[str, str], int] = {}
    times: dict[tuple[str, str], list[float]] = {}
    cpus: dict[tuple[str, str], list[float]] = {}
    for round_ in range(args.runs):
        for name, argv in hots.cases.items():
            order = [(side, cmd + argv) for side, cmd in sides.items()]
            if hots.traces.get(name) is not None:
                order.append(("limit", hots.limit_cmd(hots.traces[name])))
            if round_ % 2:
                order.reverse()
            for side, cmd in order:
                if hots.dirty:
                    hots.restore()
                seconds, peak, cpu = run.measured(cmd, hots.env)
                hots.dirty = hots.writes.get(name, True)
                peaks[(name, side)] = max(peaks.get((name, side), 0), peak)
                times.setdefault((name, side), []).append(seconds)
                cpus.setdefault((name, side), []).append(cpu)
        print(f"round {round_ + 1} of {args.runs} done", file=sys.stderr)
    columns = [s for s in ("before", "after", "limit") if any(k[1] == s for k in peaks)]
    head = " | ".join(f"{c} MiB" for c in columns) + " | " + " | ".join(f"{c} s" for c in columns)
    head += " | " + " | ".join(f"{c} cpu ms" for c in columns)
    lines = [
        f"peak memory of the hot commands, {args.residents:,} residents, {args.requests:,} requests, "
        f"largest of {args.runs} runs (GNU time %M); seconds: medians; cpu: medians of user + system",
        "",
        f"| command | {head} | goal {GOAL_MIB} MiB |",
        "|" + " --- |" * (3 * len(columns) + 2),
    ]
    for name in hots.cases:
        mib = [peaks.get((name, c)) for c in columns]
        sec = [times.get((name, c)) for c in columns]
        cpu = [cpus.get((name, c)) for c in columns]
        cells = (
            [f"{m / 1024:.1f}" if m else "—" for m in mib]
            + [f"{statistics.median(s):.3f}" if s else "—" for s in sec]
            + [f"{1000 * statistics.median(c):.1f}" if c else "—" for c in cpu]
        )
        ours = peaks[(name, "after")] / 1024
        lines.append(f"| {name} | {' | '.join(cells)} | {'met' if ours <= GOAL_MIB else 'NOT met'} |")
    for name, problem in hots.problems.items():
        lines.append(f"({name}: {problem})")
    text = "\n".join(lines)
    print(text)
    (out / "peaks.md").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
