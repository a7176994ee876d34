"""The commcare command line: the Typer app, the global options, and the one error boundary.

Each command group is a Typer app in its own module of ``commcare/commands/``, added here with
``app.add_typer``. Nothing heavy is imported here or there: SQLAlchemy, Alembic, openpyxl and
pypinyin load inside the commands that use them, so ``commcare --help`` starts fast. The
console script imports only the module of the command it runs (``register``); ``app``, as
anything else imports it, has every command.
"""

import os
import sys
from contextlib import contextmanager
from typing import Annotated

import typer
from typer.core import TyperGroup

from commcare import __version__
from commcare.commands import common


class CommcareGroup(TyperGroup):
    """Runs the command and turns every known failure into one line and its exit code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        code = run_guarded(
            lambda: super(CommcareGroup, self).main(
                args, prog_name or "commcare", complete_var, standalone_mode=False, **extra
            )
        )
        common.finish()
        sys.exit(code)


def run_guarded(call) -> int:
    try:
        return _guarded(call)
    except KeyboardInterrupt:  # a second Ctrl-C while the failure was being reported
        return 130


def _guarded(call) -> int:
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
        return _fail(usage_in_language(exc.format_message().replace("\n", " ")), getattr(exc, "exit_code", 2) or 2, exc)
    except Abort:
        return _fail("aborted", 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - the one boundary
        if _after_interrupt(exc) and os.environ.get("COMMCARE_DEBUG") != "1":
            return 130
        return _known(exc)


def _after_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while a Ctrl-C was being handled: on PostgreSQL, an
    executemany interrupted mid-way leaves the connection unable to roll back, and that
    failure ("cannot exit pipeline mode while busy") would otherwise be reported instead of
    the interruption. The server drops the transaction with the connection; the interruption
    is what happened (exit 130, silent, as Typer answers one that arrives on its own)."""
    seen = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if isinstance(link, KeyboardInterrupt):
            return True
        seen.add(id(link))
        link = link.__context__
    return False


# Click's usage errors, which it writes in English, and the message each becomes.
USAGE_MESSAGES = (
    (r"Missing argument '(?P<name>[^']+)'\.", "usage.missing_argument"),
    (r"Missing option (?P<name>'[^.]+')\.", "usage.missing_option"),
    (r"No such option: (?P<name>\S+)", "usage.no_such_option"),
    (r"No such command '(?P<name>[^']+)'\.", "usage.no_such_command"),
    (r"Did you mean (?P<names>[^?]+)\?", "usage.did_you_mean"),
    (r"\(Possible options: (?P<names>[^)]+)\)", "usage.possible_options"),
    (r"Invalid value for '(?P<name>[^']+)': (?P<problem>.+)", "usage.invalid_value"),
    (r"'(?P<value>[^']*)' is not a valid int(?:eger)?\.", "usage.not_integer"),
    (r"'(?P<value>[^']*)' is not a valid float\.", "usage.not_float"),
    (r"Got unexpected extra argument(?:s|\(s\))? \((?P<args>[^)]*)\)", "usage.extra_arguments"),
    (r"Option '(?P<name>[^']+)' requires an argument\.", "usage.requires_argument"),
    (r"Option '(?P<name>[^']+)' does not take a value\.", "usage.takes_no_value"),
)


def usage_in_language(text: str) -> str:
    """A usage error in the user's language (Click has only English)."""
    from commcare import i18n

    if i18n.get_lang() == "en":
        return text
    import re

    for pattern, key in USAGE_MESSAGES:
        text = re.sub(pattern, lambda m, key=key: i18n.t(key, **_named(key, m.groupdict())), text)  # type: ignore[misc]
    return text


def _named(key: str, values: dict) -> dict:
    """A missing argument named as the field it is (「姓名」), where the field has a word."""
    if key == "usage.missing_argument":
        from commcare import i18n

        name = values["name"].strip("{}").rstrip(".")
        values = {**values, "name": i18n.field_label(name) if f"field.{name}" in i18n.catalog() else values["name"]}
    return values


