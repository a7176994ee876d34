"""household list and assign: the residents at one address, and their one liaison."""

from typing import Annotated

import typer

from commcare.commands.common import ForceOpt, FormatOpt, OutputOpt, emit, say, state

app = typer.Typer(help="Households (户): the residents at one address, one liaison each.", no_args_is_help=True)


@app.command("list")
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


@app.command("assign")
def household_assign(
    household: Annotated[str, typer.Argument(help='"COMPOUND ADDRESS", an address, or one of its residents.')],
    staff: Annotated[str, typer.Argument(help="The new liaison (number or name).")],
) -> None:
    """Give a household a (new) liaison, on purpose: the one fixed liaison changes.

    Example:
      commcare household assign "幸福小区 3-2-101" 李强
    """
    from commcare import register

    address, liaison = state().write(register.assign_household, household, staff)
    say("household.assigned", address=address, liaison=liaison)
