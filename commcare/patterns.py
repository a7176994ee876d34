"""Regular expressions compiled when first used, not when their module is imported.

A module-level ``re.compile`` costs every command that imports the module, whether or not it
matches anything: commcare's twenty-odd patterns took about 6 ms of each command's start
(issue #22), most of them for input a given command never sees (ID numbers, landlines, Excel
dates, help text). ``Pattern`` keeps the same calls (``fullmatch``, ``sub``, …) and compiles on
the first one; ``re`` itself has no lazy form.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator


class Pattern:
    __slots__ = ("_compiled", "flags", "pattern")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern = pattern
        self.flags = flags
        self._compiled: re.Pattern[str] | None = None

    @property
    def compiled(self) -> re.Pattern[str]:
        found = self._compiled
        if found is None:
            found = self._compiled = re.compile(self.pattern, self.flags)
        return found

    def fullmatch(self, string: str) -> re.Match[str] | None:
        return self.compiled.fullmatch(string)

    def match(self, string: str) -> re.Match[str] | None:
        return self.compiled.match(string)

    def search(self, string: str) -> re.Match[str] | None:
        return self.compiled.search(string)

    def sub(self, repl: str | Callable[[re.Match[str]], str], string: str, count: int = 0) -> str:
        return self.compiled.sub(repl, string, count)

    def split(self, string: str, maxsplit: int = 0) -> list[str]:
        return self.compiled.split(string, maxsplit)

    def findall(self, string: str) -> list:
        return self.compiled.findall(string)

    def finditer(self, string: str) -> Iterator[re.Match[str]]:
        return self.compiled.finditer(string)

    def __repr__(self) -> str:
        return f"Pattern({self.pattern!r}, {self.flags!r})"
