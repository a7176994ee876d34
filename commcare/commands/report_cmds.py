"""report and schedule commands: the evening summary, by hand or from cron."""

import sys
from typing import Annotated

import typer

from commcare.commands.common import (
    ForceOpt,
    FormatOpt,
    OutputOpt,
    color_enabled,
    emit,
    say,
    state,
    write_out,
)

report_app = typer.Typer(help="Reports: what was done, what is overdue, who was missed.", no_args_is_help=True)
schedule_app = typer.Typer(help="Cron entries for the scheduled evening summary.", no_args_is_help=True)
ALL_FORMATS = ("table", "json", "csv", "markdown", "html")
FailOpt = Annotated[str | None, typer.Option("--fail-on", help="Exit 1 when there is something to act on: overdue, missed or any.")]
AllOpt = Annotated[bool, typer.Option("--all-communities", help="One summary with a row per community.")]
OutputDirOpt = Annotated[str | None, typer.Option(
    "--output-dir", help="Write the report to DIR/<report date>.<ext> (md, html, json, csv or txt by "
    "--format; the date in COMMCARE_TZ, a week's or range's last day), created 0600 like --output; "
    "the directory is made if missing. For cron.", show_default=False)]
NotifyOpt = Annotated[list[str] | None, typer.Option(
    "--notify", help="Also send the day's figures (no names or numbers) to a 企业微信/钉钉/飞书 robot webhook, "
                     "any other https URL (JSON), or mailto:ADDRESS (SMTP from the config). Repeatable.",
    show_default=False)]


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")
    app.add_typer(schedule_app, name="schedule")


class Target:
    """Where a report goes: standard output, ``--output FILE``, or ``--output-dir DIR`` (the
    file named by the report's date, known once the report is made)."""

    def __init__(self, fmt: str | None, output: str | None, output_dir: str | None, force: bool) -> None:
        from commcare.commands.common import out_format
        from commcare.errors import InvalidValue

        if output and output_dir:
            raise InvalidValue("output.both", field="output-dir")
        if output_dir is not None and not output_dir.strip():
            raise InvalidValue("value.empty", field="output-dir")
        self.fmt = out_format(fmt, ALL_FORMATS)
        self.output, self.output_dir, self.force = output, output_dir, force

    @property
    def color(self) -> bool:
        return not self.output and not self.output_dir and color_enabled()

    def write(self, text: str, last_day: str) -> None:
        import datetime as dt

        output = self.output
        if self.output_dir:
            from commcare import outfile

            output = str(outfile.dated_path(self.output_dir, dt.date.fromisoformat(last_day), self.fmt))
        write_out(text, output, self.force)


def _check_notify(notify, all_communities: bool = False) -> list[str]:
    from commcare import notify as notify_mod
    from commcare.errors import InvalidValue

    targets = list(notify or ())
    if targets and all_communities:
        raise InvalidValue("notify.all_communities", field="notify")
    for target in targets:
        notify_mod.check_target(target, state().settings.file)
    return targets


def _deliver(data: dict, report: str, targets: list[str]) -> list[dict]:
    """Send the figures; each failure is one line on stderr, each delivery a note."""
    from commcare import notify as notify_mod
    from commcare.commands.common import note
    from commcare.i18n import t

    results = notify_mod.deliver(targets, notify_mod.figures(data, report), state().settings.file)
    for r in results:
        if r["ok"]:
            note("schedule.delivered", to=r["to"], kind=t(f"notify.kind.{r['kind']}"))
    return results


def _problems(results: list[dict]) -> str:
    from commcare.i18n import t

    return "; ".join(t("notify.problem", to=r["to"], error=r["error"], tries=r["tries"]) for r in results if not r["ok"])


def _day(day_text: str | None, target: Target, fail_on, all_communities, notify=None) -> None:
    from commcare import report_render, reports
    from commcare.timeparse import parse_date

    fmt = target.fmt
    targets = _check_notify(notify, all_communities)

    def run(conn, ctx):
        day = parse_date(day_text, ctx.tz, ctx.now()) if day_text else ctx.today()
        if all_communities:
            return _all(conn, ctx, day)
        return reports.day_report(conn, ctx, day)

    data = state().read_core(run)
    if all_communities:
        target.write(_render_all(data, fmt), data["date"])
    else:
        target.write(report_render.render_day(data, fmt, color=target.color), data["date"])
    problems = _problems(_deliver(data, "today", targets)) if targets else ""
    if problems:
        from commcare.errors import Refused

        raise Refused("notify.failed", problems=problems)
    _fail_on(data, fail_on)


