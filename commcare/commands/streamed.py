"""A list with no bound on its length (every open request of a community), written as it is
read: ``emit``'s output, batch by batch.

``emit_stream(st, rows, fmt, output, columns)``: ``rows(conn, ctx)`` yields the rows in lists
of ``batch_size()`` (``request list``: ``Bound.stream``, ``fetchmany`` on the driver,
``yield_per`` through SQLAlchemy; ``call due``: its rows read and put in order, then turned
into the contract's rows a batch at a time); each list is
turned into JSON, CSV or Markdown and written before the next is read, all in one read
transaction, so the process holds one batch, not the list. The bytes are ``emit``'s, byte for
byte (``formats.json_chunks``, ``csv_chunks``, ``markdown_chunks``). ``--output`` is written
the usual way, into a temporary file renamed over the target at the end
(``outfile.write_chunks``): an error in the middle (a damaged page) leaves no file behind.
On standard output what was written before the error stays written; the exit code (3 for a
damaged register) says the list is not whole.

A table (the default on a terminal) is for a person to read: Rich lays it out from every row
at once, so it is still built from the whole list.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator

from commcare.commands.common import AppState, column_headers, emit, out_format, this_year

BATCH = 1000  # rows read, turned into text and written at a time


def batch_size() -> int:
    """``BATCH``, or ``COMMCARE_LIST_BATCH`` (to look at memory against batch size, and for the
    tests to cross batch boundaries on a small register): a whole number from 1 to 100,000,
    else refused (exit 2) as ``COMMCARE_BUSY_TIMEOUT`` is."""
    value = os.environ.get("COMMCARE_LIST_BATCH", "")
    if not value:
        return BATCH
    if not (value.isdigit() and 1 <= int(value) <= 100_000):
        from commcare.errors import ConfigError

        raise ConfigError("config.bad_env_count", field="COMMCARE_LIST_BATCH", value=value[:40], low=1, high=100_000)
    return int(value)


def emit_stream(
    st: AppState,
    rows: Callable[..., Iterable[list[dict]]],
    fmt: str | None,
    output: str | None,
    columns: list[str] | None,
    force: bool = False,
) -> None:
    """``emit(all the rows of rows(conn, ctx), fmt, output, columns, force)``, written batch
    by batch as the rows are read (a table: built whole, as ``emit`` does)."""
    fmt = out_format(fmt)
    if fmt == "table":
        whole = st.read(lambda conn, ctx: [row for batch in rows(conn, ctx) for row in batch])
        emit(whole, fmt, output, columns, force=force)
        return
    target = None
    if output:
        from commcare import outfile

        target = outfile.check_target(output, force, outfile.database_files(st.settings.database))

    def write(conn, ctx) -> None:
        chunks = encoded(rows(conn, ctx), fmt, columns, to_file=target is not None)
        if target is None:
            _to_stdout(chunks)
            return
        from commcare import outfile

        outfile.write_chunks(target, chunks, force)

    st.read(write)


def encoded(batches: Iterable[list[dict]], fmt: str, columns: list[str] | None, to_file: bool) -> Iterator[bytes | str]:
    """The output, batch by batch, as ``emit`` writes it whole: JSON as bytes, CSV and
    Markdown as text."""
    from commcare.render import formats

    if fmt == "json":  # the slugs, as UTF-8 bytes
        yield from formats.json_chunks(batches)
        return
    from commcare import i18n, words

    if not columns:
        raise ValueError("a streamed list names its columns")
    lang = i18n.get_lang()
    shown = (words.display(batch, lang) for batch in batches)  # people read the words
    headers = column_headers(columns, fmt)
    if fmt == "csv":
        mark = "\ufeff" if to_file else ""  # a file's CSV begins with the byte-order mark (utf-8-sig)
        for text in formats.csv_chunks(shown, columns, headers):
            yield mark + text
            mark = ""
        return
    yield from formats.markdown_chunks(shown, columns, headers, None, this_year())


def _to_stdout(chunks: Iterable[bytes | str]) -> None:
    """Each chunk to standard output as it comes, as ``write_out`` writes it: bytes as they
    are, text through the stream's encoding."""
    for chunk in chunks:
        if isinstance(chunk, bytes):
            sys.stdout.flush()
            sys.stdout.buffer.write(chunk)
        else:
            sys.stdout.write(chunk)
    sys.stdout.flush()
