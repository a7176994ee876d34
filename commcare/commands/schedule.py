"""schedule install, show, remove: the cron entry of the scheduled evening summary."""

from typing import Annotated

import typer

from commcare.commands.common import FormatOpt, emit, say, state

app = typer.Typer(help="Cron entries for the scheduled evening summary.", no_args_is_help=True)


@app.command("install")
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


@app.command("show")
def schedule_show(fmt: FormatOpt = None) -> None:
    """Show the commcare cron entry.

    Example:
      commcare schedule show
    """
    from commcare import schedule

    emit(schedule.show(), fmt)


@app.command("remove")
def schedule_remove() -> None:
    """Remove the commcare cron entry.

    Example:
      commcare schedule remove
    """
    from commcare import schedule

    say("schedule.removed", count=schedule.remove())
