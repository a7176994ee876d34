"""Requests for help: opening, the lifecycle, recurrence, overdue, time zones, atomic batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.fixture
def office(db_url, cli, monkeypatch):
    """A liaison, and two residents of one household, on a fixed clock (Shanghai morning)."""
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-08T09:00:00+08:00")
    assert cli("staff", "add", "王秀英").exit_code == 0
    assert cli("staff", "add", "李强").exit_code == 0
    for name, phone in (("张桂兰", "13912345678"), ("刘建国", "13800002222")):
        r = cli(
            "resident",
            "add",
            name,
            "--phone",
            phone,
            "--compound",
            "幸福小区",
            "--address",
            "3-101",
            "--liaison",
            "王秀英",
            "--tag",
            "老人",
        )
        assert r.exit_code == 0, r.stderr
    return cli


def add(cli, *args) -> dict:
    result = cli("add-request", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def show(cli, rid) -> dict:
    return json.loads(cli("request", "show", rid, "--format", "json").stdout)


def test_add_request_by_phone_defaults(office):
    row = add(office, "13912345678", "--category", "燃气圈存", "--channel", "hotline")
    assert row["resident"] == "张桂兰" and row["category"] == "gas-topup"
    assert row["assignee"] == "王秀英" and row["status"] == "assigned"
    assert row["due"] == "2026-05-09T09:00:00+08:00"  # gas-topup: 24 hours
    urgent = add(office, "张桂兰", "--category", "medicine", "--urgency", "urgent")
    assert urgent["due"] == "2026-05-08T13:00:00+08:00"  # urgent: at most 4 hours


def test_several_residents_one_request_each_in_one_transaction(office):
    rows = json.loads(office("add-request", "张桂兰", "刘建国", "-c", "gas-topup", "-f", "json").stdout)
    assert [r["resident"] for r in rows] == ["张桂兰", "刘建国"]
    before = office("request", "list", "--status", "all", "-f", "json").stdout
    bad = office("add-request", "张桂兰", "nobody", "-c", "gas-topup")
    assert bad.exit_code == 1
    assert office("request", "list", "--status", "all", "-f", "json").stdout == before


@pytest.mark.parametrize(
    "args, code",
    [
        (["-c", "nonsense"], 2),
        (["-c", "trash", "--due", "2026-02-30"], 2),
        (["-c", "trash", "--urgency", "asap"], 2),
        (["-c", "trash", "--every", "fortnightly"], 2),
        (["-c", "trash", "--channel", "pigeon"], 2),
        (["-c", "trash", "--assign", "nobody"], 1),
    ],
)
def test_bad_values_exit_with_contract_code_and_change_nothing(office, args, code):
    result = office("add-request", "张桂兰", *args)
    assert result.exit_code == code
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert json.loads(office("request", "list", "--status", "all", "-f", "json").stdout) == []


def test_lifecycle_allowed_and_refused_transitions(office):
    rid = add(office, "张桂兰", "-c", "groceries")["id"]
    assert office("request", "assign", rid, "李强").exit_code == 0
    assert office("request", "start", rid).exit_code == 0
    assert office("request", "start", rid).exit_code == 1  # already in progress
    assert office("request", "reopen", rid).exit_code == 1  # not closed
    assert office("request", "resolve", rid, "--note", "买好了").exit_code == 0
    refused = office("request", "resolve", rid)
    assert refused.exit_code == 1 and "resolved" in refused.stderr
    assert office("request", "cancel", rid, "--reason", "x").exit_code == 1
    assert office("request", "reopen", rid).exit_code == 0
    assert office("request", "cancel", rid, "--reason", "家属已代办").exit_code == 0
    assert office("request", "assign", rid, "李强").exit_code == 1
    events = [e["event"] for e in show(office, rid)["timeline"]]
    assert events == ["opened", "assigned", "assigned", "started", "resolved", "reopened", "cancelled"]


def test_cancel_needs_a_reason(office):
    rid = add(office, "张桂兰", "-c", "trash")["id"]
    assert office("request", "cancel", rid, "--reason", "  ").exit_code == 2


def test_batch_resolve_of_26_is_atomic(office):
    ids = [str(add(office, "张桂兰", "-c", "gas-topup", "--again")["id"]) for _ in range(26)]
    assert office("request", "resolve", *ids[:25], "99999").exit_code == 1
    statuses = {r["status"] for r in json.loads(office("request", "list", "--status", "all", "-f", "json").stdout)}
    assert statuses == {"assigned"}
    assert office("request", "resolve", *ids).exit_code == 0
    assert json.loads(office("request", "list", "-f", "json").stdout) == []


def _resolve_at(cli, monkeypatch, rid, when):
    monkeypatch.setenv("COMMCARE_NOW", when)
    assert cli("request", "resolve", rid).exit_code == 0


def _series(cli):
    rows = json.loads(cli("request", "list", "--status", "all", "-f", "json").stdout)
    return sorted(rows, key=lambda r: r["id"])


@pytest.mark.parametrize("interval, step_days", [("2d", 2), ("daily", 1), ("weekly", 7)])
def test_every_keeps_a_fixed_schedule_despite_late_resolutions(office, monkeypatch, interval, step_days):
    import datetime as dt

    first = add(office, "张桂兰", "-c", "medical-visit", "--every", interval, "--due", "2026-05-08 10:00")
    rid, due = first["id"], dt.datetime.fromisoformat(first["due"])
    for _ in range(4):
        _resolve_at(office, monkeypatch, rid, (due + dt.timedelta(hours=30)).isoformat())  # always late
        nxt = next(r for r in _series(office) if r["previous"] == rid)
        assert dt.datetime.fromisoformat(nxt["due"]) == due + dt.timedelta(days=step_days)
        rid, due = nxt["id"], due + dt.timedelta(days=step_days)


def test_every_after_counts_from_the_resolution(office, monkeypatch):
    rid = add(office, "张桂兰", "-c", "trash", "--every-after", "2d", "--due", "2026-05-08 10:00")["id"]
    _resolve_at(office, monkeypatch, rid, "2026-05-09T15:00:00+08:00")
    nxt = next(r for r in _series(office) if r["previous"] == rid)
    assert nxt["due"] == "2026-05-11T15:00:00+08:00"


def test_until_ends_the_series(office, monkeypatch):
    rid = add(
        office, "张桂兰", "-c", "medical-visit", "--every", "2d", "--due", "2026-05-08 10:00", "--until", "2026-05-12"
    )["id"]
    for when in ("2026-05-08T11:00:00+08:00", "2026-05-10T11:00:00+08:00", "2026-05-12T11:00:00+08:00"):
        _resolve_at(office, monkeypatch, rid, when)
        following = [r for r in _series(office) if r["previous"] == rid]
        rid = following[0]["id"] if following else None
    assert rid is None
    assert [r["due"][:10] for r in _series(office)] == ["2026-05-08", "2026-05-10", "2026-05-12"]


def test_reopened_and_resolved_again_does_not_open_a_second_occurrence(office):
    rid = add(office, "张桂兰", "-c", "medical-visit", "--every", "2d")["id"]
    office("request", "resolve", rid)
    office("request", "reopen", rid)
    office("request", "resolve", rid)
    assert len([r for r in _series(office) if r["previous"] == rid]) == 1


def test_overdue_at_the_boundary_minute(office, monkeypatch):
    add(office, "张桂兰", "-c", "trash", "--due", "2026-05-08 10:00")
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-08T10:00:00+08:00")
    assert json.loads(office("request", "list", "--overdue", "-f", "json").stdout) == []
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-08T10:01:00+08:00")
    assert len(json.loads(office("request", "list", "--overdue", "-f", "json").stdout)) == 1


def test_request_at_2330_shanghai_belongs_to_that_day_in_a_utc_process(office, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-08T23:45:00+08:00")
    row = add(office, "张桂兰", "-c", "parcel", "--at", "2026-05-08 23:30")
    assert row["opened_at"] == "2026-05-08T23:30:00+08:00"
    report = json.loads(office("report", "day", "2026-05-08", "-f", "json").stdout)
    assert report["requests"]["opened"] == 1
    assert json.loads(office("report", "day", "2026-05-09", "-f", "json").stdout)["requests"]["opened"] == 0


def test_notes_and_timeline_record_who(office):
    rid = add(office, "张桂兰", "-c", "medicine")["id"]
    assert office("--as", "李强", "request", "note", rid, "已联系药店").exit_code == 0
    note = show(office, rid)["timeline"][-1]
    assert note == {**note, "event": "note", "by": "李强", "note": "已联系药店"}


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(3))
def test_two_processes_resolving_at_once_open_one_occurrence(db_url, attempt):
    """Two real processes resolve the same recurring request at once (SQLite file, and
    PostgreSQL where both may read it open before either writes: the version check decides)."""
    env = {**os.environ, "COMMCARE_DB": db_url, "COMMCARE_NOW": "2026-05-08T09:00:00+08:00"}
    exe = [sys.executable, "-m", "commcare"]
    subprocess.run(
        exe + ["resident", "add", "张桂兰", "--phone", "13912345678"], env=env, check=True, capture_output=True
    )
    subprocess.run(
        exe + ["add-request", "张桂兰", "-c", "medical-visit", "--every", "2d"],
        env=env,
        check=True,
        capture_output=True,
    )
    procs = [
        subprocess.Popen(exe + ["request", "resolve", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    codes = sorted(p.wait() for p in procs)
    assert codes == [0, 1]  # one wins; the other is told the request is resolved (or changed meanwhile)
    out = subprocess.run(
        exe + ["request", "list", "--status", "all", "-f", "json"], env=env, capture_output=True, check=True
    )
    rows = json.loads(out.stdout)
    assert len([r for r in rows if r["previous"] == 1]) == 1


def test_every_field_of_request_show_has_a_heading_in_both_languages(office):
    from commcare import i18n

    rid = add(office, "张桂兰", "-c", "trash")["id"]
    row = show(office, rid)
    missing = [k for k in row if k != "timeline" and not {"zh", "en"} <= set(i18n.catalog().get(f"col.{k}", {}))]
    missing += [k for k in row["timeline"][0] if not {"zh", "en"} <= set(i18n.catalog().get(f"col.{k}", {}))]
    assert missing == []