def _all(conn, ctx, day) -> dict:
    import dataclasses

    from commcare import communities, reports
    from commcare.context import Ctx

    rows = []
    for cid, name in communities.rows(conn):
        sub = Ctx(dataclasses.replace(ctx.settings, community=name), clock=ctx.clock,
                  _community_id=cid, _community_name=name)
        full = reports.day_report(conn, sub, day)
        rows.append({"community": name, "opened": full["requests"]["opened"], "resolved": full["requests"]["resolved"],
                     "open": full["requests"]["open"], "overdue": full["requests"]["overdue"],
                     "calls_due": full["calls"]["due"], "calls_made": full["calls"]["made"],
                     "missed": len(full["calls"]["missed"])})
    keys = ("opened", "resolved", "open", "overdue", "calls_due", "calls_made", "missed")
    total = {k: sum(r[k] for r in rows) for k in keys}
    return {"date": day.isoformat(), "communities": rows, "total": total,
            "requests": {"overdue": total["overdue"]}, "calls": {"missed": [None] * total["missed"]}}


def _render_all(data: dict, fmt: str) -> str:
    from commcare import render, report_render
    from commcare.i18n import t

    if fmt == "json":
        clean = {k: v for k, v in data.items() if k in ("date", "communities", "total")}
        return render.to_json(clean)
    rows = data["communities"] + [{"community": "Σ", **data["total"]}]
    cols = ["community", "opened", "resolved", "open", "overdue", "calls_due", "calls_made", "missed"]
    return render.render(rows, fmt, cols, report_render.headers(cols), t("report.all_title", date=data["date"]), False, 100)


def _fail_on(data: dict, fail_on: str | None) -> None:
    if not fail_on:
        return
    from commcare.errors import InvalidValue, Refused

    if fail_on not in ("overdue", "missed", "any"):
        raise InvalidValue("value.bad_choice", field="fail-on", value=fail_on, choices="overdue|missed|any")
    found = []
    if fail_on in ("overdue", "any") and data["requests"]["overdue"]:
        found.append(f"overdue {data['requests']['overdue']}")
    if fail_on in ("missed", "any") and data["calls"]["missed"]:
        found.append(f"missed {len(data['calls']['missed'])}")
    if found:
        raise Refused("report.fail_on", what=", ".join(found))


@report_app.command("today")
def report_today(fmt: FormatOpt = None, output: OutputOpt = None, fail_on: FailOpt = None,
                 all_communities: AllOpt = False, force: ForceOpt = False, output_dir: OutputDirOpt = None,
                 notify: NotifyOpt = None) -> None:
    """Today's report: requests opened/resolved/open/overdue, calls due/made/missed, liaisons,
    staff health, donations. --notify also sends the figures to the office's group chat or mail.

    Example:
      commcare report today
      commcare report today --format markdown --output 2026-05-08.md --fail-on missed
      commcare report today --format markdown --output-dir ~/reports --force
      commcare report today --notify 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY'
    """
    _day(None, Target(fmt, output, output_dir, force), fail_on, all_communities, notify=notify)


@report_app.command("day")
def report_day(date: Annotated[str, typer.Argument(help="The day, YYYY-MM-DD (or yesterday).")],
               fmt: FormatOpt = None, output: OutputOpt = None, fail_on: FailOpt = None,
               all_communities: AllOpt = False, force: ForceOpt = False, output_dir: OutputDirOpt = None) -> None:
    """The report of a past day, as it stood at the end of that day.

    Example:
      commcare report day 2026-05-07 --format json
      commcare report day yesterday --format html --output-dir ~/reports
    """
    _day(date, Target(fmt, output, output_dir, force), fail_on, all_communities)


def _range(first: str | None, last: str | None, target: Target, week: bool) -> None:
    import datetime as dt

    from commcare import report_render, reports
    from commcare.timeparse import parse_date

    def run(conn, ctx):
        end = parse_date(last, ctx.tz, ctx.now(), "to") if last else ctx.today()
        if week:
            return reports.week_report(conn, ctx, end)
        start = parse_date(first, ctx.tz, ctx.now(), "from") if first else end - dt.timedelta(days=6)
        return reports.range_report(conn, ctx, start, end)

    data = state().read_core(run)
    target.write(report_render.render_range(data, target.fmt, color=target.color), data["to"])


@report_app.command("week")
def report_week(date: Annotated[str | None, typer.Option("--date", help="Last day of the week (default today).")] = None,
                fmt: FormatOpt = None, output: OutputOpt = None, force: ForceOpt = False,
                output_dir: OutputDirOpt = None) -> None:
    """The seven days ending today (or --date): a row per day, with totals.

    Example:
      commcare report week --format html --output week.html
      commcare report week --format markdown --output-dir ~/reports
    """
    _range(None, date, Target(fmt, output, output_dir, force), week=True)


