"""The commcare command line: the Typer app, the global options, and the one error boundary.

Command groups live in ``commcare/commands/``; each module has ``register(app)``. Nothing
heavy is imported here: SQLAlchemy, Alembic, openpyxl and pypinyin load inside the commands
that use them, so ``commcare --help`` starts fast.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from typer.core import TyperGroup

from commcare import __version__
from commcare.commands import common

COMMAND_MODULES = (
    "register_cmds", "roster_cmds", "request_cmds", "round_cmds",
    "report_cmds", "demo_cmds", "db_cmds",
)


class CommcareGroup(TyperGroup):
    """Runs the command and turns every known failure into one line and its exit code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        code = run_guarded(lambda: super(CommcareGroup, self).main(
            args, prog_name or "commcare", complete_var, standalone_mode=False, **extra))
        sys.exit(code)


def run_guarded(call) -> int:
    from typer.exceptions import Abort, Exit, TyperException

    try:
        result = call()
        return result if isinstance(result, int) else 0
    except Exit as exc:
        return exc.exit_code
    except TyperException as exc:  # a usage error: unknown option, missing argument, bad value
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.stdout.write(exc.format_message() + "\n")
            return 0
        return _fail(exc.format_message().replace("\n", " "), getattr(exc, "exit_code", 2) or 2, exc)
    except Abort:
        return _fail("aborted", 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - the one boundary
        return _known(exc)


def _known(exc: Exception) -> int:
    from commcare.errors import CommcareError, ImportRejected

    if os.environ.get("COMMCARE_DEBUG") == "1":
        raise exc
    if isinstance(exc, ImportRejected):
        for line in exc.problems:
            sys.stderr.write(f"{line}\n")
    if isinstance(exc, CommcareError):
        return _fail(exc.message(), exc.exit_code, exc)
    translated = _database_failure(exc)
    if translated is not None:
        return _fail(translated.message(), translated.exit_code, exc)
    from commcare.i18n import t

    return _fail(t("error.internal", kind=type(exc).__name__), 1, exc)


def _database_failure(exc: Exception):
    if not type(exc).__module__.startswith("sqlalchemy"):
        return None
    from commcare.db import display_url, translate

    where = "?"
    state = common.current()
    if state is not None and state._settings is not None:
        where = display_url(state.settings.database)
    return translate(exc, where)


def _fail(message: str, code: int, exc: Exception | None = None) -> int:
    """One line on stderr: control characters from a quoted bad value are shown escaped."""
    safe = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    sys.stderr.write(f"commcare: {safe}\n")
    return code


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"commcare {__version__}\n")
        raise typer.Exit(0)


app = typer.Typer(
    cls=CommcareGroup,
    name="commcare",
    help="commcare: the register, requests for help, daily check-in calls and the evening "
         "report of a residents' committee (社区居委会). 不漏一人.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def global_options(
    ctx: typer.Context,
    db: Annotated[str | None, typer.Option("--db", help="SQLite file or SQLAlchemy URL [env COMMCARE_DB].", show_default=False)] = None,
    config: Annotated[str | None, typer.Option("--config", help="TOML config file [env COMMCARE_CONFIG].", show_default=False)] = None,
    as_: Annotated[str | None, typer.Option("--as", help="The staff member acting, for the audit trail [env COMMCARE_USER].", show_default=False)] = None,
    lang: Annotated[str | None, typer.Option("--lang", help="zh or en [env COMMCARE_LANG].", show_default=False)] = None,
    community: Annotated[str | None, typer.Option("--community", help="The community (社区) whose register this is [env COMMCARE_COMMUNITY].", show_default=False)] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """Global options come before the command: commcare --db my.db resident list."""
    from commcare import i18n

    if lang is not None and lang not in i18n.LANGS:
        raise typer.BadParameter(f"'{lang}' is not zh or en", param_hint="--lang")
    i18n.set_lang(lang or os.environ.get("COMMCARE_LANG"))
    ctx.obj = common.start(database=db, config=config, operator=as_, lang=lang, community=community)


def _register_all() -> None:
    import importlib

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"commcare.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"commcare.commands.{name}":
                raise
            continue
        module.register(app)


_register_all()


def main() -> None:
    app()
