"""Identity and access on a shared PostgreSQL server, proved against the real server: two
liaison logins in two communities and one district login, each connecting as its own
database role (made by ``staff grant``), through the installed ``commcare`` and through
psycopg directly. What the database must refuse, it refuses even to SQL typed by hand.

Skipped, saying why, when COMMCARE_TEST_PG_URL is unset. Roles are cluster-wide: each run's
have unique names and are dropped at the end."""

from __future__ import annotations

import json
import uuid

import pytest
from usercli import commcare

pytestmark = [pytest.mark.pg, pytest.mark.slow]

NOW = "2026-05-08T09:00:00+08:00"
XINGFU_ID = "11010519491231002X"
HEPING_ID = "110105195505050026"


class Server:
    """The test database, its owner's URL, and a URL per login."""

    def __init__(self, url: str, suffix: str) -> None:
        from sqlalchemy.engine import make_url

        self.owner_url = url
        self.base = make_url(url)
        self.logins = {k: f"cc_{suffix}_{k}" for k in ("a", "b", "d")}
        self.config = self.key = ""

    def url(self, who: str) -> str:
        return self.base.set(username=self.logins[who], password=None).render_as_string(hide_password=False)

    def psycopg(self, who: str):
        import psycopg

        u = self.base
        return psycopg.connect(
            host=u.host, port=u.port or 5432, dbname=u.database, user=self.logins[who], autocommit=True
        )


def owner(server: Server, *args, **kw):
    env = {
        "COMMCARE_USER": "王秀英",
        "COMMCARE_CONFIG": server.config,
        "COMMCARE_AUDIT_KEY": server.key,
        **kw.pop("env", {}),
    }
    result = commcare("--db", server.owner_url, *args, env=env)
    assert result.returncode == 0, (args, result.stderr)
    return result


