"""Scheduled summaries: one crontab entry (python-crontab), marked so it is never duplicated,
that writes a dated report file each evening with the installing user's database and config."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from commcare.errors import InvalidValue

MARK = "commcare-summary"
FORMAT_SUFFIX = {"markdown": "md", "html": "html", "json": "json", "csv": "csv", "table": "txt"}


def crontab():
    """The user's crontab, or the file named by COMMCARE_CRONTAB (tests, or a system cron.d)."""
    from crontab import CronTab

    tabfile = os.environ.get("COMMCARE_CRONTAB")
    if tabfile:
        Path(tabfile).touch(exist_ok=True)
        return CronTab(tabfile=tabfile)
    return CronTab(user=True)


def executable() -> str:
    found = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if found and found.name == "commcare" and found.exists():
        return str(found)
    return f"{shlex.quote(sys.executable)} -m commcare"


def command_line(settings, report: str, fmt: str, directory: Path) -> str:
    env = {"COMMCARE_DB": settings.database, "COMMCARE_CONFIG": str(settings.config_path),
           "COMMCARE_TZ": settings.timezone, "COMMCARE_COMMUNITY": settings.community}
    if settings.lang:
        env["COMMCARE_LANG"] = settings.lang
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    target = f"{shlex.quote(str(directory))}/$(date +\\%F).{FORMAT_SUFFIX[fmt]}"
    return (f"{prefix} {executable()} report {report} --format {fmt} --output {target} --force"
            f" 2>>{shlex.quote(str(directory))}/commcare-cron.log")


def install(settings, at: str = "20:00", report: str = "today", fmt: str = "markdown", directory=None) -> dict:
    hour, minute = _parse_at(at)
    if report not in ("today", "week"):
        raise InvalidValue("value.bad_choice", field="report", value=report, choices="today|week")
    if fmt not in FORMAT_SUFFIX:
        raise InvalidValue("value.bad_choice", field="format", value=fmt, choices="|".join(FORMAT_SUFFIX))
    directory = Path(directory or Path.cwd()).expanduser().resolve()
    directory.mkdir(parents=True, exist_ok=True)
    cron = crontab()
    cron.remove_all(comment=MARK)
    job = cron.new(command=command_line(settings, report, fmt, directory), comment=MARK)
    job.setall(f"{minute} {hour} * * *")
    cron.write()
    return entry_row(job)


def _parse_at(at: str) -> tuple[int, int]:
    try:
        hour, minute = (int(p) for p in at.strip().split(":"))
        if 0 <= hour < 24 and 0 <= minute < 60:
            return hour, minute
    except ValueError:
        pass
    raise InvalidValue("value.bad_when", field="at", value=at)


def show() -> list[dict]:
    return [entry_row(job) for job in crontab().find_comment(MARK)]


def remove() -> int:
    cron = crontab()
    count = len(list(cron.find_comment(MARK)))
    cron.remove_all(comment=MARK)
    cron.write()
    return count


def entry_row(job) -> dict:
    return {"schedule": str(job.slices), "command": job.command, "enabled": job.is_enabled()}
