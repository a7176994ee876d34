"""The audit trail: who did what, when, to which record. Field names, never values of
phones or ID numbers.

Each entry has a number (``seq``: 1, 2, 3 … with no gap) and carries the keyed hash
(HMAC-SHA256) of its own fields, its number and the hash of the entry before it. The key is
kept outside the database (``commcare.storage.audit_files``): whoever can edit the database
but not read the key cannot write an entry that verifies, nor re-compute the chain after an
edit. The number of entries and the head hash are also kept outside the database (the anchor,
moved forward after every write, and printed in every report), so deleting the last entries
is found too. ``verify`` walks the chain and checks it against the anchors.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence

from commcare.errors import DatabaseError, InvalidValue, Refused
from commcare.patterns import Pattern
from commcare.storage.sql import statement

HEX64 = Pattern(r"[0-9a-f]{64}", re.ASCII)


def payload(seq, prev_hash, at, actor, action, entity, entity_id, community_id, fields, detail) -> bytes:
    """What the keyed hash covers, as UTF-8 JSON (the entry's every column but its own hash)."""
    return json.dumps(
        [
            seq,
            prev_hash,
            at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
            actor,
            action,
            entity,
            entity_id,
            community_id,
            fields,
            detail,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")


def entry_hash(
    key: bytes, seq: int, prev_hash: str, at, actor, action, entity, entity_id, community_id, fields, detail
):
    import hashlib
    import hmac  # here, not at the top: a read (call due, report today) never hashes

    data = payload(seq, prev_hash, at, actor, action, entity, entity_id, community_id, fields, detail)
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def hash_of(key: bytes, entry) -> str:
    """The hash ``entry`` (a row of the audit table) should carry."""
    return entry_hash(
        key,
        entry.seq,
        entry.prev_hash,
        entry.at,
        entry.actor,
        entry.action,
        entry.entity,
        entry.entity_id,
        entry.community_id,
        entry.fields,
        entry.detail,
    )


# --- the key ----------------------------------------------------------------------------------


def key_for(settings, conn=None) -> bytes:
    """The key named by ``settings.audit_key``. None there: a new one is made when the trail
    (seen through ``conn``) is still empty; a trail with entries and no key is exit 3 (a new
    key would make every entry fail ``verify``)."""
    from commcare.storage import audit_files

    path = settings.audit_key
    key = audit_files.read_key(path)
    if key is not None:
        return key
    if conn is not None and _any_entry().scalar(conn) is not None:
        raise DatabaseError("audit.key_missing", path=str(path))
    return audit_files.make_key(path)


@statement
def _any_entry():
    from sqlalchemy import select

    from commcare.storage.tables import audit as AUDIT

    return select(AUDIT.c.id).limit(1)


def _ctx_key(conn, ctx) -> bytes:
    if ctx.audit_key is None:
        ctx.audit_key = key_for(ctx.settings, conn)
    return ctx.audit_key


# --- writing ----------------------------------------------------------------------------------


@statement
def _head(through_function: bool):
    """The newest entry's number and hash: straight from the table, or (PostgreSQL, where
    row-level security shows a staff login only its communities' entries) through
    ``commcare_audit_head()``."""
    from sqlalchemy import Integer, String, select, text

    from commcare.storage.tables import audit as AUDIT

    if through_function:
        return text("SELECT head_id AS seq, head_hash AS hash FROM commcare_audit_head()").columns(
            seq=Integer(), hash=String()
        )
    return select(AUDIT.c.seq, AUDIT.c.hash).order_by(AUDIT.c.seq.desc()).limit(1)


def last(conn):
    """(seq, hash) of the newest entry, or None. On PostgreSQL, where row-level security shows
    a staff login only its communities' entries, through ``commcare_audit_head()`` (SECURITY
    DEFINER, made by the access migration) when the database has it."""
    if conn.dialect.name == "postgresql" and _head_function(conn):
        row = _head(True).first(conn)
        return row if row is not None and row.seq is not None else None
    return _head(False).first(conn)


def _head_function(conn) -> bool:
    """Does the database have ``commcare_audit_head()``? (asked once per connection; a driver
    connection, ``commcare.storage.fast``, is opened only on a database at the head revision,
    which has it: not asked)"""
    if "commcare_audit_head" not in conn.info and getattr(conn, "run_bound", None) is not None:
        conn.info["commcare_audit_head"] = True
    if "commcare_audit_head" not in conn.info:
        found = conn.exec_driver_sql("SELECT to_regprocedure('commcare_audit_head()')").scalar()
        conn.info["commcare_audit_head"] = found is not None
    return conn.info["commcare_audit_head"]


def record(
    conn,
    ctx,
    action: str,
    entity: str,
    entity_id: int | None = None,
    fields: list[str] | tuple[str, ...] = (),
    detail: str = "",
) -> None:
    """Append one entry, chained to the last one, in the caller's write transaction.

    On PostgreSQL an advisory lock held to the end of the transaction orders the writers, so
    the chain follows the order of the commits (on SQLite, ``BEGIN IMMEDIATE`` does).
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727272)")
    key = _ctx_key(conn, ctx)
    newest = last(conn)
    seq, prev = (newest.seq + 1, newest.hash) if newest else (1, "")
    at = ctx.now()
    community_id = ctx.community_id(conn)
    field_text = ",".join(fields)
    values = dict(
        seq=seq,
        at=at,
        actor=ctx.operator,
        action=action,
        entity=entity,
        entity_id=entity_id,
        community_id=community_id,
        fields=field_text,
        detail=detail,
        prev_hash=prev,
    )
    _append().execute(conn, **values, hash=entry_hash(key, **values))
    ctx.audit_written = True


@statement
def _append():
    """One entry, every column given (``record``, ``chain_existing``)."""
    from sqlalchemy import bindparam, insert

    from commcare.storage.tables import audit as AUDIT

    names = ("seq", "at", "actor", "action", "entity", "entity_id", "community_id", "fields", "detail")
    return insert(AUDIT).values(
        **{name: bindparam(name, type_=AUDIT.c[name].type) for name in (*names, "prev_hash", "hash")}
    )


def unmasked(conn, ctx, entity: str, what: str, count: int) -> None:
    """Every ``--unmask`` is recorded: full phone and ID numbers were shown (``what``, how many
    rows), in the caller's write transaction."""
    record(conn, ctx, "unmask", entity, None, ["phone", "id_number"], detail=f"{what}: {count} rows")


def looked_up(ctx, id_number: str, found: list) -> None:
    """A resident looked up by ID number, found or not: noted now, recorded by ``record_lookups``
    in a transaction of its own after the command (a lookup that finds nothing ends the
    command, and its transaction, with exit 1)."""
    from commcare.masking import mask_numbers

    ctx.audit_lookups.append((mask_numbers(id_number), [row.id for row in found]))


def record_lookups(conn, ctx) -> None:
    """The lookups ``looked_up`` noted (the ID number masked)."""
    for masked, ids in ctx.audit_lookups:
        outcome = f"found #{ids[0]}" if len(ids) == 1 else ("not found" if not ids else f"{len(ids)} found")
        record(
            conn,
            ctx,
            "resident.lookup",
            "resident",
            ids[0] if len(ids) == 1 else None,
            ["id_number"],
            f"{masked}: {outcome}",
        )
    ctx.audit_lookups.clear()


# --- reading ----------------------------------------------------------------------------------


def head(conn) -> dict:
    """``{"entries": n, "head": "…"}``: the number of the newest entry and its hash, as every
    report prints them (a reader keeps them to check the trail against later)."""
    newest = last(conn)
    return {"entries": newest.seq if newest else 0, "head": newest.hash if newest else ""}


def entries(
    conn,
    ctx,
    since: dt.datetime | None = None,
    entity: str | None = None,
    entity_id: int | None = None,
    limit: int | None = None,
) -> list:
    """The entries (rows with the table's columns as attributes), newest first (``limit``:
    the latest so many)."""
    from sqlalchemy import select

    from commcare.storage.tables import audit as AUDIT

    query = select(AUDIT).order_by(AUDIT.c.seq.desc())
    community_id = ctx.community_id(conn)
    query = query.where(AUDIT.c.community_id == community_id)
    if since is not None:
        query = query.where(AUDIT.c.at >= since)
    if entity is not None:
        query = query.where(AUDIT.c.entity == entity)
    if entity_id is not None:
        query = query.where(AUDIT.c.entity_id == entity_id)
    if limit:
        query = query.limit(limit)
    return list(conn.execute(query))


def as_row(entry, tz) -> dict:
    from commcare.timeparse import iso

    return {
        "id": entry.seq,
        "at": iso(entry.at, tz),
        "actor": entry.actor,
        "action": entry.action,
        "entity": entry.entity,
        "entity_id": entry.entity_id,
        "fields": [f for f in entry.fields.split(",") if f],
        "detail": entry.detail,
    }


# --- verifying --------------------------------------------------------------------------------


def verify(conn, key: bytes, anchors: Sequence[dict] = ()) -> dict:
    """Walk the whole chain, then check it against each anchor (``{"entries": n or None,
    "head": "…", "source": …}``). Exit 1 (``Refused``) at the first entry whose hash or link does
    not hold, at a gap in the numbers (``entries missing after #N``), or at an anchor the chain
    does not reach or does not match."""
    if (
        conn.dialect.name == "postgresql"
        and not conn.exec_driver_sql(
            "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class WHERE oid = 'audit'::regclass"
        ).scalar()
    ):
        raise Refused("audit.verify_owner")  # a staff login sees its communities' entries only
    import hmac

    from sqlalchemy import select

    from commcare.storage.tables import audit as AUDIT

    prev, count = "", 0
    rows = conn.execute(select(AUDIT).order_by(AUDIT.c.seq).execution_options(yield_per=2000))
    hashes: dict[int, str] = {}
    wanted = {a["entries"] for a in anchors if a.get("entries")}
    by_hash = {a["head"] for a in anchors if not a.get("entries")}
    found_heads: dict[str, int] = {}
    for entry in rows:
        if entry.seq != count + 1:
            raise Refused("audit.missing_after", seq=count)
        if entry.prev_hash != prev or not hmac.compare_digest(entry.hash, hash_of(key, entry)):
            raise Refused("audit.entry_broken", seq=entry.seq)
        if entry.seq in wanted:
            hashes[entry.seq] = entry.hash
        if entry.hash in by_hash:
            found_heads[entry.hash] = entry.seq
        prev = entry.hash
        count += 1
    for anchor in anchors:
        _against(anchor, count, hashes, found_heads)
    return {"verified": count, "head": prev, "anchors": len(anchors)}


def _against(anchor: dict, count: int, hashes: dict, found_heads: dict) -> None:
    n, head_hash, source = anchor.get("entries"), anchor["head"], anchor["source"]
    if n:
        if n > count:
            raise Refused("audit.missing_after_anchor", seq=count, entries=n, path=source)
        if hashes.get(n) != head_hash:
            raise Refused("audit.anchor_mismatch", seq=n, path=source)
    elif head_hash not in found_heads:
        raise Refused("audit.anchor_not_found", head=head_hash[:16], path=source)


def parse_anchor(text: str) -> dict:
    """``--anchor``: a head hash (``N:HASH`` or ``HASH``), or a saved report (JSON, Markdown or
    HTML, as ``report`` writes it). Returns ``{"entries": n or None, "head": …, "source": …}``."""
    from pathlib import Path

    plain = text.strip()
    found = re.fullmatch(r"(?:#?([0-9]+)[: ])?([0-9a-fA-F]{64})", plain)
    if found:
        return {"entries": int(found[1]) if found[1] else None, "head": found[2].lower(), "source": "--anchor"}
    path = Path(plain).expanduser()
    try:
        content = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidValue(
            "audit.anchor_bad", field="anchor", value=plain, problem=getattr(exc, "strerror", None) or str(exc)
        )
    anchor = _from_report(content)
    if anchor is None:
        raise InvalidValue("audit.anchor_no_head", field="anchor", value=str(path))
    return {**anchor, "source": str(path)}


def _from_report(content: str) -> dict | None:
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("audit"), dict):
        got = data["audit"]
        if isinstance(got.get("entries"), int) and isinstance(got.get("head"), str) and HEX64.fullmatch(got["head"]):
            return {"entries": got["entries"], "head": got["head"]}
        return None
    for line in content.splitlines():  # the audit line of a Markdown, HTML or text report
        found = HEX64.search(line)
        numbers = re.findall(r"(?<![0-9a-f#])([0-9]+)(?![0-9a-f])", line[: found.start()]) if found else []
        if found and numbers:
            return {"entries": int(numbers[-1]), "head": found[0]}
    return None


# --- upgrading a register whose trail was chained without a key --------------------------------


def chain_existing(conn, key: bytes, actor: str = "commcare db upgrade") -> int:
    """Number the entries in the order they were written and chain them with ``key`` (the
    migration to a keyed chain, ``0005_audit_chain``), then record that it was done. What
    was in the trail before this moment is protected from here on, not before. Returns how
    many entries were chained."""
    from sqlalchemy import select, update

    from commcare.storage.tables import audit as AUDIT

    prev, seq = "", 0
    for row in conn.execute(select(AUDIT).order_by(AUDIT.c.id)).all():
        seq += 1
        values = dict(row._mapping)
        values.update(seq=seq, prev_hash=prev)
        values.pop("id"), values.pop("hash")
        prev = entry_hash(key, **values)
        conn.execute(
            update(AUDIT).where(AUDIT.c.id == row.id).values(seq=seq, prev_hash=values["prev_hash"], hash=prev)
        )
    if seq:
        at = dt.datetime.now(dt.UTC)
        values = dict(
            seq=seq + 1,
            at=at,
            actor=actor,
            action="audit.chain",
            entity="audit",
            entity_id=None,
            community_id=None,
            fields="",
            detail=f"entries 1-{seq} chained with the key at this upgrade",
            prev_hash=prev,
        )
        _append().execute(conn, **values, hash=entry_hash(key, **values))
    return seq