@report_app.command("range")
def report_range(from_: Annotated[str, typer.Option("--from", help="First day.")],
                 to: Annotated[str, typer.Option("--to", help="Last day.")],
                 fmt: FormatOpt = None, output: OutputOpt = None, force: ForceOpt = False,
                 output_dir: OutputDirOpt = None) -> None:
    """Any span of days: a row per day, with totals.

    Example:
      commcare report range --from 2026-05-01 --to 2026-05-31 --format csv
      commcare report range --from 2026-05-01 --to 2026-05-31 --format csv --output-dir ~/reports
    """
    _range(from_, to, Target(fmt, output, output_dir, force), week=False)


AtOpt = Annotated[str, typer.Option("--at", help="Time of day, HH:MM, in COMMCARE_TZ.")]
ReportOpt = Annotated[str, typer.Option("--report", help="today or week.")]
SchedFormatOpt = Annotated[str, typer.Option("--format", help="markdown, html, json or csv.")]
DirOpt = Annotated[str | None, typer.Option("--dir", help="Where the dated files go (default: here).", show_default=False)]


@schedule_app.command("install")
def schedule_install(
    at: AtOpt = "20:00", report: ReportOpt = "today", fmt: SchedFormatOpt = "markdown", directory: DirOpt = None,
    notify: NotifyOpt = None,
    print_: Annotated[bool, typer.Option("--print", help="Print the line for a system crontab (/etc/cron.d) instead of installing it.")] = False,
) -> None:
    """Install (or replace) the one cron entry that writes the evening report to DIR/YYYY-MM-DD.md
    at --at in COMMCARE_TZ, with this database, config, zone, language and community pinned.

    Example:
      commcare schedule install --at 20:00 --dir ~/reports
      commcare schedule install --at 20:00 --dir ~/reports --notify 'https://oapi.dingtalk.com/robot/send?access_token=TOKEN'
      commcare schedule install --at 20:00 --dir /srv/reports --print > /etc/cron.d/commcare
    """
    import time

    from commcare import schedule, schedule_log
    from commcare.commands.common import note

    settings = state().settings
    entry = schedule.plan(settings, at, report, fmt, directory, notify or ())
    if print_:
        sys.stdout.write(schedule.system_line(entry) + "\n")
        return
    schedule.install(entry)
    from commcare import notify as notify_mod

    kept = {k: v for k, v in entry.items() if k not in ("command", "notify")}
    schedule_log.append(schedule_log.path_for(settings.database), {
        "kind": "install", "time": schedule_log.now(settings.tz).isoformat(), **kept,
        "notify": [notify_mod.masked(u) for u in entry["notify"]]})
    say("schedule.installed_at", at=entry["at"], timezone=entry["timezone"], dir=entry["dir"], cron=entry["cron"],
        system=time.strftime("%Z"))
    if not schedule.cron_running():
        note("schedule.cron_not_running")


@schedule_app.command("show")
def schedule_show(fmt: FormatOpt = None) -> None:
    """Show the commcare cron entry, exactly as the crontab holds it.

    Example:
      commcare schedule show
    """
    from commcare import schedule
    from commcare.commands.common import note, out_format

    rows = schedule.show()
    if out_format(fmt) != "table":
        emit(rows, fmt)
    elif not rows:
        note("schedule.none")
    for row in rows if out_format(fmt) == "table" else ():
        sys.stdout.write(row["line"] + "\n")


@schedule_app.command("remove")
def schedule_remove() -> None:
    """Remove the commcare cron entry.

    Example:
      commcare schedule remove
    """
    from commcare import schedule, schedule_log

    settings = state().settings
    say("schedule.removed", count=schedule.remove())
    path = schedule_log.path_for(settings.database)
    if path.exists():
        schedule_log.append(path, {"kind": "remove", "time": schedule_log.now(settings.tz).isoformat()})


@schedule_app.command("run")
def schedule_run(
    at: Annotated[str | None, typer.Option("--at", help="The HH:MM (COMMCARE_TZ) the entry is for: run only when it is that time, once.", show_default=False)] = None,
    report: ReportOpt = "today", fmt: SchedFormatOpt = "markdown", directory: DirOpt = None, notify: NotifyOpt = None,
) -> None:
    """What the cron entry runs: write DIR/<report date>.<ext> (replacing it), deliver it, and
    record how it went beside the register (commcare schedule status), even when it fails.

    Example:
      commcare schedule run --dir ~/reports
    """
    from commcare import schedule

    st = state()
    st.schedule_quiet = True
    if report not in schedule.REPORTS:
        from commcare.errors import InvalidValue

        raise InvalidValue("value.bad_choice", field="report", value=report, choices="|".join(schedule.REPORTS))
    record = {"kind": "run", "time": None, "at": None, "timezone": None, "report": report, "slot": None, "date": None,
              "exit": 0, "file": None, "message": "", "delivery": []}
    try:
        _run_scheduled(st, record, at, report, fmt, directory or ".", notify or ())
    except BaseException as exc:
        record["exit"], record["message"] = _outcome(exc, st)
        raise
    finally:
        if not record.get("skipped"):
            _record(st, record)


