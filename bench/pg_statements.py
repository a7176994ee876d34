"""The statements a commcare command sends to PostgreSQL through psycopg, whichever path it
takes (SQLAlchemy's, with its first-connect statements and inspector, or the driver path), in
the order sent; the transaction's own BEGIN and ROLLBACK, which psycopg sends by itself, are
not among them. Run it with the Python of the install to look at (another install's venv for a
side by side):

    /path/to/venv/bin/python bench/pg_statements.py --db postgresql+psycopg://… resident show '#1'

The command's own output goes to standard output as usual; the count and the statements (their
first 70 characters) to standard error.
"""

from __future__ import annotations

import sys


def main() -> None:
    import psycopg

    sent: list[str] = []

    def noting(original):
        def execute(self, query, params=None, **kwargs):
            sent.append(" ".join(str(query).split())[:70])
            return original(self, query, params, **kwargs)

        return execute

    psycopg.Cursor.execute = noting(psycopg.Cursor.execute)  # type: ignore[method-assign]
    psycopg.Connection.execute = noting(psycopg.Connection.execute)  # type: ignore[method-assign]
    from commcare.cli import main as commcare

    sys.argv = ["commcare", *sys.argv[1:]]
    try:
        commcare()
    finally:
        sys.stderr.write(f"{len(sent)} statements\n" + "".join(f"  {s}\n" for s in sent))


if __name__ == "__main__":
    main()
