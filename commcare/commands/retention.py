"""retention run: erase the personal data of residents archived long ago."""

from typing import Annotated

import typer

from commcare.commands.common import FormatOpt, confirm, state

app = typer.Typer(
    help="Erase personal data of residents archived long ago (config retention_days).", no_args_is_help=True
)


@app.command("run")
def retention_run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say who would be erased; change nothing.")] = False,
    fmt: FormatOpt = None,
) -> None:
    """Erase ID number, phone, notes and emergency contact of residents archived longer ago
    than retention_days (names and anonymous counts stay for past reports).

    Example:
      commcare retention run --dry-run
    """
    from commcare.storage import retention

    st = state()
    result = st.write(retention.run, dry_run)
    if not dry_run:
        retention.scrub_file(st.database())
    confirm(
        result,
        fmt,
        "retention.would" if dry_run else "retention.done",
        count=len(result["residents"]),
        days=result["days"],
    )
