"""outbox: index the messages a person was sent, by when

A person's daily budget counts what they were sent since the start of their day (`delivered_since`), once per
delivery pass; without this index that reads every sent message of the tenant.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_recipient_sent", "outbox", ["recipient", "sent_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_outbox_recipient_sent", table_name="outbox")
