"""resident import, export, duplicates, merge: the office's roster in and out (these join the
``resident`` group)."""

import sys
from typing import Annotated

import typer

from commcare.commands.common import (
    ForceOpt,
    FormatOpt,
    OutputOpt,
    ProgressBar,
    check_output,
    emit,
    note,
    say,
    state,
    write_out,
)

app = typer.Typer()  # its commands join the resident group (cli.py)


@app.command("import")
def resident_import(
    file: Annotated[str, typer.Argument(help="A .csv (UTF-8 or GBK) or .xlsx roster.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row and say what would happen; write nothing.")
    ] = False,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Import the valid rows and report the others.")
    ] = False,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="HEADER=FIELD: read that column as FIELD (also building, unit, room, liaison_phone, "
            "or ignore); repeat it for several columns; columns mapped to tags, note or an "
            "address part are joined.",
        ),
    ] = None,
    no_groups: Annotated[
        bool,
        typer.Option("--no-groups", help="Import without special groups on purpose: nobody joins the daily round."),
    ] = False,
    fmt: FormatOpt = None,
) -> None:
    """Import a roster. Every row is checked first; if any is invalid nothing is imported and
    each bad row is listed by its spreadsheet row number and field (exit 1). A roster whose
    groups or liaisons would be left out (an ignored column of group words or staff names, no
    group column) is refused, naming the column and the --map that reads it.

    Example:
      commcare resident import 2025花名册.xlsx --dry-run
      commcare resident import 台账.csv --map 人员属性=tags --map 包户人=liaison
      commcare resident import roster.csv --map 户籍地址=address
    """
    from commcare.roster import check

    overrides = _overrides(map_ or [])
    st = state()
    # Wherever fork is safe (Linux), the roster is read and checked in a child process while
    # this one loads SQLAlchemy, opens the database and writes (commcare.roster.forked_producer):
    # even three rows are done sooner so. The child is forked here, before the progress bar's
    # thread starts and before the database opens.
    from commcare.roster import forked_producer

    with check.Chunks(file, st.ctx, overrides, background=forked_producer.available()) as chunks:
        from commcare.roster import write  # SQLAlchemy loads meanwhile

        _tell_columns(chunks.heading())  # a file that cannot be read is refused here, before the database opens
        with ProgressBar("roster.step") as progress:
            chunks.progress = progress
            run = st.read if dry_run else st.write
            summary = run(write.import_roster, chunks, file, dry_run, skip_invalid, progress, no_groups)
    for line in summary["problems"]:
        sys.stderr.write(line + "\n")
    if fmt and fmt != "table":
        emit(summary, fmt)
        return
    if dry_run:
        say("roster.would_import", valid=summary["valid"], invalid=summary["invalid"])
    else:
        say("roster.imported", imported=summary["imported"], invalid=summary["invalid"])
    say("rosters.would_join_round" if dry_run else "rosters.joined_round", count=summary["daily_round"])
    if summary["outside_round"]:
        say("rosters.outside_round", count=summary["outside_round"])


def _overrides(items: list[str]) -> dict[str, str]:
    """``--map HEADER=FIELD`` options as header -> field."""
    from commcare.errors import InvalidValue
    from commcare.roster.layout import MAP_FIELDS

    overrides = {}
    for item in items:
        column, _, field = item.rpartition("=")
        if not column.strip() or field.strip() not in MAP_FIELDS:
            raise InvalidValue("roster.bad_map", field="map", value=item, choices=", ".join(MAP_FIELDS))
        overrides[column] = field.strip()
    return overrides


def _tell_columns(heading) -> None:
    """Say, before anything is checked against the register, which row held the headers and
    which columns are not imported: refused or not, the person learns why."""
    if heading.header_row > 1:
        note("rosters.header_row", row=heading.header_row)
    if heading.unknown:
        note("roster.unknown_columns", columns="、".join(heading.unknown))
    if heading.liaison_phones:
        note("rosters.liaison_phone_columns", columns="、".join(heading.liaison_phones))


@app.command("export")
def resident_export(
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv, xlsx or json.")] = "csv",
    output: OutputOpt = None,
    unmask: Annotated[
        bool, typer.Option("--unmask", help="Full phone and ID numbers (recorded in the audit trail).")
    ] = False,
    force: ForceOpt = False,
    tag: Annotated[str | None, typer.Option(help="Only this special group.")] = None,
    compound: Annotated[str | None, typer.Option(help="Only this compound.")] = None,
) -> None:
    """Export the register: masked by default, CSV in UTF-8 with BOM for Excel.

    Example:
      commcare resident export --format xlsx --output 花名册.xlsx
      commcare resident export --unmask --output backup.csv
    """
    from commcare.roster import export as exporter

    st = state()
    exporter.check_format(fmt, output)
    check_output(output, force)
    with ProgressBar("roster.step") as progress:
        run = st.write if unmask else st.read
        rows = run(exporter.export_rows, unmask, tag, compound, progress)
    write_out(exporter.encode(rows, fmt), output, force)
    if output:
        from commcare.i18n import plural

        note("roster.exported", residents=plural(len(rows), "count.residents"), path=output)


@app.command("duplicates")
def resident_duplicates(fmt: FormatOpt = None) -> None:
    """List likely duplicates: the same name with the same phone or address.

    Example:
      commcare resident duplicates
    """
    from commcare.roster import duplicates

    emit(state().read(duplicates.find), fmt, columns=["a", "b", "name", "reason"])


@app.command("merge")
def resident_merge(
    keep: Annotated[str, typer.Argument(help="The resident to keep.")],
    other: Annotated[str, typer.Argument(help="The duplicate: its calls, requests and tags move to the first.")],
    dismiss: Annotated[
        bool, typer.Option("--dismiss", help="They are two different people: stop listing the pair.")
    ] = False,
) -> None:
    """Merge a duplicate into the resident to keep (or --dismiss the pair).

    Example:
      commcare resident merge 12 57
      commcare resident merge 12 57 --dismiss
    """
    from commcare.roster import duplicates

    if dismiss:
        state().write(duplicates.dismiss, keep, other)
        say("roster.dismissed", a=keep, b=other)
        return
    kept = state().write(duplicates.merge, keep, other)
    say("roster.merged", id=kept)
