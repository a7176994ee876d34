"""Who is acting, and whether they may (the contract's *Identity and access*).

The acting person is ``--as``, else ``COMMCARE_USER``, else the config's ``operator``, else the
staff member whose login (``staff add --login``) is the OS user. Once the register has staff,
a write or an ``--unmask`` by anyone who is not an active staff member of the command's
community is refused (``check_writer``, called by the one place that opens a command's write
transaction: ``commcare.commands.common.AppState.write``). A community that has no staff yet
may be started by an active staff member of another one; a register with no staff at all by
anyone (that is how a register starts).

On PostgreSQL a connection made as a staff login (a role with a row in ``access_grants``) acts
as that login's staff member, whatever ``--as`` says (naming someone else is refused); what
it may see and change is decided by the database itself (``commcare.storage.access_sql``).
``grant`` is ``staff grant``: run by the database's owner.
"""

from __future__ import annotations

import re

from commcare.errors import InvalidValue, Refused
from commcare.patterns import Pattern
from commcare.storage.sql import statement

ROLES = ("liaison", "office", "district")
# A database role commcare creates: plain lower-case words, so that it reads the same quoted
# or not and carries nothing a shell or SQL could take for something else.
ROLE_NAME = Pattern(r"[a-z_][a-z0-9_]{0,62}", re.ASCII)
OS_LOGIN = Pattern(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,62}", re.ASCII)


def os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry (containers)
        return ""


def actor_field(settings) -> str:
    """Where the acting name came from, as the user gave it: --as, COMMCARE_USER or operator."""
    source = settings.sources.get("operator", "default")
    return {"option": "--as", "env COMMCARE_USER": "COMMCARE_USER", "config file": "operator"}.get(source, "--as")


def normalize_login(raw: str, server: bool = False) -> str:
    """A login as stored: an OS user name, or (``server``) a PostgreSQL role commcare may create."""
    text = (raw or "").strip()
    pattern = ROLE_NAME if server else OS_LOGIN
    if not pattern.fullmatch(text):
        raise InvalidValue("access.bad_login", field="login", login=text[:63])
    return text


# --- the check -------------------------------------------------------------------------------


@statement
def _own_grants():
    """The grants of the login running the query (PostgreSQL: ``CURRENT_USER``), with its name."""
    from sqlalchemy import func, select

    from commcare.storage.tables import access_grants

    login = func.current_user()
    return select(login.label("login"), access_grants.c.role, access_grants.c.community_id).where(
        access_grants.c.login == login
    )


def server_grants(conn) -> tuple[str, list] | None:
    """On PostgreSQL, (login, its grants) when this connection is a staff login; else None."""
    if conn.dialect.name != "postgresql":
        return None
    rows = _own_grants().all(conn)
    return (rows[0].login, rows) if rows else None


def check_reader(conn, ctx) -> None:
    """A read by a staff login: ``--as`` must not name someone else (PostgreSQL only)."""
    found = server_grants(conn)
    if found is not None:
        _as_login(conn, ctx, *found, write=False)


def check_writer(conn, ctx) -> None:
    """Refuse (exit 1) a write or an ``--unmask`` by someone who may not; remember who acts."""
    found = server_grants(conn)
    if found is not None:
        _as_login(conn, ctx, *found, write=True)
        return
    if _any_staff(False).scalar(conn) is None:
        return  # no staff yet: anyone starts a register
    members = _active_members(conn, ctx)
    name = ctx.settings.operator
    if name:
        for member in members:
            if name in (member.name, member.login):
                ctx._actor = member.name
                return
        raise Refused("access.not_staff", field=actor_field(ctx.settings), name=name, community=_where(ctx))
    login = os_user()
    for member in members:
        if login and member.login == login:
            ctx._actor = member.name
            return
    raise Refused("access.no_actor", login=login or "?", community=_where(ctx))


def _where(ctx) -> str:
    """The command's community as found, else (none named in a register of several) the register."""
    from commcare.i18n import t

    return ctx._community_name or t("access.this_register")


