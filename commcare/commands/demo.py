"""commcare demo: a fictional community in a separate database, then today's report."""

from typing import Annotated

import typer

from commcare.commands.common import FormatOpt, ProgressBar, color_enabled, note, state


def demo(
    residents: Annotated[int, typer.Option(min=1, max=2_000_000, help="How many residents.")] = 300,
    requests: Annotated[
        int, typer.Option(min=0, max=20_000_000, help="How many requests for help, over the days.")
    ] = 600,
    days: Annotated[int, typer.Option(min=1, max=3650, help="How many days of history, ending now.")] = 14,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same community.")] = 1,
    fmt: FormatOpt = None,
) -> None:
    """Fill a separate demo database with a realistic, fictional community (households and
    their liaisons, special groups, requests for help with their rhythms, the daily calls,
    staff health, donations) and print today's report. It writes to demo.db in the user data
    dir unless --db (or COMMCARE_DB) names another, rebuilds a database it made before, and
    refuses one that holds real residents.

    Example:
      commcare demo
      commcare demo --seed 7 --format markdown
      commcare --db /tmp/big.db demo --residents 100000 --requests 1000000
    """
    from commcare.commands.common import out_format
    from commcare.config import user_data_dir
    from commcare.demo import community as demo_mod

    fmt = out_format(fmt, ("table", "json", "csv", "markdown", "html"))
    st = state()
    if st.settings.sources.get("database") not in ("option", "env COMMCARE_DB"):
        st.settings.database = str(user_data_dir() / "demo.db")  # never the real register
    from commcare import audit_anchor

    demo_mod.prepare(st.settings.database)
    st.rebuilds_demo = True
    st.database(create=True)
    with ProgressBar("demo.step") as progress:
        summary = st.write(demo_mod.generate, residents, requests, days, seed, progress)
    audit_anchor.reset(st.database())  # a rebuilt demo starts its trail again
    note("demo.done", path=st.database().where, **summary)
    _print_report(st, fmt)


def _print_report(st, fmt: str) -> None:
    """Today's report."""
    import sys

    from commcare import reports
    from commcare.render import report as report_render

    data = st.read(lambda conn, ctx: reports.day_report(conn, ctx, ctx.today()))
    sys.stdout.write(report_render.render_day(data, fmt, color=color_enabled()))
