"""donation add and list: donated supplies."""

from typing import Annotated

import typer

from commcare.commands.common import AtOpt, ForceOpt, FormatOpt, OutputOpt, confirm, emit, state, write_out

app = typer.Typer(help="Donated supplies.", no_args_is_help=True)


@app.command("add")
def donation_add(
    donor: Annotated[str, typer.Argument(help="Who gave it.")],
    item: Annotated[list[str], typer.Option("--item", help="NAME:QTY[:UNIT], repeatable (矿泉水:50:箱).")],
    for_: Annotated[str, typer.Option("--for", help="staff or residents.")] = "residents",
    at: AtOpt = None,
    note: Annotated[str | None, typer.Option(help="A note.")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Log donated supplies.

    Example:
      commcare donation add 永辉超市 --item 矿泉水:50:箱 --item 盒饭:120:份 --for staff
    """
    from commcare import donations as logs

    row = state().write(logs.add_donation, donor, item, for_, at, note)
    confirm(row, fmt, "donation.added", id=row["id"], donor=row["donor"])


@app.command("list")
def donation_list(
    from_: Annotated[str | None, typer.Option("--from", help="First day.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last day.")] = None,
    totals: Annotated[bool, typer.Option("--totals", help="Only the totals per item and unit.")] = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """Donations between two days (default: all), then the totals per item and unit. With
    --format json/csv: the donations, or with --totals the totals.

    Example:
      commcare donation list --from 2026-05-01 --to 2026-05-31
      commcare donation list --from 2026-05-01 --to 2026-05-31 --totals --format csv
    """
    from commcare import donations as logs
    from commcare.commands.common import out_format

    fmt = out_format(fmt)
    st = state()
    if totals or fmt != "table":
        fn = logs.donation_totals if totals else logs.list_donations
        emit(st.read(fn, from_, to), fmt, output, force=force)
        return
    donations, sums = st.read(
        lambda conn, ctx: (logs.list_donations(conn, ctx, from_, to), logs.donation_totals(conn, ctx, from_, to))
    )
    from commcare import i18n, words
    from commcare.render import formats

    columns = ("id", "at", "donor", "for", "items", "note", "item", "quantity", "unit", "donations")
    headers = {c: i18n.column(c) for c in columns}
    from commcare.commands.common import this_year

    year = this_year()
    text = formats.to_table(words.display(donations), ["id", "at", "donor", "for", "items", "note"], headers, year=year)
    text += "\n" + formats.to_table(
        sums, ["item", "quantity", "unit", "donations"], headers, title=i18n.t("donation.totals")
    )
    write_out(text, output, force)