def as_login(server: Server, who: str, *args):
    """The installed commcare, connected as a staff login, nobody named with --as."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "COMMCARE_USER"}
    env["COMMCARE_DB"] = server.url(who)
    env["COMMCARE_CONFIG"] = server.config
    env["COMMCARE_AUDIT_KEY"] = server.key  # the audit trail's key: every login's machine needs it
    import subprocess

    from usercli import EXE

    return subprocess.run([EXE, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def server(pg_template, tmp_path_factory):
    """Two communities, a liaison login in each, a district login; residents with ID numbers,
    notes, a request and a call in each."""
    import os

    from conftest import _fresh_pg_database
    from sqlalchemy import create_engine

    url, drop = _fresh_pg_database(pg_template)
    srv = Server(url, uuid.uuid4().hex[:10])
    home = tmp_path_factory.mktemp("access")
    srv.config, srv.key = str(home / "commcare.toml"), str(home / "audit.key")
    os.environ["COMMCARE_NOW"] = NOW
    try:
        first = commcare(
            "--db",
            url,
            "init",
            "--community",
            "幸福社区",
            env={"COMMCARE_USER": "王秀英", "COMMCARE_CONFIG": srv.config, "COMMCARE_AUDIT_KEY": srv.key},
        )
        assert first.returncode == 0, first.stderr
        owner(srv, "--community", "幸福社区", "staff", "add", "王秀英")
        owner(srv, "community", "add", "和平社区")
        owner(srv, "--community", "和平社区", "staff", "add", "周敏")
        owner(srv, "--community", "幸福社区", "staff", "add", "陈主任")
        for community, name, id_number, actor in (
            ("幸福社区", "张桂兰", XINGFU_ID, "王秀英"),
            ("和平社区", "钱秘密", HEPING_ID, "周敏"),
        ):
            owner(
                srv, "--community", community, "resident", "add", name, "--id-number", id_number,
                "--phone", "13912345678" if community == "幸福社区" else "13800002222", "--tag", "独居",
                "--note", f"{name}的病历", "--compound", "小区", "--address", "1-101", env={"COMMCARE_USER": actor},
            )  # fmt: skip
            owner(srv, "--community", community, "add-request", name, "--category", "medicine",
                  "--note", f"{name}的药", env={"COMMCARE_USER": actor})  # fmt: skip
            owner(srv, "--community", community, "call", "log", name, "--outcome", "ok", env={"COMMCARE_USER": actor})
        for staff, who, role, community in (
            ("王秀英", "a", "liaison", "幸福社区"),
            ("周敏", "b", "liaison", "和平社区"),
            ("陈主任", "d", "district", None),
        ):
            args = ["--community", "和平社区" if who == "b" else "幸福社区", "staff", "grant", staff]
            args += ["--login", srv.logins[who], "--role", role] + (["--community", community] if community else [])
            owner(srv, *args, env={"COMMCARE_USER": staff})
        yield srv
    finally:
        os.environ.pop("COMMCARE_NOW", None)
        drop()
        admin = create_engine(url.replace(srv.base.database, "postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for login in srv.logins.values():
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{login}"')
        admin.dispose()


def test_a_liaison_sees_only_its_own_community(server):
    result = as_login(server, "a", "resident", "list", "--unmask", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["张桂兰"]
    assert HEPING_ID not in result.stdout and "钱秘密" not in result.stdout
    other = as_login(server, "b", "resident", "list", "--format", "json")
    assert [r["name"] for r in json.loads(other.stdout)] == ["钱秘密"]


def test_the_other_community_is_refused_naming_only_the_granted_ones(server):
    result = as_login(server, "a", "--community", "和平社区", "resident", "list", "--unmask")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "幸福社区" in result.stderr
    assert result.stderr.count("和平社区") == 1  # only as the name asked for, not as one that exists
    assert "钱秘密" not in result.stderr


def test_a_login_acts_as_itself(server):
    result = as_login(server, "a", "resident", "add", "孙丽", "--format", "json")
    assert result.returncode == 0, result.stderr
    trail = json.loads(as_login(server, "a", "audit", "--format", "json").stdout)
    assert trail[0]["actor"] == "王秀英" and trail[0]["action"] == "resident.add"
    spoof = as_login(server, "a", "--as", "周敏", "resident", "add", "孙二")
    assert spoof.returncode == 1 and "周敏" in spoof.stderr and "--as" in spoof.stderr
    spoof_read = as_login(server, "a", "--as", "某黑客", "resident", "list")
    assert spoof_read.returncode == 1
    same = as_login(server, "a", "--as", "王秀英", "resident", "list", "--format", "json")
    assert same.returncode == 0


def test_a_liaison_cannot_touch_the_other_communitys_residents(server):
    heping = json.loads(as_login(server, "b", "resident", "list", "--format", "json").stdout)[0]["id"]
    for args in (
        ("resident", "show", f"#{heping}"),
        ("resident", "show", HEPING_ID),
        ("resident", "edit", f"#{heping}", "--note", "改了"),
        ("call", "log", f"#{heping}", "--outcome", "ok"),
        ("resident", "archive", f"#{heping}", "--reason", "moved"),
    ):
        result = as_login(server, "a", *args)
        assert result.returncode == 1, (args, result.stderr)
        assert "钱秘密" not in result.stdout + result.stderr
    shown = as_login(server, "b", "resident", "show", f"#{heping}", "--format", "json")
    assert json.loads(shown.stdout)["note"] == "钱秘密的病历"  # unchanged


def test_an_id_number_of_the_other_community_is_refused_without_a_name(server):
    result = as_login(server, "a", "resident", "add", "探子", "--id-number", HEPING_ID)
    assert result.returncode == 1
    assert "another community" in result.stderr or "其他社区" in result.stderr
    assert "钱秘密" not in result.stderr and "和平社区" not in result.stderr


def test_direct_sql_as_a_liaison_is_refused_or_empty(server):
    import psycopg

    with server.psycopg("b") as own:
        heping = own.execute("SELECT community_id FROM residents").fetchone()[0]
    with server.psycopg("a") as conn:
        assert conn.execute("SELECT * FROM residents WHERE community_id = %s", (heping,)).fetchall() == []
        assert [r[0] for r in conn.execute("SELECT name FROM residents ORDER BY id")] == ["张桂兰", "孙丽"]
        for table in ("calls", "requests", "households", "staff", "register_counts", "directory"):
            assert conn.execute(f"SELECT * FROM {table} WHERE community_id = %s", (heping,)).fetchall() == []
        assert conn.execute("SELECT note FROM request_events WHERE note LIKE '%钱秘密%'").fetchall() == []
        assert conn.execute("SELECT name FROM communities").fetchall() == [("幸福社区",)]
        assert conn.execute("UPDATE residents SET note = 'x' WHERE community_id = %s", (heping,)).rowcount == 0
        assert conn.execute("DELETE FROM calls WHERE community_id = %s", (heping,)).rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # moving a row into the other community
            conn.execute("UPDATE residents SET community_id = %s WHERE name = '孙丽'", (heping,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO residents (community_id, name, name_pinyin, name_initials, created_at, updated_at, version)"
                " VALUES (%s, '植入', '', '', now(), now(), 1)",
                (heping,),
            )
        for statement in ("DELETE FROM audit", "UPDATE audit SET actor = 'x'", "TRUNCATE audit"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # rebinding a login to someone else
            conn.execute("UPDATE staff SET login = 'x'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM commcare_district_summary(now(), now(), now(), true, '{}', '{}', '{}')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO access_grants (login, role, granted_at) VALUES (current_user, 'office', now())")
    with server.psycopg("b") as other:
        assert [r[0] for r in other.execute("SELECT name FROM residents")] == ["钱秘密"]


def test_the_district_login_reads_the_summed_figures_only(server):
    mine = as_login(server, "d", "report", "today", "--all-communities", "--format", "json")
    assert mine.returncode == 0, mine.stderr
    theirs = owner(server, "--community", "幸福社区", "report", "today", "--all-communities", "--format", "json")
    got, expected = json.loads(mine.stdout), json.loads(theirs.stdout)
    assert got["communities"] == expected["communities"] and got["total"] == expected["total"]
    assert {r["community"] for r in got["communities"]} == {"幸福社区", "和平社区"}
    assert got["total"]["calls_due"] >= 2 and got["total"]["open"] >= 2
    for args in (
        ("resident", "list"),
        ("report", "today"),
        ("request", "list"),
        ("call", "due"),
        ("audit",),
        ("resident", "add", "张三"),
    ):
        result = as_login(server, "d", *args)
        assert result.returncode == 1, (args, result.stderr)
        assert "张桂兰" not in result.stdout and "钱秘密" not in result.stdout
        assert result.stderr.startswith("commcare: --db") and len(result.stderr.splitlines()) == 1, result.stderr
    import psycopg

    with server.psycopg("d") as conn:
        for table in ("residents", "calls", "requests", "request_events", "staff", "audit", "communities"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT * FROM {table}")


def test_the_audit_chain_holds_across_the_logins(server):
    """Each login sees only its community's entries, yet the chain its entries join is the
    whole table's (``commcare_audit_head``): the owner verifies it whole."""
    assert as_login(server, "b", "resident", "add", "吴刚").returncode == 0
    # the shared anchor now names b's entry, which a's login cannot see: not a missing entry
    written = as_login(server, "a", "resident", "add", "郑洁")
    assert written.returncode == 0 and written.stderr == "", written.stderr
    assert as_login(server, "b", "resident", "add", "冯伟").stderr == ""
    result = commcare(
        "--db",
        server.owner_url,
        "audit",
        "verify",
        env={"COMMCARE_CONFIG": server.config, "COMMCARE_AUDIT_KEY": server.key},
    )
    assert result.returncode == 0, result.stderr


