"""identity and access: staff logins, grants, and PostgreSQL's row-level security

A staff member may be bound to a login (``staff.login``: the OS user on a laptop, the database
role on PostgreSQL). ``access_grants`` records which login may work in which community. On
PostgreSQL this step also creates the functions and policies of
``commcare.storage.access_sql``, so that a staff login sees and changes only the communities it
was granted; SQLite has no roles, and gets the column and the table only.

Revision ID: 0006_access
Revises: 0005_audit_chain
"""

import sqlalchemy as sa
from alembic import op

from commcare.storage import access_sql
from commcare.storage.tables import UTCDateTime

revision = "0006_access"
down_revision = "0005_audit_chain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.add_column(sa.Column("login", sa.String(length=63), nullable=True))
        batch.create_unique_constraint(op.f("uq_staff_login"), ["login"])
    op.create_table(
        "access_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("login", sa.String(length=63), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("granted_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_access_grants_community_id_communities")
        ),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name=op.f("fk_access_grants_staff_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_grants")),
        sa.UniqueConstraint("login", "community_id", name=op.f("uq_access_grants_login_community_id")),
    )
    if op.get_bind().dialect.name == "postgresql":
        access_sql.install(op.get_bind())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        access_sql.uninstall(op.get_bind())
    op.drop_table("access_grants")
    with op.batch_alter_table("staff") as batch:
        batch.drop_constraint(op.f("uq_staff_login"), type_="unique")
        batch.drop_column("login")
