"""resident_tags' row-level security reads the tag's own community

Since 0007_tags_community a tag carries its resident's community, but its PostgreSQL policy
(0006_access) still decided visibility through the resident (``EXISTS (SELECT 1 FROM residents
…)``): a login's round probed ``residents`` once per tag it read, and a login could file a tag
of its own resident under another community. The policy is now the community tables' own,
``commcare_granted(community_id)``, for reading; a tag written must be filed under a
community the login was granted and be its resident's (``access_sql.TAGS_CHECK``). SQLite has
no roles and nothing changes there.

Revision ID: 0008_tags_policy
Revises: 0007_tags_community
"""

from alembic import op

from commcare.storage import access_sql

revision = "0008_tags_policy"
down_revision = "0007_tags_community"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        access_sql.tags_by_community(op.get_bind())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        access_sql.tags_by_resident(op.get_bind())
