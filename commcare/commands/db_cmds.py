"""db commands: where the database is, backup, restore, check and upgrade."""

from typing import Annotated

import typer

from commcare.commands.common import FormatOpt, emit, say, state

db_app = typer.Typer(help="The database: path, upgrade, backup, restore, check.", no_args_is_help=True)


retention_app = typer.Typer(help="Erase personal data of residents archived long ago (config retention_days).",
                            no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.add_typer(retention_app, name="retention")


@retention_app.command("run")
def retention_run(dry_run: Annotated[bool, typer.Option("--dry-run", help="Say who would be erased; change nothing.")] = False,
                  fmt: FormatOpt = None) -> None:
    """Erase ID number, phone, notes and emergency contact of residents archived longer ago
    than retention_days (names and anonymous counts stay for past reports).

    Example:
      commcare retention run --dry-run
    """
    from commcare import retention

    st = state()
    result = st.write(retention.run, dry_run)
    if not dry_run:
        retention.scrub_file(st.database())
    if fmt and fmt != "table":
        emit(result, fmt)
    else:
        say("retention.would" if dry_run else "retention.done", count=len(result["residents"]), days=result["days"])


@db_app.command("path")
def db_path() -> None:
    """Print the database in use (a URL is shown without its password).

    Example:
      commcare db path
    """
    from commcare.db import display_url

    typer.echo(display_url(state().settings.database))


@db_app.command("backup")
def db_backup(path: Annotated[str, typer.Argument(help="Where to write the backup.")],
              force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
              fmt: FormatOpt = None) -> None:
    """Write a consistent, verified snapshot of the live database (SQLite), created 0600.

    Example:
      commcare db backup ~/backups/commcare-2026-05-08.db
    """
    from commcare import maintenance

    row = maintenance.backup(state().settings.database, path, force)
    emit(row, fmt) if fmt and fmt != "table" else say("maint.backed_up", path=row["backup"], revision=row["revision"])


@db_app.command("restore")
def db_restore(path: Annotated[str, typer.Argument(help="A backup made by commcare db backup.")],
               fmt: FormatOpt = None) -> None:
    """Replace the database with a verified backup, keeping a copy of the one it replaces.

    Example:
      commcare db restore ~/backups/commcare-2026-05-08.db
    """
    from commcare import maintenance

    row = maintenance.restore(state().settings.database, path)
    emit(row, fmt) if fmt and fmt != "table" else say("maint.restored", path=row["from"], kept=row["kept"] or "-")


@db_app.command("check")
def db_check(fmt: FormatOpt = None) -> None:
    """Check integrity (every page), foreign keys, the register's counts, journal mode, file
    modes and schema version, and remove temporary copies left by a killed backup, restore
    or upgrade; exit 3 naming what is wrong.

    Example:
      commcare db check
    """
    from commcare import maintenance
    from commcare.errors import DatabaseError

    rows = maintenance.check(state().settings.database)
    emit(rows, fmt)
    if not all(r["ok"] for r in rows):
        raise DatabaseError("maint.check_failed", checks=maintenance.failures(rows))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate a database made by an older commcare to this version. SQLite: under an
    exclusive lock (nobody else reads or writes meanwhile), a verified backup first.
    PostgreSQL: under an advisory lock. A second upgrade started meanwhile waits, then
    says there is nothing to do.

    Example:
      commcare db upgrade
    """
    from commcare import maintenance

    row = maintenance.upgrade(state().settings.database)
    if row["from"] == row["to"]:
        say("maint.up_to_date", revision=row["to"])
    else:
        say("maint.upgraded", before=row["from"], after=row["to"], backup=row["backup"] or "-")
