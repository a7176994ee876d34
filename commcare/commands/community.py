"""community list / add / rename: the communities (社区) one register holds."""

from typing import Annotated

import typer

from commcare.commands.common import ForceOpt, FormatOpt, OutputOpt, confirm, emit, note, state

app = typer.Typer(help="The communities (社区) of this register: list, add, rename.", no_args_is_help=True)


@app.command("list")
def community_list(fmt: FormatOpt = None, output: OutputOpt = None, force: ForceOpt = False) -> None:
    """List the communities, with their residents and active staff.

    Example:
      commcare community list
    """
    from commcare import communities

    emit(
        state().read(communities.listing),
        fmt,
        output,
        columns=["id", "name", "residents", "staff", "created_at"],
        force=force,
        labels={"name": "community.col_name", "residents": "community.col_residents", "staff": "community.col_staff"},
    )


@app.command("add")
def community_add(
    name: Annotated[str, typer.Argument(help="The community's name (社区名称).")], fmt: FormatOpt = None
) -> None:
    """Add a community to this register (one database for several communities).

    Example:
      commcare community add 阳光社区
    """
    from commcare import communities

    row = state().write(communities.add, name)
    confirm(row, fmt, "community.added", id=row["id"], name=row["name"])


@app.command("rename")
def community_rename(
    old: Annotated[str, typer.Argument(help="Its name now.")],
    new: Annotated[str, typer.Argument(help="The new name.")],
    fmt: FormatOpt = None,
) -> None:
    """Rename a community: its residents, staff and history stay with it (audited).

    Example:
      commcare community rename default 幸福社区
    """
    from commcare import communities

    st = state()
    row = st.write(communities.rename, old, new)
    confirm(row, fmt, "community.renamed", old=row["old"], name=row["name"])
    source = st.settings.sources.get("community", "default")
    if source != "default" and communities.normalize(st.settings.community) == communities.normalize(row["old"]):
        note("community.still_named", source=source, old=row["old"], name=row["name"])
