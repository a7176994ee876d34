"""Files commcare writes, whole or not at all.

Every file goes through ``through_temporary``: it is filled in a temporary file created 0600
beside its target (``.NAME.tmp-PID``), flushed to the disk, then renamed over the target, so
the file ends 0600 whatever mode a file it replaces had, and a reader never sees half of it.
Temporary files left by a killed run (their process gone) are removed by the next write of the
same file. Output files (the contract's *Output files*: a list's or a report's ``--output``, a
report's ``--output-dir``, an export) go through ``write_file``; the copies of the register
(backup, restore) through ``commcare.storage.maintenance``.

An output file replaces an existing file only when asked (``force``); a symbolic link is never
followed nor replaced, even when asked; the database in use (and its ``-wal``, ``-shm`` and
``-journal`` files) is never written, by whatever path or hard link it is named.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from commcare.errors import InvalidValue, Refused

COMPANIONS = ("", "-wal", "-shm", "-journal")  # a SQLite file and the files beside it
TEMP_MARK = ".tmp-"
T = TypeVar("T")


def database_files(database: str | None) -> list[Path]:
    """The files of the database ``database`` (a path or URL): the SQLite file and its
    companions; none for a server database."""
    if not database:
        return []
    from commcare.storage.engine import sqlite_path

    path = sqlite_path(database)
    return [] if path is None else [path.with_name(path.name + c) for c in COMPANIONS]


def write_file(path: str | os.PathLike, data: bytes | str, force: bool = False, protect: Iterable[Path] = ()) -> Path:
    """Write ``data`` to ``path`` (text as UTF-8), mode 0600, through a temporary file and a
    rename. Refused (exit 1): an existing file without ``force``; a symbolic link or anything
    that is not a regular file; one of the files in ``protect`` (the database in use)."""
    target = check_target(path, force, protect)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        through_temporary(target, lambda tmp: _write_all(tmp, payload), force)
    except OSError as exc:
        raise Refused("output.cannot_write", path=str(target), problem=exc.strerror or str(exc)) from exc
    return target


def write_chunks(target: Path, chunks: Iterable[bytes | str], force: bool = False) -> Path:
    """``write_file`` of ``chunks`` joined, written as they come (a streamed list: never held
    whole), to ``target`` already passed by ``check_target``: through the temporary file and
    its rename, so an error while the chunks are made leaves no file, neither half of one."""
    try:
        through_temporary(target, lambda tmp: _write_each(tmp, chunks), force)
    except OSError as exc:
        raise Refused("output.cannot_write", path=str(target), problem=exc.strerror or str(exc)) from exc
    return target


def through_temporary(target: Path, fill: Callable[[Path], T], force: bool = True) -> T:
    """``fill(tmp)`` into ``.NAME.tmp-PID`` beside ``target``, created empty and 0600 (never
    through a link, never an existing file), then flushed and renamed over ``target`` (without
    ``force`` the target must still not exist: ``Refused``); returns what ``fill`` returned. A
    failure leaves neither the temporary file nor a rollback journal SQLite made beside it;
    an ``OSError`` is the caller's to tell."""
    tmp = _temporary(target)
    try:
        _create_private(tmp)
        result = fill(tmp)
        _sync_file(tmp)
        _put_in_place(tmp, target, force)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-journal")):
            if os.path.lexists(leftover):
                os.unlink(leftover)
    _sync_directory(target.parent)
    return result


def check_target(path: str | os.PathLike, force: bool = False, protect: Iterable[Path] = ()) -> Path:
    """``path`` as a file ``write_file`` may write, or the refusal it would give."""
    target = Path(os.path.expanduser(os.fspath(path)))
    if not target.name or target.name in (".", ".."):
        raise InvalidValue("output.not_a_file", field="output", path=str(target))
    if not target.parent.is_dir():
        raise InvalidValue("output.no_directory", field="output", path=str(target.parent))
    try:
        found = os.lstat(target)
    except FileNotFoundError:
        found = None
    if found is not None and stat.S_ISLNK(found.st_mode):
        raise Refused("output.symlink", path=str(target))
    if _is_protected(target, found, protect):
        raise Refused("output.is_database", path=str(target))
    if found is not None and not stat.S_ISREG(found.st_mode):
        raise Refused("output.not_regular", path=str(target))
    if found is not None and not force:
        raise Refused("output.exists", path=str(target))
    return target


def _is_protected(target: Path, found: os.stat_result | None, protect: Iterable[Path]) -> bool:
    """Whether ``target`` names one of ``protect``: by its resolved path (through any
    symbolic link in the directories), or, when it exists, by its inode (a hard link)."""
    where = target.parent.resolve() / target.name
    for guarded in protect:
        if where == guarded.parent.resolve() / guarded.name:
            return True
        if found is not None:
            try:
                other = os.stat(guarded)
            except OSError:
                continue
            if (other.st_dev, other.st_ino) == (found.st_dev, found.st_ino):
                return True
    return False


def _temporary(target: Path) -> Path:
    """``.NAME.tmp-PID`` beside the target, after removing the ones whose process is gone."""
    prefix = f".{target.name}{TEMP_MARK}"
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        entries = []
    for entry in entries:
        pid = entry.name[len(prefix) :] if entry.name.startswith(prefix) else ""
        if pid.isdigit() and (int(pid) == os.getpid() or not alive(int(pid))) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
            except OSError:
                pass
    return target.with_name(f"{prefix}{os.getpid()}")


def alive(pid: int) -> bool:
    """Whether process ``pid`` is running (someone else's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        return True
    return True


def _create_private(tmp: Path) -> None:
    """Create ``tmp`` empty and 0600, whatever the umask (never through a link, never an
    existing file)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _write_all(tmp: Path, payload: bytes) -> None:
    fd = os.open(tmp, os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _write_each(tmp: Path, chunks: Iterable[bytes | str]) -> None:
    fd = os.open(tmp, os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        for chunk in chunks:
            view = memoryview(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
            while view:
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _sync_file(tmp: Path) -> None:
    fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _put_in_place(tmp: Path, target: Path, force: bool) -> None:
    """Rename ``tmp`` over ``target`` (a rename never follows a link: a link put there since
    the check is replaced, not written through). Without ``force`` the file must still not
    exist: a hard link fails if it does, atomically."""
    if force:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target, follow_symlinks=False)
    except FileExistsError:
        raise Refused("output.exists", path=str(target)) from None
    except OSError:  # a file system without hard links
        if os.path.lexists(target):
            raise Refused("output.exists", path=str(target)) from None
        os.replace(tmp, target)


def _sync_directory(directory: Path) -> None:
    """Make the rename durable (where a directory can be opened and synced)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


EXTENSIONS = {"markdown": "md", "html": "html", "json": "json", "csv": "csv", "table": "txt"}


def dated_path(directory: str | os.PathLike, day, fmt: str) -> Path:
    """``DIR/<day>.<ext>`` for ``--output-dir`` (the extension by format: md, html, json, csv,
    txt). The directory is created (0700) when it does not exist yet, so a scheduled run
    does not fail on its first evening; a path that exists and is not a directory is refused."""
    folder = Path(os.path.expanduser(os.fspath(directory)))
    if not str(directory).strip():
        raise InvalidValue("value.empty", field="output-dir")
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise InvalidValue("output.no_directory", field="output-dir", path=str(folder)) from None
    except OSError as exc:
        raise Refused("output.cannot_write", path=str(folder), problem=exc.strerror or str(exc)) from exc
    return folder / f"{day.isoformat()}.{EXTENSIONS[fmt]}"
