"""directory add, list, import: useful numbers (hospitals, pharmacies, hotlines)."""

from typing import Annotated

import typer

from commcare.commands.common import ForceOpt, FormatOpt, OutputOpt, confirm, emit, state

app = typer.Typer(help="Useful numbers: hospitals, pharmacies, hotlines.", no_args_is_help=True)


@app.command("add")
def directory_add(
    name: Annotated[str, typer.Argument(help="Name of the place or service.")],
    phone: Annotated[str, typer.Option(help="Phone number (short hotlines such as 12345 accepted).")],
    kind: Annotated[str, typer.Option(help="hospital, clinic, pharmacy, hotline, utility or other (医院, 药店 …).")],
    hours: Annotated[str | None, typer.Option(help="Opening hours.")] = None,
    address: Annotated[str | None, typer.Option(help="Address.")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Add a useful number to the directory.

    Example:
      commcare directory add 社区卫生服务中心 --phone 0371-67891234 --kind clinic --hours 8:00-17:30
    """
    from commcare import directory

    row = state().write(directory.add_directory, name, phone, kind, hours, address)
    confirm(row, fmt, "directory.added", id=row["id"], name=row["name"])


@app.command("list")
def directory_list(
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    search: Annotated[str | None, typer.Option(help="Name, pinyin, initials or phone digits.")] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """List the directory (numbers in full: they are public services).

    Example:
      commcare directory list --kind pharmacy --search yd
    """
    from commcare import directory

    emit(
        state().read(directory.list_directory, kind, search),
        fmt,
        output,
        columns=["id", "name", "phone", "kind", "hours", "address"],
        force=force,
    )


@app.command("import")
def directory_import(
    file: Annotated[str, typer.Argument(help="A CSV (UTF-8 or GBK) or XLSX file with a header row.")],
    fmt: FormatOpt = None,
) -> None:
    """Import useful numbers: columns name/名称, phone/电话, kind/类型, hours/时间, address/地址.
    All rows are checked first; any bad row and nothing is imported. Entries already listed
    (same name and phone) are skipped.

    Example:
      commcare directory import 常用电话.csv
    """
    from commcare import directory

    row = state().write(directory.import_directory, file)
    confirm(row, fmt, "directory.imported", **row)
