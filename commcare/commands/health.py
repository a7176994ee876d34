"""health log, due, list: staff health reports (temperature twice a day)."""

from typing import Annotated

import typer

from commcare.commands.common import AtOpt, ForceOpt, FormatOpt, OutputOpt, confirm, emit, hot, state

app = typer.Typer(help="Staff health reports (temperature twice a day).", no_args_is_help=True)
FromOpt = Annotated[str | None, typer.Option("--from", help="First day (default today).")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last day (default the first).")]


@app.command("log")
def health_log(
    staff: Annotated[str, typer.Argument(help="Staff member (number or name).")],
    temp: Annotated[float, typer.Option(help="Temperature in °C (35.0–42.0).")],
    test: Annotated[str | None, typer.Option(help="negative, positive or pending.")] = None,
    at: AtOpt = None,
    fmt: FormatOpt = None,
) -> None:
    """Record a staff member's temperature (and test result); two are due each day. A fever
    (37.3 ℃ or more, config fever_at) is warned about on stderr and flagged in health list,
    the round and the report.

    Example:
      commcare health log 王秀英 --temp 36.5 --test negative
    """
    from commcare import health
    from commcare.commands.common import note

    row = hot().write(health.log_health, staff, temp, test, at)
    confirm(row, fmt, "health.logged", staff=row["staff"], temp=row["temp"])
    if row["fever"]:
        note("health.fever_warning", staff=row["staff"], temp=row["temp"], limit=row["fever_at"])


@app.command("due")
def health_due(fmt: FormatOpt = None, output: OutputOpt = None, force: ForceOpt = False) -> None:
    """Active staff with fewer than two temperature reports today.

    Example:
      commcare health due
    """
    from commcare import health

    emit(state().read(health.health_due), fmt, output, columns=["id", "staff", "reports"], force=force)


@app.command("list")
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
    from commcare import health

    rows = state().read(health.list_health, from_, to, staff)
    emit(rows, fmt, output, columns=["id", "at", "staff", "temp", "fever", "test", "by"], force=force)
