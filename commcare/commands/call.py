"""call log, due, list and round: the daily check-in calls to the special groups.

(No ``from __future__ import annotations``: Typer would have to eval every string annotation
of every command each time any command runs.)"""

from typing import Annotated

import typer

from commcare.commands.common import AtOpt, ForceOpt, FormatOpt, OutputOpt, confirm, emit, hot, label, state, write_out

app = typer.Typer(help="Daily check-in calls to the special groups.", no_args_is_help=True)
DUE_COLUMNS = [
    "liaison",
    "id",
    "resident",
    "phone",
    "compound",
    "address",
    "calls_today",
    "escalate",
    "escalate_action",
    "emergency_contact",
    "days_unreached",
    "unreached_flag",
]


@app.command("log")
def call_log(
    resident: Annotated[str, typer.Argument(help="Number, ID number, phone or name.")],
    outcome: Annotated[str, typer.Option(help="ok, needs-help, no-answer or unreachable.")],
    note: Annotated[str | None, typer.Option(help="What was said.")] = None,
    request: Annotated[
        str | None, typer.Option("--request", help="With needs-help: open a request of this category.")
    ] = None,
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
    from commcare.i18n import t

    row = hot().write(calls.log_call, resident, outcome, note, request, at)
    confirm(
        row,
        fmt,
        "call.logged",
        resident=row["resident"],
        outcome=label("outcome", row["outcome"]),
        request=t("call.logged_request", id=row["request"]) if row["request"] else "",
    )


@app.command("due")
def call_due(
    liaison: Annotated[str | None, typer.Option(help="Only this liaison's households.")] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """The special-group residents not yet reached today, grouped by liaison, phones in full;
    the acting liaison's own households first (--as 李金芳), then everyone else's, or only one
    liaison's with --liaison. Two unanswered calls today: escalate (the emergency contact
    shown; without one, visit: 上门查看). Not reached for unreached_days days running
    (config, default 2): flagged.

    Example:
      commcare call due --liaison 王秀英
      commcare call due --format json
    """
    from commcare import calls
    from commcare.commands.common import out_format
    from commcare.commands.streamed import batch_size, emit_stream

    fmt = out_format(fmt)
    size = batch_size()  # a bad COMMCARE_LIST_BATCH is refused before anything is opened
    st = hot()
    st.refuse_missing_register()  # nobody due is never read from a register that is not there
    if fmt == "table":
        from commcare.render import round as round_render

        rows = st.read(calls.due_calls, liaison)
        write_out(round_render.due_table(rows, st.ctx.operator), output, force)
        return
    emit_stream(st, lambda conn, ctx: calls.due_batches(conn, ctx, liaison, size=size), fmt, output, DUE_COLUMNS, force)


@app.command("list")
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

    rows = state().read(
        lambda conn, ctx: calls.call_rows(conn, ctx, parse_date(date, ctx.tz, ctx.now()) if date else None, resident)
    )
    emit(rows, fmt, output, columns=["id", "at", "resident", "outcome", "by", "note", "request"], force=force)


@app.command("round")
def call_round(liaison: Annotated[str | None, typer.Option(help="Only this liaison's households.")] = None) -> None:
    """The morning round on a terminal: each resident due a call, one at a time, with phone,
    emergency contact and the last call's note. Keys: o ok, h needs help (then the category,
    optionally followed by a note), n no answer, u unreachable, s skip, q stop. Each answer is
    saved at once.

    Example:
      commcare --as 王秀英 call round --liaison 王秀英
    """
    from commcare.commands import call_round

    call_round.run(state(), liaison)
