"""report and schedule commands: the evening summary, by hand or from cron."""

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
DirOpt = Annotated[str | None, typer.Option(
    "--output-dir", help="Write the report to DIR/<report date>.<ext> (md, html, json, csv or txt by "
    "--format; the date in COMMCARE_TZ, a week's or range's last day), created 0600 like --output; "
    "the directory is made if missing. For cron.", show_default=False)]


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


def _day(day_text: str | None, target: Target, fail_on, all_communities) -> None:
    from commcare import report_render, reports
    from commcare.timeparse import parse_date

    fmt = target.fmt

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
                 all_communities: AllOpt = False, force: ForceOpt = False, output_dir: DirOpt = None) -> None:
    """Today's report: requests opened/resolved/open/overdue, calls due/made/missed, liaisons,
    staff health, donations.

    Example:
      commcare report today
      commcare report today --format markdown --output 2026-05-08.md --fail-on missed
      commcare report today --format markdown --output-dir ~/reports --force
    """
    _day(None, Target(fmt, output, output_dir, force), fail_on, all_communities)


@report_app.command("day")
def report_day(date: Annotated[str, typer.Argument(help="The day, YYYY-MM-DD (or yesterday).")],
               fmt: FormatOpt = None, output: OutputOpt = None, fail_on: FailOpt = None,
               all_communities: AllOpt = False, force: ForceOpt = False, output_dir: DirOpt = None) -> None:
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
                output_dir: DirOpt = None) -> None:
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
                 output_dir: DirOpt = None) -> None:
    """Any span of days: a row per day, with totals.

    Example:
      commcare report range --from 2026-05-01 --to 2026-05-31 --format csv
      commcare report range --from 2026-05-01 --to 2026-05-31 --format csv --output-dir ~/reports
    """
    _range(from_, to, Target(fmt, output, output_dir, force), week=False)


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
