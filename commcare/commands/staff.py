"""staff add, list, edit: staff, liaisons (联络员) and volunteers."""

from typing import Annotated

import typer

from commcare.commands.common import ForceOpt, FormatOpt, OutputOpt, UnmaskOpt, check_output, confirm, emit, say, state

app = typer.Typer(help="Staff, liaisons (联络员) and volunteers.", no_args_is_help=True)


@app.command("add")
def staff_add(
    name: Annotated[str, typer.Argument(help="Full name.")],
    phone: Annotated[str | None, typer.Option(help="Mobile or landline.")] = None,
    role: Annotated[str | None, typer.Option(help="Liaison, secretary, volunteer, …")] = None,
    login: Annotated[
        str | None,
        typer.Option(help="The OS user (or database role) that is this staff member: who acts when no --as is given."),
    ] = None,
    fmt: FormatOpt = None,
) -> None:
    """Add a staff member; prints the new number. Until the first one exists anyone may add
    one; after that, writes need an active staff member (--as, or the staff member whose
    --login is the OS user).

    Example:
      commcare staff add 王秀英 --phone 13800001111 --role 联络员 --login wangxy
    """
    from commcare import register

    row = state().write(lambda conn, ctx: register.staff_row(register.add_staff(conn, ctx, name, phone, role, login)))
    confirm(row, fmt, "staff.added", id=row["id"], name=row["name"])


@app.command("list")
def staff_list(
    all_: Annotated[bool, typer.Option("--all", help="Include staff who are no longer active.")] = False,
    unmask: UnmaskOpt = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """List staff.

    Example:
      commcare staff list --format json
    """
    from commcare import register

    st = state()
    check_output(output, force)
    rows = (st.write if unmask else st.read)(register.list_staff, all_, unmask)
    emit(rows, fmt, output, columns=["id", "name", "phone", "role", "active"], force=force)


@app.command("edit")
def staff_edit(
    ref: Annotated[str, typer.Argument(help="Staff number or name.")],
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    phone: Annotated[str | None, typer.Option(help="New phone.")] = None,
    role: Annotated[str | None, typer.Option(help="New role.")] = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive", help="Still working here?")] = None,
    login: Annotated[str | None, typer.Option(help="Bind this OS user (or database role); empty to unbind.")] = None,
) -> None:
    """Change a staff member's details, or mark them inactive (no longer due health reports).

    Example:
      commcare staff edit 李强 --inactive
    """
    from commcare import register

    row = state().write(
        lambda conn, ctx: register.staff_row(register.edit_staff(conn, ctx, ref, name, phone, role, active, login))
    )
    say("staff.edited", id=row["id"], name=row["name"])


@app.command("grant")
def staff_grant(
    ref: Annotated[str, typer.Argument(help="Staff number or name.")],
    login: Annotated[str, typer.Option(help="The database role this staff member connects as (made if missing).")],
    role: Annotated[str, typer.Option(help="liaison, office or district.")],
    community: Annotated[
        list[str] | None,
        typer.Option("--community", help="A community this login may work in (repeatable; default: this one)."),
    ] = None,
    fmt: FormatOpt = None,
) -> None:
    """PostgreSQL: let a staff member connect as their own database role, and let the database
    itself decide what it sees (run by the database's owner). liaison and office see and change
    only their communities; district reads only the summed figures of report --all-communities.
    The role is made without a password; the owner gives it one (see docs/security.md).

    Example:
      commcare --community 幸福社区 staff grant 王秀英 --login wangxy --role liaison
      commcare staff grant 陈主任 --login chen_district --role district
    """
    from commcare import access

    row = state().write(access.grant, ref, login, role, community or [])
    confirm(row, fmt, "access.granted", **row)
