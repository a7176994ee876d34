"""A generator run in a child process, its items handed to this one as they come.

A large import reads and checks its roster in a child while this process writes the chunks
already checked (``commcare.roster.check.Chunks``): the checking is pure Python and the writing
holds the GIL for each SQLite step, so threads would take turns, but two processes use two
cores. The child is forked, so it starts at once with everything this process has loaded
(the libraries, the configuration), and it touches no database: the write connection is
opened by this process only, after the fork.

Fork is what makes this cheap, and it is safe only on Linux (macOS's system libraries do
not survive it; Windows has none): ``available()`` says whether to use it. Items cross a
pipe pickled; the child may run up to ``AHEAD`` items ahead of the one the pipe holds.
"""

from __future__ import annotations

import pickle
import sys
import traceback
from collections.abc import Callable, Iterator


def available() -> bool:
    """Whether ``produce`` can run here: a forking platform (Linux)."""
    return sys.platform.startswith("linux")


def produce(make: Callable[..., Iterator], *args) -> Produced:
    """The items of ``make(*args)``, produced in a child process forked now (not at the
    first item)."""
    return Produced(make, args)


class Produced:
    """An iterator over what a forked child produces. An exception in the child is raised
    here; ``close()`` (at the end, or early) ends the child and waits for it."""

    def __init__(self, make: Callable[..., Iterator], args: tuple) -> None:
        import multiprocessing

        fork = multiprocessing.get_context("fork")
        self._receive, send = fork.Pipe(duplex=False)
        self._child = fork.Process(target=_run, args=(send, make, args), daemon=True)
        self._child.start()
        send.close()  # the child holds the only writing end: its exit is our end of file
        self._finished = False

    def __iter__(self) -> Produced:
        return self

    def __next__(self):
        if self._finished:
            raise StopIteration
        try:
            kind, item = self._receive.recv()
        except EOFError:
            self.close()
            raise RuntimeError(f"the checking process ended early (exit code {self._child.exitcode})") from None
        except BaseException:
            self.close()
            raise
        if kind == "item":
            return item
        self.close(early=kind != "done")
        if kind == "done":
            raise StopIteration
        raise item

    def close(self, early: bool = True) -> None:
        """End the child (``early``: before it has finished) and wait for it."""
        if not self._finished:
            self._finished = True
            if early:
                self._child.terminate()
            self._child.join()
            self._receive.close()


AHEAD = 4  # items the child may have ready beyond the one the pipe holds


def _run(send, make, args) -> None:
    """In the child: make the items and hand them over. A thread sends (pickles and writes to
    the pipe) while the main thread goes on making the next ones, up to ``AHEAD`` of them: the
    child gets ahead while the parent starts up, instead of waiting at a full pipe."""
    import os
    import queue
    import signal
    import threading

    # Ctrl-C reaches the whole process group: the parent answers it (rolls back, exits 130)
    # and ends this child, which says nothing of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ready: queue.Queue = queue.Queue(maxsize=AHEAD)

    def sender() -> None:
        while True:
            kind, item = ready.get()
            try:
                send.send((kind, item))
            except OSError:  # the parent has gone: nobody wants the rest
                os._exit(0)
            except Exception as exc:  # noqa: BLE001 - an item that cannot be pickled: told, then the end
                send.send(("error", RuntimeError("".join(traceback.format_exception(exc)))))
                os._exit(0)
            if kind != "item":
                return

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    try:
        for item in make(*args):
            ready.put(("item", item))
        ready.put(("done", None))
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, which raises it
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:  # noqa: BLE001 - one that does not come back whole from a pickle: its text instead
            exc = RuntimeError("".join(traceback.format_exception(exc)))
        ready.put(("error", exc))
    thread.join()
    send.close()
