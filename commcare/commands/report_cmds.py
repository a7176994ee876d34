"""report and schedule commands: the evening summary, by hand or from cron."""

import sys
from typing import Annotated

import typer

from commcare.commands.common import (
    FormatOpt,
    OutputOpt,
    color_enabled,
    emit,
    say,
    state,
)

report_app = typer.Typer(help="Reports: what was done, what is overdue, who was missed.", no_args_is_help=True)
schedule_app = typer.Typer(help="Cron entries for the scheduled evening summary.", no_args_is_help=True)
ALL_FORMATS = ("table", "json", "csv", "markdown", "html")
FailOpt = Annotated[str | None, typer.Option("--fail-on", help="Exit 1 when there is something to act on: overdue, missed or any.")]
AllOpt = Annotated[bool, typer.Option("--all-communities", help="One summary with a row per community.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing output file.")]


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")
    app.add_typer(schedule_app, name="schedule")


def _write(text: str, output: str | None, force: bool = True) -> None:
    from commcare import render

    if output:
        render.write_private(output, text, force=True)
    else:
        sys.stdout.write(text)


def _day(day_text: str | None, fmt, output, fail_on, all_communities, force=True) -> None:
    from commcare import report_render, reports
    from commcare.commands.common import out_format
    from commcare.timeparse import parse_date

    fmt = out_format(fmt, ALL_FORMATS)

    def run(conn, ctx):
        day = parse_date(day_text, ctx.tz, ctx.now()) if day_text else ctx.today()
        if all_communities:
            return _all(conn, ctx, day)
        return reports.day_report(conn, ctx, day)

    data = state().read(run)
    if all_communities:
        _write(_render_all(data, fmt), output)
    else:
        _write(report_render.render_day(data, fmt, color=output is None and color_enabled()), output)
    _fail_on(data, fail_on)


def _all(conn, ctx, day) -> dict:
    import dataclasses

    from commcare import reports
    from commcare.context import Ctx

    rows = []
    for name in reports.communities(conn):
        sub = Ctx(dataclasses.replace(ctx.settings, community=name), clock=ctx.clock)
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
                 all_communities: AllOpt = False, force: ForceOpt = False) -> None:
    """Today's report: requests opened/resolved/open/overdue, calls due/made/missed, liaisons,
    staff health, donations.

    Example:
      commcare report today
      commcare report today --format markdown --output 2026-05-08.md --fail-on missed
    """
    _day(None, fmt, output, fail_on, all_communities)


@report_app.command("day")
def report_day(date: Annotated[str, typer.Argument(help="The day, YYYY-MM-DD (or yesterday).")],
               fmt: FormatOpt = None, output: OutputOpt = None, fail_on: FailOpt = None,
               all_communities: AllOpt = False) -> None:
    """The report of a past day, as it stood at the end of that day.

    Example:
      commcare report day 2026-05-07 --format json
    """
    _day(date, fmt, output, fail_on, all_communities)


def _range(first: str | None, last: str | None, fmt, output, week: bool) -> None:
    import datetime as dt

    from commcare import report_render, reports
    from commcare.commands.common import out_format
    from commcare.timeparse import parse_date

    fmt = out_format(fmt, ALL_FORMATS)

    def run(conn, ctx):
        end = parse_date(last, ctx.tz, ctx.now(), "to") if last else ctx.today()
        if week:
            return reports.week_report(conn, ctx, end)
        start = parse_date(first, ctx.tz, ctx.now(), "from") if first else end - dt.timedelta(days=6)
        return reports.range_report(conn, ctx, start, end)

    data = state().read(run)
    _write(report_render.render_range(data, fmt, color=output is None and color_enabled()), output)


@report_app.command("week")
def report_week(date: Annotated[str | None, typer.Option("--date", help="Last day of the week (default today).")] = None,
                fmt: FormatOpt = None, output: OutputOpt = None) -> None:
    """The seven days ending today (or --date): a row per day, with totals.

    Example:
      commcare report week --format html --output week.html
    """
    _range(None, date, fmt, output, week=True)


@report_app.command("range")
def report_range(from_: Annotated[str, typer.Option("--from", help="First day.")],
                 to: Annotated[str, typer.Option("--to", help="Last day.")],
                 fmt: FormatOpt = None, output: OutputOpt = None) -> None:
    """Any span of days: a row per day, with totals.

    Example:
      commcare report range --from 2026-05-01 --to 2026-05-31 --format csv
    """
    _range(from_, to, fmt, output, week=False)


@schedule_app.command("install")
def schedule_install(
    at: Annotated[str, typer.Option(help="Time of day, HH:MM.")] = "20:00",
    report: Annotated[str, typer.Option(help="today or week.")] = "today",
    fmt: Annotated[str, typer.Option("--format", help="markdown, html, json, csv.")] = "markdown",
    directory: Annotated[str | None, typer.Option("--dir", help="Where the dated files go (default: here).")] = None,
) -> None:
    """Install (or replace) the cron entry that writes the evening report to DIR/YYYY-MM-DD.md.

    Example:
      commcare schedule install --at 20:00 --dir ~/reports
    """
    from commcare import schedule

    row = schedule.install(state().settings, at, report, fmt, directory)
    say("schedule.installed", schedule=row["schedule"])


@schedule_app.command("show")
def schedule_show(fmt: FormatOpt = None) -> None:
    """Show the commcare cron entry.

    Example:
      commcare schedule show
    """
    from commcare import schedule

    emit(schedule.show(), fmt)


@schedule_app.command("remove")
def schedule_remove() -> None:
    """Remove the commcare cron entry.

    Example:
      commcare schedule remove
    """
    from commcare import schedule

    say("schedule.removed", count=schedule.remove())
