"""metric_feeds.spend: a feed whose readings are also recorded as spend on the metric's plan

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, not batch mode (see 0018): a column with a default needs no copy of the table.


def upgrade() -> None:
    op.add_column("metric_feeds", sa.Column("spend", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("metric_feeds", "spend")
