"""Scheduled summaries: one crontab entry (python-crontab), marked so it is never duplicated,
that runs ``commcare schedule run`` each evening with the installing user's database, config,
zone, language and community pinned.

What the line must survive, because cron is not a shell session:

- cron cuts a command at its first ``%`` (the rest becomes standard input), so the line holds
  none: the report names its own dated file (``schedule run --dir``), and a ``%`` in a pinned
  value is refused at install time;
- cron has no LANG and no TZ of ours: the language (default zh) and ``COMMCARE_TZ`` are pinned;
- Debian's cron (vixie-cron 3.0pl1) ignores ``CRON_TZ`` and fires in the system's zone, so the
  hour and minute in the line are the system-zone times at which ``--at`` in ``COMMCARE_TZ``
  falls over the coming year (one time, or two where one zone keeps summer time and the other
  does not); ``schedule run --at`` runs only at the one that is ``--at`` in ``COMMCARE_TZ``
  that day and quietly does nothing at the other;
- the log it appends to is made under ``umask 077``: 0600.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import shutil
import sys
from pathlib import Path

from commcare.errors import InvalidValue
from commcare.outfile import EXTENSIONS

MARK = "commcare-summary"
FORMAT_SUFFIX = EXTENSIONS  # the file a run writes is named as report --output-dir names it
REPORTS = ("today", "week")
CRON_PACKAGE = "cron"  # the Debian (and Ubuntu) package with the daemon and crontab(1)
LOG_NAME = "commcare-cron.log"


def crontab():
    """The user's crontab, or the file named by COMMCARE_CRONTAB. A file in a ``cron.d``
    directory (``/etc/cron.d/commcare``) is a system crontab: its lines carry the user field."""
    from crontab import CronTab

    tabfile = os.environ.get("COMMCARE_CRONTAB")
    if tabfile:
        path = Path(tabfile)
        if not path.exists():
            path.touch(mode=0o644)  # cron ignores a cron.d file writable by group or others
        return CronTab(tabfile=tabfile, user=False if path.parent.name == "cron.d" else None)
    if shutil.which("crontab") is None:
        raise InvalidValue("schedule.no_cron", field="crontab", package=CRON_PACKAGE)
    try:
        return CronTab(user=True)
    except OSError as exc:  # crontab -l refused (cron.allow, a broken spool)
        raise InvalidValue("schedule.crontab_failed", field="crontab", problem=_last_line(exc))


def system_tab() -> bool:
    tabfile = os.environ.get("COMMCARE_CRONTAB")
    return Path(tabfile).parent.name == "cron.d" if tabfile else False


def executable() -> str:
    found = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if found and found.name == "commcare" and found.exists():
        return shlex.quote(str(found))
    return f"{shlex.quote(sys.executable)} -m commcare"


def pinned_lang(settings) -> str:
    """The language the evening report is written in: the one chosen (option, env, config),
    else English for an English locale, else Chinese (cron's C locale is not a choice)."""
    if settings.lang:
        return settings.lang
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "")
        if value:
            return "en" if value.lower().startswith("en") else "zh"
    return "zh"


def pinned_env(settings) -> dict[str, str]:
    """The settings the scheduled run must share with this one. The community only when one
    was named (option, environment or config): a register with one community uses it
    unnamed, and pinning the unnamed default would refuse every run of a register whose
    community has a name (``commcare.communities``)."""
    from commcare.communities import named_in
    from commcare.storage.engine import sqlite_path

    path = sqlite_path(settings.database)
    env = {
        "COMMCARE_DB": str(path) if path is not None else settings.database,
        "COMMCARE_CONFIG": str(Path(settings.config_path).expanduser().resolve()),
        "COMMCARE_TZ": settings.timezone,
        "COMMCARE_LANG": pinned_lang(settings),
    }
    community = named_in(settings)
    if community is not None:
        env["COMMCARE_COMMUNITY"] = community
    return env


def _safe(field: str, value: str) -> str:
    """A value the line may hold: cron ends a command at ``%``, and a line at a newline."""
    if "%" in value or any(not c.isprintable() for c in value):
        raise InvalidValue("schedule.bad_char", field=field, value=value)
    return value


def command_line(settings, at: str, report: str, fmt: str, directory: Path, notify=()) -> str:
    env = {k: _safe(k, v) for k, v in pinned_env(settings).items()}
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    where = shlex.quote(_safe("dir", str(directory)))
    targets = "".join(f" --notify {shlex.quote(_safe('notify', url))}" for url in notify)
    log = shlex.quote(str(directory / LOG_NAME))
    return (
        f"umask 077; {prefix} {executable()} schedule run --at {at} --report {report}"
        f" --format {fmt} --dir {where}{targets} >>{log} 2>&1"
    )


