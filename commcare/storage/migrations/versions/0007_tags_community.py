"""tags carry their community: one community's special groups without the city's

``resident_tags`` hung from ``residents`` alone: one community's round, reports and check
of its counts found its special groups either through the tag index across every community
or by fetching all of its residents and probing their tags, and read more the more
communities shared the database (docs/scale.md, bench/results.md). The tags now carry the
resident's community (backfilled here from ``residents``; every write path sets it) and the
tag index leads with it: ``(community_id, tag, resident_id)`` replaces ``(tag, resident_id)``.

A tag whose resident is gone (the foreign key's cascade forbids it; only a damaged file holds
one) has no community to take and is deleted, as the cascade would have.

Revision ID: 0007_tags_community
Revises: 0006_access
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_tags_community"
down_revision = "0006_access"
branch_labels = None
depends_on = None

NEW_INDEX = ("ix_resident_tags_community_tag", ["community_id", "tag", "resident_id"])
OLD_INDEX = ("ix_resident_tags_tag", ["tag", "resident_id"])


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column("resident_tags", sa.Column("community_id", sa.Integer(), nullable=True))
    op.execute("DELETE FROM resident_tags WHERE resident_id NOT IN (SELECT id FROM residents)")
    if bind.dialect.name == "postgresql":
        op.execute(
            "UPDATE resident_tags t SET community_id = r.community_id FROM residents r WHERE r.id = t.resident_id"
        )
    else:
        op.execute(
            "UPDATE resident_tags SET community_id ="
            " (SELECT community_id FROM residents WHERE residents.id = resident_tags.resident_id)"
        )
    with op.batch_alter_table("resident_tags") as batch:
        batch.alter_column("community_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(
            op.f("fk_resident_tags_community_id_communities"), "communities", ["community_id"], ["id"]
        )
        batch.drop_index(OLD_INDEX[0])
        batch.create_index(NEW_INDEX[0], NEW_INDEX[1], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("resident_tags") as batch:
        batch.drop_index(NEW_INDEX[0])
        batch.create_index(OLD_INDEX[0], OLD_INDEX[1], unique=False)
        batch.drop_constraint(op.f("fk_resident_tags_community_id_communities"), type_="foreignkey")
        batch.drop_column("community_id")
