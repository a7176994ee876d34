"""A register known to be damaged.

When a command finds a SQLite register damaged (SQLite's own SQLITE_CORRUPT, or counts that
do not agree: ``commcare.storage.integrity``), it writes NAME.damaged beside the file (0600:
when, and what was found; never resident data). Until it is gone, every command but ``db
check``, ``db restore`` and ``db backup`` refuses the register (exit 3). A ``db check`` that
finds the register sound removes it, and so does a restore or a new register made in its
place.
"""

from __future__ import annotations

import os
from pathlib import Path

from commcare.errors import Damaged
from commcare.storage.engine import display_url, sqlite_path


def damage_marker(database: str) -> Path | None:
    path = sqlite_path(database)
    return None if path is None else path.with_name(path.name + ".damaged")


def mark_damaged(database: str, what: str) -> None:
    """Remember that the register is damaged (the first finding is kept)."""
    import datetime as dt

    marker = damage_marker(database)
    if marker is None or marker.exists():
        return
    stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    line = " ".join(what.split())[:300]
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"{stamp}\t{line}\n")
    except OSError:  # a read-only directory: the finding is still reported, not remembered
        pass


def known_damage(database: str) -> tuple[str, str] | None:
    """(when, what) of a recorded finding, or None."""
    marker = damage_marker(database)
    if marker is None:
        return None
    try:
        text = marker.read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return None
    except OSError:
        text = ""
    when, _, what = text.partition("\t")
    return when or "?", what or "?"


def clear_damage(database: str) -> None:
    marker = damage_marker(database)
    if marker is not None:
        marker.unlink(missing_ok=True)


def refuse_if_damaged(database: str) -> None:
    found = known_damage(database)
    if found is not None:
        raise Damaged("integrity.known_damaged", path=display_url(database), when=found[0], what=found[1])
