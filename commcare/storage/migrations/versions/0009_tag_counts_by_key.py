"""the register counts of added tags fetch each tag's resident by its key (PostgreSQL)

The statement trigger that counts the tags an INSERT or COPY adds joined its transition table
to ``residents``; with no statistics for a transition table the planner hashed a sequential
scan of the whole residents table, every community's, for each statement: each chunk of a
roster's tags (and the demo's) read the city's residents. The function now fetches each added
tag's resident by its key (``commcare.storage.integrity``). The migration runner sets the
counting triggers aside before every step and installs them from the code after it, so an
upgrade to this revision is what replaces the function in a register made before it; this
step only says so. SQLite's triggers already read the resident by its key, row by row.

Revision ID: 0009_tag_counts_by_key
Revises: 0008_tags_policy
"""

from alembic import op

from commcare.storage import integrity

revision = "0009_tag_counts_by_key"
down_revision = "0008_tags_policy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        integrity.install(op.get_bind())  # CREATE OR REPLACE: the function as the code has it now


def downgrade() -> None:
    pass  # the same counts either way; the runner installs the code's function after the step
