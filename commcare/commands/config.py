"""config show: each setting, its value and where it came from."""

import typer

from commcare.commands.common import FormatOpt, emit, state

app = typer.Typer(help="Settings: option > environment > config file > default.", no_args_is_help=True)


@app.command("show")
def config_show(fmt: FormatOpt = None) -> None:
    """Show each setting, its value and where it came from.

    Example:
      commcare config show
    """
    st = state()
    s = st.settings
    from commcare.db import display_url

    values = {
        "database": display_url(s.database),
        "config": str(s.config_path),
        "timezone": s.timezone,
        "lang": s.lang or "",
        "operator": s.operator,
        "community": s.community,
        "retention_days": s.retention_days,
    }
    rows = [
        {"key": k, "value": v, "source": s.sources.get(k, "config file" if k in s.file else "default")}
        for k, v in values.items()
    ]
    emit(rows, fmt)
