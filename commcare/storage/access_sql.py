"""PostgreSQL's side of *Identity and access*: the row-level security policies, the functions
they use, and the privileges ``staff grant`` gives a login. Made by migration 0006_access (and
so by ``init`` and ``db upgrade``); nothing here runs on SQLite.

How it holds together:

- ``access_grants`` says which login may work in which community, as what (``liaison``,
  ``office``, ``district``). A login reads only its own rows of it.
- ``commcare_granted(community_id)`` is true when the login running the query has a
  ``liaison`` or ``office`` grant for that community. It runs as the caller (not SECURITY
  DEFINER), so it sees only the caller's own grants.
- Every table that carries a community has a policy ``commcare_granted(community_id)`` for
  reading and for writing; the tables that hang off one (a request's timeline, a staff
  member's health reports, a donation's items, dismissed duplicates) have a policy that the
  row they belong to is visible, which the parent's own policy decides.
- ``resident_tags`` carries its resident's community since migration 0007_tags_community, and
  since 0008_tags_policy its policy reads it as the community tables' do
  (``commcare_granted(community_id)``: a login's round finds its special groups from its own
  entries of the tag index, with no probe of ``residents`` per tag). A tag written must
  moreover be filed under its own resident's community (``TAGS_CHECK``), so a login can
  neither file a tag in a community it was not granted nor put a tag of its community on
  another community's resident. (0006_access gave it the child-table policy of
  ``CHILD_TABLES``, which 0008 replaces and its downgrade puts back.)
- The tables are owned by the database's owner, who runs ``init``, ``db upgrade`` and ``staff
  grant``; RLS is enabled but not forced, so the owner (the administrator) sees everything.
  Every other role sees what the policies let through, and only after ``staff grant`` has given
  it privileges on the tables at all.
- ``audit``: logins get SELECT and INSERT, never UPDATE or DELETE; only the owner can change
  or remove an entry. ``commcare_audit_head()`` (SECURITY DEFINER) gives a login the last
  entry's number (seq) and hash, which the chain needs and which the policy would otherwise hide.
- A ``district`` login gets no privilege on any table with people in it. It may call
  ``commcare_district_summary(...)`` (SECURITY DEFINER, owned by the owner), which returns one
  row of counts per community and no names: the figures of ``report … --all-communities``.
- ``commcare_id_numbers_taken(text[])`` (SECURITY DEFINER) answers only which of the given ID
  numbers are registered anywhere, so ``resident add`` and ``resident import`` can refuse a
  duplicate without saying whose it is (the uniqueness is the whole register's).
"""

from __future__ import annotations

# Tables whose rows carry their community in ``community_id``.
COMMUNITY_TABLES = (
    "staff",
    "households",
    "residents",
    "register_counts",
    "requests",
    "calls",
    "donations",
    "directory",
)
# Tables whose rows belong to a row of another table: (table, condition on that row).
CHILD_TABLES = {
    "resident_tags": "EXISTS (SELECT 1 FROM residents p WHERE p.id = resident_tags.resident_id)",
    "duplicate_dismissals": "EXISTS (SELECT 1 FROM residents p WHERE p.id = duplicate_dismissals.resident_a)"
    " AND EXISTS (SELECT 1 FROM residents p WHERE p.id = duplicate_dismissals.resident_b)",
    "request_events": "EXISTS (SELECT 1 FROM requests p WHERE p.id = request_events.request_id)",
    "health_reports": "EXISTS (SELECT 1 FROM staff p WHERE p.id = health_reports.staff_id)",
    "donation_items": "EXISTS (SELECT 1 FROM donations p WHERE p.id = donation_items.donation_id)",
}
# What a liaison or office login may do to each table (the policies then narrow it to rows).
WRITABLE = COMMUNITY_TABLES[1:] + tuple(CHILD_TABLES)
STAFF_COLUMNS = "community_id, name, phone, role, active, created_at"

FUNCTIONS = [
    """CREATE OR REPLACE FUNCTION commcare_granted(cid integer) RETURNS boolean
    LANGUAGE sql STABLE AS $$
      SELECT EXISTS (SELECT 1 FROM access_grants g
                     WHERE g.login = current_user AND g.community_id = cid
                       AND g.role IN ('liaison', 'office'))
    $$""",
    """CREATE OR REPLACE FUNCTION commcare_audit_head(OUT head_id integer, OUT head_hash text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
      SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1
    $$""",
    """CREATE OR REPLACE FUNCTION commcare_id_numbers_taken(wanted text[]) RETURNS SETOF text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
      SELECT id_number FROM residents WHERE id_number = ANY (wanted)
    $$""",
    """CREATE OR REPLACE FUNCTION commcare_district_summary(
        p_start timestamptz, p_end timestamptz, p_at timestamptz, p_live boolean,
        p_call_tags text[], p_open_states text[], p_reached text[])
    RETURNS TABLE (community_name text, n_opened bigint, n_resolved bigint, n_open bigint,
                   n_overdue bigint, n_calls_due bigint, n_calls_made bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
      WITH open_now AS (
        SELECT r.community_id, r.due_at FROM requests r
        WHERE CASE WHEN p_live THEN r.status = ANY (p_open_states)
                   ELSE r.opened_at < p_at AND (r.resolved_at IS NULL OR r.resolved_at >= p_at)
                        AND (r.closed_at IS NULL OR r.closed_at >= p_at) END
      ), special AS (
        SELECT s.id, s.community_id FROM residents s
        WHERE s.id IN (SELECT t.resident_id FROM resident_tags t WHERE t.tag = ANY (p_call_tags))
          AND s.created_at < p_end AND (s.archived_at IS NULL OR s.archived_at >= p_end)
      )
      SELECT c.name::text,
        (SELECT count(*) FROM requests r WHERE r.community_id = c.id
           AND r.opened_at >= p_start AND r.opened_at < p_end),
        (SELECT count(*) FROM requests r WHERE r.community_id = c.id
           AND r.resolved_at >= p_start AND r.resolved_at < p_end),
        (SELECT count(*) FROM open_now o WHERE o.community_id = c.id),
        (SELECT count(*) FROM open_now o WHERE o.community_id = c.id AND o.due_at < p_at),
        (SELECT count(*) FROM special s WHERE s.community_id = c.id),
        (SELECT count(*) FROM special s WHERE s.community_id = c.id AND s.id IN (
           SELECT k.resident_id FROM calls k WHERE k.community_id = c.id
             AND k.at >= p_start AND k.at < p_end AND k.outcome = ANY (p_reached)))
      FROM communities c ORDER BY c.id
    $$""",
]
SECURITY_DEFINERS = (
    "commcare_audit_head()",
    "commcare_id_numbers_taken(text[])",
    "commcare_district_summary(timestamptz, timestamptz, timestamptz, boolean, text[], text[], text[])",
)


