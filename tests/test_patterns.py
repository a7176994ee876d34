"""Regular expressions are compiled when first used (commcare.patterns), not at import."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from commcare.patterns import Pattern

SAMPLES = ["13812345678", "0371-67891234", "a 1-2 b", "", "张桂兰 13812345678", "x\ty"]


@pytest.mark.parametrize("pattern", [r"1[3-9][0-9]{9}", r"[\s\-]", r"([0-9]+)-([0-9]+)", r"\s*"])
def test_a_lazy_pattern_answers_as_re_does(pattern):
    lazy, real = Pattern(pattern, re.ASCII), re.compile(pattern, re.ASCII)
    for text in SAMPLES:
        for method in ("fullmatch", "match", "search"):
            mine, theirs = getattr(lazy, method)(text), getattr(real, method)(text)
            assert (mine and mine.group(0)) == (theirs and theirs.group(0))
        assert lazy.sub("#", text) == real.sub("#", text)
        assert lazy.sub(lambda m: m.group(0)[::-1], text, 1) == real.sub(lambda m: m.group(0)[::-1], text, 1)
        assert lazy.split(text) == real.split(text)
        assert lazy.findall(text) == real.findall(text)
        assert [m.span() for m in lazy.finditer(text)] == [m.span() for m in real.finditer(text)]


def test_a_pattern_is_compiled_once_on_first_use():
    lazy = Pattern(r"[0-9]+")
    assert lazy._compiled is None
    assert lazy.fullmatch("42")
    assert lazy.compiled is lazy.compiled and lazy.compiled.pattern == "[0-9]+"


# Imports the modules a hot command loads, counting the regular expressions commcare's own
# modules compile while they load (Typer and the standard library compile theirs).
PROBE = """
import re, sys
compiled = []
original = re._compile
def counting(pattern, flags):
    caller = sys._getframe(1)
    while caller is not None and caller.f_globals.get("__name__", "").startswith("re"):
        caller = caller.f_back
    name = caller.f_globals.get("__name__", "") if caller is not None else ""
    if name.startswith("commcare"):
        compiled.append((name, str(pattern)[:40]))
    return original(pattern, flags)
re._compile = counting
import commcare.cli, commcare.commands.common, commcare.commands.call, commcare.commands.request
import commcare.commands.report, commcare.commands.health, commcare.commands.resident, commcare.resident_rows
import commcare.calls, commcare.help_requests, commcare.health, commcare.reports, commcare.identity
import commcare.lookup, commcare.masking, commcare.timeparse, commcare.access, commcare.helptext
import commcare.communities, commcare.render.times, commcare.render.terminal_text, commcare.storage.fast
print(compiled)
"""


def test_loading_a_hot_commands_modules_compiles_no_regular_expression():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
