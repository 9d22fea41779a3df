"""decision log: entries signed with a key the database does not hold

Each entry records the id of the key that signed it (HMAC-SHA256, see planner/services/decisions.py); entries logged before
this revision keep no key id and their plain SHA-256 hash ("legacy, unkeyed" in `cos decisions verify`). The head
row carries the last entry's key id, so an appender without the key cannot add an unsigned entry after signed ones.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Adding a column touches no row: the append-only trigger on `decisions` (0008) has nothing to refuse.
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))
    with op.batch_alter_table("decision_heads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decision_heads", schema=None) as batch_op:
        batch_op.drop_column("key_id")
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_column("key_id")