def test_an_import_with_the_other_communitys_id_number_is_refused_without_a_name(server, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(f"姓名,身份证号,人群类别\n探子,{HEPING_ID},独居\n", encoding="utf-8")
    result = as_login(server, "a", "resident", "import", str(roster))
    assert result.returncode == 1, result.stderr
    assert "id_number" in result.stderr and "row 2" in result.stderr
    assert "钱秘密" not in result.stderr + result.stdout and "和平社区" not in result.stderr
    names = [r["name"] for r in json.loads(as_login(server, "a", "resident", "list", "--format", "json").stdout)]
    assert "探子" not in names


def test_a_login_still_hears_of_entries_deleted_below_the_anchor(server):
    """The owner deletes the newest entries (only the owner can): a login's next write says
    the trail no longer reaches the anchor. The rows are put back after."""
    import psycopg

    assert as_login(server, "a", "resident", "add", "褚明").returncode == 0  # the anchor: a's entry
    u = server.base
    with psycopg.connect(host=u.host, port=u.port or 5432, dbname=u.database, user=u.username, autocommit=True) as c:
        kept = c.execute("SELECT * FROM audit WHERE seq > (SELECT max(seq) - 2 FROM audit) ORDER BY seq").fetchall()
        names = [d.name for d in c.execute("SELECT * FROM audit LIMIT 0").description]
        c.execute("DELETE FROM audit WHERE seq > (SELECT max(seq) - 2 FROM audit)")
        try:
            written = as_login(server, "b", "resident", "add", "褚亮")
            assert written.returncode == 0
            assert "anchor" in written.stderr or "锚点" in written.stderr, written.stderr
        finally:
            c.execute("DELETE FROM audit WHERE seq > (SELECT max(seq) FROM audit) - 1")  # b's entry on the cut
            columns = ", ".join(names)
            marks = ", ".join(["%s"] * len(names))
            with c.cursor() as cur:
                cur.executemany(f"INSERT INTO audit ({columns}) VALUES ({marks})", kept)


def test_a_liaison_neither_sees_nor_files_the_other_communitys_tags(server):
    """resident_tags' policy reads the tag's own community (migration 0008_tags_policy): as
    login A, the tags of community B are not there, and no tag can be filed under B, nor put
    on B's resident, nor filed under B for A's own resident (the policy through the resident
    let that one through)."""
    import psycopg

    with server.psycopg("b") as own:
        heping, heping_resident = own.execute("SELECT community_id, id FROM residents WHERE name = '钱秘密'").fetchone()
    with server.psycopg("a") as conn:
        xingfu, xingfu_resident = conn.execute(
            "SELECT community_id, id FROM residents WHERE name = '张桂兰'"
        ).fetchone()
        assert conn.execute("SELECT * FROM resident_tags WHERE community_id = %s", (heping,)).fetchall() == []
        assert {r[0] for r in conn.execute("SELECT DISTINCT community_id FROM resident_tags")} == {xingfu}
        assert (
            conn.execute("SELECT count(*) FROM resident_tags WHERE resident_id = %s", (heping_resident,)).fetchone()[0]
            == 0
        )
        for resident, community in (
            (heping_resident, heping),  # B's tag, filed under B
            (heping_resident, xingfu),  # B's resident, filed under A
            (xingfu_resident, heping),  # A's resident, filed under B
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(
                    "INSERT INTO resident_tags (resident_id, tag, community_id) VALUES (%s, 'frail', %s)",
                    (resident, community),
                )
        assert conn.execute("UPDATE resident_tags SET tag = 'frail' WHERE community_id = %s", (heping,)).rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # moving A's tag into B
            conn.execute("UPDATE resident_tags SET community_id = %s WHERE resident_id = %s", (heping, xingfu_resident))
    with server.psycopg("b") as other:
        assert [
            r[0] for r in other.execute("SELECT tag FROM resident_tags WHERE resident_id = %s", (heping_resident,))
        ] == ["lives-alone"]


def test_the_round_as_a_liaison_reads_its_own_tags(server):
    """``call due`` as login A lists A's special groups and none of B's, through the tags'
    own community."""
    result = as_login(server, "a", "call", "due", "--format", "json")
    assert result.returncode == 0, result.stderr
    names = json.dumps(json.loads(result.stdout), ensure_ascii=False)
    assert "张桂兰" in names and "钱秘密" not in names
    theirs = as_login(server, "b", "call", "due", "--format", "json")
    assert theirs.returncode == 0, theirs.stderr
    assert "钱秘密" in theirs.stdout and "张桂兰" not in theirs.stdout


def test_a_liaison_imports_a_roster_into_its_own_community(server, tmp_path):
    """A staff login's import writes its rows (row-level security refuses COPY to a login:
    the rows go in as INSERTs), and a number registered in the community it cannot see, in
    the second chunk, still refuses the whole roster, named by its row alone."""
    from stdnum.cn import ric

    def number(i: int) -> str:
        body = f"110105197001{i % 28 + 1:02d}{i:03d}"[:17]
        return body + ric.calc_check_digit(body + "0")

    roster = tmp_path / "roster.csv"
    rows = [f"居民{i},{number(i)},1号楼{i}" for i in range(3)]
    roster.write_text("姓名,身份证号,住址,人群类别\n" + "".join(r + ",独居\n" for r in rows), encoding="utf-8")
    result = as_login(server, "a", "resident", "import", str(roster))
    assert result.returncode == 0, result.stderr
    names = [r["name"] for r in json.loads(as_login(server, "a", "resident", "list", "--format", "json").stdout)]
    assert {"居民0", "居民1", "居民2"} <= set(names)
    longer = tmp_path / "longer.csv"
    lines = [f"邻居{i},{number(100 + i) if i != 1200 else HEPING_ID},2号楼{i}," for i in range(1500)]
    longer.write_text("姓名,身份证号,住址,人群类别\n" + "\n".join(lines) + "\n", encoding="utf-8")
    refused = as_login(server, "a", "--lang", "en", "resident", "import", str(longer), "--no-groups")
    assert refused.returncode == 1, refused.stderr
    assert "row 1202" in refused.stderr and "id_number" in refused.stderr and "钱秘密" not in refused.stderr
    after = [r["name"] for r in json.loads(as_login(server, "a", "resident", "list", "--format", "json").stdout)]
    assert not any(n.startswith("邻居") for n in after)
