"""Run commcare's console script in this process and, as it exits, write to the file named by
``COMMCARE_NOTE_IMPORTS`` the heavy libraries it imported (one per line): the hot commands'
tests check that a command run through the statement cache imported no SQLAlchemy."""

import atexit
import os
import sys

HEAVY = {"sqlalchemy", "alembic", "openpyxl", "pypinyin", "rich"}


def _note() -> None:
    loaded = sorted({name.split(".")[0] for name in sys.modules} & HEAVY)
    with open(os.environ["COMMCARE_NOTE_IMPORTS"], "w", encoding="utf-8") as fh:
        fh.write("\n".join(loaded))


if __name__ == "__main__":
    atexit.register(_note)
    from commcare.cli import main

    sys.argv[0] = "commcare"
    main()
