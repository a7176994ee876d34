"""the audit trail chained with a keyed hash, its entries numbered without gaps

Each entry gets a number (seq: 1, 2, 3 …, in the order the entries were written) and its
hash becomes an HMAC-SHA256 under a key kept outside the database (commcare.storage.audit_files).
A register that already has entries has them numbered and chained with the key here, and an
entry records that it was done: the entries from before this upgrade are protected from the
upgrade on (what was changed in them before it cannot be told).

Revision ID: 0005_audit_chain
Revises: 0004_city_indexes
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_audit_chain"
down_revision = "0004_city_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
    bind = op.get_bind()
    if bind.scalar(sa.text("SELECT count(*) FROM audit")):
        from commcare import audit

        audit.chain_existing(bind, _key())
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_audit_seq"), ["seq"])
    if bind.dialect.name == "postgresql" and bind.scalar(sa.text("SELECT to_regprocedure('commcare_audit_head()')")):
        # the head a staff login chains to (row-level security hides other communities'
        # entries from it): the newest by number
        bind.exec_driver_sql(HEAD_FUNCTION.format(order="seq"))


HEAD_FUNCTION = """CREATE OR REPLACE FUNCTION commcare_audit_head(OUT head_id integer, OUT head_hash text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
      SELECT {order}, hash FROM audit ORDER BY {order} DESC LIMIT 1
    $$"""


def _key() -> bytes:
    """The key ``commcare db upgrade`` hands over (a function, asked only when there are entries
    to chain), else the one the environment's settings name (made if there is none yet)."""
    config = op.get_context().config
    given = config.attributes.get("audit_key") if config is not None else None
    if given is not None:
        return given()
    from commcare import audit
    from commcare.config import load_settings

    return audit.key_for(load_settings())


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and bind.scalar(sa.text("SELECT to_regprocedure('commcare_audit_head()')")):
        bind.exec_driver_sql(HEAD_FUNCTION.format(order="id"))
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_seq"), type_="unique")
        batch_op.drop_column("seq")
