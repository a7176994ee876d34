"""resident add, list, show, edit, archive, unarchive: the register of residents (花名册)."""

from typing import Annotated

import typer

from commcare.commands.common import (
    ForceOpt,
    FormatOpt,
    OutputOpt,
    UnmaskOpt,
    check_output,
    confirm,
    emit,
    hot,
    say,
    state,
)

app = typer.Typer(help="The register of residents (花名册).", no_args_is_help=True)
RESIDENT_COLUMNS = ["id", "name", "sex", "born", "phone", "compound", "address", "tags", "liaison"]


@app.command("add")
def resident_add(
    name: Annotated[str, typer.Argument(help="Full name, as on the ID card.")],
    phone: Annotated[
        str | None, typer.Option(help="Mobile (13912345678) or landline with area code (0371-67891234).")
    ] = None,
    id_number: Annotated[
        str | None, typer.Option("--id-number", help="18-character resident ID number (身份证号).")
    ] = None,
    sex: Annotated[str | None, typer.Option(help="M/F or 男/女 (taken from the ID number when given).")] = None,
    born: Annotated[
        str | None, typer.Option(help="Birth date YYYY-MM-DD (taken from the ID number when given).")
    ] = None,
    compound: Annotated[str | None, typer.Option(help="Compound (小区/院区).")] = None,
    address: Annotated[str | None, typer.Option(help="Building-unit-room (住址).")] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            help="Special group: elderly/老人, frail/体弱, sick/慢病, disabled/残疾, pregnant/孕妇, child/儿童, lives-alone/独居. Repeatable.",
        ),
    ] = None,
    liaison: Annotated[str | None, typer.Option(help="The household's liaison (staff number or name).")] = None,
    emergency_contact: Annotated[str | None, typer.Option("--emergency-contact", help='"NAME PHONE".')] = None,
    note_: Annotated[str | None, typer.Option("--note", help="A note.")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Add a resident to the register; prints the new number.

    Example:
      commcare resident add 张桂兰 --phone 13912345678 --compound 幸福小区 --address 3-2-101 --tag 独居 --tag 老人 --liaison 王秀英
    """
    from commcare import register, resident_rows

    st = state()
    row = st.write(
        lambda conn, ctx: resident_rows.row_of(
            conn,
            ctx,
            register.add_resident(
                conn,
                ctx,
                name,
                phone=phone,
                id_number=id_number,
                sex=sex,
                born=born,
                compound=compound,
                address=address,
                tags=tag or [],
                liaison=liaison,
                emergency_contact=emergency_contact,
                note=note_,
            ),
        )
    )
    confirm(row, fmt, "resident.added", id=row["id"], name=row["name"])


@app.command("list")
def resident_list(
    tag: Annotated[str | None, typer.Option(help="Only this special group.")] = None,
    compound: Annotated[str | None, typer.Option(help="Only this compound.")] = None,
    liaison: Annotated[str | None, typer.Option(help="Only this liaison's households.")] = None,
    search: Annotated[
        str | None, typer.Option(help="Name, pinyin or initials (zgl finds 张桂兰), or phone digits.")
    ] = None,
    archived: Annotated[bool, typer.Option("--archived", help="List archived residents instead.")] = False,
    unmask: UnmaskOpt = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """List residents (phones masked unless --unmask).

    Example:
      commcare resident list --tag 独居 --search zgl
    """
    from commcare import resident_rows

    st = hot()
    check_output(output, force)
    rows = (st.write if unmask else st.read)(
        resident_rows.list_residents,
        tag=tag,
        compound=compound,
        liaison=liaison,
        search=search,
        archived=archived,
        unmask=unmask,
    )
    emit(
        rows,
        fmt,
        output,
        columns=None if fmt == "json" else RESIDENT_COLUMNS + (["id_number"] if unmask else []),
        force=force,
    )


@app.command("show")
def resident_show(
    ref: Annotated[str, typer.Argument(help="Number (12 or #12), ID number, phone or name.")],
    unmask: UnmaskOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Show one resident, with the phone in full (the liaison needs it to call).

    Example:
      commcare resident show 13912345678
    """
    from commcare import resident_rows

    st = hot()
    row = (st.write if unmask else st.read)(resident_rows.show_resident, ref, unmask)
    emit(row, fmt)


@app.command("edit")
def resident_edit(
    ref: Annotated[str, typer.Argument(help="Number, ID number, phone or name.")],
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    phone: Annotated[str | None, typer.Option(help="New phone (empty to clear).")] = None,
    id_number: Annotated[str | None, typer.Option("--id-number", help="ID number.")] = None,
    sex: Annotated[str | None, typer.Option(help="M/F or 男/女.")] = None,
    born: Annotated[str | None, typer.Option(help="Birth date YYYY-MM-DD.")] = None,
    compound: Annotated[str | None, typer.Option(help="Move to this compound.")] = None,
    address: Annotated[str | None, typer.Option(help="Move to this address.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Replace the special groups with these.")] = None,
    add_tag: Annotated[list[str] | None, typer.Option("--add-tag", help="Add a special group.")] = None,
    remove_tag: Annotated[list[str] | None, typer.Option("--remove-tag", help="Remove a special group.")] = None,
    liaison: Annotated[str | None, typer.Option(help="Liaison for a household that has none.")] = None,
    emergency_contact: Annotated[str | None, typer.Option("--emergency-contact", help='"NAME PHONE".')] = None,
    note_: Annotated[str | None, typer.Option("--note", help="A note.")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Change a resident's details; moving address moves them to that household.

    Example:
      commcare resident edit 张桂兰 --phone 13912345679 --add-tag 体弱
    """
    from commcare import register, resident_rows

    row = state().write(
        lambda conn, ctx: resident_rows.row_of(
            conn,
            ctx,
            register.edit_resident(
                conn,
                ctx,
                ref,
                compound=compound,
                address=address,
                liaison=liaison,
                add_tags=add_tag or [],
                remove_tags=remove_tag or [],
                name=name,
                phone=phone,
                id_number=id_number,
                sex=sex,
                born=born,
                tags=tag,
                emergency_contact=emergency_contact,
                note=note_,
            ),
        )
    )
    confirm(row, fmt, "resident.edited", id=row["id"], name=row["name"])


@app.command("archive")
def resident_archive(
    ref: Annotated[str, typer.Argument(help="Number, ID number, phone or name.")],
    reason: Annotated[str, typer.Option(help="Why (moved away, passed away, …).")],
) -> None:
    """Archive a resident: no longer due calls, out of lists (kept for past reports).

    Example:
      commcare resident archive 张桂兰 --reason "随子女搬离本社区"
    """
    from commcare import register

    found = state().write(register.archive_resident, ref, reason)
    say("resident.archived_msg", id=found.id, name=found.name)


@app.command("unarchive")
def resident_unarchive(ref: Annotated[str, typer.Argument(help="Number, ID number, phone or name.")]) -> None:
    """Bring an archived resident back into the register.

    Example:
      commcare resident unarchive 12
    """
    from commcare import register

    found = state().write(register.unarchive_resident, ref)
    say("resident.unarchived", id=found.id, name=found.name)
