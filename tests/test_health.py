"""Staff health reports: two temperatures a day, the range, who is missing, the list."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def staff(db_url, cli, monkeypatch):
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-08T18:00:00+08:00")
    for name in ("王秀英", "李强", "周志愿"):
        assert cli("staff", "add", name).exit_code == 0
    return cli


def listed(cli, *args):
    result = cli("health", "list", *args, "-f", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("temp", ["34.9", "42.1", "abc", "nan", "-36.5"])
def test_out_of_range_temperatures_exit_2_and_record_nothing(staff, temp):
    result = staff("health", "log", "王秀英", f"--temp={temp}")
    assert result.exit_code == 2 and "Traceback" not in result.stderr and "temp" in result.stderr
    assert listed(staff) == []


@pytest.mark.parametrize("temp", ["35.0", "42.0", "36.55"])
def test_the_edges_of_the_range_are_accepted(staff, temp):
    assert staff("health", "log", "王秀英", "--temp", temp).exit_code == 0
    assert listed(staff)[0]["temp"] == round(float(temp), 1)


def test_bad_test_result_unknown_staff_and_future_time(staff):
    assert staff("health", "log", "王秀英", "--temp", "36.5", "--test", "maybe").exit_code == 2
    assert staff("health", "log", "无此人", "--temp", "36.5").exit_code == 1
    assert staff("health", "log", "王秀英", "--temp", "36.5", "--at", "+2h").exit_code == 2
    assert listed(staff) == []


def test_health_due_lists_active_staff_with_fewer_than_two_reports_today(staff):
    staff("health", "log", "王秀英", "--temp", "36.5", "--at", "2026-05-08 07:30")
    staff("health", "log", "王秀英", "--temp", "36.6", "--test", "negative")
    staff("health", "log", "李强", "--temp", "36.4")
    staff("health", "log", "周志愿", "--temp", "36.4", "--at", "2026-05-07 18:00")  # yesterday's
    staff("health", "log", "周志愿", "--temp", "36.5", "--at", "2026-05-07 23:59")
    rows = json.loads(staff("health", "due", "-f", "json").stdout)
    assert [(r["staff"], r["reports"]) for r in rows] == [("李强", 1), ("周志愿", 0)]
    report = json.loads(staff("report", "today", "-f", "json").stdout)
    assert report["staff_health"]["missing"] == ["李强", "周志愿"]


def test_health_list_by_day_range_and_staff_in_the_configured_zone(staff, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    staff("--as", "王秀英", "health", "log", "王秀英", "--temp", "36.5", "--at", "2026-05-07 23:59")
    staff("health", "log", "王秀英", "--temp", "36.7", "--test", "pending", "--at", "2026-05-08 00:01")
    staff("health", "log", "李强", "--temp", "37.5", "--at", "2026-05-08 08:00")
    assert [(r["staff"], r["temp"], r["test"]) for r in listed(staff)] == [
        ("王秀英", 36.7, "pending"),
        ("李强", 37.5, None),
    ]
    yesterday = listed(staff, "--from", "2026-05-07")
    assert [(r["at"], r["by"]) for r in yesterday] == [("2026-05-07T23:59:00+08:00", "王秀英")]
    assert len(listed(staff, "--from", "2026-05-07", "--to", "2026-05-08")) == 3
    assert [r["temp"] for r in listed(staff, "--staff", "李强")] == [37.5]


def test_health_reports_are_audited(staff):
    staff("health", "log", "王秀英", "--temp", "36.5", "--test", "negative")
    audit = json.loads(staff("audit", "-f", "json").stdout)
    entry = next(a for a in audit if a["action"] == "health.log")
    assert entry["entity"] == "health_report" and "36.5" not in json.dumps(entry)
