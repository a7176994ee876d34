"""commcare demo: a realistic, fictional community, generated deterministically from a seed
into a separate database with bulk Core inserts (explicit ids, rows streamed in chunks; COPY
on PostgreSQL, and the tables analysed after: ``commcare.storage.bulk``), so
100,000 residents and 1,000,000 requests take minutes, not hours, and little memory.

Every time is placed relative to ``ctx.now()``: the history ends now, and today is a day in
progress (some calls made, some not yet; the morning's health reports in, the afternoon's not).
It never writes into a register holding real people: the demo marks its database with an audit
entry (``demo.generate``), and a database with residents but without that mark, or with
residents added by hand since, is refused.
"""

from __future__ import annotations

import datetime as dt
import random
from array import array
from itertools import islice

from sqlalchemy import delete, func, insert, select, update

from commcare import identity
from commcare.errors import Refused
from commcare.storage import bulk
from commcare.storage.tables import (
    audit,
    calls,
    directory,
    donation_items,
    donations,
    health_reports,
    households,
    request_events,
    requests,
    resident_tags,
    residents,
    staff,
)

MARK = "demo.generate"
HAND_MADE = ("resident.add", "resident.import", "resident.merge", "resident.edit")
CHUNK = 5_000  # rows per insert or COPY, as dicts held at once (bench/results.md: peak memory)
HOUSE_SIZES = ((1, 26), (2, 36), (3, 24), (4, 14))


# --- the target database --------------------------------------------------------------------


def check_target(s, ctx=None) -> str:
    """Says "empty", or "demo" for a database the demo made; refuses one with real residents."""
    if s.scalar(select(residents.c.id).limit(1)) is None:
        return "empty"
    mark = s.scalar(select(func.min(audit.c.id)).where(audit.c.action == MARK))
    hand = s.scalar(select(audit.c.id).where(audit.c.action.in_(HAND_MADE)).limit(1))
    if mark is None or hand is not None:
        raise Refused("demo.refuse_real")
    return "demo"


def prepare(database: str) -> None:
    """Check a SQLite target before the demo opens it for writing: a file the demo made before
    is removed (much faster than deleting a million rows). A server database is checked and
    emptied by ``generate`` in its transaction, on the command's one connection."""
    from pathlib import Path

    from commcare.db import open_database, sqlite_path

    path = sqlite_path(database)
    if path is None:
        return
    db = open_database(database, create=True)
    try:
        with db.connect() as conn:
            kind = check_target(conn)
    finally:
        db.dispose()
    if kind == "demo":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def clear(s) -> None:
    """Empty a database that ``check_target`` found to be a demo."""
    for table in (request_events, calls, donation_items, donations, health_reports, directory, resident_tags, audit):
        s.execute(delete(table))
    s.execute(update(requests).values(previous_id=None))
    for table in (requests, residents, households, staff):
        s.execute(delete(table))


def generate(s, ctx, residents=300, requests=600, days=14, seed=1, progress=None) -> dict:
    """Build the community in this transaction; returns the counts of what was made."""
    if check_target(s) == "demo":
        clear(s)
    ctx._community_id = None  # a retried transaction may have rolled the community back
    return Generator(s, ctx, residents, requests, days, seed, progress).run()


# --- the generator --------------------------------------------------------------------------


