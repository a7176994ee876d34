"""retention run: erase the personal data of residents archived long ago."""

from typing import Annotated

import typer

from commcare.commands.common import FormatOpt, confirm, note, state

app = typer.Typer(
    help="Erase personal data of residents archived long ago (config retention_days).", no_args_is_help=True
)


@app.command("run")
def retention_run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say who would be erased; change nothing.")] = False,
    fmt: FormatOpt = None,
) -> None:
    """Erase ID number, phone, notes, emergency contact and archive reason of residents
    archived longer ago than retention_days, and the notes of their calls, requests and
    request timelines (names and anonymous counts stay for past reports); then make the old
    values leave the database files. Exit 1 when they could not yet (a reader holding an old
    snapshot; on PostgreSQL a login that does not own the tables); backups beside the
    register that still hold erased people are listed.

    Example:
      commcare retention run --dry-run
      commcare retention run
    """
    from commcare.storage import retention

    st = state()
    result = st.write(retention.run, dry_run)
    erase_xid = result.pop("erase_xid")
    if not dry_run:
        db = st.database()
        result.update(retention.scrub(db, erase_xid))
        result["backups"] = retention.backups_holding(db, st.read(retention.erased_residents))
    confirm(
        result,
        fmt,
        "retention.would" if dry_run else "retention.done",
        count=len(result["residents"]),
        days=result["days"],
    )
    if dry_run:
        return
    if result["notes_erased"]:
        note("retention.notes_erased", count=result["notes_erased"])
    for backup in result["backups"]:
        note("retention.backup_holds", path=backup["file"], count=backup["residents"])
    if result["remains"]:
        note(result["remains"])
    if not result["scrubbed"]:
        from commcare.errors import Refused

        raise Refused(result["problem"])
