"""delegation live card: where the card a delegation started from chat is followed in lies

The bot keeps the live card's conversation and activity id with the delegation, so the delegation's result updates
that card in place rather than arriving as a second message. Delegations nobody followed have none.

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delegations") as batch:
        batch.add_column(sa.Column("live_card", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delegations") as batch:
        batch.drop_column("live_card")
