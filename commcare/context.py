"""What every domain function needs besides its connection: who acts, where, and when."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from commcare.config import Settings


@dataclass
class Ctx:
    settings: Settings
    clock: Callable[[], dt.datetime] | None = None  # tests inject one
    _community_id: int | None = field(default=None, repr=False)
    _community_name: str | None = field(default=None, repr=False)
    _actor: str | None = field(default=None, repr=False)  # as ``commcare.access`` found them
    # the audit trail (``commcare.audit``): its key once read, whether this command wrote an
    # entry (the anchor is then moved forward), the ID-number lookups still to be recorded
    audit_key: bytes | None = field(default=None, repr=False)
    audit_written: bool = field(default=False, repr=False)
    audit_lookups: list = field(default_factory=list, repr=False)

    @property
    def operator(self) -> str:
        """Who acts, as recorded: the staff member ``commcare.access`` found for this command,
        else the name given (``--as``, ``COMMCARE_USER``, config), else the OS user."""
        if self._actor:
            return self._actor
        if self.settings.operator:
            return self.settings.operator
        from commcare.access import os_user

        return os_user() or "unknown"

    @cached_property
    def tz(self):
        """The zone that defines "today" (looked up once: rows ask for it one by one)."""
        return self.settings.tz

    @property
    def community(self) -> str:
        """The community's name: as the register has it once ``community_id`` has found it."""
        return self._community_name or self.settings.community

    @property
    def extra_tags(self) -> dict:
        tags = self.settings.file.get("tags")
        return tags if isinstance(tags, dict) else {}

    @property
    def extra_headers(self) -> dict:
        """The config's ``[headers]``: more words for a roster's column headers."""
        headers = self.settings.file.get("headers")
        return headers if isinstance(headers, dict) else {}

    def now(self) -> dt.datetime:
        """The machine's clock (never the database server's). ``COMMCARE_NOW`` fixes it, for
        tests and for entering a day's paper log as if it were that day."""
        if self.clock is not None:
            return self.clock()
        fixed = os.environ.get("COMMCARE_NOW")
        if fixed:
            from commcare.timeparse import parse_when

            return parse_when(fixed, self.tz, dt.datetime.now(dt.UTC), field="COMMCARE_NOW")
        return dt.datetime.now(dt.UTC)

    def today(self) -> dt.date:
        return self.now().astimezone(self.tz).date()

    def community_id(self, conn, create: bool = False) -> int | None:
        """The id of this command's community (``commcare.communities.resolve``: the one named,
        else the register's only one; a name the register does not have is refused). ``create``:
        the command writes, and a register with no community yet gets its first."""
        if self._community_id is None:
            from commcare import communities

            found = communities.resolve(conn, self, create)
            if found is not None:
                self._community_id, self._community_name = found.id, found.name
        return self._community_id
