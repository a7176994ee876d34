"""db path, backup, restore, check, upgrade: the database itself."""

from typing import Annotated

import typer

from commcare.commands.common import FormatOpt, confirm, emit, say, state

app = typer.Typer(help="The database: path, upgrade, backup, restore, check.", no_args_is_help=True)


@app.command("path")
def db_path() -> None:
    """Print the database in use (a URL is shown without its password).

    Example:
      commcare db path
    """
    from commcare.db import display_url

    typer.echo(display_url(state().settings.database))


@app.command("backup")
def db_backup(
    path: Annotated[str, typer.Argument(help="Where to write the backup.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    fmt: FormatOpt = None,
) -> None:
    """Write a consistent, verified snapshot of the live database (SQLite), created 0600.

    Example:
      commcare db backup ~/backups/commcare-2026-05-08.db
    """
    from commcare.storage import maintenance

    row = maintenance.backup(state().settings.database, path, force)
    confirm(row, fmt, "maint.backed_up", path=row["backup"], revision=row["revision"])


@app.command("restore")
def db_restore(
    path: Annotated[str, typer.Argument(help="A backup made by commcare db backup.")], fmt: FormatOpt = None
) -> None:
    """Replace the database with a verified backup, keeping a copy of the one it replaces.

    Example:
      commcare db restore ~/backups/commcare-2026-05-08.db
    """
    from commcare import audit_anchor
    from commcare.storage import maintenance

    st = state()
    row = maintenance.restore(st.settings.database, path)
    row["audit"] = audit_anchor.reset(st.database())  # the trail is now the backup's
    confirm(row, fmt, "maint.restored", path=row["from"], kept=row["kept"] or "-")
    if not fmt or fmt == "table":
        say("audit.anchor_reset", entries=row["audit"]["entries"], head=row["audit"]["head"][:16])


@app.command("check")
def db_check(fmt: FormatOpt = None) -> None:
    """Check integrity (every page), foreign keys, the register's counts, journal mode, file
    modes and schema version, and remove temporary copies left by a killed backup, restore
    or upgrade; exit 3 naming what is wrong.

    Example:
      commcare db check
    """
    from commcare.errors import DatabaseError
    from commcare.storage import maintenance

    rows = maintenance.check(state().settings.database)
    emit(rows, fmt)
    if not all(r["ok"] for r in rows):
        raise DatabaseError("maint.check_failed", checks=maintenance.failures(rows))


@app.command("upgrade")
def db_upgrade() -> None:
    """Migrate a database made by an older commcare to this version. SQLite: under an
    exclusive lock (nobody else reads or writes meanwhile), a verified backup first.
    PostgreSQL: under an advisory lock. A second upgrade started meanwhile waits, then
    says there is nothing to do.

    Example:
      commcare db upgrade
    """
    from commcare import audit
    from commcare.storage import maintenance

    st = state()
    settings = st.settings
    row = maintenance.upgrade(settings.database, lambda: audit.key_for(settings))
    if row["from"] != row["to"]:
        from commcare import audit_anchor

        audit_anchor.reset(st.database())  # the trail as the upgrade chained it
    if row["from"] == row["to"]:
        say("maint.up_to_date", revision=row["to"])
    else:
        say("maint.upgraded", before=row["from"], after=row["to"], backup=row["backup"] or "-")
