"""commcare demo: a realistic, fictional community, generated deterministically from a seed
into a separate database with bulk Core inserts (so 100,000 residents and 1,000,000
requests take minutes, not hours). It never writes into a register holding real people."""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import delete, func, insert, select

from commcare import identity
from commcare.errors import Refused
from commcare.models import (
    AuditEntry,
    Call,
    Donation,
    DonationItem,
    HealthReport,
    HelpRequest,
    Household,
    Resident,
    ResidentTag,
    Staff,
)

MARK = "demo.generate"
TAG_SHARES = [("elderly", 0.22), ("lives-alone", 0.08), ("sick", 0.09), ("disabled", 0.04),
              ("frail", 0.05), ("pregnant", 0.01), ("child", 0.03)]
OUTCOMES = [("ok", 0.84), ("no-answer", 0.08), ("needs-help", 0.05), ("unreachable", 0.03)]
CHUNK = 20_000


def is_demo(s) -> bool:
    return s.scalar(select(AuditEntry.id).where(AuditEntry.action == MARK).limit(1)) is not None


def has_residents(s) -> bool:
    return s.scalar(select(Resident.id).limit(1)) is not None


def check_target(s) -> bool:
    """True when the database already holds a demo; refuse one that holds real residents."""
    if has_residents(s) and not is_demo(s):
        raise Refused("demo.refuse_real")
    return is_demo(s)


def clear(s) -> None:
    """Empty a demo database (only ever called on one that ``is_demo``)."""
    from commcare.models import DirectoryEntry, DuplicateDismissal, RequestEvent

    for model in (RequestEvent, Call, DonationItem, Donation, HealthReport, DirectoryEntry,
                  DuplicateDismissal, ResidentTag, AuditEntry):
        s.execute(delete(model))
    s.execute(delete(HelpRequest).where(HelpRequest.previous_id.is_not(None)))
    s.execute(delete(HelpRequest))
    s.execute(delete(Resident))
    s.execute(delete(Household))
    s.execute(delete(Staff))


