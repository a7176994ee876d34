"""Run the installed ``commcare`` console script as a user does (a subprocess), with the
environment the autouse fixture set up (database, config, language under tmp_path)."""

from __future__ import annotations

import os
import subprocess
import sys

EXE = os.path.join(os.path.dirname(sys.executable), "commcare")


def commcare(
    *args, env: dict | None = None, cwd=None, input: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    full = {**os.environ, **(env or {})}
    return subprocess.run(
        [EXE, *map(str, args)],
        env=full,
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(*args, **kwargs) -> subprocess.CompletedProcess:
    """``commcare`` that must succeed (its stderr in the assertion message when it does not)."""
    result = commcare(*args, **kwargs)
    assert result.returncode == 0, (args, result.returncode, result.stderr)
    return result
