"""report today, day, week, range: the evening summary and the reports of past days."""

from typing import Annotated

import typer

from commcare.commands.common import FormatOpt, OutputOpt, color_enabled, state, write_out

app = typer.Typer(help="Reports: what was done, what is overdue, who was missed.", no_args_is_help=True)
ALL_FORMATS = ("table", "json", "csv", "markdown", "html")
FailOpt = Annotated[str | None, typer.Option("--fail-on", help="Exit 1 when there is something to act on: overdue, missed or any.")]
AllOpt = Annotated[bool, typer.Option("--all-communities", help="One summary with a row per community.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing output file.")]


def _day(day_text: str | None, fmt, output, fail_on, all_communities, force=True) -> None:
    from commcare import reports
    from commcare.commands.common import out_format
    from commcare.render import report as report_render
    from commcare.timeparse import parse_date

    fmt = out_format(fmt, ALL_FORMATS)

    def run(conn, ctx):
        day = parse_date(day_text, ctx.tz, ctx.now()) if day_text else ctx.today()
        if all_communities:
            return reports.all_communities(conn, ctx, day)
        return reports.day_report(conn, ctx, day)

    data = state().read(run)
    if all_communities:
        write_out(report_render.render_all(data, fmt), output)
    else:
        write_out(report_render.render_day(data, fmt, color=output is None and color_enabled()), output)
    found = reports.to_act_on(data, fail_on) if fail_on else []
    if found:
        from commcare.errors import Refused

        raise Refused("report.fail_on", what=", ".join(found))


@app.command("today")
def report_today(fmt: FormatOpt = None, output: OutputOpt = None, fail_on: FailOpt = None,
                 all_communities: AllOpt = False, force: ForceOpt = False) -> None:
    """Today's report: requests opened/resolved/open/overdue, calls due/made/missed, liaisons,
    staff health, donations.

    Example:
      commcare report today
      commcare report today --format markdown --output 2026-05-08.md --fail-on missed
    """
    _day(None, fmt, output, fail_on, all_communities)


@app.command("day")
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

    from commcare import reports
    from commcare.commands.common import out_format
    from commcare.render import report as report_render
    from commcare.timeparse import parse_date

    fmt = out_format(fmt, ALL_FORMATS)

    def run(conn, ctx):
        end = parse_date(last, ctx.tz, ctx.now(), "to") if last else ctx.today()
        if week:
            return reports.week_report(conn, ctx, end)
        start = parse_date(first, ctx.tz, ctx.now(), "from") if first else end - dt.timedelta(days=6)
        return reports.range_report(conn, ctx, start, end)

    data = state().read(run)
    write_out(report_render.render_range(data, fmt, color=output is None and color_enabled()), output)


@app.command("week")
def report_week(date: Annotated[str | None, typer.Option("--date", help="Last day of the week (default today).")] = None,
                fmt: FormatOpt = None, output: OutputOpt = None) -> None:
    """The seven days ending today (or --date): a row per day, with totals.

    Example:
      commcare report week --format html --output week.html
    """
    _range(None, date, fmt, output, week=True)


@app.command("range")
def report_range(from_: Annotated[str, typer.Option("--from", help="First day.")],
                 to: Annotated[str, typer.Option("--to", help="Last day.")],
                 fmt: FormatOpt = None, output: OutputOpt = None) -> None:
    """Any span of days: a row per day, with totals.

    Example:
      commcare report range --from 2026-05-01 --to 2026-05-31 --format csv
    """
    _range(from_, to, fmt, output, week=False)