def _run_scheduled(st, record: dict, at: str | None, report: str, fmt: str, directory: str, notify) -> None:
    from commcare import report_render, reports, schedule, schedule_log
    from commcare.errors import InvalidValue, Refused
    from commcare.i18n import t

    settings = st.settings
    moment = schedule_log.now(settings.tz)
    record.update(time=moment.isoformat(), timezone=settings.timezone)
    day = moment.astimezone(settings.tz).date()
    if at:
        hour, minute = schedule.parse_at(at)
        at = f"{hour:02d}:{minute:02d}"
        slot = schedule_log.slot_to_run(at, settings.tz, moment, schedule_log.read(schedule_log.path_for(settings.database)))
        if slot is None:  # the line's other system-zone hour, or this evening's run is done
            record["skipped"] = True
            return
        record.update(at=at, slot=slot.isoformat())
        day = slot.astimezone(settings.tz).date()
    record["date"] = day.isoformat()
    if fmt not in schedule.FORMAT_SUFFIX:
        raise InvalidValue("value.bad_choice", field="format", value=fmt, choices="|".join(schedule.FORMAT_SUFFIX))
    targets = _check_notify(notify)
    week = report == "week"
    data = st.read_core(lambda conn, ctx: (reports.week_report if week else reports.day_report)(conn, ctx, day))
    text = (report_render.render_range if week else report_render.render_day)(data, fmt)
    from commcare import outfile

    target = outfile.dated_path(directory, day, fmt)  # as report --output-dir writes it
    write_out(text, str(target), force=True)
    record["file"] = str(target)
    record["delivery"] = _deliver(data, report, targets) if targets else []
    problems = _problems(record["delivery"])
    if problems:
        raise Refused("schedule.undelivered", file=record["file"], problems=problems)
    record["message"] = t("schedule.ran", time=moment.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M"), file=record["file"])
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
    if type(exc).__module__.startswith("sqlalchemy"):
        from commcare.db import display_url, translate

        found = translate(exc, display_url(st.settings.database))
        if found is not None:
            return found.exit_code, found.message()
    return 1, t("error.internal", kind=type(exc).__name__)


def _record(st, record: dict) -> None:
    """Append the run's outcome beside the register, wherever the settings could be read."""
    import os

    from commcare import schedule_log
    from commcare.config import default_database

    try:
        database = st.settings.database
    except Exception:  # noqa: BLE001 - a broken config is one of the failures to record
        database = os.environ.get("COMMCARE_DB") or default_database()
    if record["time"] is None:
        import datetime as dt

        record["time"] = dt.datetime.now(dt.UTC).isoformat()
    schedule_log.append(schedule_log.path_for(database), record)


@schedule_app.command("status")
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
    from commcare import schedule_log
    from commcare.commands.common import out_format

    st = state()
    st.schedule_quiet = True
    settings = st.settings
    path = schedule_log.path_for(settings.database)
    records = schedule_log.read(path)
    moment = schedule_log.now(settings.tz)
    entry, problem = schedule_log.schedule_of(records), schedule_log.verdict(records, moment)
    runs = [r for r in records if r["kind"] == "run"][-last:]
    if out_format(fmt) == "json":
        emit({"schedule": entry, "runs": runs, "problem": problem, "record": str(path)}, "json")
    else:
        _status_table(entry, runs, problem, moment, settings.tz, fmt)
    if problem:
        raise typer.Exit(1)


def _status_table(entry, runs, problem, moment, tz, fmt) -> None:
    import datetime as dt

    from commcare import schedule_log
    from commcare.i18n import t

    if entry is None and not runs:
        sys.stdout.write(t("schedule.none") + "\n")
        return
    if entry is not None:
        sys.stdout.write(t("schedule.status_entry", at=entry["at"], timezone=entry["timezone"]) + "\n")
    rows = [{"time": dt.datetime.fromisoformat(r["time"]).astimezone(tz).strftime("%Y-%m-%d %H:%M"),
             "date": r.get("date") or "", "exit": r.get("exit"), "file": r.get("file") or "",
             "delivery": " ".join(f"{t('notify.kind.' + d['kind'])}{'✓' if d['ok'] else '✗'}{d['tries']}"
                                  for d in r.get("delivery", [])),
             "message": r.get("message", "")} for r in runs]
    if rows:
        emit(rows, fmt, columns=["time", "date", "exit", "file", "delivery", "message"])
    if problem:
        sys.stdout.write(schedule_log.describe(problem, moment, tz) + "\n")
    else:
        sys.stdout.write(t("schedule.status_ok" if rows else "schedule.status_no_runs") + "\n")
