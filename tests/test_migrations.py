"""Every revision up and down (a stairway), and free text through the CLI never breaks it."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st


def test_stairway_every_revision_up_and_down(db_url):
    from sqlalchemy import inspect

    from commcare import db as dbm

    engine = dbm.make_engine(db_url)
    try:
        for _ in range(2):
            dbm.downgrade(engine, "base")
            with engine.connect() as conn:
                assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
            for revision in dbm.REVISIONS:
                dbm.upgrade(engine, revision)
                with engine.connect() as conn:
                    assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == revision
    finally:
        engine.dispose()


text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=text, note=text)
def test_free_text_through_the_cli_never_breaks(cli, name, note):
    result = cli("resident", "add", name, "--note", note, "--format", "json")
    assert result.exit_code in (0, 1, 2), result.stderr
    assert "Traceback" not in result.stderr
    if result.exit_code == 0:
        row = json.loads(result.stdout)
        shown = json.loads(cli("resident", "show", f"#{row['id']}", "--format", "json").stdout)
        assert shown["name"] == row["name"] and shown["note"] == row["note"]
        import unicodedata

        assert shown["name"] == unicodedata.normalize("NFC", name).strip()
