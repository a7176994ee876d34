"""call, health, donation and directory commands: the daily round and the office's logs.

(No ``from __future__ import annotations``: Typer would have to eval every string annotation
of every command each time any command runs.)"""

from typing import Annotated

import typer

from commcare.commands.common import ForceOpt, FormatOpt, OutputOpt, emit, say, state, write_out

call_app = typer.Typer(help="Daily check-in calls to the special groups.", no_args_is_help=True)
health_app = typer.Typer(help="Staff health reports (temperature twice a day).", no_args_is_help=True)
donation_app = typer.Typer(help="Donated supplies.", no_args_is_help=True)
directory_app = typer.Typer(help="Useful numbers: hospitals, pharmacies, hotlines.", no_args_is_help=True)
DUE_COLUMNS = ["liaison", "id", "resident", "phone", "compound", "address", "calls_today", "escalate",
               "emergency_contact", "days_unreached", "unreached_flag"]
AtOpt = Annotated[str | None, typer.Option(help="When it happened (backfill from a paper log).")]
FromOpt = Annotated[str | None, typer.Option("--from", help="First day (default today).")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last day (default the first).")]


def register(app: typer.Typer) -> None:
    app.add_typer(call_app, name="call")
    app.add_typer(health_app, name="health")
    app.add_typer(donation_app, name="donation")
    app.add_typer(directory_app, name="directory")


def _confirm(row: dict, fmt, key: str, **values) -> None:
    if fmt and fmt != "table":
        emit(row, fmt)
    else:
        say(key, **values)


@call_app.command("log")
def call_log(
    resident: Annotated[str, typer.Argument(help="Number, ID number, phone or name.")],
    outcome: Annotated[str, typer.Option(help="ok, needs-help, no-answer or unreachable.")],
    note: Annotated[str | None, typer.Option(help="What was said.")] = None,
    request: Annotated[str | None, typer.Option(
        "--request", help="With needs-help: open a request of this category.")] = None,
    at: AtOpt = None,
    fmt: FormatOpt = None,
) -> None:
    """Record a check-in call, against the caller (--as). ok and needs-help reach the resident
    for the day; no-answer and unreachable leave them due. needs-help with --request opens a
    request in the same transaction (a bad category records nothing).

    Example:
      commcare --as 王秀英 call log 张桂兰 --outcome needs-help --request medicine --note "降压药吃完了"
    """
    from commcare import calls

    row = state().write_core(calls.log_call, resident, outcome, note, request, at)
    _confirm(row, fmt, "call.logged", resident=row["resident"], outcome=row["outcome"],
             request=f" (#{row['request']})" if row["request"] else "")


@call_app.command("due")
def call_due(
    liaison: Annotated[str | None, typer.Option(help="Only this liaison's households.")] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """The special-group residents not yet reached today, grouped by liaison, phones in full.
    Two unanswered calls today: escalate (emergency contact shown). Not reached for
    unreached_days days running (config, default 2): flagged.

    Example:
      commcare call due --liaison 王秀英
      commcare call due --format json
    """
    from commcare import calls, round_render
    from commcare.commands.common import out_format

    fmt = out_format(fmt)
    rows = state().read_core(calls.due_calls, liaison)
    if fmt == "table":
        write_out(round_render.due_table(rows), output, force)
    elif fmt == "json":
        write_out(round_render.json_rows(rows), output, force)
    else:
        emit(rows, fmt, output, columns=DUE_COLUMNS, force=force)


@call_app.command("list")
def call_list(
    date: Annotated[str | None, typer.Option(help="The day (default today).")] = None,
    resident: Annotated[str | None, typer.Option(help="Only this resident.")] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """The calls made on a day, oldest first.

    Example:
      commcare call list --date 2026-05-08
    """
    from commcare import calls
    from commcare.timeparse import parse_date

    rows = state().read_core(lambda conn, ctx: calls.call_rows(
        conn, ctx, parse_date(date, ctx.tz, ctx.now()) if date else None, resident))
    emit(rows, fmt, output, columns=["id", "at", "resident", "outcome", "by", "note", "request"], force=force)


@call_app.command("round")
def call_round(liaison: Annotated[str | None, typer.Option(help="Only this liaison's households.")] = None) -> None:
    """The morning round on a terminal: each resident due a call, one at a time, with phone,
    emergency contact and the last call's note. Keys: o ok, h needs help (then the category,
    optionally followed by a note), n no answer, u unreachable, s skip, q stop. Each answer is
    saved at once.

    Example:
      commcare --as 王秀英 call round --liaison 王秀英
    """
    from commcare.commands import round_loop

    round_loop.run(state(), liaison)


@health_app.command("log")
def health_log(
    staff: Annotated[str, typer.Argument(help="Staff member (number or name).")],
    temp: Annotated[float, typer.Option(help="Temperature in °C (35.0–42.0).")],
    test: Annotated[str | None, typer.Option(help="negative, positive or pending.")] = None,
    at: AtOpt = None,
    fmt: FormatOpt = None,
) -> None:
    """Record a staff member's temperature (and test result); two are due each day.

    Example:
      commcare health log 王秀英 --temp 36.5 --test negative
    """
    from commcare import daily_logs

    row = state().write(daily_logs.log_health, staff, temp, test, at)
    _confirm(row, fmt, "health.logged", staff=row["staff"], temp=row["temp"])


@health_app.command("due")
def health_due(fmt: FormatOpt = None, output: OutputOpt = None, force: ForceOpt = False) -> None:
    """Active staff with fewer than two temperature reports today.

    Example:
      commcare health due
    """
    from commcare import daily_logs

    emit(state().read(daily_logs.health_due), fmt, output, columns=["id", "staff", "reports"], force=force)


@health_app.command("list")
def health_list(
    from_: FromOpt = None,
    to: ToOpt = None,
    staff: Annotated[str | None, typer.Option(help="Only this staff member.")] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """The temperature reports of a day (default today) or of --from … --to.

    Example:
      commcare health list --from 2026-05-01 --to 2026-05-07 --staff 王秀英
    """
    from commcare import daily_logs

    rows = state().read(daily_logs.list_health, from_, to, staff)
    emit(rows, fmt, output, columns=["id", "at", "staff", "temp", "test", "by"], force=force)


@donation_app.command("add")
def donation_add(
    donor: Annotated[str, typer.Argument(help="Who gave it.")],
    item: Annotated[list[str], typer.Option("--item", help="NAME:QTY[:UNIT], repeatable (矿泉水:50:箱).")],
    for_: Annotated[str, typer.Option("--for", help="staff or residents.")] = "residents",
    at: AtOpt = None,
    note: Annotated[str | None, typer.Option(help="A note.")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Log donated supplies.

    Example:
      commcare donation add 永辉超市 --item 矿泉水:50:箱 --item 盒饭:120:份 --for staff
    """
    from commcare import daily_logs

    row = state().write(daily_logs.add_donation, donor, item, for_, at, note)
    _confirm(row, fmt, "donation.added", id=row["id"], donor=row["donor"])


@donation_app.command("list")
def donation_list(
    from_: Annotated[str | None, typer.Option("--from", help="First day.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last day.")] = None,
    totals: Annotated[bool, typer.Option("--totals", help="Only the totals per item and unit.")] = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """Donations between two days (default: all), then the totals per item and unit. With
    --format json/csv: the donations, or with --totals the totals.

    Example:
      commcare donation list --from 2026-05-01 --to 2026-05-31
      commcare donation list --from 2026-05-01 --to 2026-05-31 --totals --format csv
    """
    from commcare import daily_logs
    from commcare.commands.common import out_format

    fmt = out_format(fmt)
    st = state()
    if totals or fmt != "table":
        fn = daily_logs.donation_totals if totals else daily_logs.list_donations
        emit(st.read(fn, from_, to), fmt, output, force=force)
        return
    donations, sums = st.read(lambda s, ctx: (daily_logs.list_donations(s, ctx, from_, to),
                                              daily_logs.donation_totals(s, ctx, from_, to)))
    from commcare import i18n, render

    headers = {c: i18n.t(f"col.{c}") for c in ("id", "at", "donor", "for", "items", "note", "item",
                                                "quantity", "unit")}
    text = render.to_table(donations, ["id", "at", "donor", "for", "items", "note"], headers)
    text += "\n" + render.to_table(sums, ["item", "quantity", "unit", "donations"], headers,
                                   title=i18n.t("donation.totals"))
    write_out(text, output, force)


@directory_app.command("add")
def directory_add(
    name: Annotated[str, typer.Argument(help="Name of the place or service.")],
    phone: Annotated[str, typer.Option(help="Phone number (short hotlines such as 12345 accepted).")],
    kind: Annotated[str, typer.Option(help="hospital, clinic, pharmacy, hotline, utility or other (医院, 药店 …).")],
    hours: Annotated[str | None, typer.Option(help="Opening hours.")] = None,
    address: Annotated[str | None, typer.Option(help="Address.")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Add a useful number to the directory.

    Example:
      commcare directory add 社区卫生服务中心 --phone 0371-67891234 --kind clinic --hours 8:00-17:30
    """
    from commcare import daily_logs

    row = state().write(daily_logs.add_directory, name, phone, kind, hours, address)
    _confirm(row, fmt, "directory.added", id=row["id"], name=row["name"])


@directory_app.command("list")
def directory_list(
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    search: Annotated[str | None, typer.Option(help="Name, pinyin, initials or phone digits.")] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """List the directory (numbers in full: they are public services).

    Example:
      commcare directory list --kind pharmacy --search yd
    """
    from commcare import daily_logs

    emit(state().read(daily_logs.list_directory, kind, search), fmt, output,
         columns=["id", "name", "phone", "kind", "hours", "address"], force=force)


@directory_app.command("import")
def directory_import(
    file: Annotated[str, typer.Argument(help="A CSV (UTF-8 or GBK) or XLSX file with a header row.")],
    fmt: FormatOpt = None,
) -> None:
    """Import useful numbers: columns name/名称, phone/电话, kind/类型, hours/时间, address/地址.
    All rows are checked first; any bad row and nothing is imported. Entries already listed
    (same name and phone) are skipped.

    Example:
      commcare directory import 常用电话.csv
    """
    from commcare import daily_logs

    row = state().write(daily_logs.import_directory, file)
    _confirm(row, fmt, "directory.imported", **row)
