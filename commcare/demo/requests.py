"""The demo community's people and days: households, requests for help (with the contract's
rhythms: a child's chemotherapy every two days, dialysis, a weekly shop, the gas station's
whole building at once), check-in calls, staff health reports, donations and the directory.

Functions here take the ``Generator`` of ``commcare.demo`` (its seeded random source, its
clock helpers and its bulk writer); rows are streamed day by day, so memory stays flat.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect
from heapq import merge
from itertools import accumulate

from commcare import identity
from commcare.storage.tables import request_events, requests

H = dt.timedelta(hours=1)
CATEGORY_WEIGHTS = {
    "gas-topup": 5,
    "groceries": 9,
    "medicine": 7,
    "medical-visit": 2,
    "trash": 3,
    "parcel": 3,
    "repair": 1,
    "enquiry": 2,
    "other": 1,
}
URGENCIES = (("low", 2), ("normal", 15), ("high", 3), ("urgent", 1))
EVENT_DAYS = 2  # requests opened this recently get a full timeline


# --- people -----------------------------------------------------------------------------------


def household_members(g, size: int, used: set) -> list[dict]:
    """The people of one household: who lives alone, the couples, the families with children."""
    rng = g.rng
    old = lambda: rng.randint(65, 96)
    if size == 1:
        ages = [old() if rng.random() < 0.55 else rng.randint(24, 64)]
    elif size == 2:
        ages = [old()] * 2 if rng.random() < 0.4 else [rng.randint(24, 64)] * 2
    else:
        ages = [rng.randint(28, 48), rng.randint(28, 48), rng.randint(1, 14)]
        if size == 4:
            ages.append(old() if rng.random() < 0.6 else rng.randint(1, 14))
    surname = rng.choice(g.spec["surnames"])
    people = [_person(g, i, age, size, surname, used) for i, age in enumerate(ages)]
    for p in people[2:]:
        if p["phone"] is None:  # a child: the household's phone, a parent to call in need
            p["phone"] = people[0]["phone"]
            if p["tags"]:
                p["emergency_name"], p["emergency_phone"] = people[1]["name"], people[1]["phone"]
    return people


def _person(g, i: int, age: int, size: int, surname: str, used: set) -> dict:
    rng = g.rng
    sex = ("M" if i == 0 else "F") if i < 2 and size > 1 else rng.choice("MF")
    if age < 18 or i != 1:
        name = surname + g.given(age, sex)
    else:
        name = rng.choice(g.spec["surnames"]) + g.given(age, sex)
    born = g.today - dt.timedelta(days=age * 365 + rng.randrange(365))
    tags = _tags(rng, age, sex, size)
    phone = None if age < 16 else g.landline() if age >= 65 and rng.random() < 0.2 else g.mobile()
    full, initials = g.keys(name)
    contact = surname + g.given(40, rng.choice("MF")) if tags and age >= 18 else None
    return {
        "name": name,
        "name_pinyin": full,
        "name_initials": initials,
        "sex": sex,
        "born": born,
        "id_number": g.id_number(born, sex, used),
        "phone": phone,
        "tags": tags,
        "emergency_name": contact,
        "emergency_phone": g.mobile() if contact else None,
        "note": None,
    }


def _tags(rng, age: int, sex: str, size: int) -> list[str]:
    tags = []
    if age >= 75:
        tags.append("elderly")
    if (age >= 65 and rng.random() < 0.3) or (18 <= age < 65 and rng.random() < 0.03):
        tags.append("sick")
    if age >= 80 and rng.random() < 0.25:
        tags.append("frail")
    if rng.random() < 0.02:
        tags.append("disabled")
    if sex == "F" and 22 <= age <= 40 and rng.random() < 0.05:
        tags.append("pregnant")
    if age < 18 and rng.random() < 0.08:
        tags.append("child")
    if size == 1 and age >= 60:
        tags.append("lives-alone")
    return tags


def make_activity(g) -> None:
    from commcare.demo import daily as demo_daily

    g.categories = list(CATEGORY_WEIGHTS)
    g.category_cum = list(accumulate(CATEGORY_WEIGHTS.values()))
    g.urgencies = [u for u, _ in URGENCIES]
    g.urgency_cum = list(accumulate(w for _, w in URGENCIES))
    g.due_hours = {slug: spec.get("due_hours", 24) for slug, spec in identity.categories().items()}
    make_requests(g)
    demo_daily.make_calls(g)
    demo_daily.make_health(g)
    demo_daily.make_donations(g)
    demo_daily.make_directory(g)


# --- requests ---------------------------------------------------------------------------------


def make_requests(g) -> None:
    extras = _rhythms(g)
    days = g.past_days()
    weights = [0.7 + 0.6 * i / max(1, len(days) - 1) for i in range(len(days))]
    weights[-1] *= g.today_share
    per_day = [0] * len(days)
    for i in g.rng.choices(range(len(days)), cum_weights=list(accumulate(weights)), k=g.n_req - len(extras)):
        per_day[i] += 1
    by_day: dict[dt.date, list[dict]] = {}
    for row in extras:
        by_day.setdefault(max(days[0], row["opened_at"].astimezone(g.tz).date()), []).append(row)
    writer = _RequestWriter(g)
    opened_at = lambda r: r["opened_at"]
    for day, n in zip(days, per_day):
        # the day's requests in the order opened, made one by one as the writer takes them: a
        # day of a million requests over 14 days (71,000) held at once was most of the demo's
        # peak memory
        writer.add(merge(_day_requests(g, day, n), sorted(by_day.get(day, []), key=opened_at), key=opened_at))
    writer.flush()
    g.counts["requests"] = writer.done


def _day_requests(g, day: dt.date, n: int):
    """``n`` random requests of ``day``, in the order opened: the times drawn first and sorted
    (a time still to come today is moved into the part already past: ``Generator.when``)."""
    times = sorted(g.when(day, 7.5 + g.rng.random() * 13.5) for _ in range(n))
    for opened in times:
        yield _random_request(g, opened)


FLUSH = 5_000  # requests held before they are written (with their events)


class _RequestWriter:
    """Gives ids in the order opened, links occurrences, writes requests then their events."""

    def __init__(self, g):
        self.g, self.rows, self.events, self.done = g, [], [], 0
        self.next_id, self.next_event = g.next_id(requests), g.next_id(request_events)
        self.recent = g.now - dt.timedelta(days=EVENT_DAYS)

    def add(self, rows) -> None:
        for row in rows:
            row["id"], self.next_id = self.next_id, self.next_id + 1
            prev = row.pop("_prev", None)
            row["previous_id"] = prev["id"] if prev else None
            if row["opened_at"] >= self.recent or row.pop("_timeline", False):
                self.events.extend(_timeline(self.g, row))
            row.pop("_timeline", None)
            self.rows.append(row)
            if len(self.rows) >= FLUSH:
                self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        self.g.bulk(requests, self.rows)
        for event in self.events:
            event["id"], self.next_event = self.next_event, self.next_event + 1
        self.g.bulk(request_events, self.events)
        self.done += len(self.rows)
        self.g.progress("requests", self.done, self.g.n_req)
        self.rows, self.events = [], []


def _base(g, rid: int, category: str, opened: dt.datetime, due: dt.datetime, urgency="normal", note=None) -> dict:
    staff = g.liaison_of(rid) if g.rng.random() < 0.92 else None
    return {
        "community_id": g.cid,
        "resident_id": rid,
        "category": category,
        "urgency": urgency,
        "note": note or g.rng.choice(g.spec["notes"][category]),
        "status": "open",
        "channel": g.rng.choice(("phone", "phone", "hotline", "visit", "wechat", "walk-in")),
        "assignee_id": staff,
        "due_at": due,
        "opened_at": opened,
        "resolved_at": None,
        "closed_at": None,
        "cancel_reason": None,
        "repeat_kind": None,
        "repeat_interval": None,
        "repeat_until": None,
        "previous_id": None,
        "opened_by": g.staff_names.get(staff, g.ctx.operator),
        "version": 1,
    }


def _random_request(g, opened: dt.datetime) -> dict:
    rng = g.rng
    special = g.special and rng.random() < 0.75
    rid = rng.choice(g.special) if special else g.res_first + rng.randrange(g.n_res)
    category = g.categories[bisect(g.category_cum, rng.random() * g.category_cum[-1])]
    urgency = g.urgencies[bisect(g.urgency_cum, rng.random() * g.urgency_cum[-1])]
    hours = g.due_hours[category] / (2 if urgency == "high" else 1)
    due = opened + H * (min(hours, 4) if urgency == "urgent" else hours)
    row = _base(g, rid, category, opened, due, urgency)
    _fate(g, row)
    return row


def _fate(g, row: dict) -> None:
    """Most are resolved before they are due, some late, a few cancelled; the rest still open."""
    rng, opened = g.rng, row["opened_at"]
    r = rng.random()
    took = (row["due_at"] - opened) * (rng.uniform(0.1, 0.9) if r < 0.94 else rng.uniform(1.05, 2.5))
    done = opened + took
    if done > g.now or r < 0.0005:  # still being worked on, or forgotten: overdue
        started = g.now - opened > H and rng.random() < 0.4
        row["status"] = "in_progress" if started else "assigned" if row["assignee_id"] else "open"
    elif r > 0.98:
        row.update(status="cancelled", closed_at=done, cancel_reason=g.spec["recurring"]["cancel_reason"])
    else:
        row.update(status="resolved", resolved_at=done)


def _timeline(g, row: dict) -> list[dict]:
    """The request's events, as help_requests would have written them."""
    actor = row["opened_by"]
    ev = lambda kind, at, frm, to, note=None: {
        "request_id": row["id"],
        "at": at,
        "actor": actor,
        "kind": kind,
        "from_status": frm,
        "to_status": to,
        "note": note,
    }
    opened = row["opened_at"]
    events = [ev("opened", opened, None, "open", row["note"])]
    if row["assignee_id"]:
        events.append(ev("assigned", opened, "open", "assigned", g.staff_names[row["assignee_id"]]))
    before = "assigned" if row["assignee_id"] else "open"
    end = row["resolved_at"] or row["closed_at"]
    if row["status"] == "in_progress" or row["status"] == "resolved":
        started = opened + ((end or g.now) - opened) * 0.3
        events.append(ev("started", started, before, "in_progress"))
        before = "in_progress"
    if row["status"] == "resolved":
        events.append(ev("resolved", end, before, "resolved"))
    elif row["status"] == "cancelled":
        events.append(ev("cancelled", end, before, "cancelled", row["cancel_reason"]))
    return events


