"""db commands: where the database is, and (see the reliability work) upgrade/backup/restore/check."""

from __future__ import annotations

import typer

from commcare.commands.common import state

db_app = typer.Typer(help="The database: path, upgrade, backup, restore, check.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


@db_app.command("path")
def db_path() -> None:
    """Print the database in use (a URL is shown without its password).

    Example:
      commcare db path
    """
    from commcare.db import display_url

    typer.echo(display_url(state().settings.database))
