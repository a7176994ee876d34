"""call, health, donation and directory commands: the daily round and the office's logs."""

from __future__ import annotations

from typing import Annotated

import typer

from commcare.commands.common import FormatOpt, OutputOpt, emit, say, state

call_app = typer.Typer(help="Daily check-in calls to the special groups.", no_args_is_help=True)
health_app = typer.Typer(help="Staff health reports (temperature twice a day).", no_args_is_help=True)
donation_app = typer.Typer(help="Donated supplies.", no_args_is_help=True)
directory_app = typer.Typer(help="Useful numbers: hospitals, pharmacies, hotlines.", no_args_is_help=True)
DUE_COLUMNS = ["liaison", "id", "resident", "phone", "compound", "address", "calls_today", "escalate",
               "emergency_contact", "days_unreached"]
AtOpt = Annotated[str | None, typer.Option(help="When it happened (backfill from a paper log).")]


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
    request: Annotated[str | None, typer.Option("--request", help="With needs-help: open a request of this category.")] = None,
    at: AtOpt = None,
    fmt: FormatOpt = None,
) -> None:
    """Record a check-in call (recorded against --as).

    Example:
      commcare --as 王秀英 call log 张桂兰 --outcome needs-help --request medicine --note "降压药吃完了"
    """
    from commcare import calls

    row = state().write(calls.log_call, resident, outcome, note, request, at)
    _confirm(row, fmt, "call.logged", resident=row["resident"], outcome=row["outcome"],
             request=f" (#{row['request']})" if row["request"] else "")


@call_app.command("due")
def call_due(
    liaison: Annotated[str | None, typer.Option(help="Only this liaison's households.")] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """The special-group residents not yet reached today, with full phone numbers, by liaison.

    Example:
      commcare call due --liaison 王秀英
    """
    from commcare import calls

    rows = state().read(calls.due_calls, liaison)
    emit(rows, fmt, output, columns=None if fmt == "json" else DUE_COLUMNS)


@call_app.command("list")
def call_list(
    date: Annotated[str | None, typer.Option(help="The day (default today).")] = None,
    resident: Annotated[str | None, typer.Option(help="Only this resident.")] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """The calls made on a day.

    Example:
      commcare call list --date 2026-05-08
    """
    from commcare import calls
    from commcare.timeparse import parse_date

    rows = state().read(lambda s, ctx: calls.call_rows(
        s, ctx, parse_date(date, ctx.tz, ctx.now()) if date else None, resident))
    emit(rows, fmt, output)


@health_app.command("log")
def health_log(
    staff: Annotated[str, typer.Argument(help="Staff member (number or name).")],
    temp: Annotated[float, typer.Option(help="Temperature in °C (35.0–42.0).")],
    test: Annotated[str | None, typer.Option(help="negative, positive or pending.")] = None,
    at: AtOpt = None,
    fmt: FormatOpt = None,
) -> None:
    """Record a staff member's temperature (and test result).

    Example:
      commcare health log 王秀英 --temp 36.5 --test negative
    """
    from commcare import daily_logs

    row = state().write(daily_logs.log_health, staff, temp, test, at)
    _confirm(row, fmt, "health.logged", staff=row["staff"], temp=row["temp"])


@health_app.command("due")
def health_due(fmt: FormatOpt = None, output: OutputOpt = None) -> None:
    """Active staff with fewer than two temperature reports today.

    Example:
      commcare health due
    """
    from commcare import daily_logs

    emit(state().read(daily_logs.health_due), fmt, output)


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
    totals: Annotated[bool, typer.Option("--totals", help="Totals per item and unit instead.")] = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """List donations, or their totals per item and unit.

    Example:
      commcare donation list --from 2026-05-01 --to 2026-05-31 --totals
    """
    from commcare import daily_logs

    fn = daily_logs.donation_totals if totals else daily_logs.list_donations
    emit(state().read(fn, from_, to), fmt, output)


@directory_app.command("add")
def directory_add(
    name: Annotated[str, typer.Argument(help="Name of the place or service.")],
    phone: Annotated[str, typer.Option(help="Phone number (short hotlines such as 12345 accepted).")],
    kind: Annotated[str, typer.Option(help="hospital, clinic, pharmacy, hotline, utility or other.")],
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
    search: Annotated[str | None, typer.Option(help="Name, pinyin or initials.")] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """List the directory.

    Example:
      commcare directory list --kind pharmacy --search yd
    """
    from commcare import daily_logs

    emit(state().read(daily_logs.list_directory, kind, search), fmt, output)


ROUND_KEYS = {"o": "ok", "h": "needs-help", "n": "no-answer", "u": "unreachable"}


def _read_key(prompt: str) -> str:
    """One key on a terminal (no Enter needed); a line from a pipe."""
    import sys

    sys.stderr.write(prompt)
    sys.stderr.flush()
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line.strip()[:1].lower() if line else "q"
    import termios
    import tty

    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        ch = sys.stdin.read(1)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)
    sys.stderr.write(ch + "\n")
    return "q" if ch in ("\x03", "\x04") else ch.lower()


@call_app.command("round")
def call_round(liaison: Annotated[str | None, typer.Option(help="Only this liaison's households.")] = None) -> None:
    """The morning round: each resident due a call, one at a time. Keys: o ok, h needs help
    (then the category), n no answer, u unreachable, s skip, q stop. Each answer is saved at once.

    Example:
      commcare --as 王秀英 call round --liaison 王秀英
    """
    import sys

    from commcare import calls
    from commcare.i18n import t

    st = state()
    due = st.read(calls.due_calls, liaison)
    done = 0
    for i, row in enumerate(due, start=1):
        sys.stderr.write(t("round.card", n=i, total=len(due), resident=row["resident"], phone=row["phone"] or "-",
                           address=" ".join(p for p in (row["compound"], row["address"]) if p),
                           tries=row["calls_today"], contact=row["emergency_contact"] or "-",
                           last=row["last_note"] or "-") + "\n")
        key = _read_key(t("round.prompt"))
        while key not in ROUND_KEYS and key not in ("s", "q"):
            key = _read_key(t("round.prompt"))
        if key == "q":
            break
        if key == "s":
            continue
        category = None
        if key == "h":
            sys.stderr.write(t("round.category"))
            sys.stderr.flush()
            category = (sys.stdin.readline().strip() or None)
        st.write(calls.log_call, f"#{row['id']}", ROUND_KEYS[key], None, category, None)
        done += 1
    say("round.done", done=done, total=len(due))
