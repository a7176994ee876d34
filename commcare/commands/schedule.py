"""schedule install, show, remove, run, status: the cron entry of the scheduled evening summary,
what it runs, and how its runs went."""

import sys
from typing import Annotated

import typer

from commcare.commands.common import FormatOpt, emit, say, state, write_out
from commcare.commands.report import NotifyOpt, deliver_figures, failed_deliveries, notify_targets

app = typer.Typer(help="Cron entries for the scheduled evening summary.", no_args_is_help=True)

AtOpt = Annotated[str, typer.Option("--at", help="Time of day, HH:MM, in COMMCARE_TZ.")]
ReportOpt = Annotated[str, typer.Option("--report", help="today or week.")]
SchedFormatOpt = Annotated[str, typer.Option("--format", help="markdown, html, json or csv.")]
DirOpt = Annotated[
    str | None, typer.Option("--dir", help="Where the dated files go (default: here).", show_default=False)
]


@app.command("install")
def schedule_install(
    at: AtOpt = "20:00",
    report: ReportOpt = "today",
    fmt: SchedFormatOpt = "markdown",
    directory: DirOpt = None,
    notify: NotifyOpt = None,
    print_: Annotated[
        bool,
        typer.Option("--print", help="Print the line for a system crontab (/etc/cron.d) instead of installing it."),
    ] = False,
) -> None:
    """Install (or replace) the one cron entry that writes the evening report to DIR/YYYY-MM-DD.md
    at --at in COMMCARE_TZ, with this database, config, zone, language and community pinned.

    Example:
      commcare schedule install --at 20:00 --dir ~/reports
      commcare schedule install --at 20:00 --dir ~/reports --notify 'https://oapi.dingtalk.com/robot/send?access_token=TOKEN'
      commcare schedule install --at 20:00 --dir /srv/reports --print > /etc/cron.d/commcare
    """
    import time

    from commcare.commands.common import note
    from commcare.schedule import cron, history

    settings = state().settings
    entry = cron.plan(settings, at, report, fmt, directory, notify or ())
    if print_:
        sys.stdout.write(cron.system_line(entry) + "\n")
        return
    cron.install(entry)
    from commcare.schedule import notify as notify_mod

    kept = {k: v for k, v in entry.items() if k not in ("command", "notify")}
    history.append(
        history.path_for(settings.database),
        {
            "kind": "install",
            "time": history.now(settings.tz).isoformat(),
            **kept,
            "notify": [notify_mod.masked(u) for u in entry["notify"]],
        },
    )
    say(
        "schedule.installed_at",
        at=entry["at"],
        timezone=entry["timezone"],
        dir=entry["dir"],
        cron=entry["cron"],
        system=time.strftime("%Z"),
    )
    if not cron.cron_running():
        note("schedule.cron_not_running")


@app.command("show")
def schedule_show(fmt: FormatOpt = None) -> None:
    """Show the commcare cron entry, exactly as the crontab holds it.

    Example:
      commcare schedule show
    """
    from commcare.commands.common import note, out_format
    from commcare.schedule import cron

    rows = cron.show()
    if out_format(fmt) != "table":
        emit(rows, fmt)
    elif not rows:
        note("schedule.none")
    for row in rows if out_format(fmt) == "table" else ():
        sys.stdout.write(row["line"] + "\n")


@app.command("remove")
def schedule_remove() -> None:
    """Remove the commcare cron entry.

    Example:
      commcare schedule remove
    """
    from commcare.schedule import cron, history

    settings = state().settings
    from commcare.i18n import plural

    say("schedule.removed", entries=plural(cron.remove(), "count.entries"))
    path = history.path_for(settings.database)
    if path.exists():
        history.append(path, {"kind": "remove", "time": history.now(settings.tz).isoformat()})


@app.command("run")
def schedule_run(
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="The HH:MM (COMMCARE_TZ) the entry is for: run only when it is that time, once.",
            show_default=False,
        ),
    ] = None,
    report: ReportOpt = "today",
    fmt: SchedFormatOpt = "markdown",
    directory: DirOpt = None,
    notify: NotifyOpt = None,
) -> None:
    """What the cron entry runs: write DIR/<report date>.<ext> (replacing it), deliver it, and
    record how it went beside the register (commcare schedule status), even when it fails.

    Example:
      commcare schedule run --dir ~/reports
    """
    from commcare.schedule import cron

    st = state()
    st.schedule_quiet = True
    from commcare.identity import parse_choice

    report = parse_choice(report, cron.REPORTS, "report")
    record: dict = {
        "kind": "run",
        "time": None,
        "at": None,
        "timezone": None,
        "report": report,
        "slot": None,
        "date": None,
        "exit": 0,
        "file": None,
        "message": "",
        "delivery": [],
    }
    try:
        _run_scheduled(st, record, at, report, fmt, directory or ".", notify or ())
    except BaseException as exc:
        record["exit"], record["message"] = _outcome(exc, st)
        raise
    finally:
        if not record.get("skipped"):
            _record(st, record)


