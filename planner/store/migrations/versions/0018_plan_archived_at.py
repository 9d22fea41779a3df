"""plans.archived_at: a tactical or weekly plan put away (hidden from lists, kept for history)

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, not batch mode: SQLite's batch mode copies `plans` and drops the old table, and with foreign
# keys on, dropping it would delete every plan's tasks and metrics by cascade.


def upgrade() -> None:
    op.add_column("plans", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("plans", "archived_at")
