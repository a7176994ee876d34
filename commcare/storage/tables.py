"""The register's tables, in SQLAlchemy Core: the one definition of the schema, and the one
way to the data (every module queries these tables; the migrations' environment compares
against this metadata). Times are stored in UTC (``UTCDateTime``: ``timestamptz`` on PostgreSQL, ISO
text on SQLite) and come back as aware datetimes. Every record belongs to a community (社区),
so that one PostgreSQL database can serve a whole sub-district.
"""

import datetime as dt

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """An aware datetime, stored as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    def result_processor(self, dialect, coltype):
        """On SQLite, the stored text to an aware datetime in one step, instead of the
        generic chain (text -> naive datetime -> ``process_result_value``): ``call due``
        reads thousands of these times."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        generic = super().result_processor(dialect, coltype)
        parse = dt.datetime.fromisoformat

        def process(value):
            if value is None:
                return None
            try:
                return parse(value + "+00:00")  # stored as naive UTC text
            except (TypeError, ValueError):  # not our own text form: the generic way
                return generic(value)

        return process


metadata = MetaData(naming_convention=NAMING)

communities = Table(
    "communities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
)

staff = Table(
    "staff",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("community_id", Integer, ForeignKey("communities.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("phone", String(32)),
    Column("role", String(100)),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
    # The login that is this staff member: the OS user on a laptop, the database role on
    # PostgreSQL (``staff add --login``, ``staff grant``); one staff member per login.
    Column("login", String(63), unique=True),
    Index("ix_staff_community_name", "community_id", "name"),
)

households = Table(
    "households",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("community_id", Integer, ForeignKey("communities.id"), nullable=False),
    Column("compound", String(200), nullable=False, default=""),
    Column("address", String(300), nullable=False, default=""),
    Column("liaison_id", Integer, ForeignKey("staff.id"), index=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("community_id", "compound", "address"),
)
# The community's households with what the round and the day report join (PostgreSQL, 0010):
# read once from the community's entries, not fetched each by its key (docs/scale.md). SQLite,
# one community a file, has no use for it.
Index(
    "ix_households_community",
    households.c.community_id,
    households.c.id,
    postgresql_include=["liaison_id", "compound", "address"],
).ddl_if(dialect="postgresql")
POSTGRESQL_ONLY = frozenset({"ix_households_community"})


def include_on(dialect: str):
    """Alembic's ``include_object`` for a database of ``dialect``: an index made on PostgreSQL
    only (``POSTGRESQL_ONLY``) is not looked for elsewhere."""

    def include(obj, name, type_, reflected, compare_to) -> bool:
        return dialect == "postgresql" or type_ != "index" or name not in POSTGRESQL_ONLY

    return include


# the columns of ix_residents_community_name's entries beside its key (PostgreSQL, 0010)
COVERED = ["id", "household_id", "created_at", "archived_at", "phone", "emergency_name", "emergency_phone"]

residents = Table(
    "residents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("community_id", Integer, ForeignKey("communities.id"), nullable=False),
    Column("household_id", Integer, ForeignKey("households.id"), index=True),
    Column("name", String(200), nullable=False),
    Column("name_pinyin", String(400), nullable=False, default=""),
    Column("name_initials", String(100), nullable=False, default=""),
    Column("sex", String(1)),
    Column("born", Date),
    Column("id_number", String(18), unique=True),
    Column("phone", String(32), index=True),
    Column("emergency_name", String(200)),
    Column("emergency_phone", String(32)),
    Column("note", Text),
    Column("archived_at", UTCDateTime),
    Column("archive_reason", Text),
    Column("erased_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    # community first (0006): one community's search reads only its own entries in a city
    Index("ix_residents_name_pinyin", "community_id", "name_pinyin"),
    Index("ix_residents_name_initials", "community_id", "name_initials"),
    # On PostgreSQL (0010) it carries what the round, the day report and the check of the
    # counts read of a community's residents, so that they read the community's entries here
    # alone (an index-only scan): in a city each of its residents lies on a heap page of its
    # own among the other communities' (docs/scale.md)
    Index("ix_residents_community_name", "community_id", "name", postgresql_include=COVERED),
)

resident_tags = Table(
    "resident_tags",
    metadata,
    Column("resident_id", Integer, ForeignKey("residents.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(50), primary_key=True),
    # the resident's community (0007), set by every write path: one community's special groups
    # are found from its own entries in the tag index, however many communities share the
    # database (docs/scale.md); ``db check`` tells a tag whose community is not its resident's
    Column("community_id", Integer, ForeignKey("communities.id"), nullable=False),
    # (community, tag, resident): the report and the round find the residents of one
    # community's special groups from the index alone
    Index("ix_resident_tags_community_tag", "community_id", "tag", "resident_id"),
)

# How many active residents each community holds (tag '*') and how many of them carry each
# tag, kept by triggers in the database (see commcare.storage.integrity): what the daily round and the
# reports read is checked against it, so a damaged page that hides a resident is told.
register_counts = Table(
    "register_counts",
    metadata,
    Column("community_id", Integer, ForeignKey("communities.id"), primary_key=True),
    Column("tag", String(50), primary_key=True),
    Column("residents", Integer, nullable=False),
)

# A pair of residents a person looked at and said are two different people.
duplicate_dismissals = Table(
    "duplicate_dismissals",
    metadata,
    Column("resident_a", Integer, ForeignKey("residents.id"), primary_key=True),
    Column("resident_b", Integer, ForeignKey("residents.id"), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
)

# A request for help. A recurring one links to the occurrence before it (previous_id, unique,
# so an occurrence can never be created twice).
requests = Table(
    "requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("community_id", Integer, ForeignKey("communities.id"), nullable=False),
    Column("resident_id", Integer, ForeignKey("residents.id"), nullable=False, index=True),
    Column("category", String(50), nullable=False),
    Column("note", Text),
    Column("urgency", String(10), nullable=False, default="normal"),
    Column("status", String(20), nullable=False, default="open"),
    Column("channel", String(20)),
    Column("assignee_id", Integer, ForeignKey("staff.id")),
    Column("due_at", UTCDateTime, nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    Column("closed_at", UTCDateTime),
    Column("cancel_reason", Text),
    Column("repeat_kind", String(12)),
    Column("repeat_interval", String(20)),
    Column("repeat_until", Date),
    Column("previous_id", Integer, ForeignKey("requests.id"), unique=True),
    Column("opened_by", String(200), nullable=False, default=""),
    Column("version", Integer, nullable=False, default=1),
    Index("ix_requests_assignee_status", "assignee_id", "status"),
    # The evening report counts and lists from these alone, without reading the rows: the open
    # requests by category and assignee, the overdue ones (0002 widened them).
    Index(
        "ix_requests_community_status_due",
        "community_id",
        "status",
        "due_at",
        "category",
        "assignee_id",
        "urgency",
        "resident_id",
    ),
    Index("ix_requests_community_opened", "community_id", "opened_at", "category"),
    Index("ix_requests_community_resolved", "community_id", "resolved_at", "category"),
)

request_events = Table(
    "request_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("request_id", Integer, ForeignKey("requests.id"), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("from_status", String(20)),
    Column("to_status", String(20)),
    Column("note", Text),
)

calls = Table(
    "calls",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("community_id", Integer, ForeignKey("communities.id"), nullable=False),
    Column("resident_id", Integer, ForeignKey("residents.id"), nullable=False),
    Column("staff_id", Integer, ForeignKey("staff.id")),
    Column("actor", String(200), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("note", Text),
    Column("request_id", Integer, ForeignKey("requests.id")),
    Index("ix_calls_resident_at", "resident_id", "at"),
    # with the outcome and the resident (0010): the day's calls of a community that reached
    # someone are read from the index alone
    Index("ix_calls_community_at", "community_id", "at", "outcome", "resident_id"),
)

health_reports = Table(
    "health_reports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("staff_id", Integer, ForeignKey("staff.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("temperature", Float, nullable=False),
    Column("test", String(10)),
    Column("actor", String(200), nullable=False),
    Index("ix_health_reports_staff_at", "staff_id", "at"),
)

donations = Table(
    "donations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("community_id", Integer, ForeignKey("communities.id"), nullable=False),
    Column("donor", String(200), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("recipients", String(20), nullable=False, default="residents"),
    Column("note", Text),
    Column("actor", String(200), nullable=False),
    Index("ix_donations_community_at", "community_id", "at"),
)

donation_items = Table(
    "donation_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("donation_id", Integer, ForeignKey("donations.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("quantity", Float, nullable=False),
    Column("unit", String(20), nullable=False, default=""),
)

directory = Table(
    "directory",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("community_id", Integer, ForeignKey("communities.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("name_pinyin", String(400), nullable=False, default=""),
    Column("name_initials", String(100), nullable=False, default=""),
    Column("phone", String(32), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("hours", String(100)),
    Column("address", String(300)),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_directory_community_kind", "community_id", "kind"),
)

# Which PostgreSQL login may work in which community, and as what (liaison, office, district);
# read by the row-level security policies (commcare.storage.access_sql). A district grant has no
# community: it reads the summed figures of every community.
access_grants = Table(
    "access_grants",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("login", String(63), nullable=False),
    Column("role", String(20), nullable=False),
    Column("community_id", Integer, ForeignKey("communities.id")),
    Column("staff_id", Integer, ForeignKey("staff.id")),
    Column("granted_at", UTCDateTime, nullable=False),
    UniqueConstraint("login", "community_id"),
)

# Who did what, when. Each entry has a number (seq, without gaps) and a keyed hash over its
# fields, its number and the hash of the one before (commcare.audit: tamper-evident). `fields`
# names the fields changed, never the values of phones or ID numbers.
audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("actor", String(200), nullable=False),
    Column("action", String(50), nullable=False),
    Column("entity", String(30), nullable=False),
    Column("entity_id", Integer),
    Column("community_id", Integer),
    Column("fields", Text, nullable=False, default=""),
    Column("detail", Text, nullable=False, default=""),
    Column("prev_hash", String(64), nullable=False, default=""),
    Column("hash", String(64), nullable=False, default=""),
    Index("ix_audit_entity", "entity", "entity_id"),
    UniqueConstraint("seq"),
)
