"""city indexes: the community first in every index a community's command searches by

With many communities in one database (a city: hundreds of communities, millions of
residents), an index that does not begin with the community makes a community's search read
every community's entries and throw the others away: the time of ``resident list --search
zh`` then grows with the city. These indexes lead with the community, so one community's
commands read only its own entries (bench/plans/ holds the plans, docs/scale.md the rest).

Revision ID: 0004_city_indexes
Revises: 0003
"""

from alembic import op

revision = "0004_city_indexes"
down_revision = "0003"
branch_labels = None
depends_on = None

CHANGED = {  # index: (table, columns before, columns after)
    "ix_residents_name_pinyin": ("residents", ["name_pinyin"], ["community_id", "name_pinyin"]),
    "ix_residents_name_initials": ("residents", ["name_initials"], ["community_id", "name_initials"]),
}


def upgrade() -> None:
    for name, (table, _, after) in CHANGED.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, after, unique=False)


def downgrade() -> None:
    for name, (table, before, _) in CHANGED.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, before, unique=False)
