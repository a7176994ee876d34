"""audit and audit verify: who did what, when."""

from typing import Annotated

import typer

from commcare.commands.common import ForceOpt, FormatOpt, OutputOpt, emit, say, state

app = typer.Typer(help="The audit trail: who did what, when.", invoke_without_command=True)


@app.callback()
def audit_cmd(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="From this time (2026-05-08, +-2d, ISO 8601).")] = None,
    resident: Annotated[str | None, typer.Option(help="Only entries about this resident.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many entries.")] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """Who did what, when, newest first (field names only, never phone or ID numbers).

    Example:
      commcare audit --since 2026-05-01 --resident 张桂兰
    """
    if ctx.invoked_subcommand is not None:
        return
    import datetime as dt

    from commcare import audit, lookup
    from commcare.timeparse import parse_when

    def run(conn, ctx):
        start = parse_when(since, ctx.tz, ctx.now(), "since", date_time=dt.time(0)) if since else None
        rid = lookup.resident(conn, ctx, resident).id if resident else None
        found = audit.entries(conn, ctx, since=start, entity="resident" if rid else None, entity_id=rid, limit=limit)
        return [audit.as_row(e, ctx.tz) for e in found]

    emit(state().read(run), fmt, output, force=force)


@app.command("verify")
def audit_verify() -> None:
    """Check that no entry of the audit trail was edited or deleted (exit 1 at the first).

    Example:
      commcare audit verify
    """
    from commcare import audit

    result = state().read(lambda conn, ctx: audit.verify(conn))
    say("audit.verified", count=result["verified"])