@statement
def _any_staff(in_community: bool):
    """A staff member (of the community ``cid``), if there is any."""
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import staff

    query = select(staff.c.id).limit(1)
    return query.where(staff.c.community_id == bindparam("cid")) if in_community else query


@statement
def _active(in_community: bool):
    """The active staff's names and logins (of the community ``cid``), oldest first."""
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import staff

    query = select(staff.c.name, staff.c.login).where(staff.c.active.is_(True)).order_by(staff.c.id)
    return query.where(staff.c.community_id == bindparam("cid")) if in_community else query


def _active_members(conn, ctx) -> list:
    """The active staff of the command's community; of every community when it has none yet,
    or when the command names none in a register of several (``community add``, ``rename``:
    the register's, not one community's; a command that needs one refuses on its own)."""
    try:
        cid = ctx.community_id(conn)
    except Refused as exc:
        if exc.key != "community.which":
            raise
        cid = None
    members = _active(True).all(conn, cid=cid) if cid is not None else []
    if members or (cid is not None and _has_staff(conn, cid)):
        return members
    return _active(False).all(conn)


def _has_staff(conn, cid: int) -> bool:
    return _any_staff(True).scalar(conn, cid=cid) is not None


@statement
def _member_by_login(columns: tuple[str, ...]):
    from sqlalchemy import bindparam, select

    from commcare.storage.tables import staff

    return select(*(staff.c[name] for name in columns)).where(staff.c.login == bindparam("login"))


def _as_login(conn, ctx, login: str, grants: list, write: bool) -> None:
    """A staff login acts as its own staff member; a district login writes nothing."""
    name = ctx.settings.operator
    if all(g.role == "district" for g in grants):
        if name and name != login:
            raise Refused("access.login_is", login=login, staff=login, name=name)
        if write:
            raise Refused("access.district_read_only", login=login)
        return
    member = _member_by_login(("name", "active")).first(conn, login=login)
    if member is None or not member.active:
        raise Refused("access.login_unbound", login=login)
    if name and name not in (member.name, login):
        raise Refused("access.login_is", login=login, staff=member.name, name=name)
    ctx._actor = member.name


# --- binding and granting --------------------------------------------------------------------


def refuse_taken_login(conn, login: str, except_id: int | None = None) -> None:
    other = _member_by_login(("id", "name")).first(conn, login=login)
    if other is not None and other.id != except_id:
        raise Refused("access.login_taken", login=login, id=other.id, name=other.name)


def grant(conn, ctx, ref: str, login: str, role: str, names: list[str]) -> dict:
    """``staff grant``: bind ``login`` to the staff member ``ref`` (of the command's community),
    create the role if it is not there, give it the privileges of ``role``, and record the
    communities it may work in (``names``, else the command's own; none for ``district``)."""
    from sqlalchemy import insert, update

    from commcare import communities as comm
    from commcare import lookup
    from commcare.storage.tables import access_grants, staff

    if conn.dialect.name != "postgresql":
        raise InvalidValue("access.grant_needs_server", field="--db")
    if role not in ROLES:
        raise InvalidValue("value.bad_choice", field="role", value=role, choices="|".join(ROLES))
    login = normalize_login(login, server=True)
    member = lookup.staff_member(conn, ctx, ref)
    refuse_taken_login(conn, login, except_id=member.id)
    if role == "district":
        targets: list = [None]
    else:
        targets = [_community(conn, comm, n) for n in names] or [ctx.community_id(conn)]
    _create_role(conn, login)
    from commcare.storage import access_sql

    for sql_text in access_sql.grant_statements(_quoted(conn, login), role):
        conn.exec_driver_sql(sql_text)
    conn.execute(update(staff).where(staff.c.id == member.id).values(login=login))
    conn.execute(access_grants.delete().where(access_grants.c.login == login))
    for cid in targets:
        conn.execute(
            insert(access_grants).values(
                login=login, role=role, community_id=cid, staff_id=member.id, granted_at=ctx.now()
            )
        )
    from commcare import audit

    audit.record(conn, ctx, "staff.grant", "staff", member.id, ["login", "role"], detail=role)
    shown = comm._names([r for r in comm.rows(conn) if r.id in targets]) if role != "district" else "*"
    return {"id": member.id, "name": member.name, "login": login, "role": role, "communities": shown}