class Generator:
    def __init__(self, s, ctx, residents, requests, days, seed, progress=None):
        from commcare.resources import load_toml

        self.s, self.ctx, self.rng = s, ctx, random.Random(seed)
        self.n_res, self.n_req, self.days = residents, requests, max(1, days)
        self.spec = load_toml("demo/community")
        self.now, self.today, self.tz = ctx.now(), ctx.today(), ctx.tz
        self.progress = progress or (lambda label, done, total: None)
        self.cid = ctx.community_id(s, create=True)
        self.counts: dict[str, int] = {}
        self.touched: set[str] = set()
        self._keys: dict[str, tuple[str, str]] = {}
        # the numbers given out, as integers (a landline's negated): a set of 150,000 strings
        # was twice the size
        self.phones: set[int] = set()
        self._window()

    def run(self) -> dict:
        from commcare import audit as trail
        from commcare.demo.requests import make_activity

        self.make_staff()
        self.make_households()
        self.make_residents()
        make_activity(self)
        self.fix_sequences()
        bulk.analyze(self.s, self.touched | {"register_counts"})
        trail.record(
            self.s,
            self.ctx,
            MARK,
            "community",
            self.cid,
            [],
            detail=f"residents={self.n_res} requests={self.n_req} days={self.days} seed",
        )
        return self.counts

    # -- time ------------------------------------------------------------------------------
    def _window(self) -> None:
        """Today is a day in progress: work began at 08:00 (or an hour before now, if earlier),
        and ``today_share`` of the day's work is done by now."""
        self.day_start = dt.datetime.combine(self.today, dt.time(0), self.tz).astimezone(dt.UTC)
        eight = self.day_start + dt.timedelta(hours=8)
        self.work_start = max(self.day_start, min(eight, self.now - dt.timedelta(hours=1)))
        done = (self.now - self.work_start) / dt.timedelta(hours=10)
        self.today_share = min(0.95, max(0.3, done))

    def when(self, day: dt.date, hour: float) -> dt.datetime:
        """``hour`` (local, fractional) of ``day`` in UTC; a time today still to come is moved
        into the part of today already past, so nothing is ever in the future."""
        at = (dt.datetime.combine(day, dt.time(0), self.tz) + dt.timedelta(hours=hour)).astimezone(dt.UTC)
        if at >= self.now:
            at = self.work_start + (self.now - self.work_start) * (hour % 24 / 24)
        return at

    def past_days(self, limit: int | None = None) -> list[dt.date]:
        """The days of history, oldest first, ending today."""
        n = min(self.days, limit or self.days)
        return [self.today - dt.timedelta(days=back) for back in range(n - 1, -1, -1)]

    # -- writing ---------------------------------------------------------------------------
    def next_id(self, table) -> int:
        return (self.s.scalar(select(func.max(table.c.id))) or 0) + 1

    def bulk(self, table, rows, label: str | None = None, total: int = 0, after=None) -> int:
        """Insert ``rows`` (any iterable of dicts) with Core executemany, CHUNK at a time;
        ``after()`` once each chunk is written."""
        conn, done = self.s, 0
        rows = iter(rows)
        server = bulk.is_server(conn)
        self.touched.add(table.name)
        while chunk := list(islice(rows, CHUNK)):
            if server:
                bulk.copy_dicts(conn, table, chunk)
            else:
                conn.execute(insert(table), chunk)
            done += len(chunk)
            if after is not None:
                after()
            if label:
                self.progress(label, done, max(total, done))
        return done

    def fix_sequences(self) -> None:
        """Explicit ids leave PostgreSQL's sequences behind: move them past the demo's rows."""
        if self.s.dialect.name != "postgresql":
            return
        from sqlalchemy import text

        for table in (
            "staff",
            "households",
            "residents",
            "requests",
            "request_events",
            "calls",
            "health_reports",
            "donations",
            "donation_items",
            "directory",
        ):
            self.s.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
                )
            )

    # -- names and numbers -----------------------------------------------------------------
    def given(self, age: int, sex: str) -> str:
        generation = "old" if age >= 55 else "mid" if age >= 18 else "young"
        return self.rng.choice(self.spec["given"][f"{generation}_{sex.lower()}"])

    def keys(self, name: str) -> tuple[str, str]:
        if name not in self._keys:
            self._keys[name] = identity.pinyin_keys(name)
        return self._keys[name]

    def mobile(self) -> str:
        while True:
            number = f"1{self.rng.choice('3578')}{self.rng.randrange(10**9):09d}"
            if (key := int(number)) not in self.phones:
                self.phones.add(key)
                return number

    def landline(self) -> str:
        while True:
            number = f"{self.spec['area_code']}-6{self.rng.randrange(10**7):07d}"
            if (key := -int(number.replace("-", ""))) not in self.phones:
                self.phones.add(key)
                return number

    def id_number(self, born: dt.date, sex: str, used: set) -> str:
        while True:
            seq = self.rng.randrange(500) * 2 + (1 if sex == "M" else 0)
            body = f"{self.spec['region_code']}{born:%Y%m%d}{seq:03d}"
            if (key := int(body)) not in used:
                used.add(key)
                return body + identity.id_check_digit(body)

    # -- people ----------------------------------------------------------------------------
    def make_staff(self) -> None:
        roles = self.spec["staff_roles"]
        houses = self.plan_households()
        n_liaisons = max(3, len(houses) // 60)
        plan = [roles["secretary"], roles["director"]] + [roles["liaison"]] * n_liaisons
        plan += [roles["grid"]] * max(1, n_liaisons // 6) + [roles["volunteer"]] * max(2, n_liaisons // 4)
        first, since = self.next_id(staff), self.now - dt.timedelta(days=self.days + 400)
        rows = []
        for i, role in enumerate(plan):
            sex = self.rng.choice("MF")
            rows.append(
                {
                    "id": first + i,
                    "community_id": self.cid,
                    "role": role,
                    "active": True,
                    "name": self.rng.choice(self.spec["surnames"]) + self.given(35, sex),
                    "phone": self.mobile(),
                    "created_at": since,
                }
            )
        self.bulk(staff, rows)
        self.staff_names = {r["id"]: r["name"] for r in rows}
        self.liaisons = [r["id"] for r in rows if r["role"] == roles["liaison"]]
        self.counts["staff"] = len(rows)

    def plan_households(self) -> list[int]:
        """Household sizes adding up to exactly the residents asked for."""
        sizes, total = [], 0
        values, weights = zip(*HOUSE_SIZES)
        while total < self.n_res:
            size = min(self.rng.choices(values, weights)[0], self.n_res - total)
            sizes.append(size)
            total += size
        self.house_sizes = sizes
        return sizes

    def make_households(self) -> None:
        """Compounds filled in turn, building by building; each liaison has a block of them."""
        compounds = self.spec["compounds"]
        capacity = [b * u * f * 2 for _, _, b, u, f in compounds]
        share = [round(len(self.house_sizes) * c / sum(capacity)) for c in capacity]
        share[-1] = len(self.house_sizes) - sum(share[:-1])
        first, since = self.next_id(households), self.now - dt.timedelta(days=self.days + 300)
        n_l, total = len(self.liaisons), len(self.house_sizes)
        # each household's liaison by its place (id - first): a compact array, not a dict
        self.house_first_id, self.house_liaison = first, array("q")

        def rows():
            i = 0
            for (name, _street, _b, units, floors), count in zip(compounds, share):
                for n in range(max(0, count)):
                    per_building, rest = units * floors * 2, n % (units * floors * 2)
                    address = f"{n // per_building + 1}号楼{rest // (floors * 2) + 1}单元{rest % (floors * 2) // 2 + 1}0{rest % 2 + 1}"
                    liaison = self.liaisons[i * n_l // total]
                    self.house_liaison.append(liaison)
                    yield {
                        "id": first + i,
                        "community_id": self.cid,
                        "compound": name,
                        "address": address,
                        "liaison_id": liaison,
                        "created_at": since,
                    }
                    i += 1

        made = self.bulk(households, rows(), "households", total)
        self.house_ids = range(first, first + made)
        self.counts["households"] = made

    def make_residents(self) -> None:
        from commcare.demo.requests import household_members

        first, since = self.next_id(residents), self.now - dt.timedelta(days=self.days + 200)
        self.special: list[int] = []
        self.house_first: list[int] = []
        self.resident_liaison = array("q")  # each resident's liaison by place (``liaison_of``)
        self.series_candidates: dict[str, list[int]] = {"chemo": [], "dialysis": [], "alone": []}
        tags: list[dict] = []
        used: set[int] = set()

        def write_tags() -> None:
            """The tags of the residents just written (a chunk's): not all of them held to the end."""
            self.bulk(resident_tags, tags)
            tags.clear()

        def rows():
            rid = first
            for hid, size in zip(self.house_ids, self.house_sizes):
                self.house_first.append(rid)
                for person in household_members(self, size, used):
                    person.update(
                        id=rid, community_id=self.cid, household_id=hid, created_at=since, updated_at=since, version=1
                    )
                    self._classify(rid, hid, person.pop("tags"), tags)
                    yield person
                    rid += 1

        self.res_first = first
        self.counts["residents"] = self.bulk(residents, rows(), "residents", self.n_res, after=write_tags)
        self.counts["special"] = len(self.special)

    def liaison_of(self, rid: int) -> int:
        """The liaison of resident ``rid``'s household."""
        return self.resident_liaison[rid - self.res_first]

    def _classify(self, rid: int, hid: int, person_tags: list[str], tags: list[dict]) -> None:
        self.resident_liaison.append(self.house_liaison[hid - self.house_first_id])
        if not person_tags:
            return
        self.special.append(rid)
        tags.extend({"resident_id": rid, "tag": t, "community_id": self.cid} for t in person_tags)
        if "child" in person_tags:
            self.series_candidates["chemo"].append(rid)
        elif "sick" in person_tags:
            self.series_candidates["dialysis"].append(rid)
        if "lives-alone" in person_tags:
            self.series_candidates["alone"].append(rid)
