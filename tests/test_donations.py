"""Donated supplies: item specs, the list, and totals per item and unit over a month."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def office(db_url, cli, monkeypatch):
    monkeypatch.setenv("COMMCARE_NOW", "2026-06-10T12:00:00+08:00")
    return cli


def donations(cli, *args):
    result = cli("donation", "list", *args, "-f", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("spec", ["矿泉水", "矿泉水:abc", ":5", "矿泉水:-3:箱", "矿泉水:0", "矿泉水:1e3", "矿泉水:5:"])
def test_bad_item_specs_exit_2_and_record_nothing(office, spec):
    result = office("donation", "add", "永辉超市", "--item", "盒饭:10:份", "--item", spec)
    assert result.exit_code == 2 and result.stderr.startswith("commcare: item:")
    assert donations(office) == []


@pytest.mark.parametrize("args", [["--for", "cats"], ["--at", "+1d"], ["--at", "someday"]])
def test_bad_recipient_or_time_exits_2(office, args):
    assert office("donation", "add", "永辉超市", "--item", "盒饭:10:份", *args).exit_code == 2
    assert donations(office) == []


def test_item_specs_accept_full_width_colons_decimals_and_no_unit(office):
    result = office(
        "donation",
        "add",
        "爱心人士",
        "--item",
        "矿泉水：20：箱",
        "--item",
        "口罩:2.5:千只",
        "--item",
        "体温计:3",
        "--for",
        "staff",
        "--note",
        "放在一楼",
        "-f",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)
    assert (row["donor"], row["for"], row["items"]) == (
        "爱心人士",
        "staff",
        ["矿泉水 20箱", "口罩 2.5千只", "体温计 3"],
    )


def test_donation_totals_over_a_month(office):
    for day, qty in (
        ("2026-04-30 23:59", 7),
        ("2026-05-01 00:01", 50),
        ("2026-05-15", 30),
        ("2026-05-31 23:59", 5),
        ("2026-06-01", 99),
    ):
        assert (
            office(
                "donation",
                "add",
                "永辉超市",
                "--item",
                f"矿泉水:{qty}:箱",
                "--item",
                "盒饭:10:份",
                "--item",
                "矿泉水:2:瓶",
                "--at",
                day,
            ).exit_code
            == 0
        )
    totals = donations(office, "--from", "2026-05-01", "--to", "2026-05-31", "--totals")
    assert [(t["item"], t["unit"], t["quantity"], t["donations"]) for t in totals] == [
        ("盒饭", "份", 30, 3),
        ("矿泉水", "瓶", 6, 3),
        ("矿泉水", "箱", 85, 3),
    ]
    assert len(donations(office, "--from", "2026-05-01", "--to", "2026-05-31")) == 3
    assert len(donations(office)) == 5
    table = office("donation", "list", "--from", "2026-05-01", "--to", "2026-05-31").stdout
    assert "totals per item and unit" in table and "85" in table


def test_the_evening_report_counts_the_days_donations(office):
    office("donation", "add", "永辉超市", "--item", "矿泉水:50:箱", "--at", "2026-06-10 09:00")
    office("donation", "add", "永辉超市", "--item", "矿泉水:5:箱", "--at", "2026-06-09 09:00")
    report = json.loads(office("report", "today", "-f", "json").stdout)
    assert report["donations"]["received"] == 1
    assert [(i["name"], i["quantity"], i["unit"]) for i in report["donations"]["items"]] == [("矿泉水", 50, "箱")]


def test_donations_are_audited(office):
    office("donation", "add", "永辉超市", "--item", "矿泉水:50:箱")
    assert [a["action"] for a in json.loads(office("audit", "-f", "json").stdout)].count("donation.add") == 1