class Generator:
    def __init__(self, s, ctx, residents: int, requests: int, days: int, seed: int, progress=None):
        from commcare.resources import load_toml

        self.s, self.ctx, self.rng = s, ctx, random.Random(seed)
        self.n_res, self.n_req, self.days = residents, requests, max(1, days)
        self.spec = load_toml("demo/community")
        self.now = ctx.now()
        self.today = ctx.today()
        self.progress = progress or (lambda label, done, total: None)
        self.cid = ctx.community_id(s, create=True)
        self.pinyin = _char_pinyin(self.spec)

    def run(self) -> dict:
        staff = self.make_staff()
        houses = self.make_households(staff)
        special = self.make_residents(houses)
        self.make_requests(staff, houses)
        calls = self.make_calls(special)
        self.make_health(staff)
        self.make_donations()
        from commcare import audit

        audit.record(self.s, self.ctx, MARK, "community", self.cid, [],
                     detail=f"residents={self.n_res} requests={self.n_req} days={self.days}")
        return {"residents": self.n_res, "special": len(special), "households": len(houses),
                "staff": len(staff), "requests": self.n_req, "calls": calls}

    # -- people -------------------------------------------------------------------------
    def name(self) -> str:
        return self.rng.choice(self.spec["surnames"]) + self.rng.choice(self.spec["given"])

    def keys(self, name: str) -> tuple[str, str]:
        syll = [self.pinyin.get(ch, ch) for ch in name]
        return "".join(syll), "".join(p[:1] for p in syll)

    def phone(self, used: set) -> str:
        while True:
            number = f"1{self.rng.choice('3456789')}{self.rng.randrange(10**9):09d}"
            if number not in used:
                used.add(number)
                return number

    def make_staff(self) -> list[int]:
        count = max(3, self.n_res // 140)
        used: set = set()
        rows = [{"community_id": self.cid, "name": self.name(), "phone": self.phone(used),
                 "role": "书记" if i == 0 else self.rng.choice(self.spec["roles"]), "active": True,
                 "created_at": self.now - dt.timedelta(days=400)} for i in range(count)]
        self.s.execute(insert(Staff), rows)
        return list(self.s.scalars(select(Staff.id).where(Staff.community_id == self.cid).order_by(Staff.id)))

    def make_households(self, staff: list[int]) -> list[int]:
        count = max(1, int(self.n_res / 2.3))
        liaisons = staff[1:] or staff
        rows, seen = [], set()
        for i in range(count):
            compound = self.spec["compounds"][i % len(self.spec["compounds"])]
            n = i // len(self.spec["compounds"])
            address = f"{n // 48 + 1}号楼{(n // 16) % 3 + 1}单元{(n % 16) // 2 + 1}0{n % 2 + 1}"
            seen.add((compound, address))
            rows.append({"community_id": self.cid, "compound": compound, "address": address,
                         "liaison_id": liaisons[i % len(liaisons)], "created_at": self.now - dt.timedelta(days=400)})
        self._chunked(Household, rows, "households")
        return list(self.s.scalars(select(Household.id).where(Household.community_id == self.cid).order_by(Household.id)))

    def make_residents(self, houses: list[int]) -> list[int]:
        from stdnum.cn import ric

        used_phone, used_id, rows, tag_plan = set(), set(), [], []
        for i in range(self.n_res):
            name = self.name()
            tags = [t for t, share in TAG_SHARES if self.rng.random() < share]
            age = self.rng.randint(70, 95) if "elderly" in tags else self.rng.randint(3, 14) if "child" in tags else self.rng.randint(18, 69)
            born = self.today - dt.timedelta(days=age * 365 + self.rng.randrange(365))
            while True:
                body = f"{self.spec['region_code']}{born:%Y%m%d}{self.rng.randrange(1000):03d}"
                if body not in used_id:
                    used_id.add(body)
                    break
            full, initials = self.keys(name)
            rows.append({"community_id": self.cid, "household_id": houses[i % len(houses)], "name": name,
                         "name_pinyin": full, "name_initials": initials, "sex": "M" if int(body[16]) % 2 else "F",
                         "born": born, "id_number": body + ric.calc_check_digit(body + "0"), "phone": self.phone(used_phone),
                         "emergency_name": self.name() if tags else None,
                         "emergency_phone": self.phone(used_phone) if tags else None,
                         "created_at": self.now - dt.timedelta(days=300), "updated_at": self.now - dt.timedelta(days=300),
                         "version": 1})
            tag_plan.append(tags)
        self._chunked(Resident, rows, "residents")
        ids = list(self.s.scalars(select(Resident.id).where(Resident.community_id == self.cid).order_by(Resident.id)))
        tag_rows = [{"resident_id": rid, "tag": t} for rid, tags in zip(ids, tag_plan) for t in tags]
        self._chunked(ResidentTag, tag_rows, "tags")
        self.resident_ids = ids
        self.resident_house = {rid: houses[i % len(houses)] for i, rid in enumerate(ids)}
        return [rid for rid, tags in zip(ids, tag_plan) if tags]

    # -- requests -----------------------------------------------------------------------
    def make_requests(self, staff, houses) -> None:
        cats = identity.categories()
        names = list(cats)
        weights = [5, 8, 6, 2, 3, 3, 1, 2, 1]
        liaison_of = dict(self.s.execute(select(Household.id, Household.liaison_id)).all())
        span = self.days * 86400
        rows = []
        for i in range(self.n_req):
            cat = self.rng.choices(names, weights)[0]
            rid = self.rng.choice(self.resident_ids)
            # most of the history is old; the last day is busy
            age = self.rng.random() ** 1.5 * span if self.rng.random() < 0.995 else self.rng.random() * 6 * 3600
            opened = self.now - dt.timedelta(seconds=age)
            urgency = self.rng.choices(["low", "normal", "high", "urgent"], [2, 14, 3, 1])[0]
            due = opened + dt.timedelta(hours=4 if urgency == "urgent" else cats[cat]["due_hours"])
            status, resolved = self._fate(opened, due)
            rows.append({"community_id": self.cid, "resident_id": rid, "category": cat,
                         "note": self.rng.choice(self.spec["notes"][cat]), "urgency": urgency, "status": status,
                         "channel": self.rng.choice(["phone", "hotline", "visit", "wechat", "walk-in"]),
                         "assignee_id": liaison_of.get(self.resident_house[rid]), "due_at": due, "opened_at": opened,
                         "resolved_at": resolved, "closed_at": resolved if status == "cancelled" else None,
                         "cancel_reason": "家属已代办" if status == "cancelled" else None,
                         "resolved_at_fix": None, "opened_by": "demo", "version": 1})
            if status == "cancelled":
                rows[-1]["resolved_at"] = None
            rows[-1].pop("resolved_at_fix")
        self._chunked(HelpRequest, rows, "requests")

    def _fate(self, opened, due):
        """Resolved (usually before due), still open, or cancelled."""
        late = self.rng.random() < 0.12
        took = (due - opened) * (self.rng.uniform(1.05, 2.0) if late else self.rng.uniform(0.1, 0.9))
        done = opened + took
        if done > self.now or (self.now - opened < dt.timedelta(days=3) and self.rng.random() < 0.05):
            return self.rng.choice(["assigned", "assigned", "in_progress"]), None
        return ("cancelled", done) if self.rng.random() < 0.02 else ("resolved", done)

    # -- the round ----------------------------------------------------------------------
    def make_calls(self, special: list[int]) -> int:
        outcomes, weights = zip(*OUTCOMES)
        total = 0
        for back in range(min(self.days, 14) - 1, -1, -1):
            day = self.today - dt.timedelta(days=back)
            start = dt.datetime.combine(day, dt.time(8, 0), self.ctx.tz)
            rows = []
            for rid in special:
                at = start + dt.timedelta(minutes=self.rng.randrange(10 * 60))
                if back == 0 and (at > self.now or self.rng.random() < 0.25):
                    continue
                outcome = self.rng.choices(outcomes, weights)[0]
                rows.append({"community_id": self.cid, "resident_id": rid, "actor": "demo", "at": at, "outcome": outcome})
                if outcome == "no-answer" and self.rng.random() < 0.5:
                    rows.append({"community_id": self.cid, "resident_id": rid, "actor": "demo",
                                 "at": at + dt.timedelta(minutes=30), "outcome": "no-answer"})
            self._chunked(Call, [r for r in rows if r["at"] <= self.now], f"calls {day}")
            total += len(rows)
        return total

    def make_health(self, staff: list[int]) -> None:
        rows = []
        for back in range(min(self.days, 14) - 1, -1, -1):
            day = self.today - dt.timedelta(days=back)
            for sid in staff:
                for hour in (8, 17):
                    at = dt.datetime.combine(day, dt.time(hour, self.rng.randrange(60)), self.ctx.tz)
                    if at > self.now or self.rng.random() < 0.04:
                        continue
                    rows.append({"staff_id": sid, "at": at, "temperature": round(self.rng.gauss(36.5, 0.25), 1),
                                 "test": "negative", "actor": "demo"})
        self._chunked(HealthReport, rows, "health")

    def make_donations(self) -> None:
        for back in range(min(self.days, 30) - 1, -1, -1):
            day = self.today - dt.timedelta(days=back)
            for _ in range(self.rng.randint(0, 3)):
                at = dt.datetime.combine(day, dt.time(self.rng.randint(8, 18), 0), self.ctx.tz)
                if at > self.now:
                    continue
                donation = Donation(community_id=self.cid, donor=self.rng.choice(self.spec["donors"]), at=at,
                                    recipients=self.rng.choice(["staff", "residents"]), actor="demo")
                item, unit = self.rng.choice(self.spec["supplies"])
                donation.items = [DonationItem(name=item, quantity=self.rng.choice([20, 50, 100, 200]), unit=unit)]
                self.s.add(donation)
        self.s.flush()

    def _chunked(self, model, rows: list[dict], label: str) -> None:
        for i in range(0, len(rows), CHUNK):
            self.s.execute(insert(model), rows[i:i + CHUNK])
            self.progress(label, min(i + CHUNK, len(rows)), len(rows))


def _char_pinyin(spec: dict) -> dict[str, str]:
    chars = {ch for word in spec["surnames"] + spec["given"] for ch in word}
    from pypinyin import lazy_pinyin

    return {ch: lazy_pinyin(ch)[0].lower() for ch in chars}


def generate(s, ctx, residents=300, requests=600, days=14, seed=1, progress=None) -> dict:
    if check_target(s):
        clear(s)
    return Generator(s, ctx, residents, requests, days, seed, progress).run()


def counts(s) -> dict:
    return {"residents": s.scalar(select(func.count(Resident.id))),
            "requests": s.scalar(select(func.count(HelpRequest.id)))}
