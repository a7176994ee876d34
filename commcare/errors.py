"""Errors a user can cause, each kind with the exit code the contract gives it.

A domain function raises one of these with a message key (see ``commcare.i18n``) and the
values to fill in; the CLI's single error boundary turns it into one line on stderr.
"""

from __future__ import annotations


class CommcareError(Exception):
    """A known, user-facing failure. ``exit_code`` follows the contract."""

    exit_code = 1

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values

    def message(self, lang: str | None = None, terminal: bool = False) -> str:
        """The message in ``lang``, phone and ID numbers in its values masked (a lookup's
        reference, a value that failed its check): errors reach terminals, logs and mail.
        ``terminal``: it goes to a person's terminal (see ``masking.ON_TERMINAL``)."""
        from commcare.i18n import t
        from commcare.masking import mask_values

        values = mask_values(self.values, terminal)
        if isinstance(values.get("field"), str):
            from commcare.i18n import field_label

            values["field"] = field_label(values["field"], lang)
        return t(self.key, lang, **values)


class Refused(CommcareError):
    """Valid input the register refuses: not found, ambiguous, a transition not allowed."""

    exit_code = 1


class NotFound(Refused):
    pass


class Ambiguous(Refused):
    pass


class Conflict(Refused):
    """Someone else changed the record first, or a rule of the register forbids it."""


class InvalidValue(CommcareError):
    """A bad value or bad usage: phone, ID number, date, tag, category, empty name."""

    exit_code = 2

    def __init__(self, key: str, field: str = "", **values: object) -> None:
        super().__init__(key, field=field, **values)
        self.field = field


class ConfigError(InvalidValue):
    pass


class DatabaseError(CommcareError):
    """The database cannot be used: unreadable, foreign, locked, unreachable, too new/old."""

    exit_code = 3


class ImportRejected(Refused):
    """An import with invalid rows; ``problems`` lists (row, field, message) for each."""

    def __init__(self, key: str, problems: list | None = None, **values: object) -> None:
        super().__init__(key, **values)
        self.problems = problems or []


class Damaged(DatabaseError):
    """The register cannot be read whole: a damaged page, or counts that no longer agree."""
