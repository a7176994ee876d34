"""Hypothesis over more free-text fields through the CLI: exit 0, 1 or 2, never a traceback;
an accepted address reads back exactly."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st

text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=30)
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(name=text, role=text)
def test_staff_name_and_role(cli, name, role):
    result = cli("staff", "add", name, "--role", role, "--format", "json")
    assert result.exit_code in (0, 1, 2), result.stderr
    assert "Traceback" not in result.stderr


@SETTINGS
@given(address=text, contact=text)
def test_resident_address_and_emergency_contact(cli, address, contact):
    result = cli("resident", "add", "张三", "--address", address, "--emergency-contact", contact,
                 "--format", "json")
    assert result.exit_code in (0, 1, 2), result.stderr
    assert "Traceback" not in result.stderr
    if result.exit_code == 0:
        row = json.loads(result.stdout)
        shown = json.loads(cli("resident", "show", f"#{row['id']}", "--format", "json").stdout)
        assert shown.get("address") == row.get("address")