def _community(conn, comm, name: str) -> int:
    found = comm.find(conn, name)
    if found is None:
        raise comm._unknown(comm.normalize(name), comm.rows(conn))
    return found.id


def _create_role(conn, login: str) -> None:
    exists = conn.exec_driver_sql("SELECT 1 FROM pg_roles WHERE rolname = %(n)s", {"n": login}).first()
    if exists is None:
        conn.exec_driver_sql(f"CREATE ROLE {_quoted(conn, login)} LOGIN")


def _quoted(conn, name: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(name)


# --- what a district login reads -------------------------------------------------------------


def is_district(conn) -> bool:
    found = server_grants(conn)
    return found is not None and all(g.role == "district" for g in found[1])


@statement
def _district_summary():
    """``commcare_district_summary`` (PostgreSQL, SECURITY DEFINER): a row of counts per community."""
    from sqlalchemy import text

    return text("SELECT * FROM commcare_district_summary(:s, :e, :a, :l, :tags, :open, :reached)")


def district_summary(conn, ctx, day) -> list[dict]:
    """Each community's headline figures for ``day``, from ``commcare_district_summary``: the
    one thing a district login may read (no names, no rows of people)."""
    from commcare import identity
    from commcare.calls import REACHED
    from commcare.help_requests import OPEN_STATES
    from commcare.reports import moment_of

    start, end, at, live = moment_of(ctx, day)
    rows = _district_summary().all(
        conn,
        s=start,
        e=end,
        a=at,
        l=live,
        tags=list(identity.call_tags(ctx.extra_tags)),
        open=list(OPEN_STATES),
        reached=list(REACHED),
    )
    return [
        {
            "community": r.community_name,
            "opened": r.n_opened,
            "resolved": r.n_resolved,
            "open": r.n_open,
            "overdue": r.n_overdue,
            "calls_due": r.n_calls_due,
            "calls_made": r.n_calls_made,
            "missed": r.n_calls_due - r.n_calls_made,
        }
        for r in rows
    ]


def id_number_taken_elsewhere(conn, id_number: str) -> bool:
    """On PostgreSQL: whether ``id_number`` is registered in a community this login cannot see."""
    return conn.dialect.name == "postgresql" and bool(registered_ids(conn, [id_number]))


@statement
def _ids_taken():
    """``commcare_id_numbers_taken`` (PostgreSQL, SECURITY DEFINER): which of the numbers in
    ``joined`` (comma-separated) are registered. One text parameter split by the server: a
    list of 10,000 strings as an array parameter was quoted by psycopg number by number in
    Python (a regular expression each: 0.3 s of a 100,000-row import). A clean ID number is
    digits and X (``identity.ID_FORMAT``): no comma in it."""
    from sqlalchemy import text

    return text("SELECT * FROM commcare_id_numbers_taken(string_to_array(:joined, ','))")


# ID numbers asked about per statement: a roster's whole chunk (commcare.roster.check.CHUNK) in
# one. The server looks each number up in the unique index either way; 500 a statement made a
# 100,000-row import send 200 statements and turn 100,000 numbers into 200 arrays.
IDS_PER_STATEMENT = 10_000


def registered_ids(conn, ids: list[str]) -> set[str]:
    """PostgreSQL: which of ``ids`` are registered anywhere in the database (a login sees only
    its communities' residents; the uniqueness is the whole register's)."""
    found: set[str] = set()
    for i in range(0, len(ids), IDS_PER_STATEMENT):
        found.update(_ids_taken().scalars(conn, joined=",".join(ids[i : i + IDS_PER_STATEMENT])))
    return found
