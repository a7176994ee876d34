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
def audit_verify(
    anchor: Annotated[
        str | None,
        typer.Option(
            "--anchor",
            help="Also check against this head (N:HASH or HASH) or a saved report (JSON, Markdown or HTML) "
            "that printed it.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check the audit trail: every entry's keyed hash and link, no gap in the numbers, and no
    fewer entries than the anchor kept outside the database (and --anchor) knew of. Exit 1
    naming the first entry that does not hold, or "entries missing after #N".

    Example:
      commcare audit verify
      commcare audit verify --anchor ~/reports/2026-05-08.json
    """
    from commcare import audit, audit_anchor

    st = state()
    given = audit.parse_anchor(anchor) if anchor is not None else None

    def run(conn, ctx):
        anchors = [a for a in (audit_anchor.local(st.settings.database), given) if a is not None]
        return audit.verify(conn, audit.key_for(ctx.settings, conn), anchors)

    result = st.read_whole(run)
    say("audit.verified_chain", count=result["verified"], head=result["head"][:16] or "-", anchors=result["anchors"])
