"""Help in the user's language, built into the Click command before it renders anything.

The English help is written once, in the code (docstrings and ``help=``); its Chinese is in
``data/help/zh.json``, keyed by the English text with its whitespace collapsed (as gettext keys
a translation by its source). A command's help is read paragraph by paragraph, so the same
sentence is translated once wherever it appears; an ``Example:`` block is never translated or
rewrapped: it is written behind Click's no-rewrap marker (``\\b``), line by line, so a command
can be copied out of it. Click's own words (Usage, Options, Commands, Arguments, "Show this
message and exit.", default, required) are in the same file.

A help text without its Chinese is shown in English; tests/test_language.py walks every
command's ``--help`` in Chinese and fails on it, so a new command or option cannot go without.
"""

from __future__ import annotations

from functools import cache

from commcare.patterns import Pattern

EXAMPLE_HEADS = ("Example:", "Examples:")
SHORT = 36  # characters of a command's line in its group's list (each two columns wide)
PARAGRAPHS = Pattern(r"\n[ \t]*\n")


@cache
def zh_help() -> dict[str, str]:
    import json

    from commcare.resources import data_dir

    with open(data_dir() / "help" / "zh.json", encoding="utf-8") as fh:
        return json.load(fh)


def words(text: str, lang: str) -> str:
    """One paragraph or option help in ``lang`` (English as written when it has no Chinese)."""
    if lang == "en":
        return text
    key = " ".join(text.split())
    return zh_help().get(key, text)


def command_help(text: str, lang: str) -> str:
    """A command's help: prose paragraphs translated, ``Example:`` blocks kept line by line."""
    import inspect

    parts = []
    for paragraph in PARAGRAPHS.split(inspect.cleandoc(text)):
        lines = paragraph.strip("\n").splitlines()
        head = lines[0].strip() if lines else ""
        if head in EXAMPLE_HEADS:
            label = head if lang == "en" else words(head, lang)
            body = [line.rstrip() for line in lines[1:]]
            parts.append("\n".join(["\b", label, *body]))
        elif paragraph.strip():
            parts.append(words(paragraph, lang))
    return "\n\n".join(parts)


def short_help(text: str, lang: str) -> str | None:
    """The one line a group lists for a command: the first sentence. Click finds it by the
    English full stop; in Chinese it is the first 。 (or the whole first paragraph)."""
    if lang == "en":
        return None
    first = text.split("\n\n", 1)[0].strip()
    end = first.find("。")
    first = first[: end + 1] if end != -1 else first
    if len(first) <= SHORT:
        return first
    cut = max(first.rfind(mark, 0, SHORT) for mark in "，；：（")
    return (first[:cut] if cut > 0 else first[:SHORT]) + "……"


def localise(command, lang: str) -> None:
    """Put ``lang``'s help on ``command`` and every command below it (once per process)."""
    if getattr(command, "_commcare_lang", None) == lang:
        return
    command._commcare_lang = lang
    source = getattr(command, "_commcare_help", None)
    if source is None:
        source = command._commcare_help = command.help or ""
    if source:
        command.help = command_help(source, lang)
        command.short_help = short_help(command.help, lang)
    for param in command.params:
        original = getattr(param, "_commcare_help", None)
        if original is None:
            original = param._commcare_help = getattr(param, "help", None) or ""
        if original:
            param.help = words(original, lang)
        _default_in_words(param, lang)
    for sub in getattr(command, "commands", {}).values():
        localise(sub, lang)


# Options whose default is a slug of data/words.toml: shown in the words of the language.
DEFAULT_FIELDS = {"--urgency": "urgency", "--for": "recipients", "--status": "status", "--outcome": "outcome"}


def _default_in_words(param, lang: str) -> None:
    field = next((DEFAULT_FIELDS[o] for o in getattr(param, "opts", ()) if o in DEFAULT_FIELDS), None)
    if field is None or not isinstance(param.default, str) or param.show_default is False:
        return
    param.show_default = True if lang == "en" else DefaultInWords(field, param.default)


class DefaultInWords(str):
    """An option's default slug, shown (only when help is written) as its word: the word list
    is read then, not each time the command is built."""

    field: str

    def __new__(cls, field: str, slug: str) -> DefaultInWords:
        made = super().__new__(cls, slug)
        made.field = field
        return made

    def __str__(self) -> str:
        from commcare.words import label

        return str(label(self.field, str.__str__(self)))

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


_PENDING: list[tuple[object, str]] = []


