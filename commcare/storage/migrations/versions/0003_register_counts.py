"""register counts: what the round and the reports check that they read whole

A table of how many active residents each community holds and how many carry each tag,
counted from the register as it stands. The triggers that keep it (commcare.storage.integrity) are
put in place by the migration runner (commcare.db) once every step has run: a later step
that rebuilds the residents table must not find them there.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

from commcare.storage import integrity

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "register_counts",
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=50), nullable=False),
        sa.Column("residents", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["community_id"], ["communities.id"],
                                name=op.f("fk_register_counts_community_id_communities")),
        sa.PrimaryKeyConstraint("community_id", "tag", name=op.f("pk_register_counts")),
    )
    integrity.recount(op.get_bind())


def downgrade() -> None:
    integrity.uninstall(op.get_bind())
    op.drop_table("register_counts")
