"""add-request and the request sub-commands: the lifecycle of a request for help."""

from typing import Annotated

import typer

from commcare.commands.common import ForceOpt, FormatOpt, OutputOpt, emit, hot, label, out_format, say, state

app = typer.Typer(
    help="Requests for help: list, show, assign, start, resolve, cancel, reopen, note.", no_args_is_help=True
)
LIST_COLUMNS = ["id", "resident", "category", "status", "urgency", "due", "assignee", "overdue"]
IdsArg = Annotated[list[str], typer.Argument(help="Request number(s), ranges (1-26) or lists (3,5,9-12).")]
IdArg = Annotated[str, typer.Argument(help="Request number.")]


def add_request(
    residents: Annotated[
        list[str], typer.Argument(help="Resident(s): number, ID number, phone (a hotline call) or name.")
    ],
    category: Annotated[
        str,
        typer.Option(
            "--category",
            "-c",
            help="gas-topup, groceries, medicine, medical-visit, trash, parcel, repair, enquiry, other (or the Chinese label).",
        ),
    ],
    note: Annotated[str | None, typer.Option(help="What is needed.")] = None,
    urgency: Annotated[str, typer.Option(help="low, normal, high or urgent (urgent: due within 4 hours).")] = "normal",
    due: Annotated[
        str | None, typer.Option(help="When it is due (2026-05-08 14:00, +4h); default from the category.")
    ] = None,
    every: Annotated[str | None, typer.Option(help="Repeat on a fixed schedule: 2d, daily, weekly.")] = None,
    every_after: Annotated[
        str | None, typer.Option("--every-after", help="Repeat this long after each completion.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Last day of the repetition (YYYY-MM-DD).")] = None,
    channel: Annotated[str | None, typer.Option(help="phone, hotline, visit, wechat or walk-in.")] = None,
    assign: Annotated[
        str | None, typer.Option(help="Staff member to do it (default: the household's liaison).")
    ] = None,
    at: Annotated[str | None, typer.Option(help="When the request was made, to backfill a paper log.")] = None,
    again: Annotated[
        bool,
        typer.Option("--again", help="Open it even though the resident already has an open request of this category."),
    ] = False,
    fmt: FormatOpt = None,
) -> None:
    """Log a request for help; prints the new request's number (one per resident). A resident
    who already has an open request of the category is refused (exit 1, that request named):
    --again opens a second one on purpose.

    Example:
      commcare add-request 13912345678 --category 燃气圈存 --channel hotline
      commcare add-request 张桂兰 --category medical-visit --every 2d --until 2026-06-30
    """
    from commcare import help_requests as hr

    def run(s, ctx):
        made = hr.open_requests(
            s,
            ctx,
            residents,
            category,
            again=again,
            note=note,
            urgency=urgency,
            due=due,
            every=every,
            every_after=every_after,
            until=until,
            channel=channel,
            assign=assign,
            at=at,
        )
        return hr.request_rows(s, ctx, made)

    rows = hot().write(run)
    if fmt and fmt != "table":
        emit(rows if len(residents) > 1 else rows[0], fmt)
        return
    from commcare.render.times import human_time

    year = state().ctx.today().year
    for row in rows:
        say("request.opened", id=row["id"], resident=row["resident"], due=human_time(row["due"], year))


