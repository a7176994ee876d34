"""Bounded waits on a PostgreSQL server: one that stops answering ends the command within
``db_timeout`` seconds (config, default 30), exit 3, nothing committed.

Three bounds, because each catches what the others cannot:

- libpq's ``connect_timeout``, TCP keepalives and ``tcp_user_timeout``: a peer whose host or
  network is gone. Keepalive probes go unanswered (after about five sixths of db_timeout) or
  what was sent is never acknowledged (db_timeout): the kernel drops the connection.
- ``statement_timeout`` (and ``lock_timeout``, the busy timeout): a server that is alive but
  whose statement runs, or waits for a lock, too long. It answers with an error.
- silence, bounded here: a far end that still acknowledges TCP but sends nothing — a frozen
  server process, a proxy or a NAT that stopped forwarding. libpq has no read timeout, and
  keepalives are answered by whatever holds the socket. Every wait of psycopg for the server
  passes through ``wait`` of the connection class made here, which gives up when nothing has
  arrived for db_timeout + 1 s (so that a live server's own statement timeout answers first),
  closes the socket and raises ``ServerSilent``.

A command stopped so never committed: the server rolls its transaction back when it sees the
connection gone. (A COMMIT that reached the server but whose answer was lost is the one case
that cannot be told apart from it; commcare says the server stopped answering.)
"""

from __future__ import annotations

import time

import psycopg  # imported only for a PostgreSQL database (commcare.storage.engine.make_engine)

DEFAULT_TIMEOUT = 30.0
MARGIN = 1.0  # seconds of silence beyond db_timeout before the client gives up


# A command's statements read one community's rows through its indexes, in milliseconds:
# compiling a plan to machine code (PostgreSQL's JIT, on by default above a plan cost of
# 100,000) costs more than it saves (the all-communities summary over 200 communities ran
# faster without it too: 2,962 against 3,447 ms of statements). Past-due requests are estimated from the
# whole table's due times, most of them past, so a community's overdue list at 1,000,000
# requests was costed at 18,703 rows (1,463 real) and spent 16 ms compiling to run for 6;
# call due at 100,000 residents spent 62 to 162 ms of its 220 to 490 (bench/results.md).
SESSION = "-c jit=off"


def connect_args(seconds: float, lock_ms: int) -> dict:
    """libpq's parameters for a server that must answer within ``seconds`` (and ``SESSION``)."""
    whole = max(1, round(seconds))
    return {
        "connect_timeout": max(2, whole),
        "keepalives": 1,
        "keepalives_idle": max(1, whole // 3),
        "keepalives_interval": max(1, whole // 6),
        "keepalives_count": 3,
        "tcp_user_timeout": int(seconds * 1000),
        "options": f"-c lock_timeout={lock_ms} -c statement_timeout={int(seconds * 1000)} {SESSION}",
    }


def bound(engine, seconds: float) -> None:
    """Connect ``engine`` through a psycopg connection class that bounds silence."""
    from sqlalchemy import event

    cls = connection_class(seconds + MARGIN)

    @event.listens_for(engine, "do_connect")
    def _connect(dialect, record, cargs, cparams):
        return cls.connect(*cargs, **cparams)


def connection_class(idle: float):
    class BoundedConnection(psycopg.Connection):
        """A psycopg connection whose every wait for the server gives up after ``idle``
        seconds in which nothing arrived."""

        def wait(self, gen, *args, **kwargs):
            return super().wait(_watched(gen, idle, self), *args, **kwargs)

    return BoundedConnection


def _watched(gen, idle: float, conn):
    """``gen`` (psycopg's generator of socket states) passed through, timing the silence:
    the waiting loop sends a falsy state each time its short interval passes with the socket
    not ready."""
    last = time.monotonic()
    try:
        state = next(gen)
        while True:
            ready = yield state
            now = time.monotonic()
            if ready:
                last = now
            elif now - last > idle:
                conn.pgconn.finish()  # nothing more will be read from it
                raise ServerSilent(idle - MARGIN)
            state = gen.send(ready)
    except StopIteration as done:
        return done.value


class ServerSilent(psycopg.OperationalError):
    """Nothing came from the server for ``seconds`` (db_timeout) while an answer was due."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no answer from the server for {seconds:g} s (db_timeout)")
        self.seconds = seconds
