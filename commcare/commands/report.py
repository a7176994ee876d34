"""report today, day, week, range: the evening summary and the reports of past days."""

from typing import Annotated

import typer

from commcare.commands.common import ForceOpt, FormatOpt, OutputOpt, color_enabled, hot, state, write_out

app = typer.Typer(help="Reports: what was done, what is overdue, who was missed.", no_args_is_help=True)
ALL_FORMATS = ("table", "json", "csv", "markdown", "html")
FailOpt = Annotated[
    str | None, typer.Option("--fail-on", help="Exit 1 when there is something to act on: overdue, missed or any.")
]
AllOpt = Annotated[bool, typer.Option("--all-communities", help="One summary with a row per community.")]
OutputDirOpt = Annotated[
    str | None,
    typer.Option(
        "--output-dir",
        help="Write the report to DIR/<report date>.<ext> (md, html, json, csv or txt by "
        "--format; the date in COMMCARE_TZ, a week's or range's last day), created 0600 like --output; "
        "the directory is made if missing. For cron.",
        show_default=False,
    ),
]
NotifyOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--notify",
        help="Also send the day's figures (no names or numbers) to a 企业微信/钉钉/飞书 robot webhook, "
        "any other https URL (JSON), or mailto:ADDRESS (SMTP from the config). Repeatable.",
        show_default=False,
    ),
]


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
        if self.fmt == "csv":  # a spreadsheet reads UTF-8 only behind a byte-order mark
            text = "\ufeff" + text
        write_out(text, output, self.force)


def made_by() -> str:
    """When the report was made and by whom (its HTML says so at the foot)."""
    from commcare import __version__
    from commcare.i18n import t

    ctx = state().ctx
    when = ctx.now().astimezone(ctx.tz).strftime("%Y-%m-%d %H:%M")
    return t("report.made_by", when=when, who=ctx.operator or "-", version=__version__)


def notify_targets(notify, all_communities: bool = False) -> list[str]:
    """The ``--notify`` targets, each checked before the report is made."""
    targets = list(notify or ())
    if not targets:
        return targets
    from commcare.errors import InvalidValue
    from commcare.schedule import notify as notify_mod

    if all_communities:
        raise InvalidValue("notify.all_communities", field="notify")
    for target in targets:
        notify_mod.check_target(target, state().settings.file)
    return targets


def deliver_figures(data: dict, report: str, targets: list[str]) -> list[dict]:
    """Send the figures; each failure is one line on stderr, each delivery a note."""
    from commcare.commands.common import note
    from commcare.i18n import t
    from commcare.schedule import notify as notify_mod

    results = notify_mod.deliver(targets, notify_mod.figures(data, report), state().settings.file)
    for r in results:
        if r["ok"]:
            note("schedule.delivered", to=r["to"], kind=t(f"notify.kind.{r['kind']}"))
    return results


def failed_deliveries(results: list[dict]) -> str:
    """The failed deliveries, in one line."""
    from commcare.i18n import t

    return "; ".join(
        t("notify.problem", to=r["to"], error=r["error"], tries=r["tries"]) for r in results if not r["ok"]
    )


def _day(day_text: str | None, target: Target, fail_on, all_communities, notify=None) -> None:
    from commcare import reports
    from commcare.render import report as report_render
    from commcare.timeparse import parse_date

    fmt = target.fmt
    targets = notify_targets(notify, all_communities)

    def run(conn, ctx):
        day = parse_date(day_text, ctx.tz, ctx.now()) if day_text else ctx.today()
        if all_communities:
            return reports.all_communities(conn, ctx, day)
        return reports.day_report(conn, ctx, day)

    data = hot().read_whole(run)
    if all_communities:
        target.write(report_render.render_all(data, fmt, made=made_by()), data["date"])
    else:
        target.write(report_render.render_day(data, fmt, color=target.color, made=made_by()), data["date"])
    failed = failed_deliveries(deliver_figures(data, "today", targets)) if targets else ""
    if failed:
        from commcare.errors import Refused

        raise Refused("notify.failed", problems=failed)
    found = reports.to_act_on(data, fail_on) if fail_on else []
    if found:
        from commcare.errors import Refused

        raise Refused("report.fail_on", what=", ".join(found))


@app.command("today")
def report_today(
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    fail_on: FailOpt = None,
    all_communities: AllOpt = False,
    force: ForceOpt = False,
    output_dir: OutputDirOpt = None,
    notify: NotifyOpt = None,
) -> None:
    """Today's report: requests opened/resolved/open/overdue, calls due/made/missed, liaisons,
    staff health, donations. --notify also sends the figures to the office's group chat or mail.

    Example:
      commcare report today
      commcare report today --format markdown --output 2026-05-08.md --fail-on missed
      commcare report today --format markdown --output-dir ~/reports --force
      commcare report today --notify 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY'
    """
    _day(None, Target(fmt, output, output_dir, force), fail_on, all_communities, notify=notify)


@app.command("day")
def report_day(
    date: Annotated[str, typer.Argument(help="The day, YYYY-MM-DD (or yesterday).")],
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    fail_on: FailOpt = None,
    all_communities: AllOpt = False,
    force: ForceOpt = False,
    output_dir: OutputDirOpt = None,
) -> None:
    """The report of a past day, as it stood at the end of that day.

    Example:
      commcare report day 2026-05-07 --format json
      commcare report day yesterday --format html --output-dir ~/reports
    """
    _day(date, Target(fmt, output, output_dir, force), fail_on, all_communities)


def _range(first: str | None, last: str | None, target: Target, week: bool) -> None:
    import datetime as dt

    from commcare import reports
    from commcare.render import report as report_render
    from commcare.timeparse import parse_date

    def run(conn, ctx):
        end = parse_date(last, ctx.tz, ctx.now(), "to") if last else ctx.today()
        if week:
            return reports.week_report(conn, ctx, end)
        start = parse_date(first, ctx.tz, ctx.now(), "from") if first else end - dt.timedelta(days=6)
        return reports.range_report(conn, ctx, start, end)

    data = hot().read_whole(run)
    target.write(report_render.render_range(data, target.fmt, color=target.color, made=made_by()), data["to"])


@app.command("week")
def report_week(
    date: Annotated[str | None, typer.Option("--date", help="Last day of the week (default today).")] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
    output_dir: OutputDirOpt = None,
) -> None:
    """The seven days ending today (or --date): a row per day, with totals.

    Example:
      commcare report week --format html --output week.html
      commcare report week --format markdown --output-dir ~/reports
    """
    _range(None, date, Target(fmt, output, output_dir, force), week=True)


@app.command("range")
def report_range(
    from_: Annotated[str, typer.Option("--from", help="First day.")],
    to: Annotated[str, typer.Option("--to", help="Last day.")],
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
    output_dir: OutputDirOpt = None,
) -> None:
    """Any span of days: a row per day, with totals.

    Example:
      commcare report range --from 2026-05-01 --to 2026-05-31 --format csv
      commcare report range --from 2026-05-01 --to 2026-05-31 --format csv --output-dir ~/reports
    """
    _range(from_, to, Target(fmt, output, output_dir, force), week=False)