@app.command("list")
def request_list(
    status: Annotated[
        str | None,
        typer.Option(help="open, assigned, in_progress, resolved, cancelled, active or all (default: active)."),
    ] = None,
    category: Annotated[str | None, typer.Option(help="Only this category.")] = None,
    assignee: Annotated[str | None, typer.Option(help="Only this staff member's requests.")] = None,
    compound: Annotated[str | None, typer.Option(help="Only residents of this compound.")] = None,
    resident: Annotated[str | None, typer.Option(help="Only this resident's requests.")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only open requests past their due time.")] = False,
    limit: Annotated[int | None, typer.Option(help="At most this many.")] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """List requests, soonest due first (open ones unless --status says otherwise).

    Example:
      commcare request list --overdue
      commcare request list --assignee 王秀英 --status all --format json
    """
    from commcare import help_requests as hr
    from commcare.commands.streamed import batch_size, emit_stream

    size = batch_size()  # a bad COMMCARE_LIST_BATCH is refused before anything is opened
    st = hot()
    filters = dict(
        status=status,
        category=category,
        assignee=assignee,
        compound=compound,
        overdue=overdue,
        resident=resident,
        limit=limit,
    )
    # The filters first, in a read of their own: a resident looked up by ID number is in the
    # audit trail before any row is shown. Then the rows, written as they are read.
    plan = st.read(lambda s, ctx: hr.list_plan(s, ctx, **filters))
    columns = None if out_format(fmt) == "json" else LIST_COLUMNS
    emit_stream(st, lambda s, ctx: hr.stream_request_rows(s, ctx, plan, size), fmt, output, columns, force)


@app.command("show")
def request_show(ref: IdArg, fmt: FormatOpt = None) -> None:
    """Show one request with its timeline (opened, assigned, notes, status changes: who, when).

    Example:
      commcare request show 12
    """
    from commcare import help_requests as hr

    row = hot().read(hr.show_request, ref)
    if fmt and fmt != "table":
        emit(row, fmt)
        return
    timeline = row.pop("timeline")
    emit(row, fmt)
    emit(timeline, fmt, columns=["at", "by", "event", "from", "to", "note"])


def _transition(refs, action, note=None, staff=None, fmt=None) -> None:
    from commcare import help_requests as hr

    if action == "resolve":
        refs = hr.expand_ranges(refs)

    def run(s, ctx):
        rows = hr.request_rows(s, ctx, hr.transition(s, ctx, refs, action, note, staff))
        return rows, hr.next_occurrences(s, ctx, [r["id"] for r in rows]) if action == "resolve" else {}

    rows, following = hot().write(run)
    if fmt and fmt != "table":
        emit(rows, fmt)
        return
    from commcare.render.times import human_time

    year = state().ctx.today().year
    for row in rows:
        say("request.now", id=row["id"], status=label("status", row["status"]))
        if row["id"] in following:
            after = following[row["id"]]
            say("request.next_occurrence", id=after["id"], due=human_time(after["due"], year))


@app.command("assign")
def request_assign(
    ref: IdArg, staff: Annotated[str, typer.Argument(help="Staff member (number or name).")], fmt: FormatOpt = None
) -> None:
    """Give a request to a staff member.

    Example:
      commcare request assign 12 李强
    """
    _transition([ref], "assign", staff=staff, fmt=fmt)


@app.command("start")
def request_start(ref: IdArg, fmt: FormatOpt = None) -> None:
    """Mark a request as being worked on.

    Example:
      commcare request start 12
    """
    _transition([ref], "start", fmt=fmt)


@app.command("resolve")
def request_resolve(
    refs: IdsArg, note: Annotated[str | None, typer.Option(help="What was done.")] = None, fmt: FormatOpt = None
) -> None:
    """Mark requests done, all or none; a recurring one opens its next occurrence. Numbers
    may be ranges and lists: 1-26, 3,5,9-12.

    Example:
      commcare request resolve 12 13 14 --note "燃气卡已充值"
      commcare request resolve 1-26 --note "燃气卡已圈存"
    """
    _transition(refs, "resolve", note=note, fmt=fmt)


@app.command("cancel")
def request_cancel(
    ref: IdArg, reason: Annotated[str, typer.Option(help="Why it is cancelled.")], fmt: FormatOpt = None
) -> None:
    """Cancel a request, with a reason.

    Example:
      commcare request cancel 12 --reason "家属已代办"
    """
    _transition([ref], "cancel", note=reason, fmt=fmt)


@app.command("reopen")
def request_reopen(ref: IdArg, fmt: FormatOpt = None) -> None:
    """Reopen a resolved or cancelled request.

    Example:
      commcare request reopen 12
    """
    _transition([ref], "reopen", fmt=fmt)


@app.command("note")
def request_note(ref: IdArg, text: Annotated[str, typer.Argument(help="The note.")]) -> None:
    """Add a note to a request's timeline.

    Example:
      commcare request note 12 "已联系药店，明早送达"
    """
    from commcare import help_requests as hr

    hot().write(hr.add_note, ref, text)
    say("request.noted", id=ref.lstrip("#"))