def _rhythms(g) -> list[dict]:
    """Recurring series and the gas station's batches, within a fifth of the requests."""
    if g.n_req < 20:
        return []
    spec, cands = g.spec["recurring"], g.series_candidates
    rows: list[dict] = []
    plans: list[tuple] = [
        (cands["chemo"][: max(1, g.n_res // 20_000)], "medical-visit", spec["chemo"], "every", "2d", 9.0)
    ]
    plans.append(("batch", None, None, None, None, None))
    plans.append(
        (cands["dialysis"][: max(1, g.n_res // 10_000)], "medical-visit", spec["dialysis"], "every", "2d", 7.5)
    )
    plans.append(
        (cands["alone"][: max(1, g.n_res // 2_000)], "groceries", spec["weekly_groceries"], "every_after", "1w", 10.0)
    )
    for who, category, note, kind, interval, hour in plans:
        made = (
            _batches(g)
            if who == "batch"
            else [r for rid in who for r in _series(g, rid, category, note, kind, interval, hour)]
        )
        if len(rows) + len(made) > g.n_req // 5:
            break
        rows += made
    return rows


def _series(g, rid, category, note, kind, interval, hour) -> list[dict]:
    """A recurring request from the first day of the history: each occurrence resolved when it
    was done, the next opened at that moment, the last one still open."""
    step = dt.timedelta(days=2) if interval == "2d" else dt.timedelta(weeks=1)
    first_day = g.today - dt.timedelta(days=g.days - 1)
    due = (dt.datetime.combine(first_day, dt.time(0), g.tz) + H * hour).astimezone(dt.UTC)
    opened, prev, rows = min(due - 20 * H, g.now), None, []
    while True:
        row = _base(g, rid, category, opened, due, "high", note)
        row.update(repeat_kind=kind, repeat_interval=interval, _prev=prev, _timeline=True)
        rows.append(row)
        done = due + H * g.rng.uniform(2, 5)
        if done > g.now:
            row["status"] = "assigned" if row["assignee_id"] else "open"
            return rows
        row.update(status="resolved", resolved_at=done)
        opened, prev = done, row
        due = due + step if kind == "every" else done + step


def _batches(g) -> list[dict]:
    """Every week the gas station takes a whole building's cards at once (up to 26 households)."""
    rows = []
    for back in range(0, g.days, 7):
        day = g.today - dt.timedelta(days=back)
        start = g.rng.randrange(max(1, len(g.house_first) - 26))
        opened = g.when(day, 9.5)
        staff = g.rng.choice(g.liaisons)
        done = opened + H * g.rng.uniform(3, 8)
        for rid in g.house_first[start : start + 26]:
            row = _base(g, rid, "gas-topup", opened, opened + 24 * H, "normal", g.spec["recurring"]["gas_batch"])
            row.update(assignee_id=staff, opened_by=g.staff_names[staff], channel="walk-in", _timeline=True)
            if done <= g.now:
                row.update(status="resolved", resolved_at=done)
            else:
                row["status"] = "in_progress"
            rows.append(row)
    return rows
