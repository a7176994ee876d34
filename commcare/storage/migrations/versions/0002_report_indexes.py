"""indexes the evening report reads alone

The report's counts (requests opened and resolved today by category; open ones by category
and assignee; the overdue list) and the special groups' residents were read through indexes
that then looked up every row. Widened so that the index alone answers.

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

WIDER = {  # index: (table, columns before, columns after)
    "ix_resident_tags_tag": ("resident_tags", ["tag"], ["tag", "resident_id"]),
    "ix_requests_community_status_due": ("requests", ["community_id", "status", "due_at"],
                                         ["community_id", "status", "due_at", "category", "assignee_id",
                                          "urgency", "resident_id"]),
    "ix_requests_community_opened": ("requests", ["community_id", "opened_at"],
                                     ["community_id", "opened_at", "category"]),
    "ix_requests_community_resolved": ("requests", ["community_id", "resolved_at"],
                                       ["community_id", "resolved_at", "category"]),
}


def upgrade() -> None:
    for name, (table, _, after) in WIDER.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, after, unique=False)


def downgrade() -> None:
    for name, (table, before, _) in WIDER.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, before, unique=False)