def _known(exc: Exception) -> int:
    from commcare.errors import CommcareError, ImportRejected

    if os.environ.get("COMMCARE_DEBUG") == "1":
        raise exc
    if isinstance(exc, ImportRejected):
        for line in exc.problems:  # each made of a message whose values are masked
            sys.stderr.write(f"{line}\n")
    if isinstance(exc, CommcareError):
        return _fail(exc.message(terminal=sys.stderr.isatty()), exc.exit_code, exc)
    translated = common.database_failure(exc)
    if translated is not None:
        return _fail(translated.message(), translated.exit_code, translated)
    from commcare.i18n import t

    return _fail(t("error.internal", kind=type(exc).__name__), 1, exc)


def _fail(message: str, code: int, exc: Exception | None = None) -> int:
    """One line on stderr: control characters from a quoted bad value are shown escaped; a
    usage error's quoted value has its phone and ID numbers masked (a ``CommcareError``'s
    message masks its own values)."""
    from commcare.errors import CommcareError

    if not isinstance(exc, CommcareError):
        from commcare.masking import mask_numbers

        message = mask_numbers(message)
    from commcare.render.terminal_text import printable

    safe = printable(message)
    sys.stderr.write(f"commcare: {safe}\n")
    return code


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"commcare {__version__}\n")
        raise typer.Exit(0)