def policies() -> list[str]:
    """The statements that switch row-level security on, in order."""
    out = []
    for table in COMMUNITY_TABLES:
        out += _enable(table, "commcare_granted(community_id)")
    for table, condition in CHILD_TABLES.items():
        out += _enable(table, condition)
    out += [
        "ALTER TABLE communities ENABLE ROW LEVEL SECURITY",
        "CREATE POLICY commcare_read ON communities FOR SELECT USING (commcare_granted(id))",
        "ALTER TABLE access_grants ENABLE ROW LEVEL SECURITY",
        "CREATE POLICY commcare_read ON access_grants FOR SELECT USING (login = current_user)",
        "ALTER TABLE audit ENABLE ROW LEVEL SECURITY",
        "CREATE POLICY commcare_read ON audit FOR SELECT USING (commcare_granted(community_id))",
        "CREATE POLICY commcare_append ON audit FOR INSERT WITH CHECK (commcare_granted(community_id))",
    ]
    return out


# resident_tags since 0008_tags_policy: read by its own community; written only filed under
# its resident's community, a resident the login can see.
TAGS_READ = "commcare_granted(community_id)"
TAGS_CHECK = (
    "commcare_granted(community_id) AND EXISTS (SELECT 1 FROM residents p"
    " WHERE p.id = resident_tags.resident_id AND p.community_id = resident_tags.community_id)"
)


def tags_by_community(conn) -> None:
    """resident_tags' policy on its own ``community_id`` (migration 0008_tags_policy)."""
    _replace_policy(conn, "resident_tags", TAGS_READ, TAGS_CHECK)


def tags_by_resident(conn) -> None:
    """resident_tags' policy through its resident, as 0006_access made it (0008's downgrade)."""
    condition = CHILD_TABLES["resident_tags"]
    _replace_policy(conn, "resident_tags", condition, condition)


def _replace_policy(conn, table: str, using: str, check: str) -> None:
    conn.exec_driver_sql(f"DROP POLICY IF EXISTS commcare_community ON {table}")
    conn.exec_driver_sql(f"CREATE POLICY commcare_community ON {table} USING ({using}) WITH CHECK ({check})")


def _enable(table: str, condition: str) -> list[str]:
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"CREATE POLICY commcare_community ON {table} USING ({condition}) WITH CHECK ({condition})",
    ]


def install(conn) -> None:
    """Functions and policies (migration 0006_access, PostgreSQL only)."""
    for statement in FUNCTIONS:
        conn.exec_driver_sql(statement)
    for signature in SECURITY_DEFINERS:
        conn.exec_driver_sql(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    for statement in policies():
        conn.exec_driver_sql(statement)


def uninstall(conn) -> None:
    for table in (*COMMUNITY_TABLES, *CHILD_TABLES):
        conn.exec_driver_sql(f"DROP POLICY IF EXISTS commcare_community ON {table}")
        conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    for table in ("communities", "access_grants", "audit"):
        conn.exec_driver_sql(f"DROP POLICY IF EXISTS commcare_read ON {table}")
        conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    conn.exec_driver_sql("DROP POLICY IF EXISTS commcare_append ON audit")
    for signature in ("commcare_granted(integer)", *SECURITY_DEFINERS):
        conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {signature}")


def grant_statements(login: str, role: str) -> list[str]:
    """What ``staff grant`` gives ``login`` (already quoted as an identifier)."""
    base = [
        f"GRANT USAGE ON SCHEMA public TO {login}",
        f"GRANT SELECT ON alembic_version, access_grants TO {login}",
    ]
    if role == "district":
        signature = SECURITY_DEFINERS[2]
        return [*base, f"GRANT EXECUTE ON FUNCTION {signature} TO {login}"]
    return [
        *base,
        f"GRANT SELECT ON communities TO {login}",
        f"GRANT SELECT, DELETE ON staff TO {login}",
        f"GRANT INSERT ({STAFF_COLUMNS}) ON staff TO {login}",
        f"GRANT UPDATE (name, phone, role, active) ON staff TO {login}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(WRITABLE)} TO {login}",
        f"GRANT SELECT, INSERT ON audit TO {login}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {login}",
        f"GRANT EXECUTE ON FUNCTION {SECURITY_DEFINERS[0]}, {SECURITY_DEFINERS[1]} TO {login}",
    ]
