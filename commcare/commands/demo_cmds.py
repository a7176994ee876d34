"""commcare demo: a fictional community in a separate database, then today's report."""

from __future__ import annotations

from typing import Annotated

import typer

from commcare.commands.common import is_terminal, note, state


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    residents: Annotated[int, typer.Option(min=1, max=2_000_000, help="How many residents.")] = 300,
    requests: Annotated[int, typer.Option(min=0, max=20_000_000, help="How many requests for help, over the days.")] = 600,
    days: Annotated[int, typer.Option(min=1, max=3650, help="How many days of history.")] = 14,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same community.")] = 1,
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="Format of the report printed at the end.")] = None,
) -> None:
    """Fill a separate demo database with a realistic, fictional community and print today's
    report. It uses demo.db in the user data dir unless --db (or COMMCARE_DB) names one, and
    refuses a database that holds real residents.

    Example:
      commcare demo
      commcare --db /tmp/big.db demo --residents 100000 --requests 1000000
    """
    from commcare import demo as demo_mod
    from commcare import report_render, reports
    from commcare.config import user_data_dir

    st = state()
    if st.settings.sources.get("database") not in ("option", "env COMMCARE_DB"):
        st.settings.database = str(user_data_dir() / "demo.db")
    with _progress() as progress:
        summary = st.write(demo_mod.generate, residents, requests, days, seed, progress)
    note("demo.done", path=st.database().where, **summary)
    data = st.read(lambda s, ctx: reports.day_report(s, ctx, ctx.today()))
    typer.echo(report_render.render_day(data, fmt or "table"), nl=False)


class _progress:
    """A Rich progress bar on a terminal; nothing when piped."""

    def __enter__(self):
        if not is_terminal():
            return None
        from rich.progress import Progress

        self.bar = Progress(transient=True)
        self.bar.start()
        self.tasks: dict = {}
        return self.update

    def update(self, label, done, total):
        if label not in self.tasks:
            self.tasks[label] = self.bar.add_task(label, total=total)
        self.bar.update(self.tasks[label], completed=done)

    def __exit__(self, *exc):
        if is_terminal():
            self.bar.stop()
        return False
