"""delegation progress: the steps an agent reported while it worked

An MCP server's progress notifications (`2/3: scoring accounts`) are kept with the delegation, so its owner's card
shows how the work went. Delegations finished before this revision have none.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delegations") as batch:
        batch.add_column(sa.Column("progress", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delegations") as batch:
        batch.drop_column("progress")
