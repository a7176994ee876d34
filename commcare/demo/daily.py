"""The demo community's daily round: check-in calls to the special groups (most reached, some
not answering, a few escalated), staff temperature reports (some missing), donations, and the
directory of useful numbers. Functions take the ``Generator`` of ``commcare.demo``."""

from __future__ import annotations

import datetime as dt

from commcare import identity
from commcare.storage.tables import calls, directory, donation_items, donations, health_reports

H = dt.timedelta(hours=1)
HISTORY = 14  # days of calls and health reports


def make_calls(g) -> None:
    days = g.past_days(HISTORY)
    total = len(days) * len(g.special)

    def rows():
        for day in days:
            yield from _day_calls(g, day)

    g.counts["calls"] = g.bulk(calls, rows(), "calls", total)


def _day_calls(g, day: dt.date):
    rng, today = g.rng, day == g.today
    reach = g.today_share if today else 0.97
    help_notes = g.spec["notes"]["medicine"] + g.spec["notes"]["groceries"]
    for rid in g.special:
        if rng.random() >= reach:
            continue
        staff = g.liaison_of(rid)
        row = {
            "community_id": g.cid,
            "resident_id": rid,
            "staff_id": staff,
            "actor": g.staff_names[staff],
            "at": g.when(day, 8 + rng.random() * 10),
            "outcome": "ok",
            "note": None,
            "request_id": None,
        }
        r = rng.random()
        if r < 0.86:
            yield row
        elif r < 0.91:
            yield {**row, "outcome": "needs-help", "note": rng.choice(help_notes)}
        elif r < 0.97:
            yield {**row, "outcome": "no-answer"}
            again = row["at"] + H * rng.uniform(1, 3)
            if again <= g.now:  # tried again: answered, or not (two unanswered: escalate)
                yield {**row, "at": again, "outcome": "ok" if rng.random() < 0.6 else "no-answer"}
        else:
            yield {**row, "outcome": "unreachable"}


def make_health(g) -> None:
    """Each staff member reports a temperature morning and afternoon; a few forget."""
    rng = g.rng
    days = g.past_days(HISTORY)

    def rows():  # made as they are written, not held
        for day in days:
            for sid, name in g.staff_names.items():
                for hour, kept in ((7.5, 0.96), (14.0, 0.93)):
                    at = g.when(day, hour + rng.random() * 2)
                    if (day == g.today and hour > 12 and at < g.work_start) or rng.random() >= kept:
                        continue
                    temp = round(rng.gauss(36.5, 0.2) if rng.random() > 0.01 else rng.uniform(37.3, 38.2), 1)
                    test = "negative" if rng.random() < 0.9 else None
                    if at <= g.now:
                        yield {"staff_id": sid, "at": at, "temperature": temp, "test": test, "actor": name}

    made = g.bulk(health_reports, rows(), "health", len(days) * len(g.staff_names) * 2)
    g.progress("health", made, made)
    g.counts["health_reports"] = made


def make_donations(g) -> None:
    rng, made, items = g.rng, [], []
    next_id = g.next_id(donations)
    secretary = next(iter(g.staff_names.values()))
    for day in g.past_days(30):
        for _ in range(rng.choice((0, 1, 1, 2, 3))):
            made.append(
                {
                    "id": next_id,
                    "community_id": g.cid,
                    "donor": rng.choice(g.spec["donors"]),
                    "at": g.when(day, 9 + rng.random() * 8),
                    "note": None,
                    "actor": secretary,
                    "recipients": "staff" if rng.random() < 0.25 else "residents",
                }
            )
            for name, unit in rng.sample(g.spec["supplies"], rng.randint(1, 3)):
                items.append(
                    {
                        "donation_id": next_id,
                        "name": name,
                        "unit": unit,
                        "quantity": rng.choice((10, 20, 50, 100, 200, 500)),
                    }
                )
            next_id += 1
    g.counts["donations"] = g.bulk(donations, made)
    g.bulk(donation_items, items)


def make_directory(g) -> None:
    rows = []
    for name, kind, local, hours, address in g.spec["directory"]:
        full, initials = identity.pinyin_keys(name)
        rows.append(
            {
                "community_id": g.cid,
                "name": name,
                "name_pinyin": full,
                "name_initials": initials,
                "phone": identity.normalize_phone(f"{g.spec['area_code']}{local}"),
                "kind": kind,
                "hours": hours,
                "address": address,
                "created_at": g.now - dt.timedelta(days=g.days + 30),
            }
        )
    g.bulk(directory, rows)
