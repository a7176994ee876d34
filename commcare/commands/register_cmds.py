"""init, config, resident, household, staff and audit commands."""

from typing import Annotated

import typer

from commcare.commands.common import (
    ForceOpt,
    FormatOpt,
    OutputOpt,
    UnmaskOpt,
    check_output,
    emit,
    note,
    say,
    state,
)

resident_app = typer.Typer(help="The register of residents (花名册).", no_args_is_help=True)
household_app = typer.Typer(help="Households (户): the residents at one address, one liaison each.", no_args_is_help=True)
staff_app = typer.Typer(help="Staff, liaisons (联络员) and volunteers.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail: who did what, when.", invoke_without_command=True)
config_app = typer.Typer(help="Settings: option > environment > config file > default.", no_args_is_help=True)

RESIDENT_COLUMNS = ["id", "name", "sex", "born", "phone", "compound", "address", "tags", "liaison"]


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(resident_app, name="resident")
    app.add_typer(household_app, name="household")
    app.add_typer(staff_app, name="staff")
    app.add_typer(audit_app, name="audit")
    app.add_typer(config_app, name="config")


def init(community: Annotated[str | None, typer.Option(
        "--community", help="Name the register's community (社区); asked on a terminal when the "
        "register has none yet. Not on a terminal and not given: \"default\" (rename it later "
        "with community rename).", show_default=False)] = None) -> None:
    """Create the database (at the newest schema), its community and a config file; safe to
    run twice.

    Example:
      commcare init --community 幸福社区
      commcare --db postgresql+psycopg://office@db.example/commcare init --community 阳光社区
    """
    from commcare import communities
    from commcare.config import write_default_config

    st = state()
    db = st.database(create=True)
    name = community or _named_community(st)
    if name is not None:
        communities.normalize(name)  # a bad name is refused before anything is asked or made
    elif _interactive() and not st.read_core(lambda conn, ctx: communities.rows(conn)):
        name = _ask_community()
    made = st.write_core(communities.ensure, name)
    several = len(st.read_core(lambda conn, ctx: communities.rows(conn))) > 1
    wrote = write_default_config(st.settings, made["name"] if made and several else None)
    say("init.done" if db.created else "init.already", path=db.where)
    if made and made["created"]:
        say("community.added", id=made["id"], name=made["name"])
    if wrote:
        note("init.config_written", path=str(st.settings.config_path))


def _named_community(st) -> str | None:
    """The global --community (or the environment's, or the config's), if one is given."""
    return None if st.settings.sources.get("community", "default") == "default" else st.settings.community


def _interactive() -> bool:
    import sys

    return sys.stdin.isatty() and sys.stdout.isatty()


def _ask_community() -> str:
    from commcare import communities
    from commcare.errors import InvalidValue
    from commcare.i18n import t

    while True:
        answer = typer.prompt(t("community.ask"), default=communities.DEFAULT)
        try:
            return communities.normalize(answer)
        except InvalidValue as exc:
            note("community.ask_again", problem=exc.message())


@config_app.command("show")
def config_show(fmt: FormatOpt = None) -> None:
    """Show each setting, its value and where it came from.

    Example:
      commcare config show
    """
    st = state()
    s = st.settings
    from commcare.db import display_url

    values = {"database": display_url(s.database), "config": str(s.config_path), "timezone": s.timezone,
              "lang": s.lang or "", "operator": s.operator, "community": s.community,
              "retention_days": s.retention_days}
    rows = [{"key": k, "value": v, "source": s.sources.get(k, "config file" if k in s.file else "default")}
            for k, v in values.items()]
    emit(rows, fmt)


# --- residents -------------------------------------------------------------------------------