def _run_scheduled(st, record: dict, at: str | None, report: str, fmt: str, directory: str, notify) -> None:
    from commcare import reports
    from commcare.errors import InvalidValue, Refused
    from commcare.i18n import t
    from commcare.render import report as report_render
    from commcare.schedule import cron, history

    settings = st.settings
    moment = history.now(settings.tz)
    record.update(time=moment.isoformat(), timezone=settings.timezone)
    day = moment.astimezone(settings.tz).date()
    if at:
        hour, minute = cron.parse_at(at)
        at = f"{hour:02d}:{minute:02d}"
        slot = history.slot_to_run(at, settings.tz, moment, history.read(history.path_for(settings.database)))
        if slot is None:  # the line's other system-zone hour, or this evening's run is done
            record["skipped"] = True
            return
        record.update(at=at, slot=slot.isoformat())
        day = slot.astimezone(settings.tz).date()
    record["date"] = day.isoformat()
    if fmt not in cron.FORMAT_SUFFIX:
        raise InvalidValue("value.bad_choice", field="format", value=fmt, choices="|".join(cron.FORMAT_SUFFIX))
    targets = notify_targets(notify)
    week = report == "week"
    from commcare.storage import maintenance

    st.refuse_missing_register()  # a register not there is no evening with nobody missed
    maintenance.nightly_check(settings.database)
    data = st.read(lambda conn, ctx: (reports.week_report if week else reports.day_report)(conn, ctx, day))
    from commcare.commands.report import made_by

    text = (report_render.render_range if week else report_render.render_day)(data, fmt, made=made_by())
    if fmt == "csv":
        text = "\ufeff" + text
    from commcare import outfile

    target = outfile.dated_path(directory, day, fmt)  # as report --output-dir writes it
    write_out(text, str(target), force=True)
    record["file"] = str(target)
    record["delivery"] = deliver_figures(data, report, targets) if targets else []
    problems = failed_deliveries(record["delivery"])
    if problems:
        raise Refused("schedule.undelivered", file=record["file"], problems=problems)
    record["message"] = t(
        "schedule.ran", time=moment.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M"), file=record["file"]
    )
    sys.stdout.write(record["message"] + "\n")


def _outcome(exc: BaseException, st) -> tuple[int, str]:
    """The exit code and one-line message the error boundary will give for ``exc``."""
    from commcare.errors import CommcareError
    from commcare.i18n import t

    if isinstance(exc, CommcareError):
        return exc.exit_code, exc.message()
    if isinstance(exc, typer.Exit):
        return exc.exit_code, ""
    if isinstance(exc, KeyboardInterrupt):
        return 130, "interrupted"
    from commcare.commands.common import database_failure  # the error boundary's own reading

    found = database_failure(exc) if isinstance(exc, Exception) else None
    if found is not None:
        return found.exit_code, found.message()
    return 1, t("error.internal", kind=type(exc).__name__)


def _record(st, record: dict) -> None:
    """Append the run's outcome beside the register, wherever the settings could be read."""
    import os

    from commcare.config import default_database
    from commcare.schedule import history

    try:
        database = st.settings.database
    except Exception:  # noqa: BLE001 - a broken config is one of the failures to record
        database = os.environ.get("COMMCARE_DB") or default_database()
    if record["time"] is None:
        import datetime as dt

        record["time"] = dt.datetime.now(dt.UTC).isoformat()
    history.append(history.path_for(database), record)


@app.command("status")
def schedule_status(
    fmt: FormatOpt = None,
    last: Annotated[int, typer.Option("--last", min=1, help="How many runs to show.")] = 10,
) -> None:
    """The last scheduled runs (time, exit code, file, delivery, message). Exits 1 when the last
    run failed or a run that was due did not happen.

    Example:
      commcare schedule status
      commcare schedule status --format json
    """
    from commcare.commands.common import out_format
    from commcare.schedule import history

    st = state()
    st.schedule_quiet = True
    settings = st.settings
    path = history.path_for(settings.database)
    records = history.read(path)
    moment = history.now(settings.tz)
    entry, problem = history.schedule_of(records), history.verdict(records, moment)
    runs = [r for r in records if r["kind"] == "run"][-last:]
    if out_format(fmt) == "json":
        emit({"schedule": entry, "runs": runs, "problem": problem, "record": str(path)}, "json")
    else:
        _status_table(entry, runs, problem, moment, settings.tz, fmt)
    if problem:
        raise typer.Exit(1)


def _status_table(entry, runs, problem, moment, tz, fmt) -> None:
    import datetime as dt

    from commcare.i18n import t
    from commcare.schedule import history

    if entry is None and not runs:
        sys.stdout.write(t("schedule.none") + "\n")
        return
    if entry is not None:
        sys.stdout.write(t("schedule.status_entry", at=entry["at"], timezone=entry["timezone"]) + "\n")
    rows = [
        {
            "time": dt.datetime.fromisoformat(r["time"]).astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            "date": r.get("date") or "",
            "exit": r.get("exit"),
            "file": r.get("file") or "",
            "delivery": " ".join(
                f"{t('notify.kind.' + d['kind'])}{'✓' if d['ok'] else '✗'}{d['tries']}" for d in r.get("delivery", [])
            ),
            "message": r.get("message", ""),
        }
        for r in runs
    ]
    if rows:
        emit(rows, fmt, columns=["time", "date", "exit", "file", "delivery", "message"])
    if problem:
        sys.stdout.write(history.describe(problem, moment, tz) + "\n")
    else:
        sys.stdout.write(t("schedule.status_ok" if rows else "schedule.status_no_runs") + "\n")
