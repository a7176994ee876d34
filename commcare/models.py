"""ORM classes over the Core tables of ``commcare.tables`` (the one definition of the schema).

The register's editing commands work with these objects; the commands that must start fast use
the tables directly and never import this module (it pulls in ``sqlalchemy.orm``).
"""

from sqlalchemy.orm import DeclarativeBase, relationship

from commcare import tables
from commcare.tables import NAMING, UTCDateTime, metadata

__all__ = ["NAMING", "Base", "UTCDateTime"]


class Base(DeclarativeBase):
    metadata = metadata


class Community(Base):
    __table__ = tables.communities


class Staff(Base):
    __table__ = tables.staff


class Household(Base):
    __table__ = tables.households
    liaison = relationship(Staff)


class ResidentTag(Base):
    __table__ = tables.resident_tags


class Resident(Base):
    __table__ = tables.residents
    household = relationship(Household)
    tags = relationship(ResidentTag, cascade="all, delete-orphan", order_by=tables.resident_tags.c.tag)
    __mapper_args__ = {"version_id_col": tables.residents.c.version}  # noqa: RUF012 - SQLAlchemy's idiom


class DuplicateDismissal(Base):
    """A pair of residents a person looked at and said are two different people."""

    __table__ = tables.duplicate_dismissals


class HelpRequest(Base):
    """A request for help; a recurring one links to the occurrence before it."""

    __table__ = tables.requests
    __mapper_args__ = {"version_id_col": tables.requests.c.version}  # noqa: RUF012 - SQLAlchemy's idiom


class RequestEvent(Base):
    """One line of a request's timeline."""

    __table__ = tables.request_events


class Call(Base):
    """A check-in call to a resident."""

    __table__ = tables.calls


class HealthReport(Base):
    """A staff member's temperature (and test) report."""

    __table__ = tables.health_reports


class DonationItem(Base):
    __table__ = tables.donation_items


class Donation(Base):
    __table__ = tables.donations
    items = relationship(DonationItem, cascade="all, delete-orphan")


class DirectoryEntry(Base):
    """A useful number: hospital, clinic, pharmacy, hotline, utility."""

    __table__ = tables.directory


class AuditEntry(Base):
    """Who did what, when, with the hash of the entry before (tamper-evident)."""

    __table__ = tables.audit