@resident_app.command("add")
def resident_add(
    name: Annotated[str, typer.Argument(help="Full name, as on the ID card.")],
    phone: Annotated[str | None, typer.Option(help="Mobile (13912345678) or landline with area code (0371-67891234).")] = None,
    id_number: Annotated[str | None, typer.Option("--id-number", help="18-character resident ID number (身份证号).")] = None,
    sex: Annotated[str | None, typer.Option(help="M/F or 男/女 (taken from the ID number when given).")] = None,
    born: Annotated[str | None, typer.Option(help="Birth date YYYY-MM-DD (taken from the ID number when given).")] = None,
    compound: Annotated[str | None, typer.Option(help="Compound (小区/院区).")] = None,
    address: Annotated[str | None, typer.Option(help="Building-unit-room (住址).")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Special group: elderly/老人, frail/体弱, sick/慢病, disabled/残疾, pregnant/孕妇, child/儿童, lives-alone/独居. Repeatable.")] = None,
    liaison: Annotated[str | None, typer.Option(help="The household's liaison (staff number or name).")] = None,
    emergency_contact: Annotated[str | None, typer.Option("--emergency-contact", help='"NAME PHONE".')] = None,
    note_: Annotated[str | None, typer.Option("--note", help="A note.")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Add a resident to the register; prints the new number.

    Example:
      commcare resident add 张桂兰 --phone 13912345678 --compound 幸福小区 --address 3-2-101 --tag 独居 --tag 老人 --liaison 王秀英
    """
    from commcare import register

    st = state()
    row = st.write(lambda s, ctx: register.resident_row(register.add_resident(
        s, ctx, name, phone=phone, id_number=id_number, sex=sex, born=born, compound=compound,
        address=address, tags=tag or [], liaison=liaison, emergency_contact=emergency_contact,
        note=note_), ctx.tz))
    _added(row, fmt, "resident.added")


def _added(row: dict, fmt: str | None, key: str) -> None:
    if fmt and fmt != "table":
        emit(row, fmt)
    else:
        say(key, id=row["id"], name=row.get("name", ""))


@resident_app.command("list")
def resident_list(
    tag: Annotated[str | None, typer.Option(help="Only this special group.")] = None,
    compound: Annotated[str | None, typer.Option(help="Only this compound.")] = None,
    liaison: Annotated[str | None, typer.Option(help="Only this liaison's households.")] = None,
    search: Annotated[str | None, typer.Option(help="Name, pinyin or initials (zgl finds 张桂兰), or phone digits.")] = None,
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
    from commcare import register

    st = state()
    check_output(output, force)

    def run(s, ctx):
        rows = [register.resident_row(r, ctx.tz, unmask) for r in register.list_residents(
            s, ctx, tag=tag, compound=compound, liaison=liaison, search=search, archived=archived)]
        return rows

    rows = st.write(lambda s, ctx: _unmasked(s, ctx, run, "resident.list")) if unmask else st.read(run)
    emit(rows, fmt, output, columns=None if fmt == "json" else RESIDENT_COLUMNS + (["id_number"] if unmask else []), force=force)


def _unmasked(s, ctx, run, what: str):
    """Run ``run`` and record in the audit trail that full numbers were shown."""
    from commcare import audit

    rows = run(s, ctx)
    audit.record(s, ctx, "unmask", what.split(".")[0], None, ["phone", "id_number"], detail=f"{what}: {len(rows) if isinstance(rows, list) else 1} rows")
    return rows


@resident_app.command("show")
def resident_show(
    ref: Annotated[str, typer.Argument(help="Number (12 or #12), ID number, phone or name.")],
    unmask: UnmaskOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Show one resident, with the phone in full (the liaison needs it to call).

    Example:
      commcare resident show 13912345678
    """
    from commcare import register

    st = state()

    def run(s, ctx):
        r = register.find_resident(s, ctx, ref)
        row = register.resident_row(r, ctx.tz, unmask=True)
        if not unmask:
            row.pop("id_number", None)
        return row

    row = st.write(lambda s, ctx: _unmasked(s, ctx, run, "resident.show")) if unmask else st.read(run)
    emit(row, fmt)


@resident_app.command("edit")
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
    from commcare import register

    row = state().write(lambda s, ctx: register.resident_row(register.edit_resident(
        s, ctx, ref, compound=compound, address=address, liaison=liaison, add_tags=add_tag or [],
        remove_tags=remove_tag or [], name=name, phone=phone, id_number=id_number, sex=sex, born=born,
        tags=tag, emergency_contact=emergency_contact, note=note_), ctx.tz))
    _added(row, fmt, "resident.edited")


@resident_app.command("archive")
def resident_archive(
    ref: Annotated[str, typer.Argument(help="Number, ID number, phone or name.")],
    reason: Annotated[str, typer.Option(help="Why (moved away, passed away, …).")],
) -> None:
    """Archive a resident: no longer due calls, out of lists (kept for past reports).

    Example:
      commcare resident archive 张桂兰 --reason "随子女搬离本社区"
    """
    from commcare import register

    row = state().write(lambda s, ctx: register.resident_row(register.archive_resident(s, ctx, ref, reason), ctx.tz))
    say("resident.archived_msg", id=row["id"], name=row["name"])


@resident_app.command("unarchive")
def resident_unarchive(ref: Annotated[str, typer.Argument(help="Number, ID number, phone or name.")]) -> None:
    """Bring an archived resident back into the register.

    Example:
      commcare resident unarchive 12
    """
    from commcare import register

    row = state().write(lambda s, ctx: register.resident_row(register.unarchive_resident(s, ctx, ref), ctx.tz))
    say("resident.unarchived", id=row["id"], name=row["name"])


# --- households ------------------------------------------------------------------------------

@household_app.command("list")
def household_list(
    compound: Annotated[str | None, typer.Option(help="Only this compound.")] = None,
    liaison: Annotated[str | None, typer.Option(help="Only this liaison's households.")] = None,
    no_liaison: Annotated[bool, typer.Option("--no-liaison", help="Only households without a liaison.")] = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """List households with their liaison, members and special-group members.

    Example:
      commcare household list --no-liaison
    """
    from commcare import register

    emit(state().read(register.list_households, compound, liaison, no_liaison), fmt, output, force=force)


@household_app.command("assign")
def household_assign(
    household: Annotated[str, typer.Argument(help='"COMPOUND ADDRESS", an address, or one of its residents.')],
    staff: Annotated[str, typer.Argument(help="The new liaison (number or name).")],
) -> None:
    """Give a household a (new) liaison, on purpose: the one fixed liaison changes.

    Example:
      commcare household assign "幸福小区 3-2-101" 李强
    """
    from commcare import register

    def run(s, ctx):
        house = register.assign_household(s, ctx, household, staff)
        return register.describe_household(house), house.liaison.name

    address, liaison = state().write(run)
    say("household.assigned", address=address, liaison=liaison)


# --- staff -----------------------------------------------------------------------------------

@staff_app.command("add")
def staff_add(
    name: Annotated[str, typer.Argument(help="Full name.")],
    phone: Annotated[str | None, typer.Option(help="Mobile or landline.")] = None,
    role: Annotated[str | None, typer.Option(help="Liaison, secretary, volunteer, …")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Add a staff member; prints the new number.

    Example:
      commcare staff add 王秀英 --phone 13800001111 --role 联络员
    """
    from commcare import register

    row = state().write(lambda s, ctx: register.staff_row(register.add_staff(s, ctx, name, phone, role)))
    _added(row, fmt, "staff.added")


@staff_app.command("list")
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
    run = lambda s, ctx: [register.staff_row(x, unmask) for x in register.list_staff(s, ctx, all_)]
    rows = st.write(lambda s, ctx: _unmasked(s, ctx, run, "staff.list")) if unmask else st.read(run)
    emit(rows, fmt, output, columns=["id", "name", "phone", "role", "active"], force=force)


@staff_app.command("edit")
def staff_edit(
    ref: Annotated[str, typer.Argument(help="Staff number or name.")],
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    phone: Annotated[str | None, typer.Option(help="New phone.")] = None,
    role: Annotated[str | None, typer.Option(help="New role.")] = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive", help="Still working here?")] = None,
) -> None:
    """Change a staff member's details, or mark them inactive (no longer due health reports).

    Example:
      commcare staff edit 李强 --inactive
    """
    from commcare import register

    row = state().write(lambda s, ctx: register.staff_row(register.edit_staff(s, ctx, ref, name, phone, role, active)))
    say("staff.edited", id=row["id"], name=row["name"])


# --- audit -----------------------------------------------------------------------------------

@audit_app.callback()
def audit_cmd(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="From this time (2026-05-08, +-2d, ISO 8601).")] = None,
    resident: Annotated[str | None, typer.Option(help="Only entries about this resident.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many entries.")] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """Who did what, when (field names only, never phone or ID numbers).

    Example:
      commcare audit --since 2026-05-01 --resident 张桂兰
    """
    if ctx.invoked_subcommand is not None:
        return
    from commcare import audit, register
    from commcare.timeparse import parse_when

    def run(s, ctx):
        start = parse_when(since, ctx.tz, ctx.now(), "since", date_time=__import__("datetime").time(0)) if since else None
        rid = register.find_resident(s, ctx, resident).id if resident else None
        found = audit.entries(s, ctx, since=start, entity="resident" if rid else None, entity_id=rid, limit=limit)
        return [audit.as_row(e, ctx.tz) for e in found]

    emit(state().read(run), fmt, output, force=force)


@audit_app.command("verify")
def audit_verify() -> None:
    """Check that no entry of the audit trail was edited or deleted (exit 1 at the first).

    Example:
      commcare audit verify
    """
    from commcare import audit

    result = state().read(lambda s, ctx: audit.verify(s))
    say("audit.verified", count=result["verified"])