_app = typer.Typer(
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


@_app.callback()
def global_options(
    ctx: typer.Context,
    db: Annotated[
        str | None, typer.Option("--db", help="SQLite file or SQLAlchemy URL [env COMMCARE_DB].", show_default=False)
    ] = None,
    config: Annotated[
        str | None, typer.Option("--config", help="TOML config file [env COMMCARE_CONFIG].", show_default=False)
    ] = None,
    as_: Annotated[
        str | None,
        typer.Option(
            "--as", help="The staff member acting, for the audit trail [env COMMCARE_USER].", show_default=False
        ),
    ] = None,
    lang: Annotated[
        str | None, typer.Option("--lang", help="zh or en [env COMMCARE_LANG].", show_default=False)
    ] = None,
    community: Annotated[
        str | None,
        typer.Option(
            "--community",
            help="The community (社区) whose register this is [env COMMCARE_COMMUNITY].",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Global options come before the command: commcare --db my.db resident list."""
    from commcare import i18n

    if lang is not None and lang not in i18n.LANGS:
        raise typer.BadParameter(f"'{lang}' is not zh or en", param_hint="--lang")
    i18n.set_lang(i18n.resolve_lang(lang, config))
    ctx.obj = common.start(database=db, config=config, operator=as_, lang=lang, community=community)


# The commands in the order help lists them: (name, module of commcare/commands, the function
# of a command or None for a group's Typer app).
COMMANDS = (
    ("init", "init", "init"),
    ("add-request", "request", "add_request"),
    ("demo", "demo", "demo"),
    *(
        (name, name, None)
        for name in (
            "resident",
            "household",
            "staff",
            "audit",
            "config",
            "request",
            "call",
            "health",
            "donation",
            "directory",
            "report",
            "schedule",
            "db",
            "retention",
            "community",
        )
    ),
)
_registered: list[str] = []


def register(names: set[str] | None = None) -> typer.Typer:
    """Add the commands ``names`` (every one when None) to the app, importing only their
    modules: a command a liaison types does not pay for the seventy it does not name. Every
    command registered at once is put back in help's order."""
    from importlib import import_module

    if names is None:
        if len(_registered) == len(COMMANDS):
            return _app
        _app.registered_commands, _app.registered_groups, _registered[:] = [], [], []
        names = {name for name, _, _ in COMMANDS}
    for name, module_name, function in COMMANDS:
        if name not in names or name in _registered:
            continue
        module = import_module(f"commcare.commands.{module_name}")
        if function is not None:
            _app.command(name)(getattr(module, function))
        else:
            if name == "resident":
                _under_resident(module.app)
            _app.add_typer(module.app, name=name)
        _registered.append(name)
    return _app


def _under_resident(resident_app: typer.Typer) -> None:
    """import, export, duplicates, merge: the roster's commands, under "resident"."""
    from commcare.commands import roster

    if not any(g.typer_instance is roster.app for g in resident_app.registered_groups):
        resident_app.add_typer(roster.app)


def __getattr__(name: str):
    if name == "app":  # the whole app, for anything that imports it (tests, docs)
        return register()
    raise AttributeError(name)


# Global options that take a value: the command's name is the first word after them.
VALUE_OPTIONS = ("--db", "--config", "--as", "--lang", "--community")


def _words(args: list[str]) -> list[str]:
    """The words of ``args`` that are not options or option values (command, sub-command, …)."""
    words: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in VALUE_OPTIONS:
            skip = True
        elif arg.startswith("-"):
            if arg in ("-h", "--help", "--version"):
                return words  # help for what was named so far: keep all below it
        else:
            words.append(arg)
    return words


@contextmanager
def _only(args: list[str]):
    """Narrow the app to the command ``args`` name while the Click command is built.

    Typer turns every function's signature into Click parameters before it runs anything, for
    every command of the tree: a named command (and, within a group, a named sub-command) is
    built alone; anything else — no command, ``--help``, a misspelt name — builds the whole
    tree, so help and suggestions are complete. This relies on Typer's ``registered_commands``
    and ``registered_groups`` (a group added without a name lends its commands to its
    parent); tests/test_cli_startup.py fails loudly if a Typer release changes them.
    """
    words = _words(args)
    saved = []

    def narrow(typer_app, name) -> typer.Typer | None:
        nameless = [g.typer_instance for g in typer_app.registered_groups if _group_name(g) is None]
        commands = [c for t in (typer_app, *nameless) for c in t.registered_commands if c.name == name]
        groups = [g for g in typer_app.registered_groups if _group_name(g) == name]
        if not commands and not groups:
            return None
        saved.append((typer_app, typer_app.registered_commands, typer_app.registered_groups))
        typer_app.registered_commands, typer_app.registered_groups = commands, groups
        return groups[0].typer_instance if groups else None

    try:
        sub = narrow(_app, words[0]) if words else None
        if sub is not None and len(words) > 1:
            narrow(sub, words[1])
        yield
    finally:
        for typer_app, commands, groups in reversed(saved):
            typer_app.registered_commands, typer_app.registered_groups = commands, groups


def _group_name(info) -> str | None:
    """The name a group was added under (``add_typer(name=…)`` or its Typer's own), or None
    for one added without a name (its commands join the parent)."""
    for name in (info.name, info.typer_instance.info.name):
        if isinstance(name, str):
            return name
    return None


def main() -> None:
    """The console script.

    The garbage collector is held off while the command's libraries load and resumes, with
    everything loaded so far frozen out of its sight, when the command opens its database
    (``common.resume_gc``): start-up creates a few hundred thousand long-lived objects that
    full collections would otherwise walk again and again. A command that never opens a
    database simply exits.
    """
    import gc

    gc.disable()
    common.GC_HELD[:] = [True]
    command = build(sys.argv[1:])
    command()


def build(args: list[str]):
    """The Click command for ``args``, its help in the language the global options, the
    environment, the config or the locale choose (known before Click renders anything)."""
    import typer.main

    from commcare import helptext, i18n

    lang = i18n.early_lang(args)
    i18n.set_lang(lang)
    words = _words(args)
    known = {name for name, _, _ in COMMANDS}
    register({words[0]} if words and words[0] in known else None)
    with _only(args):
        command = typer.main.get_command(_app)
    helptext.install_click_words(lang)
    if "--help" in args or "-h" in args:
        helptext.localise(command, lang)
    else:
        helptext.localise_when_shown(command, lang)
    return command
