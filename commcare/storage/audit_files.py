"""What the audit trail keeps outside the database: the key of its keyed hash and the anchor.

- The key: 32 random bytes, hex, in a file made 0600 (``commcare init``, or the first entry of
  a register whose trail is still empty). Default ``audit.key`` beside the config file;
  config ``audit_key`` or ``COMMCARE_AUDIT_KEY`` name another. Whoever can edit the
  database but cannot read this file cannot write an entry that verifies.
- The anchor: the number of entries and the head hash of one database, in
  ``<user data dir>/audit-anchors/<digest of the database>.json`` (0600, written to a
  temporary file and renamed), moved forward after every write. Whoever deletes the last
  entries, or rewrites the chain, leaves an anchor that no longer matches.

Stdlib only; the chain itself is ``commcare.audit``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path

from commcare.errors import DatabaseError

KEY_BYTES = 32


def read_key(path: Path) -> bytes | None:
    """The key in ``path``; None when there is no such file. A file that is not a key, or
    that others may read, is refused (exit 3): a key anyone can read protects nothing."""
    try:
        text = path.read_text(encoding="ascii").strip()
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatabaseError("audit.key_unreadable", path=str(path), problem=str(exc))
    if mode & 0o077:
        raise DatabaseError("audit.key_open", path=str(path), mode=f"{mode:o}")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise DatabaseError("audit.key_unreadable", path=str(path), problem="not a commcare audit key")
    return key


def make_key(path: Path) -> bytes:
    """A new key in a new file (0600); an existing one is read, never replaced."""
    import secrets

    key = secrets.token_bytes(KEY_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        found = read_key(path)
        assert found is not None
        return found
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key.hex() + "\n")
    return key


def anchor_path(anchor_dir: Path, identity: str) -> Path:
    return anchor_dir / (hashlib.sha256(identity.encode("utf-8")).hexdigest()[:24] + ".json")


def read_anchor(path: Path) -> dict | None:
    """``{"entries": n, "head": "…", "database": "…"}``, or None when there is none yet."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DatabaseError("audit.anchor_unreadable", path=str(path), problem=str(exc))
    if not isinstance(data, dict) or not isinstance(data.get("entries"), int) or not isinstance(data.get("head"), str):
        raise DatabaseError("audit.anchor_unreadable", path=str(path), problem="not a commcare audit anchor")
    return data


def write_anchor(path: Path, data: dict) -> None:
    """Replace the anchor whole: a temporary file (0600) in the same folder, renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def anchor_lock(path: Path):
    """Held while an anchor is read and moved forward: two commands that write at once do not
    move it back."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
