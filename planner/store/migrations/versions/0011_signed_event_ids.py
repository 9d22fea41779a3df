"""ids of the signed metric events received, so a replayed one is refused

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signed_event_ids",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "source", "event_id", name=op.f("pk_signed_event_ids")),
    )
    op.create_index("ix_signed_event_ids_received_at", "signed_event_ids", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_signed_event_ids_received_at", table_name="signed_event_ids")
    op.drop_table("signed_event_ids")
