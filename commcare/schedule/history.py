"""The scheduled summary's record of itself: when it is due, how each run ended, and whether
someone must be told.

A small JSON-lines file beside the register (``commcare.db`` -> ``commcare.db.schedule.jsonl``;
for a server database, ``schedule-<hash>.jsonl`` in the user data dir), created 0600, never
inside the register: a run that fails because the register is unusable is recorded all the
same. Lines are ``{"kind": "install" | "remove" | "run", "time": ISO, …}``; a run line holds
its slot (the ``--at`` moment it ran for), the report's date, the exit code, the file, the
message and each delivery. Every interactive command reads it (a few kilobytes, no SQLAlchemy)
to print one line while the last run failed or a run that was due did not happen.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

GRACE = dt.timedelta(minutes=15)  # a run that is due this long is late, not still starting
LATE = dt.timedelta(hours=3)  # Debian's cron runs a job up to 3 h late after the clock jumps
EARLY = dt.timedelta(minutes=2)  # a clock a little fast still runs the evening's report
KEEP = 200
TRIM_AT = 64 * 1024


def path_for(database: str) -> Path:
    from commcare.storage.engine import sqlite_path

    path = sqlite_path(database)
    if path is not None:
        return path.with_name(path.name + ".schedule.jsonl")
    import hashlib
    from urllib.parse import urlsplit

    parts = urlsplit(database)
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.netloc.rsplit("@", 1)[0].split(":", 1)[0] if "@" in parts.netloc else ""
    key = f"{parts.scheme}://{user}@{host}{parts.path}"  # without the password
    from commcare.config import user_data_dir

    return user_data_dir() / f"schedule-{hashlib.sha256(key.encode()).hexdigest()[:12]}.jsonl"


def append(path: Path, record: dict) -> None:
    """Add one line (the file created 0600); keep the last KEEP lines once it grows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        size = fh.tell()
    if size > TRIM_AT:
        _trim(path)


def _trim(path: Path) -> None:
    """Keep the last KEEP lines, rewritten whole (``outfile.through_temporary``)."""
    from commcare import outfile

    kept = "".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[-KEEP:]).encode("utf-8")
    outfile.through_temporary(path, lambda tmp: tmp.write_bytes(kept))


def read(path: Path) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "kind" in record and "time" in record:
            records.append(record)
    return records


def now(tz) -> dt.datetime:
    """The clock, or ``COMMCARE_NOW`` (as commands read it)."""
    fixed = os.environ.get("COMMCARE_NOW")
    clock = dt.datetime.now(dt.UTC)
    if fixed:
        from commcare.timeparse import parse_when

        return parse_when(fixed, tz, clock, field="COMMCARE_NOW")
    return clock


def _when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def slot_before(at: str, tz, moment: dt.datetime) -> dt.datetime:
    """The latest ``at`` (HH:MM in ``tz``) at or before ``moment``."""
    hour, minute = (int(p) for p in at.split(":"))
    local = moment.astimezone(tz)
    slot = dt.datetime.combine(local.date(), dt.time(hour, minute), tz)
    if slot > moment:
        slot = dt.datetime.combine(local.date() - dt.timedelta(days=1), dt.time(hour, minute), tz)
    return slot


def slot_to_run(at: str, tz, moment: dt.datetime, records: list[dict]) -> dt.datetime | None:
    """The slot a run started by cron at ``moment`` is for, or None when this is not the time
    (the line's other system-zone hour, or a slot that already ran)."""
    slot = slot_before(at, tz, moment + EARLY)
    if moment - slot >= LATE:
        return None
    if any(r.get("kind") == "run" and r.get("slot") and _when(r["slot"]) == slot for r in records):
        return None
    return slot


def schedule_of(records: list[dict]) -> dict | None:
    """The schedule in force: the last install (or, for a line installed by hand from
    ``--print``, what its runs say), unless removed since."""
    current = None
    for r in records:
        if r["kind"] == "install" and r.get("at") and r.get("timezone"):
            current = r
        elif r["kind"] == "remove":
            current = None
        elif (
            r["kind"] == "run"
            and r.get("at")
            and r.get("timezone")
            and (current is None or (current["at"], current["timezone"]) != (r["at"], r["timezone"]))
        ):
            current = {"kind": "install", "time": r.get("slot") or r["time"], "at": r["at"], "timezone": r["timezone"]}
    return current


def verdict(records: list[dict], moment: dt.datetime) -> dict | None:
    """What someone must hear of, or None: the last run failed (``failed``, or ``undelivered``
    when its file was written), or a slot passed with no run since (``missed``)."""
    runs = [r for r in records if r["kind"] == "run"]
    schedule = schedule_of(records)
    if schedule is not None:
        from zoneinfo import ZoneInfo

        slot = slot_before(schedule["at"], ZoneInfo(schedule["timezone"]), moment - GRACE)
        if slot >= _when(schedule["time"]) and not any(_when(r["time"]) >= slot for r in runs):
            return {"problem": "missed", "slot": slot.isoformat(), "message": ""}
    if runs and runs[-1].get("exit"):
        last = runs[-1]
        kind = (
            "undelivered" if last.get("file") and any(not d.get("ok") for d in last.get("delivery", [])) else "failed"
        )
        return {
            "problem": kind,
            "slot": last.get("slot") or last["time"],
            "message": last.get("message", ""),
            "exit": last["exit"],
            "file": last.get("file"),
        }
    return None


def describe(problem: dict, moment: dt.datetime, tz) -> str:
    """The one line that says it, in the current language."""
    from commcare.i18n import t

    when = _day_and_time(_when(problem["slot"]), moment, tz)
    message = " ".join(str(problem.get("message", "")).split())
    if len(message) > 160:
        message = message[:159] + "…"
    return t(f"schedule.warn_{problem['problem']}", when=when, message=message, code=problem.get("exit", ""))


def _day_and_time(slot: dt.datetime, moment: dt.datetime, tz) -> str:
    from commcare.i18n import t

    day, today = slot.astimezone(tz).date(), moment.astimezone(tz).date()
    hhmm = slot.astimezone(tz).strftime("%H:%M")
    if day == today:
        return t("schedule.today_at", time=hhmm)
    if day == today - dt.timedelta(days=1):
        return t("schedule.yesterday_at", time=hhmm)
    return f"{day.isoformat()} {hhmm}"


def warning(settings) -> str | None:
    """The line every interactive command prints while the scheduled summary is failing."""
    path = path_for(settings.database)
    if not path.exists():
        return None
    moment = now(settings.tz)
    problem = verdict(read(path), moment)
    return describe(problem, moment, settings.tz) if problem else None
