"""one community's special groups read from its own index entries in a city

In a city every community's rows lie among the others', and one community's round and day
report fetched each of its special-group residents, their households and liaisons by key:
each on a heap page of its own, ten times the pages the same community reads alone. These
indexes carry what those statements read, community first, so that they read the community's
entries of an index and nothing else (index-only scans; bench/plans/, docs/scale.md):

* ``ix_calls_community_at`` gains the outcome and the resident (both backends): the day's
  calls that reached someone.
* PostgreSQL: ``ix_residents_community_name`` carries the residents' id, household,
  registration and archiving times, phone and emergency contact (``INCLUDE``), and
  ``ix_households_community`` the community's households with their liaison and address.
  SQLite, one community a file, reads its few pages whole and gets neither.

Revision ID: 0010_city_covering
Revises: 0009_tag_counts_by_key
"""

from alembic import op

revision = "0010_city_covering"
down_revision = "0009_tag_counts_by_key"
branch_labels = None
depends_on = None

RESIDENTS_COVERED = ["id", "household_id", "created_at", "archived_at", "phone", "emergency_name", "emergency_phone"]


def upgrade() -> None:
    op.drop_index("ix_calls_community_at", table_name="calls")
    op.create_index("ix_calls_community_at", "calls", ["community_id", "at", "outcome", "resident_id"])
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_residents_community_name", table_name="residents")
    op.create_index(
        "ix_residents_community_name", "residents", ["community_id", "name"], postgresql_include=RESIDENTS_COVERED
    )
    op.create_index(
        "ix_households_community",
        "households",
        ["community_id", "id"],
        postgresql_include=["liaison_id", "compound", "address"],
    )


def downgrade() -> None:
    op.drop_index("ix_calls_community_at", table_name="calls")
    op.create_index("ix_calls_community_at", "calls", ["community_id", "at"])
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_households_community", table_name="households")
    op.drop_index("ix_residents_community_name", table_name="residents")
    op.create_index("ix_residents_community_name", "residents", ["community_id", "name"])
