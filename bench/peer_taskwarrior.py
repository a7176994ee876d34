"""Taskwarrior (Debian's ``task``) as the peer: the same work on the same number of records.

A community's requests are tasks: the category is the project, the resident a tag, the due
time the due date. ``build`` writes the 100,000 tasks straight into taskwarrior's own data
file (its documented one-task-per-line format: importing 100,000 tasks through ``task import``
would take far longer than the whole benchmark and measures nothing we compare); the
commands timed are then taskwarrior's own:

    add-request                 <->  task add …
    report today                <->  task summary
    request list --overdue      <->  task +OVERDUE list

Used by ``bench/run.py`` when ``task`` is on the PATH; skipped (and said so) otherwise.
"""

import random
import shutil
import time
import uuid
from pathlib import Path

CATEGORIES = ("gas-topup", "groceries", "medicine", "medical-visit", "trash", "parcel", "repair", "enquiry", "other")


def available() -> bool:
    return shutil.which("task") is not None


def build(where: Path, tasks: int, seed: int = 7) -> dict:
    """A taskwarrior data directory with ``tasks`` pending tasks; returns the env to use it."""
    data = where / "data"
    rc = where / "taskrc"
    if not (data / "pending.data").exists():
        data.mkdir(parents=True, exist_ok=True)
        rng = random.Random(seed)
        now = int(time.time())
        with open(data / "pending.data", "w", encoding="utf-8") as out:
            for i in range(tasks):
                entry = now - rng.randint(0, 60 * 86400)
                due = entry + rng.randint(4, 72) * 3600
                out.write(
                    f'[description:"request {i} for resident {rng.randint(1, 100_000)}" '
                    f'due:"{due}" entry:"{entry}" modified:"{entry}" '
                    f'project:"{rng.choice(CATEGORIES)}" status:"pending" uuid:"{uuid.UUID(int=rng.getrandbits(128))}"]\n'
                )
        for name in ("completed.data", "undo.data", "backlog.data"):
            (data / name).touch()
    rc.write_text(f"data.location={data}\nconfirmation=off\nverbose=nothing\nhooks=off\n", encoding="utf-8")
    return {"TASKRC": str(rc), "TASKDATA": str(data)}


def cases() -> dict[str, list[str]]:
    """The taskwarrior commands, by the commcare command they stand beside."""
    return {
        "add-request": ["task", "add", "take out the trash", "project:trash", "due:tomorrow"],
        "report today --format json": ["task", "summary"],
        "request list --overdue --limit 100": ["task", "+OVERDUE", "limit:100", "list"],
    }