def cron_times(hour: int, minute: int, zone, local=None, start: dt.date | None = None) -> list[tuple[int, int]]:
    """The (hour, minute) pairs, in the system's zone (``local``; None: this machine's), at
    which ``hour:minute`` in ``zone`` falls on each day of the coming year."""
    start = start or dt.date.today()
    seen = set()
    for n in range(366):
        moment = dt.datetime.combine(start + dt.timedelta(days=n), dt.time(hour, minute), zone)
        here = moment.astimezone(local)
        seen.add((here.hour, here.minute))
    return sorted(seen)


def cron_spec(times: list[tuple[int, int]]) -> str:
    minutes = sorted({m for _, m in times})
    hours = sorted({h for h, _ in times})
    return f"{','.join(map(str, minutes))} {','.join(map(str, hours))} * * *"


def parse_at(at: str) -> tuple[int, int]:
    try:
        hour, minute = (int(p) for p in at.strip().split(":"))
        if 0 <= hour < 24 and 0 <= minute < 60:
            return hour, minute
    except ValueError:
        pass
    raise InvalidValue("value.bad_when", field="at", value=at)


def plan(settings, at: str = "20:00", report: str = "today", fmt: str = "markdown", directory=None, notify=()) -> dict:
    """The entry to install, checked: its cron time and its command line."""
    from commcare.schedule import notify as notify_mod

    hour, minute = parse_at(at)
    from commcare.identity import parse_choice

    report = parse_choice(report, REPORTS, "report")  # 今日, 本周 too; the line holds the slug
    if fmt not in FORMAT_SUFFIX:
        raise InvalidValue("value.bad_choice", field="format", value=fmt, choices="|".join(FORMAT_SUFFIX))
    for target in notify:
        notify_mod.check_target(target, settings.file)
    directory = Path(directory or Path.cwd()).expanduser().resolve()
    at = f"{hour:02d}:{minute:02d}"
    return {
        "at": at,
        "timezone": settings.timezone,
        "report": report,
        "format": fmt,
        "dir": str(directory),
        "notify": list(notify),
        "cron": cron_spec(cron_times(hour, minute, settings.tz)),
        "command": command_line(settings, at, report, fmt, directory, notify),
    }


def system_line(entry: dict) -> str:
    """The entry as a line of a system crontab (``/etc/cron.d/commcare``): with the user field."""
    import getpass

    return f"{entry['cron']} {getpass.getuser()} {entry['command']} # {MARK}"


def install(entry: dict) -> dict:
    """Write the entry (replacing any earlier one) and create its log 0600."""
    directory = Path(entry["dir"])
    directory.mkdir(parents=True, exist_ok=True)
    os.close(os.open(directory / LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    cron = crontab()
    cron.remove_all(comment=MARK)
    if system_tab():
        import getpass

        job = cron.new(command=entry["command"], comment=MARK, user=getpass.getuser())
    else:
        job = cron.new(command=entry["command"], comment=MARK)
    job.setall(entry["cron"])
    _write(cron)
    return entry_row(job)


def _write(cron) -> None:
    try:
        cron.write()
    except OSError as exc:
        raise InvalidValue("schedule.crontab_failed", field="crontab", problem=_last_line(exc))


def _last_line(exc: OSError) -> str:
    lines = str(exc).strip().splitlines()
    return lines[-1] if lines else type(exc).__name__


def cron_running() -> bool:
    """Whether a cron daemon is running here (Debian's writes /run/crond.pid)."""
    for pidfile in ("/run/crond.pid", "/var/run/crond.pid"):
        try:
            pid = int(Path(pidfile).read_text().strip())
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ValueError):
            continue
        if stat.rsplit(")", 1)[-1].split()[0] != "Z":  # a daemon that has exited but not been reaped
            return True
    return False


def show() -> list[dict]:
    return [entry_row(job) for job in crontab().find_comment(MARK)]


def remove() -> int:
    cron = crontab()
    count = len(list(cron.find_comment(MARK)))
    cron.remove_all(comment=MARK)
    _write(cron)
    return count


def entry_row(job) -> dict:
    return {"schedule": str(job.slices), "command": job.command, "enabled": job.is_enabled(), "line": job.render()}