def localise_when_shown(command, lang: str) -> None:
    """Localise ``command``'s tree only when Click makes a help formatter (for ``--help``, a
    group's help, a usage error's usage line): a command that simply runs never reads its help,
    and translating the tree's help cost each command a few milliseconds (issue #22)."""
    _PENDING[:] = [(command, lang)]


def _localise_pending() -> None:
    while _PENDING:
        command, lang = _PENDING.pop()
        localise(command, lang)


def install_click_words(lang: str) -> None:
    """Click's own words in ``lang``: the help formatter's prefix and headings, and the words
    Typer passes through gettext (default, required, Options, Arguments, Commands)."""
    import typer.core
    from typer._click import core

    if lang == "en":
        core.Context.formatter_class = _formatter_class(False)
        typer.core._ = _identity
        return
    core.Context.formatter_class = _formatter_class(True)
    typer.core._ = _click_word  # Typer calls its gettext ``_`` by the module's name


def _identity(message: str) -> str:
    return message


def _click_word(message: str) -> str:
    return zh_help().get(message, message)


@cache
def _formatter_class(chinese: bool):
    from typer._click.formatting import HelpFormatter

    class LocalisingHelpFormatter(HelpFormatter):
        """Click's help layout; the help it shows is localised when it is made."""

        def __init__(self, *args, **kwargs) -> None:
            _localise_pending()
            super().__init__(*args, **kwargs)

    if not chinese:
        return LocalisingHelpFormatter

    class ChineseHelpFormatter(LocalisingHelpFormatter):
        """Click's help layout with its own words in Chinese."""

        def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
            super().write_usage(prog, args, _click_word("Usage: ") if prefix is None else prefix)

        def write_heading(self, heading: str) -> None:
            self.write(f"{'':>{self.current_indent}}{_click_word(heading)}：\n")

        def write_text(self, text: str) -> None:
            """Paragraphs wrapped by columns (a Chinese character takes two); a ``\b`` block
            written line by line."""
            indent = " " * self.current_indent
            out = []
            for paragraph in PARAGRAPHS.split(text):
                lines = paragraph.splitlines()
                if lines and lines[0].strip() == "\b":
                    out.append("\n".join(indent + line for line in lines[1:]))
                elif paragraph.strip():
                    out.append(wrap_cells(" ".join(x.strip() for x in lines), self.width, indent, indent))
            self.write("\n\n".join(out) + "\n")

        def write_dl(self, rows, col_max: int = 30, col_spacing: int = 2) -> None:
            rows = [(first, _click_word(second)) for first, second in rows]
            first_col = min(max((cells(f) for f, _ in rows), default=0), col_max) + col_spacing
            pad = " " * (first_col + self.current_indent)
            for first, second in rows:
                self.write(f"{'':>{self.current_indent}}{first}")
                if not second:
                    self.write("\n")
                    continue
                if cells(first) <= first_col - col_spacing:
                    self.write(" " * (first_col - cells(first)))
                else:
                    self.write("\n" + pad)
                wrapped = wrap_cells(second, max(self.width - first_col - 2, 10) + len(pad), pad, pad)
                self.write(wrapped[len(pad) :] + "\n")

    return ChineseHelpFormatter


CJK_CHUNK = Pattern(
    r"\[[^\]\s]{1,30}\]|[\u2e80-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]|[^\s\u2e80-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]+|\s+"
)


CLOSING = "，。、；：）」』】！？,.;:)]"  # never at the start of a line


OPENING = "（「『[(【"  # never at the end of a line


def _chunks(text: str) -> list[str]:
    """The pieces a line may break between: each Chinese character, each other word, a space;
    an opening bracket joined to what follows it."""
    out: list[str] = []
    for chunk in CJK_CHUNK.findall(text):
        chunk = " " if chunk.isspace() else chunk
        if out and out[-1][-1:] in OPENING and chunk != " ":
            out[-1] += chunk
        else:
            out.append(chunk)
    return out


def cells(text: str) -> int:
    """Terminal columns ``text`` takes: two for a wide (Chinese) character."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def wrap_cells(text: str, width: int, initial: str = "", subsequent: str = "") -> str:
    """``text`` wrapped to ``width`` columns: between any two Chinese characters, at spaces
    between other words; a line never starts with a space."""
    lines, line = [], initial
    used = cells(initial)
    for chunk in _chunks(text):
        size = cells(chunk)
        # two columns kept for a closing mark, which may not start the next line
        if used + size > width - 2 and line.strip() and chunk not in CLOSING:
            lines.append(line.rstrip())
            line, used = subsequent, cells(subsequent)
        if chunk == " " and not line.strip():
            continue
        line += chunk
        used += size
    lines.append(line.rstrip())
    return "\n".join(lines)
